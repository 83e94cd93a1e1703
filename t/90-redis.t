#!/usr/bin/perl
# hris_redis (CONTRACT.md §9, issue 9): gateways configured with one Redis
# share the key that seals cursors and connect links. Each test starts its
# own redis-server (HRIS::Redis), never the system's. Checked:
#  - the directive's refusals at nginx -t (scheme, port, database, query,
#    user without password, TLS), none quoting a password;
#  - nginx -t with an unreachable Redis passes with a warning;
#  - two gateways, no hris_cursor_secret: page 1 from A, page 2 through B;
#    a connect link made at A opens at B (a gateway without the store: 400);
#    the script that sets the key is sent once, then run by its SHA1;
#  - Redis stopped: A still pages (the key stays in the worker); a gateway
#    started then answers what needs no store, 503 with details.store for
#    what does, fast, on its one worker; Redis started again: it gets the
#    key, and the two gateways agree;
#  - a Redis that accepts but never answers: the worker keeps serving; one
#    that answers late: the request waiting for the key goes on; a server
#    sending replies over the limits or not RESP: refused, reconnected;
#  - AUTH with a password, with a user (ACL) and a database; a wrong or
#    missing password: a clear log line without the password;
#  - a unix socket with ?db=N; hris_cursor_secret wins over the store;
#  - graceful quit is not held up by the connection or its retries;
#  - no log line carries the key or a password.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $KEY_NAME = 'hris:{global}:cursor_key';
my $LOCATIONS = 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }';

my $sb = HRIS::Sandbox->start('bamboohr');
my $ACC = HRIS::Nginx::accounts($sb);
my @GATEWAYS;     # every gateway started: their logs are scanned at the end
my @SECRETS;      # what no log line may carry

sub gateway {
    my ($redis_url, %o) = @_;
    my $http = delete $o{http} // '';
    my $ng = HRIS::Nginx->start(accounts => $ACC, server => $LOCATIONS,
                                http => (defined $redis_url ? "hris_redis $redis_url;" : '')
                                        . $http, %o);
    push @GATEWAYS, $ng;
    return $ng;
}

sub page { my ($ng, %q) = @_; $ng->unified('employees', limit => 3, %q) }

