#!/usr/bin/perl
# Webhook subscriptions shared by a fleet (CONTRACT §8, §9): with
# hris_redis, a subscription made through gateway A receives, signed, the
# events gateway B emits; B lists it (without its secret) and can end it,
# after which A stops delivering to it; tenants stay apart; with Redis down
# a new subscription is refused with 503 naming the store while the
# subscriptions already mirrored keep being delivered.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;
use HRIS::Receiver;
use File::Temp ();

my $J = JSON::PP->new->canonical;
my $GLOBEX = $HRIS::Nginx::OTHER_KEY;

my $rd = HRIS::Redis->start;
my $cl = HRIS::Sandbox->start('clayhr');
my $rx = HRIS::Receiver->start;
my $RX = $rx->url;
my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);

# the fleet's secrets key: subscriptions' secrets are sealed in Redis
my $kdir = File::Temp::tempdir(CLEANUP => 1);
my $KEY = "$kdir/hris.key";
system(HRIS::Nginx::root() . "/build/hris-seal --new-key > $KEY") == 0 or die "hris-seal\n";

sub gateway {
    return HRIS::Nginx->start(accounts => $acc, workers => 2,
        http => 'hris_redis ' . $rd->url . ";\n    hris_allowed_urls $RX;\n"
              . "    hris_secrets_key $KEY;\n"
              . "    hris_webhook_retry_delays 1s 1s;\n    hris_webhook_timeout 2s;",
        server => 'location /admin/ { hris_admin; }');
}

my $A = gateway();
my $B = gateway();

sub call {
    my ($ng, $method, $path, %o) = @_;
    return $ng->request($method, $path, (exists $o{key} ? (key => $o{key}) : ()),
                        exists $o{json}
                        ? (body => $J->encode($o{json}),
                           headers => { 'Content-Type' => 'application/json' })
                        : ());
}

sub subscribe {
    my ($ng, $path, %o) = @_;
    return call($ng, 'POST', '/admin/webhooks',
                json => { url => "$RX$path", events => ['*'] }, %o);
}

my $n_acc = 0;
sub make_account {
    my ($ng) = @_;
    my $id = 'whf-acct-' . ++$n_acc;
    my $res = call($ng, 'POST', '/admin/accounts', json => {
        id => $id, provider => 'clayhr', base_url => $cl->url,
        context => { subdomain => 'acme', user_id => '123456' },
        credentials => { api_key => 'clayhr-sandbox-0123456789abcdef' } });
    is($res->{status}, 201, "account $id created") or diag $res->{body};
    return $id;
}

