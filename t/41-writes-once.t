#!/usr/bin/perl
# A request that is not idempotent (POST, PATCH; a refresh-token grant; an
# authorization-code exchange) reaches the provider at most once: it is
# sent again only when it certainly was not processed (nothing could be
# sent: name resolution or connect failed; or the provider throttled it).
# A write that went out and got no answer is a 504 with
# details.outcome "unknown". Idempotent requests are retried as before.
#
# The provider here is a tiny server that logs every request it reads and
# then, by path: /close closes without answering, /slow waits 3 s and
# closes, anything else answers 200 and keeps the connection open.

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

my $RETRIES = 2;
my $tmp = tempdir('hris-writes-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $LOG = "$tmp/requests.log";

my ($srv_pid, $srv_port) = do {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                  ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        alarm 300;    # never outlive a test that was killed
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $l->accept or next;
            my $child = fork;
            if (defined $child && $child == 0) {
                serve($c);
                POSIX::_exit(0);
            }
            close $c;
        }
    }
    my $port = $l->sockport;
    close $l;
    ($pid, $port);
};
END { local $?; if ($srv_pid) { kill 'KILL', $srv_pid; waitpid $srv_pid, 0 } }

# One connection: requests until the client or the path says stop.
sub serve {
    my ($c) = @_;
    local $/ = "\r\n";
    while (defined(my $line = <$c>)) {
        $line =~ s/\r\n$//;
        my ($method, $target) = split / /, $line;
        my $len = 0;
        while (my $x = <$c>) {
            $x =~ s/\r\n$//;
            last if $x eq '';
            $len = $1 if $x =~ /^content-length:\s*(\d+)/i;
        }
        read($c, my $body, $len) if $len;
        open my $fh, '>>', $LOG or die;
        syswrite $fh, "$method $target\n";
        close $fh;
        if ($target =~ m{/close}) {
            close $c;
            return;
        }
        if ($target =~ m{/slow}) {
            sleep 3;
            close $c;
            return;
        }
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               . "Content-Length: 11\r\n\r\n{\"ok\":true}";
    }
}

sub delivered {
    my ($what) = @_;
    open my $fh, '<', $LOG or return 0;
    return scalar grep { index($_, $what) >= 0 } <$fh>;
}

sub clear_log { unlink $LOG }

my $KEY = '0123456789abcdef0123456789abcdef01234567';
my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);
push @{ $accounts->{accounts} },
    { id => 'acme-tiny', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $KEY },
      base_url => "http://127.0.0.1:$srv_port" },
    { id => 'acme-down', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' }, credentials => { api_key => $KEY },
      base_url => 'http://127.0.0.1:' . HRIS::Nginx::free_port() };

my $ng = HRIS::Nginx->start(accounts => $accounts,
    location => "hris_retries $RETRIES; hris_retry_backoff 10ms; hris_timeout 1s;");

