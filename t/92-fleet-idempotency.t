#!/usr/bin/perl
# Idempotency-Keys for a fleet (CONTRACT §7, §9): with hris_redis the first
# answer to a key is kept in Redis, so a retry through another gateway is
# replayed without a second write; the same key with another body is a 422
# on every gateway; while the first write runs, another gateway answers
# 409; a write that could not be claimed (Redis down) is refused with 503
# before anything reaches the provider.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $J = JSON::PP->new->canonical;
my $rd = HRIS::Redis->start;
my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);
my $EMP = '/api/gateway.php/acme/v1/employees';

sub posts { $sb->stats->{by_path}{$EMP} // 0 }

sub gateway {
    return HRIS::Nginx->start(accounts => $accounts, workers => 1,
                              http => 'hris_redis ' . $rd->url . ';',
                              location => 'hris_timeout 5s;');
}

sub create {
    my ($ng, $body, $key) = @_;
    my $res = HTTP::Tiny->new(timeout => 20, keep_alive => 0)->request('POST',
        $ng->url . '/unified/hris/employees?integrated_account_id=acme-bamboohr',
        { headers => { 'Content-Type' => 'application/json',
                       Authorization => "Bearer $HRIS::Nginx::KEY",
                       'Idempotency-Key' => $key },
          content => $J->encode($body) });
    return { status => $res->{status}, headers => $res->{headers},
             json => eval { $J->decode($res->{content}) }, body => $res->{content} };
}

my $A = gateway();
my $B = gateway();
my $body = { first_name => 'Grace', last_name => 'Hopper' };

$sb->reset;
my $first = create($A, $body, 'fleet-1');
is($first->{status}, 201, 'a create through gateway A') or diag $first->{body};
my $id = $first->{json}{result}{id};
ok($id, 'with the new record');
is(posts(), 2, 'one write reached the provider (the create and its read back)');

my $again = create($B, $body, 'fleet-1');
is($again->{status}, 201, 'the same key through gateway B: the kept status');
is($again->{headers}{'idempotent-replayed'}, 'true', 'replayed');
is($again->{json}{result}{id}, $id, 'the same record');
is(posts(), 2, 'and no second write');

my $other = create($B, { first_name => 'Alan', last_name => 'Turing' }, 'fleet-1');
is($other->{status}, 422, 'the key with another body at B: 422');
is($other->{json}{details}{idempotency_key}, 'reused', 'saying the key was used');
is(create($A, { first_name => 'Alan', last_name => 'Turing' }, 'fleet-1')->{status}, 422,
   'and at A');
is(posts(), 2, 'still one write');

# while the first write runs at A, B answers 409
$sb->fault({ fault => 'slow', delay_ms => 1500, path => '/v1/employees', count => 1 });
my $pid = fork // die;
if ($pid == 0) {
    my $r = create($A, { first_name => 'Ada', last_name => 'Byron' }, 'fleet-2');
    POSIX::_exit($r->{status} == 201 ? 0 : 1);
}
sleep 0.5;
my $busy = create($B, { first_name => 'Ada', last_name => 'Byron' }, 'fleet-2');
is($busy->{status}, 409, 'while A runs the write, B answers 409');
is($busy->{json}{details}{idempotency_key}, 'in_flight', 'saying it is in flight');
waitpid($pid, 0);
is($? >> 8, 0, 'A\'s write answered 201');
my $after = create($B, { first_name => 'Ada', last_name => 'Byron' }, 'fleet-2');
is($after->{status}, 201, 'afterwards B replays it');
is($after->{headers}{'idempotent-replayed'}, 'true', '... as a replay');

# a write refused before it went out lets the key go for the fleet
my $bad = create($A, { first_name => 'No' }, 'fleet-3');
is($bad->{status}, 400, 'a 400 (last_name missing) keeps nothing');
is(create($B, { first_name => 'Now', last_name => 'Valid' }, 'fleet-3')->{status}, 201,
   '... and the key serves another body at B');

# both gateways restart: Redis still has the answer
$A->stop; $B->stop;
$A = gateway();
my $r = create($A, $body, 'fleet-1');
is($r->{status}, 201, 'after a restart of the gateways the key still replays');
is($r->{headers}{'idempotent-replayed'}, 'true', '... from Redis');

# Redis down: nothing is written without a claim
$rd->stop;
my $n = posts();
$r = create($A, { first_name => 'Kept', last_name => 'Out' }, 'fleet-4');
is($r->{status}, 503, 'Redis down: a write with a key gets 503');
is($r->{json}{details}{store}, 'redis', 'naming the store');
is(posts(), $n, 'and nothing reached the provider');
$A->stop;

done_testing;
