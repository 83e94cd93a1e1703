#!/usr/bin/perl
# Connect links and credential cool-downs for a fleet (CONTRACT §9): with
# hris_redis, two gateways on one Redis behave as one gateway:
#  - a connect link completed through gateway A is refused (410) through
#    gateway B, before or after B opened it, and stays usable when its
#    completion failed; two completions at once through A and B: one wins;
#    an OAuth2 callback reaching B after A connected the link is refused
#    before its code is exchanged;
#  - credentials the provider refused through A are not sent by B either
#    during hris_credentials_cooldown (B answers 401 credentials_rejected
#    without calling the provider), and new credentials lift it;
#  - Redis unreachable: completing a link answers 503 naming the store and
#    stores nothing (the link still works once Redis is back); requests
#    that need no store (a refused key's cool-down kept by the gateway)
#    still answer.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $J = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);
my $rd = HRIS::Redis->start;
my $cl = HRIS::Sandbox->start('clayhr');
my $bb = HRIS::Sandbox->start('bamboohr');

my $CLAY_KEY  = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $CLAY_USER = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $REDIRECT  = 'http://app.example/done';
my $LOCATIONS = 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }';

my $acc = HRIS::Nginx::accounts_for(clayhr => $cl, bamboohr => $bb);
$_->{credentials}{api_key} = 'wrong-bamboo-key-5d1c9e' for grep { $_->{id} eq 'acme-bamboohr' }
    @{ $acc->{accounts} };
$acc->{oauth_apps} = [ {
    tenant => 'acme', provider => 'bamboohr',
    client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret',
    authorize_url => $bb->url . '/authorize.php?request=authorize',
    token_url => $bb->url . '/token.php?request=token', base_url => $bb->url,
} ];

sub gateway {
    return HRIS::Nginx->start(accounts => $acc, workers => 2,
                              http => 'hris_redis ' . $rd->url . '; hris_redis_timeout 1s; '
                                      . 'hris_credentials_cooldown 30s;',
                              server => $LOCATIONS);
}

sub api {
    my ($ng, $method, $path, $body) = @_;
    my $res = $http->request($method, $ng->url . $path, {
        headers => { Authorization => "Bearer $HRIS::Nginx::KEY",
                     'Content-Type' => 'application/json' },
        defined $body ? (content => $J->encode($body)) : () });
    my $json = eval { $J->decode($res->{content}) };
    return { status => $res->{status}, body => $res->{content}, json => $json };
}

