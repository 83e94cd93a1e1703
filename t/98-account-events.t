#!/usr/bin/perl
# Account events (CONTRACT section 8): integrated_account.created and
# .deleted from the administration API, .needs_reauth once per change of
# state (a refused refresh, or refused static credentials) however many
# requests and workers see it, and .reactivated when new credentials lift
# the mark. For now the events module logs each event at "info"; the
# data (provider, reason) is in the debug log.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::OAuth;

my $J = JSON::PP->new->canonical;
my $sb = HRIS::Sandbox->start('bamboohr');
my $tok = HRIS::OAuth::grant($sb);
my $BAMBOO_KEY = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};
my $WRONG_KEY = 'f' x 40;

# acme-bamboohr: OAuth, its access token expired, its grant to be revoked;
# acme-refused: an API key the provider refuses
my $acc = HRIS::OAuth::accounts($sb, $tok, expires_at => time - 60);
push @{ $acc->{accounts} }, {
    id => 'acme-refused', tenant => 'acme', provider => 'bamboohr',
    context => { subdomain => 'acme' }, credentials => { api_key => $WRONG_KEY },
    base_url => $sb->url . '/api/gateway.php/acme',
};
# acme-file-oauth: a second OAuth account of the accounts file, its grant
# revoked too; given a new grant by the file and a reload further down
my $tok3 = HRIS::OAuth::grant($sb);
push @{ $acc->{accounts} }, {
    %{ $acc->{accounts}[0] }, id => 'acme-file-oauth',
    credentials => HRIS::OAuth::credentials($tok3, expires_at => time - 60),
};
HRIS::OAuth::control($sb, '/_sandbox/oauth/revoke', { all => JSON::PP::true });

my $PORT2 = HRIS::Nginx::free_port();
our $ng = HRIS::Nginx->start(accounts => $acc, workers => 2, log_level => 'debug',
    # refused credentials are tried again after a second
    http => 'hris_allowed_urls ' . $sb->url . ";\n    hris_credentials_cooldown 1;",
    server => "listen 127.0.0.1:$PORT2 reuseport;\n"
            . '        location /admin/ { hris_admin; }');

sub events {
    my ($type, $id, $from) = @_;
    my $log = substr $ng->error_log, $from // 0;
    return scalar(() = $log =~ /hris event \Q$type\E for tenant "acme", account "\Q$id\E"/g);
}

