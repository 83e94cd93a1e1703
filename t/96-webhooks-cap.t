#!/usr/bin/perl
# Webhooks out: a tenant's share of the "hris_webhooks" zone is capped in
# bytes (hris_webhook_tenant_size, by default a quarter of the zone, at
# least 64k), not only in count (1000 undelivered events): a tenant whose
# receivers are down and whose events pile up stops at its share, and
# another tenant's events are still queued and delivered. Without the cap
# the first tenant's events fill the small zone here and the second
# tenant's event is dropped ("the zone is full").

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Receiver;

my $J = JSON::PP->new->canonical;
my $GLOBEX = $HRIS::Nginx::OTHER_KEY;

my $cl = HRIS::Sandbox->start('clayhr');
my $rx = HRIS::Receiver->start;
my $RX = $rx->url;
# a receiver that is down: nothing listens there
my $DOWN = 'http://127.0.0.1:' . HRIS::Nginx::free_port();

my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);

# the directive's bounds, checked by nginx -t
my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc,
    http => 'hris_webhook_tenant_size 16k;')->test_config;
isnt($rc, 0, 'a share smaller than two of the largest events is refused');
like($out, qr/"hris_webhook_tenant_size" must be at least 32768/,
     'and nginx -t says how large it must be');

my $HTTP = "hris_allowed_urls $RX $DOWN;\n"
         . "    hris_webhook_zone_size 256k;\n"
         . "    hris_webhook_retry_delays 300s;\n"
         . "    hris_webhook_timeout 2s;";
my $ng = HRIS::Nginx->start(accounts => $acc, workers => 2, http => $HTTP,
                            server => 'location /admin/ { hris_admin; }');

sub call {
    my ($method, $path, %o) = @_;
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    return $ng->request($method, $path,
                        (exists $o{key} ? (key => $o{key}) : ()),
                        defined $body
                        ? (body => $body,
                           headers => { 'Content-Type' => 'application/json' })
                        : ());
}

sub subscribe {
    my ($url, %o) = @_;
    return call('POST', '/admin/webhooks',
                json => { url => $url, events => ['*'] }, %o);
}

my $n_acc = 0;
sub make_account {
    my (%o) = @_;
    # a long id: a larger event, so that fewer fill the share
    my $id = sprintf('cap-acct-%04d-', ++$n_acc) . ('x' x 110);
    my $res = call('POST', '/admin/accounts', %o, json => {
        id => $id, provider => 'clayhr', base_url => $cl->url,
        context => { subdomain => 'acme', user_id => '123456' },
        credentials => { api_key => 'clayhr-sandbox-0123456789abcdef' } });
    return ($res, $id);
}

# globex subscribes first, so that its subscription has room either way
is(subscribe("$RX/globex", key => $GLOBEX)->{status}, 201,
   'globex subscribes');

# acme: 16 subscriptions, every receiver down
my $subs = 0;
for my $i (1 .. 16) {
    $subs++ if subscribe("$DOWN/acme$i")->{status} == 201;
}
is($subs, 16, 'acme has 16 subscriptions to a receiver that is down');

# acme's events pile up: each goes to 16 subscriptions (about 8 KB in
# the zone); 60 of them are 960 deliveries, under the count cap, and more
# than the 256k zone holds
my $made = 0;
for (1 .. 60) {
    my ($res) = make_account();
    $made++ if $res->{status} == 201;
}
is($made, 60, 'acme made 60 accounts, each an event for 16 subscriptions');

# the share is reached, named in the log with the tenant
my $deadline = time + 15;
my $log = '';
while (time < $deadline) {
    $log = $ng->error_log;
    last if $log =~ /tenant "acme": the tenant's undelivered events take/;
    sleep 0.1;
}
like($log, qr/not queued for \d+ subscription\(s\) of tenant "acme": the tenant's undelivered events take its share of the zone \("hris_webhook_tenant_size"\)/,
     "acme's events beyond its share are not queued, logged with the tenant "
     . 'and the directive');
unlike($log, qr/the zone is full/, 'the zone itself never filled');

# globex's event is still queued and delivered
my ($res, $gid) = make_account(key => $GLOBEX);
is($res->{status}, 201, 'globex makes an account');

my @got;
$deadline = time + 20;
while (time < $deadline) {
    @got = grep { $_->{path} eq '/globex' } $rx->requests;
    last if grep { ($J->decode($_->{body})->{data}{integrated_account_id}
                    // '') eq $gid } @got;
    sleep 0.1;
}
ok((grep { ($J->decode($_->{body})->{data}{integrated_account_id} // '')
           eq $gid } @got),
   "globex's event is delivered while acme's fill their share")
    or diag $ng->error_log =~ /(.*not queued.*)/g;

$ng->stop;
done_testing;
