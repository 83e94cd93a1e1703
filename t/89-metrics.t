#!/usr/bin/perl
# Operating the gateway (CONTRACT §10): /metrics in Prometheus text format
# summed across two workers, the log variables through a log_format, and
# W3C trace context passed on to providers.
#
# Known traffic goes through a BambooHR sandbox (API key and OAuth2
# accounts) and a Personio sandbox (a good and a wrong client secret):
# unified successes and errors, the proxy, the administration API (a
# run-time account) and the connect flow, a retry through a fault switch,
# token exchanges (ok and refused), a refused refresh grant that marks an
# account needs_reauth. Then the counters must say exactly that,
# the text must parse as the exposition format, and random resources and
# account ids from clients must not add label values.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 0);

my $sb = HRIS::Sandbox->start('bamboohr');
my $sp = HRIS::Sandbox->start('personio');

sub control {
    my ($sbx, $path, $body) = @_;
    my $res = $http->request($body ? 'POST' : 'GET', $sbx->url . $path,
        { headers => { 'Content-Type' => 'application/json' },
          $body ? (content => $json->encode($body)) : () });
    return $json->decode($res->{content} || '{}');
}

# an OAuth2 grant minted by the BambooHR sandbox
sub grant {
    my $code = control($sb, '/_sandbox/oauth/code', { scope => 'offline_access employee' })->{code};
    my $res = $http->post_form($sb->url . '/token.php?request=token', {
        grant_type => 'authorization_code', code => $code,
        redirect_uri => 'http://127.0.0.1/callback',
        client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret' });
    return $json->decode($res->{content});
}

my $tok = grant();
ok($tok->{refresh_token}, 'the sandbox granted a refresh token');

my $accounts = HRIS::Nginx::accounts_for(bamboohr => $sb, personio => $sp);
my %p = %{ $HRIS::Nginx::PROVIDER{personio}{credentials} };
push @{ $accounts->{accounts} },
    { id => 'acme-personio-bad', tenant => 'acme', provider => 'personio',
      credentials => { %p, client_secret => 'not-the-secret' }, base_url => $sp->url },
    # its token exchange answered 500: result="error"
    { id => 'acme-personio-err', tenant => 'acme', provider => 'personio',
      credentials => { %p }, base_url => $sp->url },
    # first called traced: a token exchange and a call, two spans
    { id => 'acme-personio-traced', tenant => 'acme', provider => 'personio',
      credentials => { %p }, base_url => $sp->url },
    { id => 'acme-oauth', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' },
      credentials => { client_id => 'sandbox-bamboohr-client',
                       client_secret => 'sandbox-bamboohr-secret',
                       access_token => $tok->{access_token},
                       refresh_token => $tok->{refresh_token},
                       expires_at => time + 3600 },
      base_url => $sb->url . '/api/gateway.php/acme',
      token_url => $sb->url . '/token.php?request=token' };

my $LOG_FIELDS = 'uri status provider account resource calls ustatus utime retries error trace';
my $ng = HRIS::Nginx->start(
    accounts => $accounts,
    workers  => 2,
    location => 'hris_retry_backoff 10ms;',
    http     => q{log_format hris '$uri|$status|$hris_provider|$hris_account|$hris_resource|}
              . q{$hris_upstream_calls|$hris_upstream_status|$hris_upstream_time|}
              . q{$hris_retries|$hris_error|$hris_trace_id';},
    server   => 'access_log access.log hris; '
              . 'location /admin/ { hris_admin; } location /connect/ { hris_connect; } '
              . 'location = /metrics { hris_metrics; } '
              . 'location = /metrics-closed { hris_metrics; deny all; }',
);

my $PROVIDERS = qr/^(?:bamboohr|personio|peoplehr|heavenhr|clayhr|none)$/;
my $schema = $json->decode(do { local (@ARGV, $/) = HRIS::Nginx::root() . '/mappings/schema.json'; <> });
my %RESOURCES = map { $_ => 1 } keys %{ $schema->{resources} }, 'none', 'unknown';

# ---------------------------------------------------------------------------
# The exposition format, parsed strictly: families declared (HELP and TYPE,
# once each) before their samples, every sample "name{labels} value".

sub parse_metrics {
    my ($text) = @_;
    my (%type, %help, %samples, @errors);
    my %seen_series;
    my $line_no = 0;
    for my $line (split /\n/, $text, -1) {
        $line_no++;
        next if $line eq '' && $line_no > 1;
        if ($line =~ /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/) {
            push @errors, "line $line_no: HELP of $1 twice" if $help{$1}++;
            push @errors, "line $line_no: HELP of $1 after its samples" if $samples{$1};
            next;
        }
        if ($line =~ /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/) {
            push @errors, "line $line_no: TYPE of $1 twice" if $type{$1};
            push @errors, "line $line_no: TYPE of $1 after its samples" if $samples{$1};
            $type{$1} = $2;
            next;
        }
        if ($line =~ /^#/) {
            push @errors, "line $line_no: a comment that is neither HELP nor TYPE: $line";
            next;
        }
        unless ($line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/) {
            push @errors, "line $line_no: not a sample: $line";
            next;
        }
        my ($name, $labels, $value) = ($1, $2 // '', $3);
        my %l;
        my $rest = $labels;
        while (length $rest) {
            unless ($rest =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)//) {
                push @errors, "line $line_no: bad labels: $labels";
                last;
            }
            my ($k, $v) = ($1, $2);
            $v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
            push @errors, "line $line_no: label $k twice" if exists $l{$k};
            $l{$k} = $v;
        }
        push @errors, "line $line_no: value $value is not a number"
            unless $value =~ /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?Inf$|^NaN$/;
        my $family = $name;
        if (!$type{$family} && $name =~ /^(.*)_(?:bucket|sum|count)$/ && ($type{$1} // '') eq 'histogram') {
            $family = $1;
        }
        push @errors, "line $line_no: sample of $name before its TYPE" unless $type{$family};
        push @errors, "line $line_no: sample of $name before its HELP" unless $help{$family};
        my $series = $name . '{' . join(',', map { "$_=$l{$_}" } sort keys %l) . '}';
        push @errors, "line $line_no: series $series twice" if $seen_series{$series}++;
        $samples{$family}++;
        push @{ $samples{list} }, { name => $name, labels => \%l, value => $value + 0 };
    }
    push @errors, 'the text does not end with a line feed' unless $text =~ /\n\z/;
    return { type => \%type, samples => $samples{list} // [], errors => \@errors };
}

# the value of one series (0 when absent), or the sum over series that
# match the labels given
sub value {
    my ($m, $name, %want) = @_;
    my $sum = 0;
    SAMPLE: for my $s (@{ $m->{samples} }) {
        next unless $s->{name} eq $name;
        for (keys %want) { next SAMPLE unless ($s->{labels}{$_} // '') eq $want{$_} }
        $sum += $s->{value};
    }
    return $sum;
}

# The other worker adds its counts once a second: scrape until the
# requests counted reach $total (a loaded machine may delay its timer).
sub scrape {
    my ($total) = @_;
    my ($res, $m);
    for my $try (1 .. 20) {
        sleep($try == 1 ? 1.1 : 0.5);
        $res = $ng->get('/metrics', key => undef);
        $m = parse_metrics($res->{body} // '');
        last if !defined $total || value($m, 'hris_requests_total') >= $total;
    }
    is($res->{status}, 200, '/metrics answers without an API key') or diag $res->{body};
    is($res->{headers}{'content-type'}, 'text/plain; version=0.0.4', 'as the text format 0.0.4');
    is_deeply($m->{errors}, [], 'which parses as the Prometheus exposition format')
        or diag $res->{body};
    return $m;
}

# ---------------------------------------------------------------------------
# Known traffic

my $res;
is($ng->unified('employees', limit => 3)->{status}, 200, 'unified list') for 1 .. 3;
is($ng->unified('employees/4')->{status}, 200, 'unified get');
$res = $ng->unified('no_such_thing');
is($res->{status}, 404, 'an unknown resource: 404');
is($ng->unified('employees', key => undef)->{status}, 401, 'no key: 401');
is($ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr')->{status},
   200, 'proxy');

# a retry: one 503, then the answer
$sb->fault({ fault => '503', count => 1, path => '/employees' });
$res = $ng->unified('employees', limit => 2);
is($res->{status}, 200, 'a 503 retried: 200');

# Personio: a token exchange, then the call; a wrong secret: refused
is($ng->unified('employees', account => 'acme-personio', limit => 2)->{status}, 200,
   'personio: token exchanged, employees listed');
is($ng->unified('employees', account => 'acme-personio-bad')->{status}, 401,
   'personio with a wrong secret: 401');
$sp->fault({ fault => '500', count => 1, path => '/v1/auth' });
is($ng->unified('employees', account => 'acme-personio-err')->{status}, 502,
   'personio token exchange answered 500: 502');

# BambooHR OAuth: a refresh that works, then a revoked grant
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
is($ng->unified('employees/4', account => 'acme-oauth')->{status}, 200,
   'oauth: refused access token refreshed');
control($sb, '/_sandbox/oauth/revoke', { all => JSON::PP::true });
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$res = $ng->unified('employees/4', account => 'acme-oauth');
is($res->{status}, 401, 'oauth: revoked grant: 401');
is($res->{json}{details}{needs_reauth}, JSON::PP::true, 'needs_reauth');

# a run-time account (administration API), a connect link that is no link
$res = $ng->request('POST', '/admin/accounts',
    headers => { 'Content-Type' => 'application/json' },
    body => $json->encode({ id => 'acme-bamboohr-2', provider => 'bamboohr',
                            context => { subdomain => 'acme' },
                            credentials => { api_key => '0123456789abcdef0123456789abcdef01234567' },
                            base_url => $sb->url . '/api/gateway.php/acme' }));
is($res->{status}, 201, 'admin: a run-time account created') or diag $res->{body};
is($ng->get('/connect/not-a-link', key => undef)->{status}, 400, 'connect: a bad link, 400');

my $m = scrape(15);

subtest 'families and types' => sub {
    my %want = (
        hris_requests_total => 'counter', hris_upstream_requests_total => 'counter',
        hris_upstream_duration_seconds => 'histogram', hris_retries_total => 'counter',
        hris_token_refreshes_total => 'counter', hris_accounts => 'gauge',
        hris_field_missing_total => 'counter', hris_records_total => 'counter',
    );
    is($m->{type}{$_}, $want{$_}, "$_ is a $want{$_}") for sort keys %want;
};

subtest 'requests by api, provider, resource and status' => sub {
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'bamboohr',
             resource => 'employees', status => '200'), 6,
       'unified bamboohr employees 200: 6 (lists, gets, the retried list, oauth)');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'bamboohr',
             resource => 'unknown', status => '404'), 1, 'the unknown resource: resource="unknown"');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'none',
             resource => 'none', status => '401'), 1, 'no key: provider and resource "none"');
    is(value($m, 'hris_requests_total', api => 'proxy', provider => 'bamboohr',
             resource => 'none', status => '200'), 1, 'proxy 200');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'personio',
             resource => 'employees', status => '200'), 1, 'personio 200');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'personio',
             status => '401'), 1, 'personio 401');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'bamboohr',
             status => '401'), 1, 'oauth 401');
    is(value($m, 'hris_requests_total', api => 'admin', provider => 'none', resource => 'none',
             status => '201'), 1, 'admin 201');
    is(value($m, 'hris_requests_total', api => 'connect', provider => 'none', resource => 'none',
             status => '400'), 1, 'connect 400');
    is(value($m, 'hris_requests_total', api => 'unified', provider => 'personio',
             status => '502'), 1, 'personio 502');
    is(value($m, 'hris_requests_total'), 15, '15 requests in all (the scrapes are not)');
};

