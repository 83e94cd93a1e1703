#!/usr/bin/perl
# Idempotency-Key on writes (CONTRACT.md §7):
#
#   - the first answer (status and body) is kept per tenant, account and key,
#     and the same request with the key gets it again with
#     Idempotent-Replayed: true and no upstream call;
#   - another method, path or body with the key: 422; a malformed key: 400;
#   - while the first request runs: 409, from either of two workers;
#   - a write that got no answer keeps its 504 (outcome unknown): the key
#     never lets it through twice; a 400 before any call is not kept;
#   - kept answers hold across a restart (the state directory);
#   - a full zone refuses new keys (503 naming hris_idempotency_zone_size)
#     rather than forget kept ones.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $J = JSON::PP->new->canonical;
my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);

# a second account of tenant acme on the same sandbox
push @{ $accounts->{accounts} }, { %{ $accounts->{accounts}[0] }, id => 'acme-bamboohr-2' };

my $port2 = HRIS::Nginx::free_port();
# port2: both workers take connections (reuseport), and a write may wait
# longer than on the main port, so that the in-flight window outlasts eight
# repeats even on a loaded sanitizer run.
my $ng = HRIS::Nginx->start(accounts => $accounts, workers => 2,
    http => "server { listen 127.0.0.1:$port2 reuseport;
                      location /unified/ { hris_unified; hris_timeout 30s;
                                           add_header X-Worker \$pid always; } }",
    location => 'add_header X-Worker $pid always; hris_timeout 2s;');

my $EMP = '/api/gateway.php/acme/v1/employees';

