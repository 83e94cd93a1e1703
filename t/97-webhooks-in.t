#!/usr/bin/perl
# Provider webhooks in (CONTRACT section 8): POST /webhooks/{account} is
# verified as the provider's mapping table says (BambooHR: hex HMAC-SHA256
# over the raw body and the timestamp header, computed here with
# Digest::SHA, not the module's code; Personio: a token in Authorization;
# PeopleHR: a token in the path), answered at once, and turned into
# record.* events (for now, the events module logs them at "info"). A
# request that does not verify gets 401 and emits nothing, whether the
# account exists or not; the same delivery twice emits once.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use lib 't/lib';
use HRIS::Nginx;
use HRIS::Redis;

my $SECRET = '37387786e9cb3827cccabcaf8baca227';
my $PTOKEN = 'personio-webhook-token-0123456789';
my $HTOKEN = 'peoplehr-path-token-abcdef0123456789';

my $accounts = {
    api_keys => [ { key => $HRIS::Nginx::KEY, tenant => 'acme' } ],
    accounts => [
        { id => 'acme-bamboohr', tenant => 'acme', provider => 'bamboohr',
          context => { subdomain => 'acme' },
          credentials => { api_key => '0123456789abcdef0123456789abcdef01234567',
                           webhook_secret => $SECRET } },
        { id => 'acme-nosecret', tenant => 'acme', provider => 'bamboohr',
          context => { subdomain => 'acme' },
          credentials => { api_key => '0123456789abcdef0123456789abcdef01234567' } },
        { id => 'acme-personio', tenant => 'acme', provider => 'personio',
          credentials => { client_id => 'c', client_secret => 's',
                           webhook_token => $PTOKEN } },
        { id => 'acme-peoplehr', tenant => 'acme', provider => 'peoplehr',
          credentials => { api_key => '7c9e6679-7425-40de-944b-e07fc1f90ae7',
                           webhook_token => $HTOKEN } },
        # the generic mechanisms no table uses yet, through account overrides
        { id => 'acme-peoplehr-q', tenant => 'acme', provider => 'peoplehr',
          credentials => { api_key => '7c9e6679-7425-40de-944b-e07fc1f90ae7',
                           webhook_token => $HTOKEN },
          overrides => { 'webhooks.verify' => { type => 'token', in => 'query', name => 'token',
                                                credential => 'webhook_token' } } },
        { id => 'acme-personio-batch', tenant => 'acme', provider => 'personio',
          credentials => { client_id => 'c', client_secret => 's', webhook_token => $PTOKEN },
          overrides => { 'webhooks.verify.prefix' => 'Bearer ', 'webhooks.events' => '/events',
                         'webhooks.event_id' => '/id' } },
        { id => 'acme-personio-evid', tenant => 'acme', provider => 'personio',
          credentials => { client_id => 'c', client_secret => 's', webhook_token => $PTOKEN },
          overrides => { 'webhooks.event_id' => '/meta/event_id' } },
        { id => 'acme-clayhr', tenant => 'acme', provider => 'clayhr',
          context => { subdomain => 'acme', user_id => '123456' },
          credentials => { api_key => 'clayhr-sandbox-0123456789abcdef',
                           webhook_token => 'x' } },
    ],
};

our $ng = HRIS::Nginx->start(accounts => $accounts,
    server => 'location /webhooks/ { hris_webhooks; }');
my $json = JSON::PP->new->canonical;