# polls page 1 until it is 200 (the worker has the key) or time is out
sub wait_ready {
    my ($ng, $secs) = @_;
    my $deadline = time + ($secs // 15);
    my $res;
    while (time < $deadline) {
        $res = page($ng);
        return $res if $res->{status} == 200;
        sleep 0.2;
    }
    return $res;
}

sub timed {
    my ($code) = @_;
    my $t0 = time;
    my @r = $code->();
    return (time - $t0, @r);
}

sub stop_timed {
    my ($ng) = @_;
    my ($secs) = timed(sub { $ng->stop });
    return $secs;
}

sub link_at {
    my ($ng, $id) = @_;
    my $res = HTTP::Tiny->new(timeout => 30)->request('POST', $ng->url . '/admin/connect_links', {
        headers => { Authorization => "Bearer $HRIS::Nginx::KEY",
                     'Content-Type' => 'application/json' },
        content => encode_json({ integrated_account_id => $id, provider => 'bamboohr',
                                 redirect_uri => 'http://app.example/done',
                                 context => { subdomain => 'acme' } }) });
    my $json = eval { decode_json($res->{content}) };
    return ($res->{status}, $json && $json->{result} ? $json->{result}{url} : undef);
}

sub open_link {
    my ($ng, $url) = @_;
    my ($token) = ($url // '') =~ m{/connect/([^/?#]+)$};
    return HTTP::Tiny->new(timeout => 30, max_redirect => 0)
        ->get($ng->url . '/connect/' . ($token // 'none'))->{status};
}

# -- the directive at nginx -t --------------------------------------------------------

my $free = HRIS::Nginx::free_port();
for my $case (
    [ 'http://127.0.0.1:6379',              qr/"hris_redis" directive must be redis:\/\//, 'another scheme' ],
    [ 'rediss://127.0.0.1:6379',            qr/TLS/,                     'rediss://' ],
    [ 'redis://127.0.0.1:99999',            qr/invalid port/,            'port 99999' ],
    [ 'redis://127.0.0.1:0',                qr/invalid port/,            'port 0' ],
    [ 'redis://127.0.0.1:abc',              qr/invalid port/,            'port abc' ],
    [ 'redis://127.0.0.1:6379/abc',         qr/database "abc" is not a number/, 'database abc' ],
    [ 'redis://127.0.0.1:6379/-1',          qr/database "-1" is not a number/,  'database -1' ],
    [ 'redis://127.0.0.1:6379/1?x=2',       qr/takes no query/,          'a query in redis://' ],
    [ 'redis://P4ss-Only-5e1@127.0.0.1',    qr/redis:\/\/:PASSWORD\@host/, 'userinfo without ":"' ],
    [ 'redis://:@127.0.0.1',                qr/empty password/,          'an empty password' ],
    [ 'redis://:S3cret-Pw-0a9@127.0.0.1:99999', qr/invalid port in "127.0.0.1:99999"/,
                                                                         'a bad port after a password' ],
    [ 'redis://:S3cret-Pw-0a9@/0',          qr/has no host/,             'no host' ],
    [ 'unix:relative/redis.sock',           qr/absolute path/,           'a relative socket path' ],
    [ 'unix:/tmp/redis.sock?db=x',          qr/database "x" is not a number/, 'unix: ?db=x' ],
    [ 'unix:/tmp/redis.sock?password=S3cret-Pw-0a9&foo=1', qr/unknown parameter "foo"/, 'unix: ?foo=' ],
    [ 'unix:/tmp/redis.sock?user=u',        qr/user without a password/, 'unix: a user alone' ],
) {
    my ($url, $re, $name) = @$case;
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $ACC, http => "hris_redis $url;")->test_config;
    isnt($rc, 0, "nginx -t refuses $name");
    like($out, $re, "... saying why") or diag $out;
    unlike($out, qr/S3cret-Pw-0a9|P4ss-Only-5e1/, '... without quoting the password');
}

my ($rc, $out) = HRIS::Nginx->prepare(accounts => $ACC,
    http => "hris_redis redis://127.0.0.1:$free; hris_redis redis://127.0.0.1:$free;")->test_config;
isnt($rc, 0, 'hris_redis twice: refused');
like($out, qr/"hris_redis" directive is duplicate/, '... as a duplicate') or diag $out;

($rc, $out) = HRIS::Nginx->prepare(accounts => $ACC,
    http => "hris_redis redis://127.0.0.1:$free; hris_redis_timeout 0;")->test_config;
isnt($rc, 0, 'hris_redis_timeout 0: refused');
like($out, qr/must be more than 0/, '... saying so') or diag $out;

($rc, $out) = HRIS::Nginx->prepare(accounts => $ACC,
    http => "hris_redis redis://127.0.0.1:$free/3; hris_redis_timeout 2s; "
            . "hris_redis_connect_timeout 500ms;")->test_config;
is($rc, 0, 'nginx -t with nothing listening at the Redis address passes') or diag $out;
like($out, qr/\[warn\].*"hris_redis" 127\.0\.0\.1:$free is not contacted by "nginx -t"/,
     '... with a warning that the store is checked at run time') or diag $out;

# -- two gateways, one Redis ------------------------------------------------------------

my $rd = HRIS::Redis->start;
my $A = gateway($rd->url, log_level => 'debug');
my $B = gateway($rd->url);
my $N = gateway(undef);            # no store: a key of its own

my $p1 = page($A);
is($p1->{status}, 200, 'page 1 from A') or diag $p1->{body};
my $cursor = $p1->{json}{next_cursor};
ok(defined $cursor, '... with a next_cursor');

my ($res, $p2);
$p2 = page($B, cursor => $cursor);
is($p2->{status}, 200, "page 2 through B with A's cursor: 200") or diag $p2->{body};
my ($all) = $A->walk('employees', limit => 3);
is_deeply([ map { $_->{id} } @{ $p2->{json}{result} // [] } ],
          [ map { $_->{id} } @$all[3 .. 5] ], '... the records that follow page 1');

# a whole walk alternating gateways: every record once, in order
my (@ids, $c);
for my $i (0 .. 100) {
    my $res = page($i % 2 ? $B : $A, limit => 50, defined $c ? (cursor => $c) : ());
    if ($res->{status} != 200) {
        fail("alternating walk, page " . ($i + 1) . ": $res->{status}");
        last;
    }
    push @ids, map { $_->{id} } @{ $res->{json}{result} };
    $c = $res->{json}{next_cursor};
    last unless defined $c;
}
is_deeply(\@ids, [ map { $_->{id} } @$all ], 'a walk alternating A and B: every record once');

$A->reload;
$res = page($A, cursor => $cursor);
is($res->{status}, 200, "after a reload of A, A's cursor from before still opens (the fleet's key)");

$res = page($N, cursor => $cursor);
is($res->{status}, 400, "a gateway without the store refuses A's cursor (its key is its own)");

my $stored = $rd->cli('GET', $KEY_NAME);
like($stored // '', qr/^[0-9a-f]{64}$/, "the fleet's key is in Redis at $KEY_NAME");
push @SECRETS, $stored if defined $stored;

my ($st, $url) = link_at($A, 'acme-linked');
is($st, 201, 'a connect link made at A');
is(open_link($B, $url), 200, '... opens at B (the form)');
is(open_link($A, $url), 200, '... and at A');
is(open_link($N, $url), 400, '... not at a gateway without the store');

my %stats = map { /^cmdstat_(\w+):calls=(\d+)/ ? ($1 => $2) : () }
            split /\r?\n/, $rd->cli('INFO', 'commandstats');
# two scripts by now: the key's, and the fleet's cool-down poll (t/94)
is($stats{eval}, 2, 'each script was sent once (EVAL after NOSCRIPT)') or diag explain \%stats;
cmp_ok($stats{evalsha} // 0, '>=', 2, '... and run by its SHA1 otherwise (EVALSHA)');

# -- Redis down, then back ---------------------------------------------------------------

$rd->stop;
$p1 = page($A);
is($p1->{status}, 200, 'Redis stopped: A still answers a list (the key stays in the worker)');
$res = page($A, cursor => $p1->{json}{next_cursor});
is($res->{status}, 200, '... and its page 2');

my $C = gateway($rd->url, http => 'hris_redis_timeout 2s;');
my ($secs, $r) = timed(sub { $C->get("/unified/hris/employees/$all->[0]{id}?integrated_account_id=acme-bamboohr") });
is($r->{status}, 200, 'a gateway started while Redis is down answers a get (no store needed)')
    or diag $r->{body};
($secs, $r) = timed(sub { page($C) });
is($r->{status}, 503, '... a list (sealed cursors) is 503') or diag $r->{body};
is($r->{json}{details}{store}, 'redis', '... naming the store in details.store');
like($r->{json}{message} // '', qr/hris_redis 127\.0\.0\.1:\d+/, '... and in the message');
is($r->{headers}{'retry-after'}, '1', '... with Retry-After: 1');
cmp_ok($secs, '<', 1, '... at once');
($secs, $r) = timed(sub { page($C) });
cmp_ok($secs, '<', 1, 'a second request on its one worker is answered at once too');
($st) = link_at($C, 'acme-linked-c');
is($st, 503, 'a connect link cannot be made there either');

$rd->run;                          # the same port, empty
$res = wait_ready($C, 20);
is($res->{status}, 200, 'Redis started again: the gateway gets the key and lists') or diag $res->{body};

# both gateways agree on one key again (whichever reached Redis first set it)
my $agree = 0;
my $deadline = time + 20;
while (time < $deadline) {
    my $ca = page($A)->{json}{next_cursor};
    my $cc = page($C)->{json}{next_cursor};
    if (defined $ca && defined $cc && page($C, cursor => $ca)->{status} == 200
        && page($A, cursor => $cc)->{status} == 200)
    {
        $agree = 1;
        last;
    }
    sleep 0.3;
}
ok($agree, 'A and the new gateway open each other\'s cursors');
$stored = $rd->cli('GET', $KEY_NAME);
like($stored // '', qr/^[0-9a-f]{64}$/, '... with the key back in Redis');
push @SECRETS, $stored if defined $stored;

# a stopped Redis closes the connection, or resets it (recv() fails):
# which one the worker sees depends on what it was doing
like($A->error_log,
     qr/hris_redis: 127\.0\.0\.1:\d+: (?:the connection was closed|recv\(\) failed); retrying/,
     "A's log says the connection was lost");
# each worker of A reconnects on its own backoff (up to 5 s): the one
# that served may not be the one that logs first
my $again_deadline = time + 15;
sleep 0.2 until $A->error_log =~ /hris_redis: connected to 127\.0\.0\.1:\d+ again/
                || time > $again_deadline;
like($A->error_log, qr/hris_redis: connected to 127\.0\.0\.1:\d+ again/, '... and found again');

$secs = stop_timed($C);
ok(!$C->{stop_timed_out} && $secs < 3, "nginx -s quit of a gateway on Redis: ${\ sprintf '%.1f', $secs} s");

# -- a Redis that never answers ----------------------------------------------------------

my $mute = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
                                 ReuseAddr => 1) or die "listen: $!";
my $D = gateway('redis://127.0.0.1:' . $mute->sockport,
                http => 'hris_redis_timeout 3s; hris_redis_connect_timeout 1s;');
pipe(my $rp, my $wp) or die "pipe: $!";
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    close $rp;
    my ($s, $res) = timed(sub { page($D) });
    syswrite $wp, "$res->{status} " . ($res->{json}{details}{store} // '-') . " $s\n";
    POSIX::_exit(0);
}
close $wp;
sleep 0.5;                          # the list waits for the store's first answer
($secs, $r) = timed(sub { $D->get("/unified/hris/employees/$all->[0]{id}?integrated_account_id=acme-bamboohr") });
is($r->{status}, 200, 'Redis accepts but never answers: a get on the same worker is served');
cmp_ok($secs, '<', 1, '... at once, while a list waits for the store');
my ($lst, $lstore, $lsecs) = split ' ', scalar <$rp> // '0 - 0';
waitpid($kid, 0);
is($lst, 503, 'the waiting list gets 503 when the store does not answer in time');
is($lstore, 'redis', '... naming the store');
ok($lsecs > 2 && $lsecs < 8, "... after hris_redis_timeout (${\ sprintf '%.1f', $lsecs} s)");
like($D->error_log, qr/hris_redis: 127\.0\.0\.1:\d+: no answer in 3000 ms \(hris_redis_timeout\)/,
     'the log says Redis did not answer in time');
$secs = stop_timed($D);
ok(!$D->{stop_timed_out} && $secs < 3, "quit while waiting for it: ${\ sprintf '%.1f', $secs} s");
close $mute;

# -- a server that answers what is not a Redis reply, or one over a limit ---------------

my $odd = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
                                ReuseAddr => 1) or die "listen: $!";
my $odd_pid = fork // die "fork: $!";
if ($odd_pid == 0) {
    my $n = 0;
    while (my $s = $odd->accept) {
        sysread($s, my $buf, 4096);
        # first an array larger than allowed, then something not RESP at all
        syswrite $s, $n++ % 2 ? "<html>\r\n" : "*99999999\r\n";
        sleep 0.1;
        close $s;
    }
    POSIX::_exit(0);
}
my $O = gateway('redis://127.0.0.1:' . $odd->sockport);
$res = page($O);
is($res->{status}, 503, 'a server sending a reply over the limits: 503');
is($res->{json}{details}{store}, 'redis', '... naming the store');
my $odd_log = '';
$deadline = time + 10;
while (time < $deadline) {
    $odd_log = $O->error_log;
    last if $odd_log =~ /not a RESP2 reply/;
    sleep 0.2;
}
like($odd_log, qr/hris_redis: 127\.0\.0\.1:\d+ sent a reply this client refuses: more array elements than the limit/,
     '... the log says which limit');
like($odd_log, qr/refuses: not a RESP2 reply/, '... and, once reconnected, that the next is not RESP');
$O->stop;
kill 'TERM', $odd_pid;
waitpid($odd_pid, 0);
close $odd;

# -- a Redis that answers late: the waiting request goes on ------------------------------

my $rs = HRIS::Redis->start(args => [ '--enable-debug-command', 'yes' ]);
my $slept_at = Time::HiRes::time();
my $sleeper = fork // die "fork: $!";
if ($sleeper == 0) {
    eval { $rs->cli('DEBUG', 'SLEEP', '2') };    # Redis answers nobody for 2 s
    POSIX::_exit(0);
}
sleep 0.3;
my $L = gateway($rs->url, http => 'hris_redis_timeout 5s;');
($secs, $r) = timed(sub { page($L) });
# not before Redis wakes (2 s after the sleep began), however long nginx took to start
my $woke = Time::HiRes::time() - $slept_at;
waitpid($sleeper, 0);
is($r->{status}, 200, 'a list sent before the key came waits for it, then is answered')
    or diag $r->{body};
ok($woke > 1.9 && $secs < 5, "... once Redis answered (${\ sprintf '%.1f', $woke} s after it slept)");
is(page($L, cursor => $r->{json}{next_cursor})->{status}, 200, '... and its cursor opens');
$L->stop;

# -- AUTH and SELECT ---------------------------------------------------------------------

my $PW = 'hris-test-pass-7f3a';
my $UPW = 'user-pass-91c';
my $WRONG = 'Wr0ng-Pass-d41';
push @SECRETS, $PW, $UPW, $WRONG;
my $ra = HRIS::Redis->start(password => $PW);
$ra->cli('ACL', 'SETUSER', 'hrisuser', 'on', ">$UPW", '~*', '+@all');

my $E = gateway('redis://:' . $PW . '@127.0.0.1:' . $ra->port . '/2');
$res = wait_ready($E, 10);
is($res->{status}, 200, 'redis://:PASSWORD@host/2: the gateway gets the key') or diag $E->error_log;
$stored = $ra->cli({ db => 2 }, 'GET', $KEY_NAME);
like($stored // '', qr/^[0-9a-f]{64}$/, '... kept in database 2');
is($ra->cli('GET', $KEY_NAME), undef, '... not in database 0');
push @SECRETS, $stored if defined $stored;

my $F = gateway("redis://hrisuser:$UPW\@127.0.0.1:" . $ra->port . '/2');
is(wait_ready($F, 10)->{status}, 200, 'redis://USER:PASSWORD@host/2 (an ACL user) works too');
is(page($F, cursor => $res->{json}{next_cursor})->{status}, 200, '... sharing the key of database 2');

my $G = gateway("redis://:$WRONG\@127.0.0.1:" . $ra->port);
$res = page($G);
is($res->{status}, 503, 'a wrong password: lists are 503');
like($G->error_log, qr/hris_redis: 127\.0\.0\.1:\d+ refused the password of hris_redis: WRONGPASS/,
     '... and the log says the password was refused') or diag $G->error_log;

my $H = gateway('redis://127.0.0.1:' . $ra->port);
is(page($H)->{status}, 503, 'no password for a Redis that wants one: 503');
like($H->error_log, qr/hris_redis: 127\.0\.0\.1:\d+ wants a password and hris_redis gives none/,
     '... and the log says so') or diag $H->error_log;

$secs = stop_timed($G);
ok(!$G->{stop_timed_out} && $secs < 3, "quit while retrying a refused login: ${\ sprintf '%.1f', $secs} s");

# -- a unix socket -----------------------------------------------------------------------

my $ru = HRIS::Redis->start(unix => 1);
my $U = gateway('unix:' . $ru->socket . '?db=3');
is(wait_ready($U, 10)->{status}, 200, 'unix:/path?db=3: the gateway gets the key') or diag $U->error_log;
like($ru->cli({ db => 3 }, 'GET', $KEY_NAME) // '', qr/^[0-9a-f]{64}$/, '... kept in database 3');

my $S = gateway('unix:' . $ru->socket . '?db=5', http => 'hris_cursor_secret s3cr3t-for-cursors;');
is(page($S)->{status}, 200, 'hris_cursor_secret with hris_redis: lists at once');
is($ru->cli({ db => 5 }, 'GET', $KEY_NAME), undef, '... and the secret\'s key is not put in Redis');
$S->stop;

# -- quit, logs --------------------------------------------------------------------------

$N->stop;
for my $ng ($A, $B, $E, $F, $H, $U) {
    $secs = stop_timed($ng);
    ok(!$ng->{stop_timed_out} && $secs < 3,
       'nginx -s quit of a connected gateway: ' . sprintf('%.1f', $secs) . ' s');
}

my $logs = join '', map { $_->error_log } @GATEWAYS;
for my $s (@SECRETS) {
    my $shown = substr($s, 0, 6) . '...';
    unlike($logs, qr/\Q$s\E/i, "no log line carries $shown");
}

done_testing;