sub posts { $sb->stats->{by_path}{$EMP} // 0 }

# create(body, key, %opts): port, account, path, method, api key
sub create {
    my ($body, $key, %o) = @_;
    my $account = $o{account} // 'acme-bamboohr';
    my $path = $o{path} // 'employees';
    my $url = 'http://127.0.0.1:' . ($o{port} // $ng->port)
              . "/unified/hris/$path?integrated_account_id=$account";
    my %h = ('Content-Type' => 'application/json',
             Authorization => 'Bearer ' . ($o{api_key} // $HRIS::Nginx::KEY));
    $h{'Idempotency-Key'} = $key if defined $key;
    my $res = HTTP::Tiny->new(timeout => 20, keep_alive => 0)->request(
        $o{method} // 'POST', $url,
        { headers => \%h, content => ref $body ? $J->encode($body) : $body });
    my $json = eval { $J->decode($res->{content}) };
    return { status => $res->{status}, headers => $res->{headers},
             body => $res->{content}, json => $json };
}

# A request with the header's bytes as they are (HTTP::Tiny refuses some).
sub raw_create {
    my ($body, $key) = @_;
    my $text = $J->encode($body);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port, Timeout => 10)
        or die "connect: $!";
    print $s "POST /unified/hris/employees?integrated_account_id=acme-bamboohr HTTP/1.1\r\n"
           . "Host: localhost\r\nConnection: close\r\n"
           . "Authorization: Bearer $HRIS::Nginx::KEY\r\nContent-Type: application/json\r\n"
           . "Idempotency-Key: $key\r\nContent-Length: " . length($text) . "\r\n\r\n$text";
    local $/;
    my $answer = <$s>;
    close $s;
    my ($status) = $answer =~ m{^HTTP/1\.1 (\d+)};
    my ($json) = $answer =~ m{\r\n\r\n(.*)\z}s;
    return { status => $status, json => eval { $J->decode($json) } };
}

my $n = 0;
sub person { $n++; return { first_name => "Key$n", last_name => 'Holder',
                            email => "key$n.holder\@idem.example" } }

# -- replay -----------------------------------------------------------------------

my $ada = person();
my $first;

subtest 'the first answer, then the same answer again without a call' => sub {
    my $before = posts();
    $first = create($ada, 'key-ada-1');
    is($first->{status}, 201, 'created');
    ok(!$first->{headers}{'idempotent-replayed'}, 'the first is not a replay');
    my $calls = posts();
    is($calls, $before + 2, 'the create and its read back');
    for my $i (1 .. 4) {
        my $again = create($ada, 'key-ada-1');
        is($again->{status}, 201, "repeat $i: 201");
        is($again->{body}, $first->{body}, "repeat $i: the same body, byte for byte");
        is($again->{headers}{'idempotent-replayed'}, 'true', "repeat $i: Idempotent-Replayed: true");
    }
    is(posts(), $calls, 'no call to the provider for the repeats');
    my ($all) = $ng->walk('employees', remote_data => 'false', limit => 500);
    is(scalar(grep { ($_->{email} // '') eq $ada->{email} } @$all), 1, 'one employee created');
};

subtest 'the same key with another body, path or method: 422' => sub {
    my $before = posts();
    my $res = create({ %$ada, last_name => 'Other' }, 'key-ada-1');
    is($res->{status}, 422, 'another body: 422');
    is($res->{json}{details}{idempotency_key}, 'reused', 'details say why');
    $res = create($ada, 'key-ada-1', path => 'employees', account => 'acme-bamboohr&remote_data=false');
    is($res->{status}, 422, 'another query: 422');
    $res = create({ job_title => 'x' }, 'key-ada-1', path => "employees/$first->{json}{result}{id}",
                  method => 'PATCH');
    is($res->{status}, 422, 'another method and path: 422');
    is(posts(), $before, 'no call');
};

subtest 'keys are per tenant and account' => sub {
    my $res = create($ada, 'key-ada-1', account => 'acme-bamboohr-2');
    is($res->{status}, 422, 'the same body to another account: its own key, a new create '
                            . '(refused by the provider: the e-mail is taken)')
        or diag $res->{body};
    ok(!$res->{headers}{'idempotent-replayed'}, 'not a replay');
    is($res->{json}{details}{upstream_status}, 409, 'the provider got it');
    my $bob = person();
    $res = create($bob, 'shared-key', account => 'acme-bamboohr');
    is($res->{status}, 201, 'acme: created');
    $res = create($bob, 'shared-key', account => 'acme-bamboohr-2');
    is($res->{status}, 422, 'the same key at the other account is another key');
    ok(!$res->{headers}{'idempotent-replayed'}, '... and no replay');
};

subtest 'a malformed key: 400, nothing sent' => sub {
    my $before = posts();
    for my $case (['', 'empty'], ['x' x 256, 'longer than 255'], ["caf\xc3\xa9", 'not ASCII'],
                  ["a\x7fb", 'DEL']) {
        my $res = raw_create(person(), $case->[0]);
        is($res->{status}, 400, "$case->[1]: 400");
        is($res->{json}{details}{header}, 'Idempotency-Key', "$case->[1]: names the header");
    }
    my $res = create(person(), 'x' x 255);
    is($res->{status}, 201, '255 characters are fine');
    is(posts(), $before + 2, 'only that one reached the provider');
};

subtest 'a 400 before any call is not kept: the key works once the body does' => sub {
    my $res = create({ first_name => 'Only' }, 'key-fix-me');
    is($res->{status}, 400, 'a required field missing: 400');
    $res = create(person(), 'key-fix-me');
    is($res->{status}, 201, 'the same key with a good body: 201');
    ok(!$res->{headers}{'idempotent-replayed'}, 'not a replay');
};

subtest 'a refusal of the provider is kept like any answer' => sub {
    my $before = posts();
    my $res = create($ada, 'key-dup');
    is($res->{status}, 422, 'duplicate e-mail: 422');
    my $again = create($ada, 'key-dup');
    is($again->{status}, 422, 'replayed: 422');
    is($again->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed');
    is(posts(), $before + 1, 'the provider saw it once');
};

# -- in flight: 409, across workers ------------------------------------------------

subtest 'while the first runs: 409 from either worker; then its answer' => sub {
    my $body = person();
    my $dir = tempdir('hris-78-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    $sb->fault({ fault => 'slow', delay_ms => 6000, path => '/v1/employees', count => 1 });
    my $before = posts();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $res = create($body, 'key-slow', port => $port2);
        open my $fh, '>', "$dir/first" or POSIX::_exit(1);
        print $fh "$res->{status} " . ($res->{headers}{'x-worker'} // '-') . "\n";
        close $fh;
        POSIX::_exit(0);
    }
    # the repeats begin once the provider holds the first (not after a
    # guessed pause: a loaded machine may take longer to send it)
    my $wait = time + 10;
    sleep 0.05 while posts() == $before && time < $wait;
    is(posts(), $before + 1, 'the first reached the provider');
    # the kernel spreads connections by their address hash: repeat until
    # both workers have answered (eight at least, forty at most)
    my (%workers, @statuses);
    while (@statuses < 8 || (keys %workers < 2 && @statuses < 40)) {
        my $res = create($body, 'key-slow', port => $port2);
        push @statuses, $res->{status};
        $workers{ $res->{headers}{'x-worker'} // '-' } = 1;
    }
    waitpid($pid, 0);
    open my $fh, '<', "$dir/first" or die;
    my ($status, $worker) = split ' ', scalar <$fh>;
    is($status, 201, 'the first: 201');
    is_deeply(\@statuses, [ (409) x @statuses ], 'every repeat while it ran: 409');
    cmp_ok(scalar keys %workers, '>=', 2, 'the repeats were served by both workers');
    is(posts(), $before + 2, 'one create and its read back');

    my (%replayed_by, $all_201);
    $all_201 = 1;
    for (my $i = 0; $i < 8 || (keys %replayed_by < 2 && $i < 40); $i++) {
        my $res = create($body, 'key-slow', port => $port2);
        $all_201 &&= $res->{status} == 201 && ($res->{headers}{'idempotent-replayed'} // '') eq 'true';
        $replayed_by{ $res->{headers}{'x-worker'} } = 1;
    }
    ok($all_201, 'afterwards: the kept 201, replayed');
    cmp_ok(scalar keys %replayed_by, '>=', 2, 'by both workers');
    is(posts(), $before + 2, 'no further call');
};

subtest 'a write whose answer never came: the 504 is kept, it is never sent twice' => sub {
    $sb->fault({ fault => 'slow', delay_ms => 3000, path => '/v1/employees', count => 1 });
    my $body = person();
    my $before = posts();
    my $res = create($body, 'key-lost');
    is($res->{status}, 504, 'status 504');
    is($res->{json}{details}{outcome}, 'unknown', 'outcome unknown');
    sleep 1.5;
    my $again = create($body, 'key-lost');
    is($again->{status}, 504, 'the same key: the kept 504');
    is($again->{headers}{'idempotent-replayed'}, 'true', 'replayed');
    is(posts(), $before + 1, 'the provider got the write once');
};

subtest 'a client that goes away mid-write: the key keeps "outcome unknown"' => sub {
    $sb->fault({ fault => 'slow', delay_ms => 1500, path => '/v1/employees', count => 1 });
    my $body = person();
    my $before = posts();
    my $url = 'http://127.0.0.1:' . $ng->port
              . '/unified/hris/employees?integrated_account_id=acme-bamboohr';
    my $gone = HTTP::Tiny->new(timeout => 0.5, keep_alive => 0)->post($url, {
        headers => { 'Content-Type' => 'application/json', 'Idempotency-Key' => 'key-gone',
                     Authorization => "Bearer $HRIS::Nginx::KEY" },
        content => $J->encode($body) });
    is($gone->{status}, 599, 'the client gave up');
    sleep 2;
    my $again = create($body, 'key-gone');
    is($again->{status}, 504, 'the same key: 504');
    is($again->{json}{details}{outcome}, 'unknown', 'outcome unknown');
    is($again->{headers}{'idempotent-replayed'}, 'true', 'replayed, not sent again');
    is(posts(), $before + 1, 'the provider got the write once');
};

# -- across a restart -------------------------------------------------------------

subtest 'kept answers survive a restart' => sub {
    my $before = posts();
    $ng->stop;
    ok(-s $ng->dir . '/hris_state/idempotency.json', 'idempotency.json in the state directory');
    $ng->start;
    my $res = create($ada, 'key-ada-1');
    is($res->{status}, 201, 'after the restart: 201');
    is($res->{body}, $first->{body}, 'the same body');
    is($res->{headers}{'idempotent-replayed'}, 'true', 'replayed');
    $res = create({ %$ada, last_name => 'Other' }, 'key-ada-1');
    is($res->{status}, 422, 'another body: still 422');
    $res = create(person(), 'key-lost');
    is($res->{status}, 422, 'the lost one: still taken');
    is(posts(), $before, 'no call');
    like($ng->error_log, qr/Idempotency-Key answers kept from/, 'the log says they were loaded');
};

subtest 'a reload keeps them too' => sub {
    $ng->reload;
    my $res = create($ada, 'key-ada-1');
    is($res->{headers}{'idempotent-replayed'}, 'true', 'replayed after a reload');
};

subtest 'a broken idempotency.json fails nginx -t, naming it' => sub {
    my $file = $ng->dir . '/hris_state/idempotency.json';
    $ng->stop;
    open my $fh, '>', $file or die;
    print $fh '{"entries": ';
    close $fh;
    my ($rc, $out) = $ng->test_config;
    isnt($rc, 0, 'nginx -t fails');
    like($out, qr/idempotency\.json/, 'naming the file');
    unlink $file;
};

# -- a full zone --------------------------------------------------------------------

subtest 'a full zone: 503 naming the directive, nothing sent, kept answers kept' => sub {
    my $small = HRIS::Nginx->start(accounts => $accounts,
                                   http => 'hris_idempotency_zone_size 32k;');
    my ($full, @kept, $res);
    for my $i (1 .. 60) {
        my $body = person();
        my $before = posts();
        $res = $small->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
            body => $J->encode($body), headers => { 'Content-Type' => 'application/json',
                                                   'Idempotency-Key' => "fill-$i" });
        if ($res->{status} == 503) {
            $full = 1;
            is(posts(), $before, 'the refused one reached no provider');
            last;
        }
        push @kept, [ "fill-$i", $body, $res->{status} ];
    }
    ok($full, 'the zone filled up after ' . scalar(@kept) . ' keys');
    is($res->{json}{details}{directive}, 'hris_idempotency_zone_size', 'details.directive');
    like($res->{json}{message}, qr/hris_idempotency_zone_size/, 'the message names it');
    my ($key, $body, $status) = @{ $kept[0] };
    my $again = $small->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
        body => $J->encode($body), headers => { 'Content-Type' => 'application/json',
                                               'Idempotency-Key' => $key });
    is($again->{headers}{'idempotent-replayed'}, 'true', 'the first key is still kept');
    is($again->{status}, $status, '... with its status');
    my $plain = $small->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
        body => $J->encode(person()), headers => { 'Content-Type' => 'application/json' });
    is($plain->{status}, 201, 'writes without a key still work');
    $small->stop;
    unlike($small->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts');
};

# -- a tenant's share -----------------------------------------------------------------

# A tenant's kept answers take at most a quarter of the zone (at least
# 64k): beyond, that tenant's new keys get the full zone's 503, and another
# tenant's keys are still kept. Without the share, acme's answers filled
# the whole 256k zone and globex got the 503.
subtest "a tenant's share: acme refused at its quarter, globex still kept" => sub {
    my $small = HRIS::Nginx->start(accounts => $accounts,
                                   http => 'hris_idempotency_zone_size 256k;');
    my ($full, $kept, $res) = (0, 0);
    for my $i (1 .. 150) {
        my $before = posts();
        $res = $small->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
            body => $J->encode(person()), headers => { 'Content-Type' => 'application/json',
                                                      'Idempotency-Key' => "share-$i" });
        if ($res->{status} == 503) {
            $full = 1;
            is(posts(), $before, 'the refused one reached no provider');
            last;
        }
        $kept++;
    }
    ok($full, "acme was refused after $kept keys");
    is($res->{json}{details}{directive}, 'hris_idempotency_zone_size', 'details.directive');
    like($small->error_log, qr/Idempotency-Key of tenant "acme": its kept answers take its share of the zone \(a quarter of "hris_idempotency_zone_size"\)/,
         'the log names the tenant and its share');

    for my $i (1 .. 3) {
        my $body = person();
        my $g = $small->request('POST', '/unified/hris/employees?integrated_account_id=globex-bamboohr',
            key => $HRIS::Nginx::OTHER_KEY,
            body => $J->encode($body), headers => { 'Content-Type' => 'application/json',
                                                   'Idempotency-Key' => "globex-$i" });
        is($g->{status}, 201, "globex's write $i with a new key goes through");
        my $again = $small->request('POST', '/unified/hris/employees?integrated_account_id=globex-bamboohr',
            key => $HRIS::Nginx::OTHER_KEY,
            body => $J->encode($body), headers => { 'Content-Type' => 'application/json',
                                                   'Idempotency-Key' => "globex-$i" });
        is($again->{headers}{'idempotent-replayed'}, 'true', '... and its answer is kept');
    }

    # the file keeps whose each answer is: after a restart acme's share
    # is still taken, globex's is not
    $small->stop;
    $small->start;
    $res = $small->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
        body => $J->encode(person()), headers => { 'Content-Type' => 'application/json',
                                                  'Idempotency-Key' => 'share-after' });
    is($res->{status}, 503, "after a restart acme's share is still full");
    my $g = $small->request('POST', '/unified/hris/employees?integrated_account_id=globex-bamboohr',
        key => $HRIS::Nginx::OTHER_KEY,
        body => $J->encode(person()), headers => { 'Content-Type' => 'application/json',
                                                  'Idempotency-Key' => 'globex-after' });
    is($g->{status}, 201, '... and globex still writes with a new key');
    $small->stop;
    unlike($small->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts');
};

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit)\]/, 'no alerts in the error log');

done_testing;