sub proxy {
    my ($method, $path, $account) = @_;
    return $ng->request($method, "/proxy$path?integrated_account_id=" . ($account // 'acme-tiny'),
                        $method =~ /^(POST|PATCH|PUT)$/
                        ? (body => '{"x":1}', headers => { 'Content-Type' => 'application/json' })
                        : ());
}

for my $method ('POST', 'PATCH') {
    subtest "$method, cut off without an answer: sent once, 504, outcome unknown" => sub {
        clear_log();
        my $res = proxy($method, "/close/\L$method");
        is(delivered("$method /close"), 1, 'the provider got it exactly once');
        is($res->{status}, 504, '504: no answer came');
        is($res->{json}{details}{outcome}, 'unknown', 'details.outcome: unknown');
        is($res->{json}{details}{attempts}, 1, 'details.attempts: 1');
        like($res->{json}{message}, qr/not sent again.*unknown/, "message: $res->{json}{message}");
    };
}

subtest 'POST, no answer in time: sent once, 504, outcome unknown' => sub {
    clear_log();
    my $res = proxy('POST', '/slow/create');
    is(delivered('POST /slow'), 1, 'the provider got it once');
    is($res->{status}, 504, '504');
    is($res->{json}{details}{outcome}, 'unknown', 'details.outcome: unknown');
};

for my $method ('GET', 'PUT', 'DELETE') {
    subtest "$method (idempotent), cut off: retried" => sub {
        clear_log();
        my $res = proxy($method, "/close/\L$method");
        is(delivered("$method /close"), 1 + $RETRIES, '1 + hris_retries deliveries');
        is($res->{status}, 502, '502: the provider broke off');
        ok(!exists $res->{json}{details}{outcome}, 'no outcome: nothing unknown about a read');
    };
}

subtest 'POST on a connection curl had cached: still sent once' => sub {
    # curl itself sends a request again, on a new connection, when a
    # reused one dies before any answer: a write must not go out that way
    clear_log();
    is(proxy('GET', '/ok/warm')->{status}, 200, 'a GET leaves a connection in curl\'s cache');
    my $res = proxy('POST', '/close/after-warm');
    is(delivered('POST /close/after-warm'), 1, 'the POST reached the provider once');
    is($res->{status}, 504, '504, outcome unknown');
    is(proxy('GET', '/ok/again')->{status}, 200, 'GETs go on');
};

subtest 'POST to a provider that cannot be reached: retried (nothing was sent)' => sub {
    my $res = proxy('POST', '/x', 'acme-down');
    is($res->{status}, 503, '503');
    is($res->{json}{details}{attempts}, 1 + $RETRIES, '1 + hris_retries attempts');
    ok(!exists $res->{json}{details}{outcome}, 'no outcome: it certainly was not carried out');
};

# -- a rotating refresh-token grant is never sent twice ----------------------------

subtest 'a refresh grant cut off is not sent again' => sub {
    my $http = HTTP::Tiny->new(keep_alive => 0);
    my $code = decode_json($http->post($sb->url . '/_sandbox/oauth/code',
        { headers => { 'Content-Type' => 'application/json' },
          content => encode_json({ scope => 'offline_access employee' }) })->{content})->{code};
    my $tok = decode_json($http->post_form($sb->url . '/token.php?request=token', {
        grant_type => 'authorization_code', code => $code,
        redirect_uri => 'http://127.0.0.1/callback',
        client_id => 'sandbox-bamboohr-client',
        client_secret => 'sandbox-bamboohr-secret' })->{content});
    ok($tok->{refresh_token}, 'a grant with a refresh token');

    my $acc = HRIS::Nginx::accounts($sb);
    $acc->{accounts}[0]{credentials} = {
        client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret',
        access_token => $tok->{access_token}, refresh_token => $tok->{refresh_token},
        expires_at => time - 60,    # refreshed before the first call
    };
    $acc->{accounts}[0]{token_url} = $sb->url . '/token.php?request=token';
    my $ng2 = HRIS::Nginx->start(accounts => $acc,
        location => "hris_retries $RETRIES; hris_retry_backoff 10ms;");

    # (no $sb->reset: it would forget the grant)
    my $grants = sub {
        my $by = $sb->stats->{by_path};
        my $n = 0;
        $n += $by->{$_} for grep { /token\.php/ } keys %$by;
        return $n;
    };
    my $before = $grants->();
    $sb->fault({ fault => 'reset', count => -1, path => '/token.php' });
    my $res = $ng2->unified('employees/4');
    is($grants->() - $before, 1, 'the refresh grant reached the provider once');
    isnt($res->{status}, 200, "the call fails ($res->{status})");
    ok(!($res->{json}{details}{needs_reauth}), 'the account is not marked needs_reauth');

    $sb->clear_faults;
    my $again = $ng2->unified('employees/4');
    is($again->{status}, 200, 'once the provider answers, the same refresh token is good')
        or diag("first: $res->{body}\nthen: $again->{body}\n" . $ng2->error_log);
    $ng2->stop;
    unlike($ng2->error_log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert');
};

$ng->stop;
my $log = $ng->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert, no crash')
    or diag(join '', grep { /\[(alert|crit|emerg)\]/ } split /^/, $log);

done_testing;