subtest 'upstream calls, retries, durations' => sub {
    is(value($m, 'hris_upstream_requests_total', provider => 'bamboohr', status => '503'), 1,
       'the 503 counted as an upstream request');
    is(value($m, 'hris_retries_total', provider => 'bamboohr'), 1, 'and as a retry');
    is(value($m, 'hris_retries_total', provider => 'personio'), 0, 'no personio retries');
    # bamboohr: 3 lists, 1 get, 1 proxy, 503 + 200; oauth: 401, refresh,
    # 200; then 401 and the refused refresh
    is(value($m, 'hris_upstream_requests_total', provider => 'bamboohr'), 12,
       'bamboohr upstream requests: 12');
    is(value($m, 'hris_upstream_requests_total', provider => 'bamboohr', status => '200'), 8,
       '8 of them 200');
    is(value($m, 'hris_upstream_requests_total', provider => 'personio'), 4,
       'personio: exchange and call, the refused exchange, the one that failed');
    is(value($m, 'hris_upstream_requests_total', provider => 'personio', status => '500'), 1,
       'that one: 500');

    for my $prov (qw(bamboohr personio)) {
        my @b = map { [ $_->{labels}{le}, $_->{value} ] }
                grep { $_->{name} eq 'hris_upstream_duration_seconds_bucket'
                       && $_->{labels}{provider} eq $prov } @{ $m->{samples} };
        ok(@b >= 5, "$prov: histogram buckets");
        is($b[-1][0], '+Inf', 'the last bucket is +Inf');
        my $mono = 1;
        for my $i (1 .. $#b) {
            $mono = 0 if $b[$i][1] < $b[$i - 1][1]
                      || ($b[$i][0] ne '+Inf' && $b[$i][0] <= $b[$i - 1][0]);
        }
        ok($mono, 'bounds rise, counts never fall');
        my $count = value($m, 'hris_upstream_duration_seconds_count', provider => $prov);
        is($count, $b[-1][1], "$prov: _count equals the +Inf bucket");
        is($count, value($m, 'hris_upstream_requests_total', provider => $prov),
           'one observation per upstream request');
        my $sum = value($m, 'hris_upstream_duration_seconds_sum', provider => $prov);
        ok($sum > 0 && $sum < 60 * $count, "$prov: _sum $sum s");
    }
};