# every answer, searched for secrets at the end
my @ANSWERS;
{
    no warnings 'redefine';
    my $orig = \&HRIS::Nginx::request;
    *HRIS::Nginx::request = sub {
        my $res = $orig->(@_);
        push @ANSWERS, join("\n", map { "$_: $res->{headers}{$_}" } keys %{ $res->{headers} })
                       . "\n" . ($res->{body} // '');
        return $res;
    };
}

# the error log's size before a request: what it logs comes after
sub mark { length $ng->error_log }
sub since { substr $ng->error_log, $_[0] }

sub bamboo {
    my ($event, %o) = @_;
    my $body = $o{body} // $json->encode($event);
    my $ts = $o{ts} // time;
    my $sig = $o{sig} // hmac_sha256_hex($body . $ts, $o{secret} // $SECRET);
    return $ng->request('POST', '/webhooks/' . ($o{account} // 'acme-bamboohr'),
        key => undef, body => $body,
        headers => { 'Content-Type' => 'application/json',
                     'X-BambooHR-Timestamp' => $ts,
                     'X-BambooHR-Signature' => $sig });
}

my $n = 0;
sub updated { {
    type => 'employee.updated', timestamp => '2026-01-31T18:42:00+0000',
    data => { companyId => '1', employeeId => $_[0] // '100',
              changedFields => ['firstName', 'customShirtSize'], n => $n++ } } }

# --- BambooHR: the signature ------------------------------------------------

my $m = mark();
my $res = bamboo(updated('100'));
is($res->{status}, 200, 'signed BambooHR webhook: 200');
is_deeply($res->{json}{result}, { received => 1, ignored => 0 }, 'one event received');
like(since($m), qr/hris event record\.updated for tenant "acme", account "acme-bamboohr", employees 100/,
     'record.updated for employees 100');

$m = mark();
$res = bamboo({ type => 'employee.created', data => { employeeId => 7 } });
like(since($m), qr/hris event record\.created .* employees 7\b/, 'created, numeric id as text');
$res = bamboo({ type => 'employee.deleted', data => { employeeId => '8' } });
like(since($m), qr/hris event record\.deleted .* employees 8\b/, 'deleted');

$m = mark();
$res = bamboo(updated('101'), sig => hmac_sha256_hex('x', $SECRET));
is($res->{status}, 401, 'wrong signature: 401');
is($res->{json}{statusCode}, 401, 'the error envelope');
unlike(since($m), qr/hris event/, 'no event for a wrong signature');
like(since($m), qr/a wrong signature/, 'the log says why');

$m = mark();
$res = bamboo(updated('102'), secret => 'another secret');
is($res->{status}, 401, 'signed with another key: 401');
$res = bamboo(updated('102'), sig => uc hmac_sha256_hex($json->encode(updated('102')) . time, $SECRET));
$res = bamboo(updated('103'), ts => time - 301);
is($res->{status}, 401, 'a timestamp 301 s old: 401');
$res = bamboo(updated('104'), ts => time + 400);
is($res->{status}, 401, 'a timestamp 400 s ahead: 401');
$res = bamboo(updated('105'), ts => 'soon');
is($res->{status}, 401, 'a timestamp that is no number: 401');
unlike(since($m), qr/hris event.*employees 10[2345]/, 'none of them emitted an event');
like(since($m), qr/a stale timestamp/, 'stale said in the log');

$res = bamboo(updated('106'), ts => time - 250);
is($res->{status}, 200, 'a timestamp 250 s old is within the tolerance');

# the body tampered with after signing
my $body = $json->encode(updated('107'));
my $ts = time;
my $sig = hmac_sha256_hex($body . $ts, $SECRET);
(my $tampered = $body) =~ s/"107"/"999"/;
$m = mark();
$res = bamboo(undef, body => $tampered, ts => $ts, sig => $sig);
is($res->{status}, 401, 'a tampered body: 401');
unlike(since($m), qr/hris event/, 'no event for it');

# changed fields: unified names where the table maps them, else the
# provider's (seen in the debug log of a gateway of its own)
{
    my $dbg = HRIS::Nginx->start(accounts => $accounts, log_level => 'debug',
        server => 'location /webhooks/ { hris_webhooks; }');
    local $ng = $dbg;
    is(bamboo(updated('108'))->{status}, 200, 'signed again');
    like($dbg->error_log, qr/hris webhook record\.updated: \{"changed_fields":\["first_name","customShirtSize"\],"id":"108","integrated_account_id":"acme-bamboohr","provider":"bamboohr","resource":"employees"\}/,
         'changed_fields: first_name mapped, customShirtSize as sent');
    my $res = $dbg->request('POST', "/webhooks/acme-peoplehr/$HTOKEN", key => undef,
        body => '{"ActionId":2,"EmployeeId":"PW1","FieldName":"Other Name(s)"}');
    like($dbg->error_log, qr/hris webhook record\.updated: \{"changed_fields":\["Other Name\(s\)"\],"id":"PW1"/,
         'PeopleHR: the one FieldName as the changed field');
    $dbg->stop;
}

# --- duplicates ---------------------------------------------------------------

my $dup = updated('109');
$body = $json->encode($dup);
$m = mark();
is(bamboo(undef, body => $body)->{status}, 200, 'first delivery');
$res = bamboo(undef, body => $body, ts => time + 1);
is($res->{status}, 200, 'the same delivery again: 200');
is_deeply($res->{json}{result}, { received => 0, duplicate => JSON::PP::true }, 'said a duplicate');
my @seen = since($m) =~ /(hris event record\.updated [^\n]*employees 109)/g;
is(scalar @seen, 1, 'one event for two deliveries');

# --- unknown accounts and accounts that cannot verify ------------------------

$m = mark();
my $unknown = bamboo(updated('110'), account => 'nope');
my $nosecret = bamboo(updated('110'), account => 'acme-nosecret');
my $nohooks = $ng->request('POST', '/webhooks/acme-clayhr', key => undef, body => '{}');
is($unknown->{status}, 401, 'an unknown account: 401');
is($nosecret->{status}, 401, 'an account without webhook_secret: 401');
is($nohooks->{status}, 401, 'a provider without webhooks: 401');
is($unknown->{body}, $nosecret->{body}, 'unknown and existing said alike');
is($unknown->{body}, $nohooks->{body}, 'and a provider without webhooks too');
like(since($m), qr/give the account the credential "webhook_secret"/, 'the log names the missing credential');
like(since($m), qr/no "webhooks" section/, 'the log says the table has no webhooks');
unlike(since($m), qr/hris event/, 'no events');

# --- bounds --------------------------------------------------------------------

$res = bamboo(undef, body => '{"type":"employee.updated","data":{"employeeId":"1","x":"'
                              . ('a' x (1024 * 1024)) . '"}}');
is($res->{status}, 413, 'a body over 1 MB: 413 (nginx\'s client_max_body_size)');

$res = bamboo(undef, body => '{"type": "employee.upd');
is($res->{status}, 400, 'signed but not JSON: 400');

$res = $ng->request('GET', '/webhooks/acme-bamboohr', key => undef);
is($res->{status}, 405, 'GET: 405');
$res = $ng->request('POST', '/webhooks/', key => undef, body => '{}');
is($res->{status}, 404, 'no account in the path: 404');

$m = mark();
$res = bamboo({ type => 'employee_with_fields.updated', data => { employeeId => '5' } });
is($res->{status}, 200, 'an event the table does not map: 200');
is_deeply($res->{json}{result}, { received => 0, ignored => 1 }, 'ignored');
unlike(since($m), qr/hris event/, 'and not emitted');

# --- Personio: the token in Authorization ---------------------------------------

sub personio { personio_to('acme-personio', $_[1], $_[0]) }

sub personio_to {
    my ($account, $event, $token) = @_;
    $token //= $PTOKEN if @_ < 3;
    return $ng->request('POST', "/webhooks/$account", key => undef,
        body => $json->encode($event),
        headers => { 'Content-Type' => 'application/json',
                     defined $token ? (Authorization => $token) : () });
}

my $pe = { company_id => 1, event_name => 'person.updated',
           occurred_at => '2026-01-31T18:42:00Z', payload => { id => '4242' }, meta => {} };
$m = mark();
$res = personio($PTOKEN, $pe);
is($res->{status}, 200, 'Personio with its token: 200');
like(since($m), qr/hris event record\.updated for tenant "acme", account "acme-personio", employees 4242/,
     'record.updated for the person');
$res = personio($PTOKEN, { %$pe, event_name => 'absence-period.created',
                           payload => { id => 'ab-1' } });
like(since($m), qr/hris event record\.created .*account "acme-personio", timeoff_requests ab-1/,
     'an absence period: a time-off request');

$m = mark();
is(personio($PTOKEN . 'x', { %$pe, payload => { id => '4243' } })->{status}, 401, 'a wrong token: 401');
is(personio(undef, { %$pe, payload => { id => '4244' } })->{status}, 401, 'no token: 401');
is(personio(substr($PTOKEN, 0, 10), { %$pe, payload => { id => '4245' } })->{status}, 401,
   'a prefix of the token: 401');
unlike(since($m), qr/hris event/, 'no events for them');

# --- PeopleHR: the token in the path ----------------------------------------------

sub peoplehr {
    my ($path, $event) = @_;
    return $ng->request('POST', "/webhooks/acme-peoplehr$path", key => undef,
        body => $json->encode($event), headers => { 'Content-Type' => 'application/json' });
}

$m = mark();
$res = peoplehr("/$HTOKEN", { ActionId => 2, Action => 'Employee Detail Updated',
                              EmployeeId => 'PW1', FieldName => 'Other Name(s)' });
is($res->{status}, 200, 'PeopleHR with the path token: 200');
like(since($m), qr/hris event record\.updated .*account "acme-peoplehr", employees PW1/,
     'a field updated: record.updated');
$res = peoplehr("/$HTOKEN", { ActionId => '1', Action => 'New Starter Added', EmployeeId => 'PW21' });
like(since($m), qr/hris event record\.created .*employees PW21/, 'a new starter, ActionId as a string');
$res = peoplehr("/$HTOKEN", { ActionId => 4, Action => 'Holiday Added', EmployeeId => 'PW1',
                              StartDate => '2026-02-01' });
is_deeply($res->{json}{result}, { received => 0, ignored => 1 },
          'a holiday without its AnnualLeaveTxnId: ignored');

$m = mark();
is(peoplehr("/wrong-token", { ActionId => 18, EmployeeId => 'PW9' })->{status}, 401,
   'a wrong path token: 401');
is(peoplehr('', { ActionId => 18, EmployeeId => 'PW9' })->{status}, 401, 'no path token: 401');
is($ng->request('POST', "/webhooks/acme-peoplehr?token=$HTOKEN", key => undef,
                body => '{"ActionId":18,"EmployeeId":"PW9"}')->{status}, 401,
   'the token in the query where the table wants the path: 401');
unlike(since($m), qr/hris event/, 'no events for them');

# --- the generic mechanisms: a query token, a scheme prefix, a batch, event ids ---

$m = mark();
$res = $ng->request('POST', "/webhooks/acme-peoplehr-q?token=$HTOKEN", key => undef,
                    body => '{"ActionId":18,"EmployeeId":"PW9"}');
is($res->{status}, 200, 'a token in the query where the table wants it: 200');
like(since($m), qr/hris event record\.deleted .*account "acme-peoplehr-q", employees PW9/, 'deleted');
is($ng->request('POST', "/webhooks/acme-peoplehr-q?token=x$HTOKEN", key => undef,
                body => '{"ActionId":18,"EmployeeId":"PW8"}')->{status}, 401, 'a wrong query token: 401');

my $batch = { events => [
    { event_name => 'person.created', payload => { id => '501' } },
    { event_name => 'person.updated', payload => { id => 502 } },
    { event_name => 'attendance-period.created', payload => { id => 'x' } },
] };
$m = mark();
$res = $ng->request('POST', '/webhooks/acme-personio-batch', key => undef, body => $json->encode($batch),
                    headers => { Authorization => "Bearer $PTOKEN" });
is($res->{status}, 200, 'a batch, the token after "Bearer ": 200');
is_deeply($res->{json}{result}, { received => 2, ignored => 1 }, 'two events, one ignored');
like(since($m), qr/record\.created .*employees 501/, 'one event for the first record');
like(since($m), qr/record\.updated .*employees 502/, 'one for the second');
is($ng->request('POST', '/webhooks/acme-personio-batch', key => undef, body => $json->encode($batch),
                headers => { Authorization => $PTOKEN })->{status}, 401, 'without the prefix: 401');
is($ng->request('POST', '/webhooks/acme-personio-batch', key => undef, body => '{"events": {}}',
                headers => { Authorization => "Bearer $PTOKEN" })->{status}, 400,
   'events not an array: 400');

$m = mark();
my %evid = (event_name => 'person.updated', payload => { id => '601' }, meta => { event_id => 'e-1' });
is(personio_to('acme-personio-evid', { %evid, occurred_at => '1' })->{status}, 200, 'an event with an id');
$res = personio_to('acme-personio-evid', { %evid, occurred_at => '2' });
is_deeply($res->{json}{result}, { received => 0, duplicate => JSON::PP::true },
          'the same event id in another body: a duplicate');
is(scalar(() = since($m) =~ /employees 601/g), 1, 'told once');

# --- no secret anywhere ---------------------------------------------------------------

my $log = $ng->error_log;
for my $s ($SECRET, $PTOKEN, $HTOKEN) {
    unlike($log, qr/\Q$s\E/, 'no secret or token in the error log');
    ok(!grep({ index($_, $s) >= 0 } @ANSWERS), 'nor in any of ' . @ANSWERS . ' answers');
}

$ng->stop;

# --- a fleet: two gateways on one Redis drop a retry sent to the other -------

{
    my $rd = HRIS::Redis->start;
    my @gw = map { HRIS::Nginx->start(accounts => $accounts,
        http => 'hris_redis ' . $rd->url . ';',
        server => 'location /webhooks/ { hris_webhooks; }') } 1 .. 2;
    my $body = $json->encode(updated('300'));
    my @res;
    for my $g (@gw) {
        local $ng = $g;
        push @res, bamboo(undef, body => $body);
    }
    is($res[0]{status}, 200, 'gateway A takes the delivery');
    is_deeply($res[0]{json}{result}, { received => 1, ignored => 0 }, 'and emits it');
    is_deeply($res[1]{json}{result}, { received => 0, duplicate => JSON::PP::true },
              'gateway B drops the retry (Redis SET NX)');
    my $told = () = ($gw[0]->error_log . $gw[1]->error_log) =~ /hris event record\.updated [^\n]*employees 300/g;
    is($told, 1, 'one event for the fleet');
    like(join(' ', @{ $rd->cli('KEYS', 'hris:{acct:acme-bamboohr}:webhook:*') }), qr/webhook:[0-9a-f]{32}/,
         'the digest is in Redis');
    $rd->stop;
    local $ng = $gw[0];
    is(bamboo(updated('301'))->{status}, 200, 'Redis gone: the gateway still takes webhooks');
    like($gw[0]->error_log, qr/Redis did not say whether a webhook/, 'and says so');
    $_->stop for @gw;
}

done_testing;
