#!/usr/bin/perl
# Webhooks out (CONTRACT section 8): subscriptions in the administration
# API (the secret shown once, each tenant its own), deliveries signed as
# Standard Webhooks (checked here with Digest::SHA, not the module's code),
# retries with growing waits and Retry-After, a 410 that ends the
# subscription, a receiver that does not answer, events that survive a
# restart and a reload with the receiver down, and tenant URLs: loopback
# only when hris_allowed_urls lists it, checked again at each delivery.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time sleep);
use Sys::Hostname ();
use File::Temp ();
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Receiver;

my $J = JSON::PP->new->canonical;
my $GLOBEX = $HRIS::Nginx::OTHER_KEY;

my $cl = HRIS::Sandbox->start('clayhr');
my $rx = HRIS::Receiver->start;
my $RX = $rx->url;
my $UNLISTED = 'http://127.0.0.1:' . HRIS::Nginx::free_port();

my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);
my $HTTP = "hris_allowed_urls $RX;\n"
         . "    hris_webhook_retry_delays 1s 1s 2s 60s 60s;\n"
         . "    hris_webhook_timeout 2s;";
our $ng = HRIS::Nginx->start(accounts => $acc, workers => 2, http => $HTTP,
                            server => 'location /admin/ { hris_admin; }');

sub call {
    my ($method, $path, %o) = @_;
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    return $ng->request($method, $path, (exists $o{key} ? (key => $o{key}) : ()),
                        defined $body ? (body => $body,
                                         headers => { 'Content-Type' => 'application/json' })
                                      : ());
}

