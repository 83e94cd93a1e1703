#!/usr/bin/perl
# The fleet's queue of webhook deliveries (CONTRACT §8, §9): with
# hris_redis, undelivered events wait in Redis, not in the gateway that
# emitted them. An event emitted on gateway A whose receiver failed is
# delivered by gateway B once A is stopped; with two gateways polling, each
# event goes once per success; the tenant's cap of undelivered events holds
# through Redis; a gateway killed during an attempt leaves it to another
# once its lease ends; an emit while Redis is down is queued on the gateway
# (logged) and delivered, and the queue is used again once Redis is back.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;
use HRIS::Receiver;

my $J = JSON::PP->new->canonical;

my $rd = HRIS::Redis->start;
my $cl = HRIS::Sandbox->start('clayhr');
my $rx = HRIS::Receiver->start;
my $RX = $rx->url;
my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);

my ($Q, $D, $T) = ('hris:{webhooks}:q', 'hris:{webhooks}:d', 'hris:{webhooks}:t:acme');

sub gateway {
    return HRIS::Nginx->start(accounts => $acc, workers => 2,
        http => 'hris_redis ' . $rd->url . ";\n    hris_allowed_urls $RX;\n"
              . "    hris_webhook_retry_delays 1s 1s 1s;\n    hris_webhook_timeout 2s;",
        server => 'location /admin/ { hris_admin; }');
}

sub call {
    my ($ng, $method, $path, $json) = @_;
    return $ng->request($method, $path,
                        $json ? (body => $J->encode($json),
                                 headers => { 'Content-Type' => 'application/json' })
                              : ());
}

sub subscribe {
    my ($ng, $path) = @_;
    my $res = call($ng, 'POST', '/admin/webhooks', { url => "$RX$path", events => ['*'] });
    is($res->{status}, 201, "subscribed $path") or diag $res->{body};
    return $res->{json}{result};
}

my $n_acc = 0;
sub make_account {
    my ($ng) = @_;
    my $id = 'whq-acct-' . ++$n_acc;
    my $res = call($ng, 'POST', '/admin/accounts', {
        id => $id, provider => 'clayhr', base_url => $cl->url,
        context => { subdomain => 'acme', user_id => '123456' },
        credentials => { api_key => 'clayhr-sandbox-0123456789abcdef' } });
    is($res->{status}, 201, "account $id created") or diag $res->{body};
    return $id;
}

# until cond() holds or the time is up (generous: CI runs under ASan)
sub until_ok {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 15);
    while (1) {
        my $ok = eval { $cond->() };
        return 1 if $ok;
        return 0 if time > $deadline;
        sleep 0.1;
    }
}

# the receiver's requests for an account's event at one path
sub for_account {
    my ($path, $acct) = @_;
    return grep { $_->{path} eq $path && index($_->{body}, "\"$acct\"") >= 0 } $rx->requests;
}