subtest 'token exchanges and accounts' => sub {
    is(value($m, 'hris_token_refreshes_total', provider => 'personio', result => 'ok'), 1,
       'personio: one exchange ok');
    is(value($m, 'hris_token_refreshes_total', provider => 'personio', result => 'refused'), 1,
       'personio: one refused (wrong secret)');
    is(value($m, 'hris_token_refreshes_total', provider => 'personio', result => 'error'), 1,
       'personio: one error (the 500)');
    is(value($m, 'hris_token_refreshes_total', provider => 'bamboohr', result => 'ok'), 1,
       'bamboohr oauth: one refresh ok');
    is(value($m, 'hris_token_refreshes_total', provider => 'bamboohr', result => 'refused'), 1,
       'bamboohr oauth: the revoked grant refused');
    is(value($m, 'hris_accounts', provider => 'bamboohr', status => 'ok'), 2,
       'bamboohr: 2 ok (one from the accounts file, one made at run time)');
    is(value($m, 'hris_accounts', provider => 'bamboohr', status => 'needs_reauth'), 1,
       'bamboohr: 1 needs_reauth');
    is(value($m, 'hris_accounts', provider => 'personio', status => 'ok'), 4, 'personio: 4 ok');
    is(value($m, 'hris_accounts', provider => 'clayhr'), 0, 'clayhr: none');
};