sub subscribe {
    my ($url, $events, %o) = @_;
    return call('POST', '/admin/webhooks',
                json => { url => $url, events => $events // ['*'] }, %o);
}

my $n_acc = 0;
sub make_account {
    my (%o) = @_;
    my $id = 'wh-acct-' . ++$n_acc;
    my $res = call('POST', '/admin/accounts', %o, json => {
        id => $id, provider => 'clayhr', base_url => $cl->url,
        context => { subdomain => 'acme', user_id => '123456' },
        credentials => { api_key => 'clayhr-sandbox-0123456789abcdef' } });
    is($res->{status}, 201, "account $id created") or diag $res->{body};
    return $id;
}

# the requests to one path, and until there are n of them
sub at {
    my ($path, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 15);
    my @r;
    while (1) {
        @r = grep { $_->{path} eq $path } $rx->requests;
        last if @r >= ($n // 1) || time > $deadline;
        sleep 0.1;
    }
    return @r;
}

# Standard Webhooks, verified independently
sub verified {
    my ($req, $secret) = @_;
    my $h = $req->{headers};
    my ($b64) = $secret =~ /^whsec_(.+)\z/ or return 0;
    my $want = encode_base64(
        hmac_sha256("$h->{'webhook-id'}.$h->{'webhook-timestamp'}.$req->{body}",
                    decode_base64($b64)), '');
    return scalar grep { $_ eq "v1,$want" } split ' ', $h->{'webhook-signature'} // '';
}

my @SECRETS;

# -- subscriptions -----------------------------------------------------------------

my $res = subscribe("$RX/acme");
is($res->{status}, 201, 'POST /admin/webhooks: 201') or diag $res->{body};
my $sub = $res->{json}{result};
like($sub->{id}, qr/^wh_[A-Za-z0-9_-]{24}\z/, 'an id');
is($sub->{url}, "$RX/acme", 'the url');
is_deeply($sub->{events}, ['*'], 'the events');
like($sub->{secret}, qr/^whsec_[A-Za-z0-9+\/]{43}=\z/, 'whsec_ + base64 of 32 bytes');
push @SECRETS, $sub->{secret};

$res = call('GET', '/admin/webhooks');
is($res->{status}, 200, 'GET /admin/webhooks');
is($res->{json}{result_count}, 1, 'result_count');
is_deeply($res->{json}{result}, [{ id => $sub->{id}, url => "$RX/acme", events => ['*'] }],
          'listed without the secret');
unlike($res->{body}, qr/whsec_/, 'no secret in the list');

$res = call('GET', '/admin/webhooks', key => $GLOBEX);
is_deeply([$res->{json}{result_count}, $res->{json}{result}], [0, []],
          'another tenant does not see it');
is(call('DELETE', "/admin/webhooks/$sub->{id}", key => $GLOBEX)->{status}, 404,
   'another tenant cannot delete it: 404');
is(call('DELETE', '/admin/webhooks/wh_nope', key => $GLOBEX)->{status}, 404,
   'a missing one: 404');
is(call('GET', '/admin/webhooks', key => undef)->{status}, 401, 'no key: 401');

my $gsub = subscribe("$RX/globex", ['integrated_account.created'], key => $GLOBEX);
is($gsub->{status}, 201, 'globex subscribes to one type');
push @SECRETS, $gsub->{json}{result}{secret};
$gsub = $gsub->{json}{result};

# what a POST refuses
for my $case (
    [400, { url => "$RX/x", events => ['employee.updated'] }, qr/employee\.updated/,
     'an unknown event type, named'],
    [400, { url => "$RX/x", events => [] }, qr/events/, 'no events'],
    [400, { url => "$RX/x", events => '*' }, qr/events/, 'events not an array'],
    [400, { url => "$RX/x" }, qr/events/, 'events missing'],
    [400, { url => "$RX/x", events => ['*'], secret => 'mine' }, qr/secret/,
     'an unknown key, named'],
    [400, { url => 'ftp://example.com/x', events => ['*'] }, qr/url/, 'not http(s)'],
    [400, { url => 'http://user@example.com/x', events => ['*'] }, qr/url/, 'userinfo'],
    [400, { events => ['*'] }, qr/url/, 'no url'],
    [403, { url => "$UNLISTED/x", events => ['*'] }, qr/hris_allowed_urls/,
     'loopback not listed: 403'],
    [403, { url => 'http://localhost/x', events => ['*'] }, qr/hris_allowed_urls/, 'localhost'],
    [403, { url => 'http://10.1.2.3/x', events => ['*'] }, qr/hris_allowed_urls/, 'private'],
    [403, { url => 'http://169.254.169.254/latest', events => ['*'] }, qr/hris_allowed_urls/,
     'link-local (cloud metadata)'],
    [403, { url => 'http://[::1]:8080/x', events => ['*'] }, qr/hris_allowed_urls/, 'IPv6 loopback'],
    [403, { url => 'http://[::ffff:127.0.0.1]/x', events => ['*'] }, qr/hris_allowed_urls/,
     'IPv4-mapped loopback'],
) {
    my ($status, $body, $re, $what) = @$case;
    my $r = call('POST', '/admin/webhooks', json => $body);
    is($r->{status}, $status, "$what: $status");
    like($r->{json}{message} // '', $re, "$what: the message says why");
}
is(call('POST', '/admin/webhooks', body => '{')->{status}, 400, 'not JSON: 400');
$res = call('GET', '/admin/webhooks');
is($res->{json}{result_count}, 1, 'nothing refused was made') or diag $res->{body};
is(call('PUT', '/admin/webhooks')->{status}, 405, 'PUT: 405');
is(call('DELETE', '/admin/webhooks')->{status}, 405, 'DELETE without an id: 405');

# a public URL is taken (nothing is sent to it: it is deleted at once)
$res = subscribe('https://hooks.example.com/hris', ['record.updated']);
is($res->{status}, 201, 'a public host: 201');
push @SECRETS, $res->{json}{result}{secret};
is_deeply(call('DELETE', "/admin/webhooks/$res->{json}{result}{id}")->{json},
          { result => { id => $res->{json}{result}{id} } }, 'DELETE: {"result": {"id"}}');
$res = call('GET', '/admin/webhooks');
is($res->{json}{result_count}, 1, 'gone from the list') or diag $res->{body};

# a cap per tenant
my @many;
for (1 .. 20) {
    my $r = subscribe("$RX/many", ['record.deleted']);
    last if $r->{status} != 201;
    push @many, $r->{json}{result}{id};
}
is(scalar @many, 15, 'a tenant holds at most 16 subscriptions')
    or diag call('GET', '/admin/webhooks')->{body};
is(subscribe("$RX/many", ['record.deleted'])->{status}, 409, 'the 17th: 409');
call('DELETE', "/admin/webhooks/$_") for @many;

# -- delivery ----------------------------------------------------------------------

my $t0 = time;
my $id1 = make_account();
my ($d) = at('/acme', 1);
ok($d, 'the event is delivered') or BAIL_OUT('no delivery: ' . $ng->error_log);
cmp_ok($d->{time} - $t0, '<', 5, 'within seconds');
is($d->{method}, 'POST', 'POST');
like($d->{headers}{'content-type'}, qr{^application/json}, 'JSON');
my $ev = $J->decode($d->{body});
is($ev->{type}, 'integrated_account.created', 'type');
like($ev->{id}, qr/^evt_[A-Za-z0-9_-]{24}\z/, 'an event id');
is($d->{headers}{'webhook-id'}, $ev->{id}, 'webhook-id is the event id');
like($ev->{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\z/, 'an RFC 3339 timestamp');
cmp_ok(abs($d->{headers}{'webhook-timestamp'} - time), '<', 30, 'webhook-timestamp: Unix s');
is_deeply($ev->{data}, { integrated_account_id => $id1, provider => 'clayhr' }, 'the data');
ok(verified($d, $sub->{secret}), 'the signature verifies');
ok(!verified($d, $gsub->{secret}), 'and not with another secret');
{
    my %bad = (%$d, body => $d->{body} . ' ');
    ok(!verified(\%bad, $sub->{secret}), 'nor over another body');
}
sleep 1.5;
is(scalar(at('/acme', 2, 0)), 1, 'delivered once');
is(scalar(at('/globex', 1, 0)), 0, "acme's event does not go to globex");

# globex's own event goes to globex only
my $before = () = at('/acme', 1, 0);
my $gid = make_account(key => $GLOBEX);
my ($g) = at('/globex', 1);
ok($g && verified($g, $gsub->{secret}), "globex's event, signed with its secret");
is($J->decode($g->{body})->{data}{integrated_account_id}, $gid, 'its account');
sleep 1;
is(scalar(at('/acme', 1, 0)), $before, "globex's event does not go to acme");

# the filter: globex did not subscribe to deletions
is(call('DELETE', "/admin/accounts/$gid", key => $GLOBEX)->{status}, 200, 'globex deletes');

# -- retries -----------------------------------------------------------------------

my $r2 = subscribe("$RX/retry", ['integrated_account.deleted']);
push @SECRETS, $r2->{json}{result}{secret};
$rx->plan_for('/retry', '500', '503 3', '200');
is(call('DELETE', "/admin/accounts/$id1")->{status}, 200, 'an account deleted');
my @r = at('/retry', 3, 20);
is(scalar @r, 3, 'tried three times') or diag $ng->error_log;
is_deeply([map { $_->{answer} } @r], ['500', '503 3', '200'], '500, 503, then 200');
is(scalar(keys %{{ map { $_->{headers}{'webhook-id'} => 1 } @r }}), 1, 'the same webhook-id');
ok(verified($_, $r2->{json}{result}{secret}), 'each attempt signed') for @r;
if (@r == 3) {
    cmp_ok($r[1]{time} - $r[0]{time}, '>=', 0.9, 'the first retry after the first delay');
    cmp_ok($r[1]{time} - $r[0]{time}, '<', 10, 'and within 10 s');
    cmp_ok($r[2]{time} - $r[1]{time}, '>=', 2.9, 'Retry-After: 3 honoured');
}
sleep 1.5;
is(scalar(at('/retry', 4, 0)), 3, 'not sent again after the 200');
like($ng->error_log, qr/attempt 1 got 500, next in/, 'the failure is logged');

# -- 410 ends the subscription ----------------------------------------------------

my $gone = subscribe("$RX/gone", ['integrated_account.created']);
push @SECRETS, $gone->{json}{result}{secret};
$rx->plan_for('/gone', '410');
make_account();
@r = at('/gone', 1);
is(scalar @r, 1, 'the 410');
sleep 1.5;
ok(!grep({ $_->{id} eq $gone->{json}{result}{id} } @{ call('GET', '/admin/webhooks')->{json}{result} }),
   'a 410 ends the subscription: it leaves the list');
make_account();
sleep 2.5;
is(scalar(at('/gone', 2, 0)), 1, 'and nothing more is sent to it');
like($ng->error_log, qr/410 Gone: the subscription ends/, 'logged');

# -- no answer -------------------------------------------------------------------

my $slow = subscribe("$RX/slow", ['integrated_account.created']);
push @SECRETS, $slow->{json}{result}{secret};
$rx->plan_for('/slow', 'hang');
make_account();
@r = at('/slow', 2, 20);
is(scalar @r, 2, 'no answer within hris_webhook_timeout: tried again');
cmp_ok($r[1]{time} - $r[0]{time}, '>=', 2.5, 'after the timeout and a delay') if @r == 2;
is($r[1]{headers}{'webhook-id'}, $r[0]{headers}{'webhook-id'}, 'the same event') if @r == 2;
call('DELETE', "/admin/webhooks/$slow->{json}{result}{id}");

# -- the URL is checked again at each delivery -------------------------------------

# a name, so taken at creation, that resolves to loopback at delivery (this
# machine's name, when /etc/hosts says so)
my $host = Sys::Hostname::hostname();
my $addr = gethostbyname($host);
SKIP: {
    skip "$host does not resolve to loopback here", 3
        unless $host =~ /^[a-z0-9-]+$/i && $addr && (join '.', unpack 'C4', $addr) =~ /^127\./;
    my $name = subscribe("http://$host:" . HRIS::Nginx::free_port() . '/x',
                         ['integrated_account.created']);
    is($name->{status}, 201, 'a name is taken when it is made') or diag $name->{body};
    push @SECRETS, $name->{json}{result}{secret} // ();
    make_account();
    my $deadline = time + 10;
    sleep 0.2 until $ng->error_log =~ /resolves to a loopback, private/ || time > $deadline;
    like($ng->error_log, qr/resolves to a loopback, private or link-local address/,
         'its loopback address is refused when curl would connect');
    call('DELETE', "/admin/webhooks/$name->{json}{result}{id}") if $name->{json};
}

# -- durability: restart and reload with the receiver down --------------------------

sub failures { scalar(() = $ng->error_log =~ /attempt 1 got 0, next in/g) }
$rx->stop;
my $fails = failures();
my $dur = make_account();
my $deadline = time + 10;
sleep 0.2 until failures() > $fails || time > $deadline;
cmp_ok(failures(), '>', $fails, 'the receiver is down: no answer');
ok(-s $ng->dir . '/hris_state/webhooks.json', 'the spool is in the state directory');
$ng->stop;
my $spool = do { local (@ARGV, $/) = $ng->dir . '/hris_state/webhooks.json'; <> };
like($spool, qr/\Q$dur\E/, 'the undelivered event is spooled');
$rx->start;
$ng->start;
my @after = grep { $J->decode($_->{body})->{data}{integrated_account_id} eq $dur } at('/acme', 999, 8);
is(scalar @after, 1, 'delivered after the restart');
ok(@after && verified($after[0], $sub->{secret}), 'signed with the secret kept over the restart');
$res = call('GET', '/admin/webhooks');
is($res->{json}{result_count}, 2, 'the subscriptions too') or diag $res->{body};

$rx->stop;
my $dur2 = make_account();
$fails = failures();
$deadline = time + 10;
sleep 0.2 until failures() > $fails || time > $deadline;
$ng->reload;
$rx->start;
# while the receiver was down its retries may have reached the 60 s step
# (a loaded machine reloads slowly): wait for the delivery as long as
# that, then for a second one as long as a short retry
sub of_dur2 { grep { $J->decode($_->{body})->{data}{integrated_account_id} eq $dur2 } at('/acme', 999, 0) }
$deadline = time + 75;
sleep 0.2 until of_dur2() || time > $deadline;
sleep 2;
@after = of_dur2();
is(scalar @after, 1, 'delivered after a reload');

# -- the operator stops allowing the URL --------------------------------------------

$ng->reload(http => "hris_webhook_retry_delays 1s 1s 2s 60s 60s;\n    hris_webhook_timeout 2s;");
my $count = () = at('/acme', 1, 0);
make_account();
$deadline = time + 10;
sleep 0.2 until $ng->error_log =~ /its URL is no longer allowed/ || time > $deadline;
like($ng->error_log, qr/its URL is no longer allowed/, 'a URL no longer listed is not sent to');
is(scalar(at('/acme', 1, 0)), $count, 'nothing sent');

# -- no secret in the log ----------------------------------------------------------

my $log = $ng->error_log;
like($log, qr/hris event integrated_account\.created for tenant "acme"/, 'events are logged');
for my $s (@SECRETS) {
    (my $raw = $s) =~ s/^whsec_//;
    unlike($log, qr/\Q$raw\E/, 'no secret in the error log');
}

$ng->stop;

# -- with hris_secrets_key, the spool holds the secrets sealed ---------------------

{
    my $kdir = File::Temp::tempdir(CLEANUP => 1);
    HRIS::Nginx::write_file("$kdir/hris.key", Digest::SHA::sha256_hex(rand() . time . $$) . "\n");
    my $sealed = HRIS::Nginx->start(accounts => $acc, http => "$HTTP\n    hris_secrets_key $kdir/hris.key;",
                                    server => 'location /admin/ { hris_admin; }');
    local $ng = $sealed;
    my $s = subscribe("$RX/sealed", ['integrated_account.created'])->{json}{result};
    ok($s && $s->{secret}, 'a subscription with hris_secrets_key');
    push @SECRETS, $s->{secret};
    $sealed->stop;
    my $file = $sealed->dir . '/hris_state/webhooks.json';
    my $text = do { local (@ARGV, $/) = $file; <> } // '';
    (my $raw = $s->{secret}) =~ s/^whsec_//;
    like($text, qr/"secret":"sealed:v1:/, 'the secret is sealed in webhooks.json');
    unlike($text, qr/\Q$raw\E/, 'and not there in the clear');
    $sealed->start;
    make_account();
    my ($d) = at('/sealed', 1);
    ok($d && verified($d, $s->{secret}), 'opened again after a restart: the delivery verifies');
    $sealed->stop;
    unlike($sealed->error_log, qr/\Q$raw\E/, 'no secret in its error log');
}
# -- the directives, checked by nginx -t --------------------------------------------

for my $case (['hris_webhook_retry_delays 5s 0s;', qr/invalid delay "0s"/],
              ['hris_webhook_retry_delays 5s soon;', qr/invalid delay "soon"/],
              ['hris_webhook_retry_delays ' . join(' ', ('1s') x 17) . ';', qr/at most 16/],
              ['hris_webhook_zone_size 4k;', qr/hris_webhook_zone_size" must be at least/]) {
    my $t = HRIS::Nginx->prepare(accounts => $acc, http => $case->[0]);
    my ($rc, $out) = $t->test_config;
    isnt($rc, 0, "nginx -t refuses $case->[0]");
    like($out, $case->[1], 'and says why');
}

$rx->stop;
done_testing;
