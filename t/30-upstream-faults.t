#!/usr/bin/perl
# Provider failures, through the sandbox's fault switches: what the client
# gets (status, envelope, details) and how many upstream attempts were made
# (the sandbox's own request count). Retries: 429, 502, 503, 504 and network
# errors are retried; other statuses and unusable bodies are not.

use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP;
use MIME::Base64;
use POSIX qw(strftime);
use Time::HiRes qw(time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $PROVIDER_KEY = '0123456789abcdef0123456789abcdef01234567';
my @SECRETS = ($PROVIDER_KEY, encode_base64("$PROVIDER_KEY:x", ''));

my $RETRIES = 2;
my $sb = HRIS::Sandbox->start('bamboohr');

my $accounts = HRIS::Nginx::accounts($sb);
my $closed_port = HRIS::Nginx::free_port();    # nobody listens there
push @{ $accounts->{accounts} },
    { id => 'acme-down', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $PROVIDER_KEY },
      base_url => "http://127.0.0.1:$closed_port" },
    { id => 'acme-moved', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $PROVIDER_KEY },
      base_url => $sb->url . '/moved-away' };

my $ng = HRIS::Nginx->start(
    accounts => $accounts,
    location => "hris_retries $RETRIES; hris_retry_backoff 10ms; hris_timeout 500ms; "
              . 'hris_retry_after_max 3s;',
);

my @bodies;    # every answer, scanned for credentials at the end

sub fault { $sb->reset; $sb->fault({ path => '/employees', @_ }) }
sub upstream_requests { $sb->stats->{requests} }

sub employees {
    my $res = $ng->unified('employees', limit => 3, @_);
    push @bodies, $res->{body};
    return $res;
}

