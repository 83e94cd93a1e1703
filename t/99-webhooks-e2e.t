#!/usr/bin/perl
# The whole path of CONTRACT section 8, end to end: an app subscribes
# through the administration API; a unified PATCH changes an employee at
# the provider (the BambooHR sandbox); the provider posts its signed
# webhook to the gateway (/webhooks/{integrated_account_id}); the gateway
# verifies it and delivers a signed record.updated to the app. The app's
# side is checked here with Digest::SHA, not the module's code. Account
# events reach the app the same way, and only the tenant's own app.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Receiver;

my $J = JSON::PP->new->canonical;
my $API_KEY = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};

my $sb = HRIS::Sandbox->start('bamboohr');
my $rx = HRIS::Receiver->start;
my $RX = $rx->url;

our $ng = HRIS::Nginx->start(
    accounts => HRIS::Nginx::accounts_for(bamboohr => $sb),
    http => "hris_allowed_urls $RX;\n    hris_webhook_retry_delays 1s 2s;",
    server => "location /admin/ { hris_admin; }\n"
            . "    location /webhooks/ { hris_webhooks; }\n"
            . "    location = /metrics { hris_metrics; }");

my $http = HTTP::Tiny->new(timeout => 10);

sub admin {
    my ($method, $path, $body, %o) = @_;
    return $ng->request($method, $path,
        (exists $o{key} ? (key => $o{key}) : ()),
        defined $body ? (body => $J->encode($body),
                         headers => { 'Content-Type' => 'application/json' })
                      : ());
}

# Standard Webhooks, verified independently of the module
sub verified {
    my ($req, $secret) = @_;
    my $h = $req->{headers};
    my ($b64) = $secret =~ /^whsec_(.+)\z/ or return 0;
    my $want = encode_base64(hmac_sha256(
        "$h->{'webhook-id'}.$h->{'webhook-timestamp'}.$req->{body}",
        decode_base64($b64)), '');
    return scalar grep { $_ eq "v1,$want" }
                  split ' ', $h->{'webhook-signature'} // '';
}