# a form link for $id, made through gateway $ng: its token
sub form_link {
    my ($ng, $id) = @_;
    my $res = api($ng, 'POST', '/admin/connect_links',
                  { integrated_account_id => $id, provider => 'clayhr', method => 'form',
                    redirect_uri => $REDIRECT, base_url => $cl->url,
                    context => { subdomain => 'acme', user_id => $CLAY_USER } });
    is($res->{status}, 201, "a link for $id") or diag $res->{body};
    my ($token) = ($res->{json}{result}{url} // '') =~ m{/connect/([^/?#]+)$};
    return $token // 'x';
}

sub open_link {
    my ($ng, $token, %h) = @_;
    return $http->request('GET', $ng->url . "/connect/$token", { headers => \%h });
}

sub post_link {
    my ($ng, $token, $key) = @_;
    return $http->request('POST', $ng->url . "/connect/$token", {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "api_key=$key" });
}

my $A = gateway();
my $B = gateway();

# -- a link completes once for the fleet ------------------------------------------------

my $t = form_link($A, 'acme-fleet-link');
is(open_link($B, $t)->{status}, 200, 'a link made through A opens at B (the fleet\'s key)');
my $res = post_link($A, $t, $CLAY_KEY);
is($res->{status}, 303, 'completed through A: 303') or diag $res->{content};
$res = post_link($B, $t, 'clayhr-another-key-9d0b');
is($res->{status}, 410, 'posted again through B: 410') or diag "$res->{status} $res->{content}";
like($res->{content}, qr/link was used already/, '... saying the link was used');
is(api($A, 'GET', '/admin/accounts/acme-fleet-link')->{status}, 200, 'the account stays');
sleep 1;    # run-time accounts reach the fleet within a second
is(api($B, 'GET', '/unified/hris/employees?integrated_account_id=acme-fleet-link&limit=1')->{status},
   200, 'with the first key (B serves it)');
is(open_link($B, $t)->{status}, 410, 'B opens the used link: 410');
ok(defined $rd->cli('GET', $rd->cli('KEYS', 'hris:{link:*}')->[0] // 'none'),
   'the used link is kept in Redis');
my ($ttl) = map { $rd->cli('TTL', $_) } @{ $rd->cli('KEYS', 'hris:{link:*}') };
ok(defined $ttl && $ttl > 0 && $ttl <= 3600 + 1, "until the link expires (TTL $ttl s)");

# a refused form does not use the link up anywhere
$t = form_link($A, 'acme-fleet-link2');
is(post_link($A, $t, '')->{status}, 400, 'a form without its key through A: 400');
is(post_link($B, $t, $CLAY_KEY)->{status}, 303, 'then completed through B: 303');
is(post_link($A, $t, $CLAY_KEY)->{status}, 410, 'and refused through A: 410');

# two completions at once, one through each gateway: one wins
$t = form_link($A, 'acme-fleet-race');
my @answers;
{
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    my @pids;
    for my $n (1 .. 6) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $go_w;
            close $out_r;
            sysread($go_r, my $x, 1);
            my $r = post_link($n % 2 ? $A : $B, $t, $CLAY_KEY);
            syswrite $out_w, "$r->{status}\n";
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $out_w;
    sleep 0.3;
    close $go_w;
    @answers = map { chomp; $_ } <$out_r>;
    waitpid($_, 0) for @pids;
}
my %by;
$by{$_}++ for @answers;
is_deeply(\%by, { 303 => 1, 410 => 5 }, 'six posts at once through A and B: one 303, five 410')
    or diag explain \@answers;

# OAuth2: a link opened twice at A; the first visit connects through A; the
# second visit's callback, reaching B, is refused before its code is exchanged
{
    my $r = api($A, 'POST', '/admin/connect_links',
                { integrated_account_id => 'acme-fleet-oauth', provider => 'bamboohr',
                  redirect_uri => $REDIRECT, context => { subdomain => 'acme' } });
    is($r->{status}, 201, 'an OAuth2 link through A') or diag $r->{body};
    my $url = $r->{json}{result}{url} // 'x';
    my @flows = map {
        my $g = $http->request('GET', $url);
        my ($cookie) = map { /^(hris_connect=[^;]*)/ ? $1 : () }
                       (ref $g->{headers}{'set-cookie'} ? @{ $g->{headers}{'set-cookie'} }
                                                         : ($g->{headers}{'set-cookie'} // ()));
        { status => $g->{status}, location => $g->{headers}{location}, cookie => $cookie }
    } 1 .. 2;
    is(join(' ', map { $_->{status} } @flows), '302 302', 'opened twice at A');
    my $callback = sub {      # through the sandbox's authorize page, back to $ng
        my ($flow, $ng) = @_;
        my $a = $http->get($flow->{location} // 'http://127.0.0.1:1/');
        my $cb = ($a->{headers}{location} // '') =~ s{^http://127\.0\.0\.1:\d+}{$ng->url}er;
        return $http->request('GET', $cb, { headers => { Cookie => $flow->{cookie} // '' } });
    };
    my $exchanges = sub { $bb->stats->{by_path}{'/token.php#authorization_code'} // 0 };
    $r = $callback->($flows[0], $A);
    like($r->{headers}{location} // '', qr/status=connected/, 'the first visit connects through A')
        or diag "$r->{status} $r->{content}";
    my $before = $exchanges->();
    $r = $callback->($flows[1], $B);
    is($r->{status}, 410, 'the second visit\'s callback through B: 410') or diag "$r->{status} $r->{content}";
    is($exchanges->(), $before, 'its code was not exchanged');
}

# -- a cool-down holds for the fleet ----------------------------------------------------

my $calls = sub { $bb->stats->{requests} // 0 };
my $before = $calls->();
$res = $A->unified('employees');
is($res->{status}, 401, 'a wrong key through A: 401');
is($calls->(), $before + 1, 'from the provider');
# one worker of each gateway reads the fleet's marks twice a second
sleep 1;
$res = $B->unified('employees');
is($res->{status}, 401, 'a second later through B: 401');
ok($res->{json}{details}{credentials_rejected}, '... credentials_rejected: the cool-down holds on B')
    or diag $res->{body};
is($calls->(), $before + 1, 'B never called the provider with the key');
my @again = map { $B->unified('employees')->{status} } 1 .. 3;
is("@again", '401 401 401', 'again through B: 401');
is($calls->(), $before + 1, 'still no call');
like($rd->cli('HGET', 'hris:{cool}:marks', 'acme-bamboohr') // '', qr/^\d+ 401 [0-9a-f]{32}$/,
     'Redis holds the mark: until, the status and a digest (no credential)');

# new credentials (through B's admin API, reaching A) lift it
$res = api($B, 'PATCH', '/admin/accounts/acme-bamboohr',
           { credentials => { api_key => $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key} } });
is($res->{status}, 200, 'the key changed through B') or diag $res->{body};
my $st;
my $t0 = time;
while (time - $t0 < 3) {
    $st = $A->unified('employees')->{status};
    last if $st == 200;
    sleep 0.1;
}
is($st, 200, 'A uses the new key: 200');

# -- Redis unreachable ------------------------------------------------------------------

$t = form_link($A, 'acme-fleet-down');
is(open_link($B, $t)->{status}, 200, 'a link opens at B');
$rd->stop;
$res = post_link($B, $t, $CLAY_KEY);
is($res->{status}, 503, 'Redis down: completing it answers 503') or diag "$res->{status} $res->{content}";
like($res->{content}, qr/state store \(hris_redis 127\.0\.0\.1:\d+\) cannot be used now/,
     '... naming the store');
is($res->{headers}{'retry-after'}, '1', '... Retry-After: 1');
is(api($A, 'GET', '/admin/accounts/acme-fleet-down')->{status}, 404, 'nothing was stored');
is($B->unified('employees', account => 'acme-clayhr')->{status}, 200,
   'a request that needs no store still answers');
$rd->run;
$t0 = time;
while (time - $t0 < 10) {
    $res = post_link($B, $t, $CLAY_KEY);
    last if $res->{status} != 503;
    sleep 0.2;
}
is($res->{status}, 303, 'Redis back: the link completes') or diag "$res->{status} $res->{content}";
$t0 = time;
while (time - $t0 < 10) {
    $res = post_link($A, $t, $CLAY_KEY);
    last if $res->{status} != 503;
    sleep 0.2;
}
is($res->{status}, 410, '... once (A, reconnected, refuses it)');

$_->stop for $A, $B;
for my $ng ($A, $B) {
    my $log = $ng->error_log;
    unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert, no crash');
    unlike($log, qr/wrong-bamboo-key|\Q$CLAY_KEY\E/, 'no key in the log');
}

done_testing;