subtest 'field coverage' => sub {
    my $records = value($m, 'hris_records_total', provider => 'bamboohr', resource => 'employees');
    ok($records >= 10, "bamboohr employees mapped: $records");
    my @missing = grep { $_->{name} eq 'hris_field_missing_total' } @{ $m->{samples} };
    ok(@missing, 'fields the providers lacked are counted');
    my %fields = map { $_ => 1 } keys %{ $schema->{resources}{employees}{fields} };
    for (@missing) {
        next unless $_->{labels}{resource} eq 'employees';
        ok($fields{ $_->{labels}{field} }, "$_->{labels}{field}: a schema field");
        ok($_->{value} <= value($m, 'hris_records_total', provider => $_->{labels}{provider},
                                resource => 'employees'),
           'never more misses than records');
    }
    # the sandbox's employee 4 has no termination date: a field the table reads
    ok(value($m, 'hris_field_missing_total', provider => 'bamboohr', resource => 'employees',
             field => 'termination_date') > 0, 'termination_date lacking is counted');
};

subtest 'log variables' => sub {
    sleep 0.5;
    open my $fh, '<', $ng->dir . '/access.log' or return fail('access.log');
    my @lines = map { chomp; [ split /\|/, $_, -1 ] } <$fh>;
    my @names = split ' ', $LOG_FIELDS;
    my @log = map { my $l = $_; +{ map { $names[$_] => $l->[$_] } 0 .. $#names } } @lines;

    my ($personio) = grep { $_->{account} eq 'acme-personio' } @log;
    ok($personio, 'the personio call is logged') or return;
    is($personio->{provider}, 'personio', '$hris_provider');
    is($personio->{resource}, 'employees', '$hris_resource');
    is($personio->{calls}, 2, '$hris_upstream_calls: token exchange and call');
    is($personio->{ustatus}, '200, 200', '$hris_upstream_status: one per call');
    like($personio->{utime}, qr/^\d+\.\d{3}, \d+\.\d{3}$/, '$hris_upstream_time: seconds.ms per call');
    is($personio->{retries}, 0, '$hris_retries');
    is($personio->{error}, '-', 'no $hris_error');

    my ($retried) = grep { $_->{ustatus} =~ /503/ } @log;
    ok($retried, 'the retried call is logged') or return;
    is($retried->{ustatus}, '503, 200', 'both tries in $hris_upstream_status');
    is($retried->{calls}, 2, 'and in $hris_upstream_calls');
    is($retried->{retries}, 1, '$hris_retries: 1');

    my ($proxy) = grep { $_->{uri} =~ m{^/proxy/} } @log;
    is($proxy->{provider}, 'bamboohr', 'proxy: provider');
    is($proxy->{account}, 'acme-bamboohr', 'proxy: account');
    is($proxy->{resource}, '-', 'proxy: no resource');
    is($proxy->{calls}, 1, 'proxy: one call');
    is($proxy->{ustatus}, '200', 'proxy: its status');

    my ($error) = grep { $_->{uri} =~ /no_such_thing/ } @log;
    is($error->{status}, 404, 'the error is logged');
    is($error->{resource}, 'unknown', '$hris_resource of an unknown resource');
    like($error->{error}, qr/unknown resource .*no_such_thing/, '$hris_error: the message');
    is($error->{calls}, 0, 'no upstream call');
    is($error->{ustatus}, '-', 'no upstream status');

    my ($reauth) = grep { $_->{account} eq 'acme-oauth' && $_->{status} == 401 } @log;
    like($reauth->{error}, qr/needs re-authorization/, '$hris_error of a refused grant');

    my ($nokey) = grep { $_->{status} == 401 && $_->{account} eq '-' } @log;
    ok($nokey, 'a request without a key: no account');
    is($nokey->{provider}, '-', 'and no provider');

    my ($scrape) = grep { $_->{uri} eq '/metrics' } @log;
    is($scrape->{calls}, '-', 'the variables say nothing for other locations');
};

# ---------------------------------------------------------------------------
# Cardinality: what clients send never becomes a label

my $counted;    # requests counted by the last scrape

subtest 'labels stay bounded' => sub {
    my $series = sub {
        my ($mm) = @_;
        return scalar grep { $_->{name} eq 'hris_requests_total' } @{ $mm->{samples} };
    };
    my $before = $series->($m);
    for my $i (1 .. 25) {
        my $rnd = join '', map { ('a' .. 'z')[rand 26] } 1 .. 12;
        $ng->unified("r$rnd");
        $ng->unified('employees', account => "acct-$rnd");
        $ng->get("/proxy/x/$rnd?integrated_account_id=acct-$rnd");
        $ng->get("/unified/hris/$rnd/$rnd?integrated_account_id=acme-bamboohr");
    }
    my $m2 = scrape(value($m, 'hris_requests_total') + 100);
    $counted = value($m2, 'hris_requests_total');
    my $after = $series->($m2);
    ok($after - $before <= 3, "100 random requests added $after - $before label sets");
    for my $s (@{ $m2->{samples} }) {
        my $l = $s->{labels};
        ok(0, "provider $l->{provider}") if defined $l->{provider} && $l->{provider} !~ $PROVIDERS;
        ok(0, "resource $l->{resource}") if defined $l->{resource} && !$RESOURCES{ $l->{resource} };
        ok(0, "a label holds client input: $s->{name}")
            if grep { /acct-|^r[a-z]{12}$/ } values %$l;
    }
    is(value($m2, 'hris_requests_total', api => 'unified', provider => 'bamboohr',
             resource => 'unknown', status => '404'), 51, 'the random resources: unknown, 404');
    is(value($m2, 'hris_requests_total', api => 'unified', provider => 'none', status => '404'), 25,
       'the random accounts: provider none');
    is(value($m2, 'hris_requests_total', api => 'proxy', provider => 'none', status => '404'), 25,
       'the random proxy accounts');
};

subtest 'access to /metrics' => sub {
    is($ng->get('/metrics-closed', key => undef)->{status}, 403, 'deny all is honoured');
    is($ng->request('POST', '/metrics', key => undef, body => 'x')->{status}, 405, 'POST: 405');
    my $h = $ng->request('HEAD', '/metrics', key => undef);
    is($h->{status}, 200, 'HEAD: 200');
    is($h->{body} // '', '', 'without a body');
};

# ---------------------------------------------------------------------------
# Trace context

sub trace_headers {
    my ($sbx) = @_;
    return map {
        my $r = $_;
        +{ target => $r->{target},
           traceparent => [ map { $_->[1] } grep { lc $_->[0] eq 'traceparent' } @{ $r->{headers} } ],
           tracestate  => [ map { $_->[1] } grep { lc $_->[0] eq 'tracestate' } @{ $r->{headers} } ] }
    } @{ $sbx->requests };
}

my $TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
my $PARENT = '00f067aa0ba902b7';
my $TP = "00-$TRACE-$PARENT-01";

subtest 'traceparent goes on with a new span id' => sub {
    $sp->reset;
    # an account not called yet: a token exchange, then the call
    $res = $ng->get('/unified/hris/employees?integrated_account_id=acme-personio-traced&limit=1',
                    headers => { traceparent => $TP, tracestate => 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' });
    is($res->{status}, 200, 'a traced unified call');
    my @h = trace_headers($sp);
    is(scalar @h, 2, 'two upstream requests') or return;
    my %spans;
    for my $h (@h) {
        is(scalar @{ $h->{traceparent} }, 1, "$h->{target}: one traceparent");
        my ($v, $trace, $span, $flags) = split /-/, $h->{traceparent}[0] // '';
        is($v, '00', 'version 00');
        is($trace, $TRACE, 'the client\'s trace id');
        like($span, qr/^[0-9a-f]{16}$/, 'a span id');
        isnt($span, $PARENT, 'a new one, not the client\'s');
        isnt($span, '0' x 16, 'not all zero');
        is($flags, '01', 'the client\'s flags');
        is_deeply($h->{tracestate}, ['congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'], 'tracestate passed on');
        $spans{$span}++;
    }
    is(scalar keys %spans, scalar @h, 'each upstream call its own span');

    $sb->reset;
    $res = $ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr',
                    headers => { traceparent => $TP, tracestate => 'a=b' });
    is($res->{status}, 200, 'a traced proxy call');
    my ($p) = trace_headers($sb);
    is(scalar @{ $p->{traceparent} }, 1, 'the proxy sends one traceparent, not the client\'s too');
    like($p->{traceparent}[0], qr/^00-$TRACE-[0-9a-f]{16}-01$/, 'with the trace id');
    unlike($p->{traceparent}[0], qr/$PARENT/, 'and a new span id');
    is_deeply($p->{tracestate}, ['a=b'], 'one tracestate');

    sleep 0.5;
    open my $fh, '<', $ng->dir . '/access.log' or return fail('access.log');
    my ($line) = grep { m{^/proxy/.*\|$TRACE$} } <$fh>;
    ok($line, '$hris_trace_id logs the trace id');
};

subtest 'no traceparent, or an invalid one: none sent' => sub {
    my @bad = (
        undef,
        "00-$TRACE-$PARENT",                                 # no flags
        '00-' . ('0' x 32) . "-$PARENT-01",                  # trace id of zeros
        "00-$TRACE-" . ('0' x 16) . '-01',                   # parent id of zeros
        '00-' . uc($TRACE) . "-$PARENT-01",                  # uppercase hex
        "01-$TRACE-$PARENT-01",                              # another version
        "ff-$TRACE-$PARENT-01",
        "00-$TRACE-$PARENT-01-extra",                        # too long
        "00-${TRACE}x-$PARENT-01",
        "00-$TRACE-$PARENT-0g",
    );
    for my $tp (@bad) {
        my $what = $tp // 'none';
        $sb->reset;
        my %h = (tracestate => 'a=b');
        $h{traceparent} = $tp if defined $tp;
        is($ng->get('/unified/hris/employees/4?integrated_account_id=acme-bamboohr', headers => \%h)->{status},
           200, "unified with traceparent $what");
        is($ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr',
                    headers => \%h)->{status}, 200, 'and the proxy');
        my @h = trace_headers($sb);
        is(scalar(grep { @{ $_->{traceparent} } || @{ $_->{tracestate} } } @h), 0,
           'no traceparent nor tracestate reached the provider');
    }

    # a tracestate too long, or with a control character: dropped, the
    # traceparent still goes
    for my $ts ('k=' . ('v' x 600), "a=b\x01c", "a=b\x7f") {
        $sb->reset;
        # HTTP::Tiny refuses control characters: the request by hand
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port) or die;
        print $s "GET /proxy/v1/employees/directory?integrated_account_id=acme-bamboohr HTTP/1.0\r\n"
               . "Authorization: Bearer $HRIS::Nginx::KEY\r\n"
               . "traceparent: $TP\r\ntracestate: $ts\r\n\r\n";
        my $answer = do { local $/; <$s> };
        like($answer, qr{^HTTP/1\.\d 200}, 'answered');
        my ($p) = trace_headers($sb);
        is(scalar @{ $p->{traceparent} }, 1, 'traceparent sent');
        is(scalar @{ $p->{tracestate} }, 0,
           'an insane tracestate is not (' . length($ts) . ' bytes)');
    }
};

subtest 'the counts survive a reload' => sub {
    # the traced requests since: 2, then 10 pairs and 3
    my $before = value(scrape($counted + 25), 'hris_requests_total');
    is($before, $counted + 25, "$before requests counted");
    # the old workers flush what they counted as they quit
    is($ng->unified('employees', limit => 1)->{status}, 200, 'one more') for 1 .. 4;
    $ng->reload;
    my $after = value(scrape($before + 4), 'hris_requests_total');
    is($after, $before + 4, 'a reload keeps the counts, the last ones included');
};

$ng->stop;
done_testing;
