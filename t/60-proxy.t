#!/usr/bin/perl
# The proxy API (CONTRACT.md §5): {METHOD} /proxy/{path}?integrated_account_id=
# goes to {base_url}/{path} with the account's credentials and the table's
# headers; the provider's status and body come back as they are. The
# client's credentials and hop-by-hop headers stay on the client's hop.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64;
use POSIX ();
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $PROVIDER_KEY = '0123456789abcdef0123456789abcdef01234567';
my $BASIC = 'Basic ' . encode_base64("$PROVIDER_KEY:x", '');

# An upstream that answers every request with what it received, as JSON,
# and with a few headers a client must not see.
my ($echo_pid, $echo_port) = do {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                  ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        alarm 300;    # never outlive a test that was killed
        while (my $c = $l->accept) {
            local $/ = "\r\n";
            my $line = <$c> // next;
            $line =~ s/\r\n$//;
            my ($method, $target) = split / /, $line;
            my @h;
            while (my $x = <$c>) {
                $x =~ s/\r\n$//;
                last if $x eq '';
                push @h, [ split /:\s*/, $x, 2 ];
            }
            my ($len) = map { $_->[1] } grep { lc $_->[0] eq 'content-length' } @h;
            my $body = '';
            read($c, $body, $len) if $len;
            my $out = encode_json({ method => $method, target => $target, headers => \@h,
                                    body => $body });
            print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   . 'Content-Length: ' . length($out) . "\r\nConnection: close\r\n"
                   . "Keep-Alive: timeout=5\r\nSet-Cookie: provider_session=1\r\n"
                   . "X-Provider: yes\r\nServer: echo\r\n"
                   . "Authorization: Bearer provider-token-1\r\n"
                   . "Proxy-Authorization: Basic cHJvdmlkZXI6eA==\r\n"
                   . "Authentication-Info: nextnonce=\"provider-nonce\"\r\n\r\n$out";
            close $c;
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    ($pid, $port);
};
END { local $?; if ($echo_pid) { kill 'KILL', $echo_pid; waitpid $echo_pid, 0 } }

my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);
push @{ $accounts->{accounts} },
    { id => 'acme-echo', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $PROVIDER_KEY },
      base_url => "http://127.0.0.1:$echo_port/base" },
    { id => 'acme-down', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $PROVIDER_KEY },
      base_url => 'http://127.0.0.1:' . HRIS::Nginx::free_port() };
my $ng = HRIS::Nginx->start(accounts => $accounts,
                            location => 'hris_retries 1; hris_retry_backoff 10ms;');

my $ACME = 'integrated_account_id=acme-bamboohr';
my $ECHO = 'integrated_account_id=acme-echo';