# the requests to one path, until there are n of them or the time is up
sub at {
    my ($path, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    my @r;
    while (1) {
        @r = grep { $_->{path} eq $path } $rx->requests;
        last if @r >= $n || time > $deadline;
        sleep 0.1;
    }
    return @r;
}

# until gateway $ng lists (or no longer lists) the id, at most 3 s
sub listed {
    my ($ng, $id, $want) = @_;
    my $deadline = time + 3;
    my $res;
    while (1) {
        $res = call($ng, 'GET', '/admin/webhooks');
        my $has = grep { $_->{id} eq $id } @{ $res->{json}{result} // [] };
        return $res if !!$has == !!$want || time > $deadline;
        sleep 0.1;
    }
}

sub verified {
    my ($req, $secret) = @_;
    my $h = $req->{headers};
    my ($b64) = $secret =~ /^whsec_(.+)\z/ or return 0;
    my $want = encode_base64(
        hmac_sha256("$h->{'webhook-id'}.$h->{'webhook-timestamp'}.$req->{body}",
                    decode_base64($b64)), '');
    return scalar grep { $_ eq "v1,$want" } split ' ', $h->{'webhook-signature'} // '';
}


# -- a subscription through A, seen by B -------------------------------------------

my $res = subscribe($A, '/acme');
is($res->{status}, 201, 'subscribed through A') or diag $res->{body};
my $s1 = $res->{json}{result};

$res = listed($B, $s1->{id}, 1);
is_deeply($res->{json}{result}, [{ id => $s1->{id}, url => "$RX/acme", events => ['*'] }],
          'B lists the subscription made through A');
unlike($res->{body}, qr/whsec_/, '... without its secret');
is(call($B, 'GET', '/admin/webhooks', key => $GLOBEX)->{json}{result_count}, 0,
   'another tenant does not see it at B');
is(call($B, 'DELETE', "/admin/webhooks/$s1->{id}", key => $GLOBEX)->{status}, 404,
   'another tenant cannot delete it through B: 404');
is(call($A, 'GET', '/admin/webhooks')->{json}{result_count}, 1,
   'still there at A');

my $v = $rd->cli('HGET', 'hris:{webhooks}:subs', $s1->{id});
ok(defined $v && $J->decode($v)->{tenant}, 'held in Redis');
unlike($v // '', qr/\Q$s1->{secret}\E|whsec_/, '... its secret sealed there');

# -- B emits, the subscription made through A receives -----------------------------

my $a1 = make_account($B);
my @got = grep { index($_->{body}, "\"$a1\"") >= 0 } at('/acme', 1);
is(scalar @got, 1, 'an event emitted by B reaches the subscription made through A');
ok(@got && verified($got[0], $s1->{secret}), '... signed with its secret');
is(@got && $J->decode($got[0]{body})->{type}, 'integrated_account.created', '... its type');

# -- tenants stay apart; a delete through B stops A --------------------------------

my $g = subscribe($B, '/globex', key => $GLOBEX);
is($g->{status}, 201, 'another tenant subscribes through B') or diag $g->{body};
my $s2 = subscribe($B, '/acme2');
is($s2->{status}, 201, 'a second acme subscription through B');
$s2 = $s2->{json}{result};
listed($A, $s2->{id}, 1);

$res = call($B, 'DELETE', "/admin/webhooks/$s1->{id}");
is($res->{status}, 200, 'the first deleted through B') or diag $res->{body};
$res = listed($A, $s1->{id}, 0);
ok(!grep({ $_->{id} eq $s1->{id} } @{ $res->{json}{result} }), 'A no longer lists it');

my $a2 = make_account($A);
@got = grep { index($_->{body}, "\"$a2\"") >= 0 } at('/acme2', 2);
is(scalar @got, 1, 'A delivers to the subscription made through B');
ok(@got && verified($got[0], $s2->{secret}), '... signed with its secret');
sleep 1;
is(scalar(grep { index($_->{body}, "\"$a2\"") >= 0 } at('/acme', 99, 0)), 0,
   'A no longer delivers to the one deleted through B');
is(scalar(at('/globex', 99, 0)), 0, "another tenant's subscription got none of acme's events");
is(scalar($rd->cli('HLEN', 'hris:{webhooks}:subs')), 2, 'Redis holds the two left');

# -- a 410 at the gateway that delivers ends the subscription for the fleet -------

$rx->plan_for('/gone', '410');
my $s3 = subscribe($A, '/gone');
is($s3->{status}, 201, 'a subscription through A whose receiver answers 410');
$s3 = $s3->{json}{result};
listed($B, $s3->{id}, 1);
my $a4 = make_account($B);
is(scalar(grep { index($_->{body}, "\"$a4\"") >= 0 } at('/gone', 1)), 1, 'B delivered to it once');
$res = listed($A, $s3->{id}, 0);
ok(!grep({ $_->{id} eq $s3->{id} } @{ $res->{json}{result} }), 'the 410 at B ended it at A too');
is($rd->cli('HEXISTS', 'hris:{webhooks}:subs', $s3->{id}), 0, '... and in Redis');

# -- Redis down --------------------------------------------------------------------

$rd->stop;
$res = subscribe($A, '/acme3');
is($res->{status}, 503, 'Redis down: POST /admin/webhooks 503');
like($res->{body}, qr/hris_redis/, '... naming the store');
is(call($B, 'DELETE', "/admin/webhooks/$s2->{id}")->{status}, 503, '... and a DELETE too');

my $a3 = make_account($A);
@got = grep { index($_->{body}, "\"$a3\"") >= 0 } at('/acme2', 3);
is(scalar @got, 1, 'the mirrored subscription is still delivered to');

$_->stop for $A, $B, $rx;

done_testing;