sub envelope_ok {
    my ($res, $status, $message, %details) = @_;
    is($res->{status}, $status, "status $status");
    my $j = $res->{json};
    ok(ref $j eq 'HASH', 'JSON envelope') or return diag($res->{body});
    is($j->{statusCode}, $status, 'statusCode');
    ok(length($j->{error} // ''), 'error');
    like($j->{message}, $message, "message: $j->{message}");
    is($j->{details}{provider}, 'bamboohr', 'details.provider')
        if exists $j->{details}{provider} && !exists $details{provider};
    for my $k (sort keys %details) {
        is($j->{details}{$k}, $details{$k}, "details.$k = $details{$k}");
    }
}

my $good = do {
    $sb->reset;
    my $res = employees();
    is($res->{status}, 200, 'baseline: 200');
    is(upstream_requests(), 1, 'baseline: one upstream request');
    [ map { $_->{id} } @{ $res->{json}{result} } ];
};

subtest 'two 503s, then success: retried, right data' => sub {
    fault(fault => '503', count => 2);
    my $res = employees();
    is($res->{status}, 200, '200 after two 503s');
    is_deeply([ map { $_->{id} } @{ $res->{json}{result} } ], $good, 'the right records');
    is(upstream_requests(), 3, '3 upstream requests');
};

subtest '503 forever: 502 after 1 + hris_retries attempts' => sub {
    fault(fault => '503', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/failed with 503 after 3 attempts/,
                upstream_status => 503, attempts => 1 + $RETRIES);
    is($res->{json}{details}{upstream_message}, 'Service Unavailable',
       "the provider's own message (X-BambooHR-Error-Message) is in details");
    is(upstream_requests(), 1 + $RETRIES, 'exactly 1 + hris_retries upstream requests');
};

for my $status (502, 504) {
    subtest "$status is retried" => sub {
        fault(fault => "$status", count => 1);
        is(employees()->{status}, 200, "200 after one $status");
        is(upstream_requests(), 2, '2 upstream requests');
        fault(fault => "$status", count => -1);
        envelope_ok(employees(), 502, qr/failed with $status/,
                    upstream_status => $status, attempts => 1 + $RETRIES);
        is(upstream_requests(), 1 + $RETRIES, '1 + hris_retries upstream requests');
    };
}

subtest '500 is not retried: 502 at once' => sub {
    fault(fault => '500', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/failed with 500 after 1 attempts/,
                upstream_status => 500, attempts => 1);
    is(upstream_requests(), 1, 'one upstream request');
};

subtest '429 with Retry-After: 1 once: waited for, then 200' => sub {
    fault(fault => '429', count => 1, retry_after => '1');
    my $t0 = time;
    my $res = employees();
    my $took = time - $t0;
    is($res->{status}, 200, 'answered 200');
    is_deeply([ map { $_->{id} } @{ $res->{json}{result} } ], $good, 'the right records');
    is(upstream_requests(), 2, '2 upstream requests');
    cmp_ok($took, '>=', 0.9, 'the retry waited for Retry-After (not the 10ms backoff)');
};

subtest '429 with Retry-After over hris_retry_after_max: 429 at once' => sub {
    fault(fault => '429', count => -1, retry_after => '120');
    my $res = employees();
    envelope_ok($res, 429, qr/rate limit is exhausted; retry after 120 seconds/,
                upstream_status => 429, attempts => 1);
    is($res->{headers}{'retry-after'}, '120', "Retry-After is the provider's");
    is(upstream_requests(), 1, 'one upstream request: no pointless retries');
};

subtest 'a huge Retry-After is a long wait, never a short one' => sub {
    # 18446744073709552 s is 384 ms once multiplied by 1000 in 64 bits;
    # the last one does not even fit in time_t
    for my $ra ('99999999999', '18446744073709552', '99999999999999999999999999') {
        fault(fault => '429', count => -1, retry_after => $ra);
        my $res = employees();
        envelope_ok($res, 429, qr/rate limit is exhausted/, upstream_status => 429,
                    attempts => 1);
        my $back = $res->{headers}{'retry-after'} // '';
        like($back, qr/^[1-9][0-9]*$/, "Retry-After $ra: a Retry-After comes back ($back)");
        cmp_ok(length($back) && $back, '>', 3, 'past hris_retry_after_max');
        cmp_ok($back, '<=', 2147483647, 'and small enough for any client to read');
        is(upstream_requests(), 1, 'one upstream request: not retried');
    }
};

subtest '429 without Retry-After forever: 429 after retries, with a Retry-After' => sub {
    fault(fault => '429', count => -1);
    my $res = employees();
    envelope_ok($res, 429, qr/rate limit is exhausted/, upstream_status => 429,
                attempts => 1 + $RETRIES);
    like($res->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, 'a Retry-After header');
    is(upstream_requests(), 1 + $RETRIES, '1 + hris_retries upstream requests');
};

subtest 'Retry-After as an HTTP date' => sub {
    my $date = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 2));
    fault(fault => '429', count => 1, retry_after => $date);
    my $t0 = time;
    my $res = employees();
    is($res->{status}, 200, "date 2 s ahead ($date): retried, 200");
    is(upstream_requests(), 2, '2 upstream requests');
    cmp_ok(time - $t0, '>=', 0.9, 'waited for the date');

    $date = strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime(time + 3600));
    fault(fault => '429', count => -1, retry_after => $date);
    $res = employees();
    envelope_ok($res, 429, qr/rate limit is exhausted/, upstream_status => 429);
    my $ra = $res->{headers}{'retry-after'} // 0;
    ok($ra >= 3500 && $ra <= 3600, "an hour ahead: 429 with Retry-After in seconds ($ra)");
    is(upstream_requests(), 1, 'one upstream request');
};

subtest "503 with Retry-After (BambooHR's legacy throttling)" => sub {
    fault(fault => '503', count => 1, retry_after => '1');
    is(employees()->{status}, 200, 'retried after Retry-After, 200');
    is(upstream_requests(), 2, '2 upstream requests');

    fault(fault => '503', count => -1, retry_after => '60');
    my $res = employees();
    envelope_ok($res, 429, qr/retry after 60 seconds/, upstream_status => 503, attempts => 1);
    is($res->{headers}{'retry-after'}, '60', 'Retry-After passed on');
    is(upstream_requests(), 1, 'one upstream request');
};