sub delivered {
    my ($path, $type, $timeout) = @_;
    my $deadline = time + ($timeout // 20);
    while (time < $deadline) {
        for my $r (grep { $_->{path} eq $path } $rx->requests) {
            my $e = eval { $J->decode($r->{body}) } or next;
            return ($r, $e) if $e->{type} eq $type;
        }
        sleep 0.2;
    }
    return;
}

# 1. The app subscribes (tenant acme), another tenant's app too.
my $res = admin('POST', '/admin/webhooks', { url => "$RX/acme", events => ['*'] });
is($res->{status}, 201, 'the app subscribes') or diag $res->{body};
my $secret = $res->{json}{result}{secret};
$res = admin('POST', '/admin/webhooks', { url => "$RX/globex", events => ['*'] },
             key => $HRIS::Nginx::OTHER_KEY);
is($res->{status}, 201, "another tenant's app subscribes");

# 2. The provider is told where to post: BambooHR's POST /v1/webhooks
# answers the private key once; the account gets it as webhook_secret.
my $hook = $http->request('POST', $sb->url . '/api/gateway.php/acme/v1/webhooks', {
    headers => { Authorization => 'Basic ' . encode_base64("$API_KEY:x", ''),
                 'Content-Type' => 'application/json', Accept => 'application/json' },
    content => $J->encode({ name => 'gateway', format => 'json',
                            url => $ng->url . '/webhooks/acme-hooked',
                            events => ['employee.created', 'employee.updated'],
                            monitorFields => ['firstName', 'lastName', 'jobTitle'] }) });
is($hook->{status}, 201, 'the provider registers the gateway') or diag $hook->{content};
my $key = eval { $J->decode($hook->{content})->{privateKey} } // '';
like($key, qr/^[0-9a-f]{32}\z/, 'and shows its private key once');

$res = admin('POST', '/admin/accounts', {
    id => 'acme-hooked', provider => 'bamboohr', context => { subdomain => 'acme' },
    base_url => $sb->url . '/api/gateway.php/acme',
    credentials => { api_key => $API_KEY, webhook_secret => $key } });
is($res->{status}, 201, 'an account with the webhook secret') or diag $res->{body};

# 3. The account event reaches the tenant's app, signed.
my ($req, $ev) = delivered('/acme', 'integrated_account.created');
ok($req, 'integrated_account.created delivered to the app');
ok($req && verified($req, $secret), '... signed with the subscription secret');
is_deeply($ev && $ev->{data},
          { integrated_account_id => 'acme-hooked', provider => 'bamboohr' },
          '... with the account and provider');
like($ev && $ev->{id}, qr/^evt_/, '... an event id');
is($req && $req->{headers}{'webhook-id'}, $ev && $ev->{id}, '... = webhook-id');

# 4. A unified PATCH changes the employee at the provider ...
my $list = $ng->get('/unified/hris/employees?integrated_account_id=acme-hooked');
my $emp = $list->{json}{result}[0]{id};
ok(defined $emp, "an employee to change: $emp");
$res = $ng->request('PATCH',
    "/unified/hris/employees/$emp?integrated_account_id=acme-hooked",
    body => $J->encode({ job_title => 'Chief Webhook Officer' }),
    headers => { 'Content-Type' => 'application/json' });
is($res->{status}, 200, 'the unified PATCH') or diag $res->{body};

# ... the provider posts its signed webhook to the gateway, which tells
# the app record.updated.
($req, $ev) = delivered('/acme', 'record.updated', 30);
ok($req, 'record.updated delivered to the app');
ok($req && verified($req, $secret), '... signed');
is($ev && $ev->{data}{integrated_account_id}, 'acme-hooked', '... the account');
is($ev && $ev->{data}{resource}, 'employees', '... the unified resource');
is($ev && $ev->{data}{id}, $emp, '... the record id');
ok($ev && grep({ $_ eq 'job_title' } @{ $ev->{data}{changed_fields} // [] }),
   '... job_title among the changed fields, by its unified name')
    or diag explain $ev;

my $sent = $J->decode($http->get($sb->url . '/_sandbox/webhooks/deliveries')
                      ->{content})->{deliveries};
ok(scalar(grep { ($_->{status} // 0) == 200 } @$sent),
   'the gateway answered the provider 200');

# 5. Nothing of acme's reached the other tenant's app.
sleep 1;
my @other = grep { $_->{path} eq '/globex' } $rx->requests;
is(scalar(@other), 0, "the other tenant's app got none of it");

# 6. /metrics counts the events, the deliveries and the webhook received
# (the other worker's counts are folded in within a second).
sub metric {
    my ($name, $label, $value) = @_;
    my $text = $ng->get('/metrics', key => undef)->{body} // '';
    my $n = 0;
    $n += $1 while $text =~ /^\Q$name\E\{[^}]*\Q$label="$value"\E[^}]*\} (\d+)$/mg;
    return $n;
}
my %want = (
    'hris_events_total type record.updated' => 1,
    'hris_events_total type integrated_account.created' => 1,
    'hris_webhook_deliveries_total result 2xx' => 2,
    'hris_webhooks_received_total status 2xx' => 1,
);
for my $w (sort keys %want) {
    my $deadline = time + 5;
    my $got = 0;
    while (($got = metric(split ' ', $w)) < $want{$w} && time < $deadline) {
        sleep 0.3;
    }
    cmp_ok($got, '>=', $want{$w}, "/metrics: $w >= $want{$w}");
}

# 7. No secret in the error log.
my $log = $ng->error_log;
unlike($log, qr/\Q$key\E/, 'the provider key is not logged');
my ($b64) = $secret =~ /^whsec_(.+)/;
unlike($log, qr/\Q$b64\E/, 'the subscription secret is not logged');

$ng->stop;
$rx->stop;
done_testing;