# until gateway $ng lists the subscription
sub listed {
    my ($ng, $id) = @_;
    ok(until_ok(sub {
        grep { $_->{id} eq $id } @{ call($ng, 'GET', '/admin/webhooks')->{json}{result} // [] }
    }, 10), 'the subscription is mirrored into the other gateway');
}

sub logged {
    my ($ng, $re) = @_;
    return until_ok(sub { $ng->error_log =~ $re }, 10);
}

my $A = gateway();
my $B = gateway();


# -- A emits, its receiver fails, A goes away: B delivers ----------------------------

my $s1 = subscribe($A, '/q1');
listed($B, $s1->{id});

# the first attempt: 503 with Retry-After 3, so the next one is due after A
# is stopped
$rx->plan_for('/q1', '503 3');
my $a1 = make_account($A);
ok(until_ok(sub { for_account('/q1', $a1) >= 1 }), 'the first attempt was made (503)');
is($rd->cli('ZCARD', $Q), 1, 'the delivery waits in Redis');
my $qid = $s1->{id} . $J->decode((for_account('/q1', $a1))[0]{body})->{id};
ok(until_ok(sub { ($J->decode($rd->cli('HGET', $D, $qid) // '{}')->{attempts} // 0) == 1 }, 5),
   '... with its attempt counted');

$A->stop;

ok(until_ok(sub { for_account('/q1', $a1) >= 2 }, 20),
   'the event emitted on A is delivered once A is stopped');
my @got = for_account('/q1', $a1);
my $evt = $J->decode($got[0]{body})->{id};
is($got[1]{headers}{'webhook-id'}, $evt, '... the same event (webhook-id)');
ok(logged($B, qr/event \Q$evt\E delivered to webhook \Q$s1->{id}\E/), '... by B');
ok(until_ok(sub { $rd->cli('HLEN', $D) == 0 && $rd->cli('ZCARD', $Q) == 0 }),
   'the delivery left Redis');
is($rd->cli('SCARD', $T), 0, "... and the tenant's count");


# -- two gateways polling: once per success ---------------------------------------

my $C = gateway();
my $s2 = subscribe($B, '/q2');
listed($C, $s2->{id});

my $N = 6;
$rx->plan_for('/q2', ('500') x $N);
my @accts = map { make_account($_ % 2 ? $B : $C) } 1 .. $N;

ok(until_ok(sub { grep({ $_->{path} eq '/q2' } $rx->requests) >= $N }),
   "the $N first attempts were made (500)");
ok(until_ok(sub { $rd->cli('HLEN', $D) == $N }, 5), '... the events wait in Redis');
ok(until_ok(sub { grep({ $_->{path} eq '/q2' } $rx->requests) >= 2 * $N }, 20),
   'each was attempted again');
sleep 3;    # two more retry delays: a second delivery would be here by now
for my $a (@accts) {
    my @r = for_account('/q2', $a);
    is(scalar @r, 2, "$a: one failed attempt, one delivery, no more");
    my %ids = map { $_->{headers}{'webhook-id'} => 1 } @r;
    is(scalar keys %ids, 1, '... of one event');
}
ok(until_ok(sub { $rd->cli('HLEN', $D) == 0 }), 'Redis holds none left');


# -- a gateway killed during an attempt: another one after the lease -----------

# E alone runs meanwhile: the attempt under way must be E's (B or C
# could claim the event first, and time out and retry on their own)
$_->stop for $B, $C;
my $E = gateway();
listed($E, $s2->{id});
my $t0 = time;
$rx->plan_for('/q2', 'hang');
my $dead = make_account($E);
ok(until_ok(sub { for_account('/q2', $dead) >= 1 }), 'an attempt is under way (no answer yet)');
{
    # the master first (it would start new workers), then its workers
    my $master = $E->{pid};
    my @workers = grep { /^\d+$/ } split ' ', `pgrep -P $master`;
    kill 'KILL', $master, @workers;
    $E->stop;
}
# the others come back: one of them finds the delivery once E's lease ends
$B = gateway();
$C = gateway();
ok(until_ok(sub { for_account('/q2', $dead) >= 2 }, 40),
   'the gateway killed during the attempt: another one delivers the event');
cmp_ok(time - $t0, '>=', 2 + 10 - 1, '... once its lease (timeout + 10 s) ended');
ok(until_ok(sub { $rd->cli('HLEN', $D) == 0 }), '... and it left Redis');


# -- a subscription deleted with a delivery waiting: the delivery goes -----------

my $s3 = subscribe($C, '/q3');
listed($B, $s3->{id});
$rx->plan_for('/q3', '503 3');
my $del = make_account($C);
ok(until_ok(sub { for_account('/q3', $del) >= 1 }), 'a delivery failed once, waits in Redis');
is(call($B, 'DELETE', "/admin/webhooks/$s3->{id}")->{status}, 200,
   'its subscription deleted through the other gateway');
ok(until_ok(sub { $rd->cli('HLEN', $D) == 0 && $rd->cli('SCARD', $T) == 0 }, 20),
   '... the delivery is dropped from Redis when it is due');
is(scalar(for_account('/q3', $del)), 1, '... not attempted again');


# -- the tenant's cap of undelivered events, through Redis -----------------------

# the tenant holds 1000 undelivered deliveries already (made up here)
$rd->cli('EVAL', "for i = 1, 1000 do redis.call('SADD', KEYS[1], 'x' .. i) end return 1",
         1, $T);
my $full = make_account($B);
ok(logged($B, qr/not queued for 1 subscription\(s\) of tenant "acme": the tenant has too many undelivered events/),
   'a full tenant: the event is not queued (logged)');
sleep 2;
is(scalar(for_account('/q2', $full)), 0, '... nor delivered by any gateway');
is($rd->cli('HLEN', $D), 0, '... nor in Redis');

$rd->cli('DEL', $T);
my $room = make_account($C);
ok(until_ok(sub { for_account('/q2', $room) >= 1 }), 'room again: delivered');


# -- Redis down during an emit ---------------------------------------------------

$rx->plan_for('/q2', '503 2');
$rd->stop;
my $down = make_account($C);
ok(logged($C, qr/queued on this gateway only: the state store \(hris_redis [^)]+\) cannot be used now/),
   'Redis down: the event is queued on the gateway (logged)');
ok(until_ok(sub { for_account('/q2', $down) >= 1 }), '... attempted (503)');
$rd->restart;
ok(until_ok(sub { for_account('/q2', $down) >= 2 }, 20), '... and delivered');

# back: the queue is Redis's again
$rx->plan_for('/q2', '503 5');
my $back = make_account($B);
ok(until_ok(sub { for_account('/q2', $back) >= 1 }), 'Redis back: an emit is attempted');
ok(until_ok(sub { $rd->cli('HLEN', $D) == 1 }, 5), '... and waits in Redis again');

$_->stop for $B, $C, $rx;

done_testing;