subtest 'truncated body (connection closed mid-answer)' => sub {
    fault(fault => 'truncated', count => 1);
    is(employees()->{status}, 200, 'once: a network error, retried, 200');
    is(upstream_requests(), 2, '2 upstream requests');

    fault(fault => 'truncated', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/broke off its answer after 3 attempts/,
                attempts => 1 + $RETRIES);
    is(upstream_requests(), 1 + $RETRIES, '1 + hris_retries upstream requests');
};

subtest 'truncated JSON (complete HTTP answer, cut document)' => sub {
    fault(fault => 'truncated_json', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/malformed JSON/, upstream_status => 200);
    ok($res->{json}{details}{parse_error}, 'details.parse_error says where');
    is(upstream_requests(), 1, 'not retried');
};

subtest 'HTML maintenance page with 200' => sub {
    fault(fault => 'html', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr{answered with text/html.* instead of JSON}, upstream_status => 200);
    like($res->{json}{details}{content_type}, qr{^text/html}, 'details.content_type');
    unlike($res->{body}, qr/<html/i, 'the HTML is not passed on');
    is(upstream_requests(), 1, 'not retried');
};

subtest 'HTML error page with 500' => sub {
    fault(fault => 'html500', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/failed with 500/, upstream_status => 500, attempts => 1);
    unlike($res->{body}, qr/<html/i, 'the HTML is not passed on');
    is(upstream_requests(), 1, 'not retried');
};

subtest 'connection reset' => sub {
    # libcurl itself re-sends a request, once, when a reused keep-alive
    # connection dies before any answer: so two resets are needed to be
    # sure the module's own retry is what saved the request (3 upstream
    # requests either way: reset, reset, answer).
    fault(fault => 'reset', count => 2);
    is(employees()->{status}, 200, 'two resets: retried, 200');
    is(upstream_requests(), 3, '3 upstream requests');

    fault(fault => 'reset', count => -1);
    my $res = employees();
    envelope_ok($res, 502, qr/broke off its answer after 3 attempts/,
                attempts => 1 + $RETRIES);
    my $n = upstream_requests();
    ok($n == 1 + $RETRIES || $n == 2 + $RETRIES,
       "1 + hris_retries attempts ($n upstream requests, one more when the first "
       . 'went out on a cached connection)');
};

subtest 'slow provider: 504 from hris_timeout' => sub {
    fault(fault => 'slow', count => 1, delay_ms => 3000);
    my $t0 = time;
    my $res = employees();
    my $took = time - $t0;
    envelope_ok($res, 504, qr/did not answer in time \(hris_timeout 500 ms/);
    cmp_ok($took, '<', 2.5, 'the 504 came before the provider would have answered');
    cmp_ok($took, '>=', 0.45, 'and not before hris_timeout');
    is(upstream_requests(), 1, 'a timeout is not retried');
    is(employees()->{status}, 200, 'the next request is served');
};

subtest 'unreachable provider: 503' => sub {
    $sb->reset;
    my $res = $ng->unified('employees', account => 'acme-down');
    push @bodies, $res->{body};
    envelope_ok($res, 503, qr/could not be reached after 3 attempts/,
                attempts => 1 + $RETRIES);
    like($res->{json}{message}, qr/127\.0\.0\.1:$closed_port/, 'names the host');
    is(upstream_requests(), 0, 'the sandbox saw nothing');
};

subtest 'provider 404' => sub {
    $sb->reset;
    my $res = $ng->unified('employees/4', account => 'acme-moved');
    push @bodies, $res->{body};
    envelope_ok($res, 404, qr/no employees record with id "4" in integrated account "acme-moved"/);
    is(upstream_requests(), 1, 'one upstream request');

    $res = $ng->unified('employees', account => 'acme-moved');
    push @bodies, $res->{body};
    envelope_ok($res, 422, qr/provider rejected the request with 404: Not found/,
                upstream_status => 404, upstream_message => 'Not found');
};

$ng->stop;
my $log = $ng->error_log;

subtest 'wrong provider credentials: 401 that says to check them' => sub {
    $sb->reset;
    my $bad = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb, api_key => 'wrong'),
                                 location => 'hris_retries 2; hris_retry_backoff 10ms;');
    my $res = $bad->unified('employees');
    push @bodies, $res->{body};
    envelope_ok($res, 401, qr/rejected the integrated account's credentials.*check or renew/,
                upstream_status => 401, attempts => 1, upstream_message => 'Invalid API key.');
    is(upstream_requests(), 1, 'a 401 is not retried');
    unlike($res->{body}, qr/wrong/, 'the wrong key is not echoed');
    ok(!defined $res->{headers}{'www-authenticate'},
       'no WWW-Authenticate: the gateway key was fine, the provider refused');
    $bad->stop;
    $log .= $bad->error_log;
};