sub data_of {
    my ($type, $from) = @_;
    my ($d) = (substr $ng->error_log, $from // 0) =~ /hris account event \Q$type\E: (\{[^\n]*\})/;
    return $d ? $J->decode($d) : undef;
}

sub admin {
    my ($method, $path, $body) = @_;
    return $ng->request($method, "/admin/$path",
        defined $body ? (body => $J->encode($body),
                         headers => { 'Content-Type' => 'application/json' }) : ());
}

# --- needs_reauth: a refused refresh, seen by many requests on two workers ----

my @answers = HRIS::Nginx::burst($PORT2,
    '/unified/hris/employees?integrated_account_id=acme-bamboohr', 6);
is(join(' ', sort map { $_->[0] } @answers), '401 401 401 401 401 401',
   'six requests at once on two workers: 401 needs re-authorization');
is($ng->unified('employees', account => 'acme-bamboohr')->{status}, 401, 'and later ones');
is(events('integrated_account.needs_reauth', 'acme-bamboohr'), 1, 'needs_reauth told once');
is_deeply(data_of('integrated_account.needs_reauth'),
          { integrated_account_id => 'acme-bamboohr', provider => 'bamboohr',
            reason => 'refresh_refused' }, 'its data: the reason is the refused refresh');

# --- reactivated: new credentials through the administration API --------------

my $m = length $ng->error_log;
my $res = admin('PATCH', 'accounts/acme-bamboohr', { base_url => $sb->url . '/api/gateway.php/acme' });
is($res->{status}, 200, 'a PATCH without new credentials');
is(events('integrated_account.reactivated', 'acme-bamboohr', $m), 0, 'reactivates nothing');

my $tok2 = HRIS::OAuth::grant($sb);
$res = admin('PATCH', 'accounts/acme-bamboohr',
             { credentials => { access_token => $tok2->{access_token},
                                refresh_token => $tok2->{refresh_token},
                                expires_at => time + 3600 } });
is($res->{status}, 200, 'a PATCH with a new grant');
is(events('integrated_account.reactivated', 'acme-bamboohr', $m), 1, 'reactivated, once');
is_deeply(data_of('integrated_account.reactivated', $m),
          { integrated_account_id => 'acme-bamboohr', provider => 'bamboohr' }, 'its data');
is($ng->unified('employees/4', account => 'acme-bamboohr')->{status}, 200, 'the account works again');

$m = length $ng->error_log;
$res = admin('PATCH', 'accounts/acme-bamboohr',
             { credentials => { access_token => $tok2->{access_token} . 'x' } });
is(events('integrated_account.reactivated', 'acme-bamboohr', $m), 0,
   'new credentials for an account not marked: no event');

# --- needs_reauth: static credentials the provider refuses --------------------

$m = length $ng->error_log;
for (1 .. 3) {
    is($ng->unified('employees', account => 'acme-refused')->{status}, 401, "refused key, call $_: 401");
}
@answers = HRIS::Nginx::burst($PORT2, '/unified/hris/employees?integrated_account_id=acme-refused', 4);
sleep 2;
is($ng->unified('employees', account => 'acme-refused')->{status}, 401,
   'after the cool-down, the key is sent again and refused again');
is(events('integrated_account.needs_reauth', 'acme-refused', $m), 1,
   'needs_reauth told once, however many refusals');
is_deeply(data_of('integrated_account.needs_reauth', $m),
          { integrated_account_id => 'acme-refused', provider => 'bamboohr',
            reason => 'credentials_rejected' }, 'the reason: the credentials were rejected');

$res = admin('PATCH', 'accounts/acme-refused', { credentials => { api_key => $BAMBOO_KEY } });
is($res->{status}, 200, 'a PATCH with the right key');
is(events('integrated_account.reactivated', 'acme-refused', $m), 1, 'reactivated');
is($ng->unified('employees', account => 'acme-refused')->{status}, 200, 'and it works');

$res = admin('PATCH', 'accounts/acme-refused', { credentials => { api_key => $WRONG_KEY } });
$ng->unified('employees', account => 'acme-refused');
is(events('integrated_account.needs_reauth', 'acme-refused', $m), 2,
   'refused again after the reactivation: told again');

# --- created and deleted through the administration API -------------------------

$m = length $ng->error_log;
$res = admin('POST', 'accounts', { id => 'acme-new', provider => 'bamboohr',
                                   context => { subdomain => 'acme' },
                                   credentials => { api_key => $BAMBOO_KEY },
                                   base_url => $sb->url . '/api/gateway.php/acme' });
is($res->{status}, 201, 'an account created');
is(events('integrated_account.created', 'acme-new', $m), 1, 'integrated_account.created');
is_deeply(data_of('integrated_account.created', $m),
          { integrated_account_id => 'acme-new', provider => 'bamboohr' }, 'its data');

$res = admin('POST', 'accounts', { id => 'acme-new', provider => 'bamboohr',
                                   context => { subdomain => 'acme' },
                                   credentials => { api_key => $BAMBOO_KEY } });
is($res->{status}, 409, 'the id again: 409');
is(events('integrated_account.created', 'acme-new', $m), 1, 'no second event');

is(admin('DELETE', 'accounts/acme-new')->{status}, 200, 'deleted');
is(events('integrated_account.deleted', 'acme-new', $m), 1, 'integrated_account.deleted');
is_deeply(data_of('integrated_account.deleted', $m),
          { integrated_account_id => 'acme-new', provider => 'bamboohr' }, 'its data');
is(admin('DELETE', 'accounts/acme-new')->{status}, 404, 'deleted again: 404');
is(events('integrated_account.deleted', 'acme-new', $m), 1, 'and no event');

# --- reactivated: the accounts file gives a marked account a new grant ----------

$m = length $ng->error_log;
is($ng->unified('employees', account => 'acme-file-oauth')->{status}, 401,
   'a file account whose grant was revoked: 401');
is(events('integrated_account.needs_reauth', 'acme-file-oauth', $m), 1, 'needs_reauth');

my $tok4 = HRIS::OAuth::grant($sb);
$_->{id} eq 'acme-file-oauth'
    and $_->{credentials} = HRIS::OAuth::credentials($tok4, expires_at => time - 60)
    for @{ $acc->{accounts} };
open my $fh, '>', $ng->dir . '/accounts.json' or die $!;
print $fh $J->encode($acc);
close $fh;
$ng->reload;
my $st = 0;
for (1 .. 20) {
    $st = $ng->unified('employees/4', account => 'acme-file-oauth')->{status};
    last if $st == 200;
    sleep 0.25;
}
is($st, 200, 'the file reloaded with a new refresh token: the account works again');
is(events('integrated_account.reactivated', 'acme-file-oauth', $m), 1,
   'reactivated, once');

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

done_testing;