# The same request, straight to the sandbox as the provider would get it.
sub direct {
    my ($method, $path, %o) = @_;
    return HTTP::Tiny->new(timeout => 10)->request($method,
        $sb->url . "/api/gateway.php/acme$path",
        { headers => { Authorization => $BASIC, Accept => 'application/json',
                       %{ $o{headers} // {} } },
          defined $o{body} ? (content => $o{body}) : () });
}

# What the echo upstream received for a proxied request.
sub echoed {
    my $res = shift;
    my $j = $res->{json} or return {};
    my %h;
    push @{ $h{ lc $_->[0] } }, $_->[1] for @{ $j->{headers} };
    return { %$j, h => \%h };
}

# A raw request, for headers HTTP::Tiny will not send as given.
sub raw {
    my ($text) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port) or die $!;
    print $s $text;
    local $/;
    my $all = <$s>;
    my ($head, $body) = split /\r\n\r\n/, $all, 2;
    my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
    return { status => $status, head => $head, body => $body,
             json => eval { decode_json($body) } };
}

# -- passthrough of status and body ---------------------------------------------

{
    my $res = $ng->get("/proxy/v1/employees/directory?$ACME");
    my $want = direct('GET', '/v1/employees/directory');
    is($want->{status}, 200, 'direct call: 200');
    is($res->{status}, 200, 'proxied: 200');
    like($res->{headers}{'content-type'}, qr{^application/json}, 'JSON, because the table '
         . "injects Accept: application/json (the sandbox answers XML otherwise)");
    is($res->{headers}{'content-type'}, $want->{headers}{'content-type'},
       "the provider's content type");
    ok($res->{body} eq $want->{content}, 'the body is byte for byte the provider\'s')
        or diag(length($res->{body}) . ' vs ' . length($want->{content}));
    ok(!exists $res->{json}{result}, 'not wrapped in the unified envelope');
}

{
    my $res = $ng->get("/proxy/v1/employees?$ACME&page%5Blimit%5D=3");
    is($res->{status}, 200, 'query parameters pass through: 200');
    is(scalar @{ $res->{json}{data} }, 3, 'page[limit]=3 gives 3 records');
    my $want = direct('GET', '/v1/employees?page%5Blimit%5D=3');
    is($res->{body}, $want->{content}, 'the same answer as the provider\'s');
}

{
    my $res = $ng->get("/proxy/v1/employees/999999?$ACME");
    my $want = direct('GET', '/v1/employees/999999');
    is($res->{status}, 404, 'provider 404: 404');
    is($res->{body}, $want->{content}, "with the provider's body (empty here)");
    is($res->{headers}{'x-bamboohr-error-message'}, 'Employee not found',
       "and the provider's error header");

    $res = $ng->get("/proxy/v1/employees/999999/time_off/calculator?$ACME");
    $want = direct('GET', '/v1/employees/999999/time_off/calculator');
    is($res->{status}, 404, 'provider 404 with a JSON problem body: 404');
    is($res->{body}, $want->{content}, "the provider's body, not the gateway's envelope");
    like($res->{headers}{'content-type'}, qr{^application/problem\+json},
         "the provider's content type");
}

{
    my $body = encode_json({ title => 'T', fields => ['firstName', 'lastName'],
                             filters => { employeeIds => ['4', '6'] } });
    my $res = $ng->request('POST', "/proxy/v1/reports/custom?$ACME&format=json",
                           body => $body, headers => { 'Content-Type' => 'application/json' });
    my $want = direct('POST', '/v1/reports/custom?format=json', body => $body,
                      headers => { 'Content-Type' => 'application/json' });
    is($res->{status}, 200, 'POST with a body: 200');
    is($res->{body}, $want->{content}, "the provider's answer to the body");
    is_deeply([ map { $_->{id} } @{ $res->{json}{employees} } ], ['4', '6'],
              'the body reached the provider');

    $res = $ng->request('POST', "/proxy/v1/reports/custom?$ACME&format=json",
                        body => '{"fields": [', headers => { 'Content-Type' => 'application/json' });
    is($res->{status}, 400, "the provider's 400 to a malformed body passes through");
    is($res->{headers}{'x-bamboohr-error-message'}, 'Malformed JSON', 'as it is');
}

# -- what reaches the provider ---------------------------------------------------

{
    my $res = $ng->request('PATCH', "/proxy/v1/some/path%20x?$ECHO&a=1&b=%2F&c",
        body => '{"x":1}',
        headers => { 'Content-Type' => 'application/json', 'X-Custom' => 'kept',
                     Cookie => 'gateway_session=1', 'Proxy-Authorization' => 'Basic eDp5',
                     Accept => 'text/xml', TE => 'trailers', 'Upgrade' => 'h2c' });
    is($res->{status}, 200, 'echo upstream: 200');
    my $e = echoed($res);
    is($e->{method}, 'PATCH', 'the method passes through');
    is($e->{target}, '/base/v1/some/path%20x?a=1&b=%2F&c',
       'path and query pass through as sent, without integrated_account_id');
    is($e->{body}, '{"x":1}', 'the body passes through');
    is_deeply($e->{h}{authorization}, [$BASIC],
              "only the account's Basic credentials, not the gateway key");
    ok(!grep({ /sk_test/ } map { @$_ } values %{ $e->{h} }), 'the gateway key is nowhere');
    is_deeply($e->{h}{accept}, ['application/json'], "the table's Accept wins over the client's");
    is_deeply($e->{h}{'x-custom'}, ['kept'], 'other client headers pass through');
    is_deeply($e->{h}{'content-type'}, ['application/json'], 'Content-Type passes through');
    ok(!$e->{h}{cookie}, 'Cookie is not forwarded');
    ok(!$e->{h}{'proxy-authorization'}, 'Proxy-Authorization is not forwarded');
    ok(!$e->{h}{te} && !$e->{h}{upgrade}, 'TE and Upgrade are not forwarded');
    is_deeply($e->{h}{host}, ["127.0.0.1:$echo_port"], "Host is the provider's");

    is($res->{headers}{'x-provider'}, 'yes', "the provider's own headers come back");
    ok(!$res->{headers}{'set-cookie'}, "the provider's Set-Cookie does not");
    ok(!$res->{headers}{'keep-alive'}, 'nor its Keep-Alive');
    isnt($res->{headers}{server} // '', 'echo', "the provider's Server header is not passed on");
    ok(!$res->{headers}{authorization} && !$res->{headers}{'proxy-authorization'}
       && !$res->{headers}{'authentication-info'},
       "the provider's Authorization, Proxy-Authorization and Authentication-Info do not "
       . '(CONTRACT §5: no credential comes back)');
    ok(!grep({ /provider-token-1|provider-nonce/ } map { ref $_ ? @$_ : $_ }
             values %{ $res->{headers} }), 'their values are nowhere in the answer');
}

{
    my $r = raw("GET /proxy/v1/hop?$ECHO HTTP/1.1\r\nHost: gw\r\n"
              . "Authorization: Bearer $HRIS::Nginx::KEY\r\n"
              . "Connection: X-Hop-One, close\r\nX-Hop-One: 1\r\n"
              . "Connection: x-hop-two\r\nX-Hop-Two: 2\r\n"
              . "Keep-Alive: timeout=1\r\nX-End-To-End: 3\r\n\r\n");
    is($r->{status}, 200, 'raw request: 200');
    my $e = echoed($r);
    ok(!$e->{h}{'x-hop-one'} && !$e->{h}{'x-hop-two'},
       'headers the client named in Connection are hop-by-hop: not forwarded');
    ok(!$e->{h}{'keep-alive'} && !$e->{h}{connection}, 'Connection and Keep-Alive are not');
    is_deeply($e->{h}{'x-end-to-end'}, ['3'], 'an end-to-end header is');
}

# -- refused before any call -----------------------------------------------------

{
    $sb->reset;
    # %2e is a dot and %2f a slash to a provider that decodes before it
    # resolves dot segments: "%2e%2e/proxy/v1/..." would leave the base URL
    # while nginx's own (decoded) URI stays in this location
    for my $path ('v1/../v1/employees', 'v1/employees/..', './v1/employees',
                  'v1/%2E%2E/x', 'v1/.%2e/x', 'v1/%2e/x', 'v1/x%2F..%2Fy',
                  '%2e%2e/proxy/v1/employees') {
        is($ng->get("/proxy/$path?$ACME")->{status}, 400, "dot segments ($path): 400");
    }
    like($ng->get("/proxy/v1/%2E%2E/x?$ACME")->{json}{message}, qr/"\.\." segments/,
         'the 400 says why');
    is($sb->stats->{requests}, 0, 'none of them reached the provider');
    is($ng->get("/proxy/v1/a.b/...?$ACME")->{status}, 404,
       'dots inside a segment are no dot segments: passed on (the provider\'s 404)');
    is($sb->stats->{requests}, 1, '(it reached the provider)');

    my $res = $ng->get("/proxy/v1/employees/directory?$ACME", key => undef);
    is($res->{status}, 401, 'missing key: 401');
    is($res->{json}{statusCode}, 401, 'with the gateway envelope');
    is($res->{headers}{'www-authenticate'}, 'Bearer', 'and WWW-Authenticate');
    is($ng->get("/proxy/v1/employees/directory?$ACME", key => 'sk_nope')->{status}, 401,
       'unknown key: 401');

    $res = $ng->get('/proxy/v1/employees/directory?integrated_account_id=globex-bamboohr');
    is($res->{status}, 404, "another tenant's account: 404");
    like($res->{json}{message}, qr/no integrated account "globex-bamboohr"/, 'as an unknown one');
    is($ng->get('/proxy/v1/employees/directory')->{status}, 400,
       'missing integrated_account_id: 400');
    is($sb->stats->{requests}, 1, 'nothing reached the provider');
}

# -- provider failures -------------------------------------------------------------

{
    $sb->reset;
    $sb->fault({ fault => '503', count => 1, path => '/directory' });
    my $res = $ng->get("/proxy/v1/employees/directory?$ACME");
    is($res->{status}, 503, "a provider 503 is passed on, as it is");
    is($sb->stats->{requests}, 1, 'not retried: the caller decides');

    $sb->fault({ fault => '429', count => 1, retry_after => '7', path => '/directory' });
    $res = $ng->get("/proxy/v1/employees/directory?$ACME");
    is($res->{status}, 429, 'a provider 429 is passed on');
    is($res->{headers}{'retry-after'}, '7', 'with its Retry-After');

    $res = $ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-down');
    is($res->{status}, 503, 'an unreachable provider: 503');
    like($res->{json}{message}, qr/could not be reached/, 'in the gateway envelope');

    $res = $ng->get("/proxy/v1/employees/directory?$ACME");
    is($res->{status}, 200, 'and the next call goes through');
}

$ng->stop;
my $log = $ng->error_log;
ok(index($log, $PROVIDER_KEY) < 0 && index($log, $BASIC) < 0,
   'no provider credential in the error log');
unlike($log, qr/exited on signal|\[(alert|crit|emerg)\]/, 'no crash, no alert');

done_testing;