subtest 'an error reported inside a 2xx body (errors.in_body)' => sub {
    # A copy of the table that reads the time-off types answer as an
    # error report: PeopleHR does this ("isError": true in a 200).
    my $dir = tempdir('hris-mappings-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $root = HRIS::Nginx::root();
    copy("$root/mappings/schema.json", "$dir/schema.json") or die $!;
    my $table = decode_json(do {
        local $/;
        open my $fh, '<', "$root/mappings/bamboohr.json" or die $!;
        <$fh>;
    });
    $table->{errors}{in_body} = {
        when => { '/defaultHours/0/name' => ['Saturday'] },
        status => '/defaultHours/2/amount', message => '/defaultHours/1/name',
        rules => [ { status => ['8'], http => 422 } ],
    };
    HRIS::Nginx::write_file("$dir/bamboohr.json", encode_json($table));
    my $ng2 = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb), mappings => $dir);
    $sb->reset;
    for my $try (1, 2) {
        my $res = $ng2->unified('timeoff_types');
        push @bodies, $res->{body};
        envelope_ok($res, 422, qr/provider rejected the request with 422/);
    }
    is(upstream_requests(), 2, 'one upstream request each');
    is($ng2->unified('employees', limit => 1)->{status}, 200, 'other answers are not errors');
    $ng2->stop;
    unlike($ng2->error_log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           'answered once: no "header already sent"');
};

subtest 'a refused token exchange (HeavenHR client credentials)' => sub {
    my $hh = HRIS::Sandbox->start('heavenhr');
    my $acc = {
        api_keys => [ { key => $HRIS::Nginx::KEY, tenant => 'acme' } ],
        accounts => [ { id => 'acme-heavenhr', tenant => 'acme', provider => 'heavenhr',
                        credentials => { client_id => 'sandbox-heavenhr-client-id',
                                         client_secret => 'not-the-secret' },
                        base_url => $hh->url } ],
    };
    # each refusal reaches the provider here (t/87-zone.t has the cool-down)
    my $ng2 = HRIS::Nginx->start(accounts => $acc, location => 'hris_timeout 5s;',
                                 http => 'hris_credentials_cooldown 0;');
    for my $try (1, 2) {
        my $res = $ng2->unified('employees', account => 'acme-heavenhr');
        push @bodies, $res->{body};
        envelope_ok($res, 401, qr/refused to exchange the integrated account's credentials/,
                    upstream_status => 401, provider => 'heavenhr');
        unlike($res->{body}, qr/not-the-secret/, 'the secret is not echoed');
    }
    is($hh->stats->{requests}, 2, 'one token request each, no data call');
    $ng2->stop;
    my $l = $ng2->error_log;
    unlike($l, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert');
    unlike($l, qr/not-the-secret/, 'the secret is not logged');
    $hh->stop;
};

for my $body (@bodies) {
    for my $s (@SECRETS) {
        if (index($body, $s) >= 0) {
            fail("an answer leaks a credential: $body");
        }
    }
}
pass('no answer carries the provider key');

for my $s (@SECRETS) {
    ok(index($log, $s) < 0, 'the provider key never appears in the error log');
}
like($log, qr/retrying upstream call/, 'retries are logged (the scan above saw them)');
unlike($log, qr/exited on signal/, 'no worker crashed');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing;
