#!/usr/bin/perl
# The account administration API, read side: an API key lists and reads
# its tenant's accounts and nothing else; no answer carries a secret; an
# account refused for good shows as needs_reauth.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $bb = HRIS::Sandbox->start('bamboohr');
my $cl = HRIS::Sandbox->start('clayhr');
my $json = JSON::PP->new;
my $http = HTTP::Tiny->new(keep_alive => 0);

# an OAuth account whose grant the provider will refuse
my $code = $json->decode($http->post($bb->url . '/_sandbox/oauth/code',
    { content => '{"scope":"offline_access"}' })->{content})->{code};
my $tok = $json->decode($http->post_form($bb->url . '/token.php?request=token', {
    grant_type => 'authorization_code', code => $code, redirect_uri => 'http://127.0.0.1/callback',
    client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret' })->{content});
$http->post($bb->url . '/_sandbox/oauth/revoke', { content => '{"all":true}' });

my $acc = HRIS::Nginx::accounts_for(bamboohr => $bb, clayhr => $cl);
push @{ $acc->{accounts} }, {
    id => 'globex-clayhr', tenant => 'globex', provider => 'clayhr',
    context => { subdomain => 'globex', user_id => '123456' },
    credentials => { api_key => 'globex-secret-key' }, base_url => $cl->url,
}, {
    id => 'acme-bamboohr-oauth', tenant => 'acme', provider => 'bamboohr',
    context => { subdomain => 'acme' }, base_url => $bb->url,
    token_url => $bb->url . '/token.php?request=token',
    credentials => { client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret',
                     access_token => $tok->{access_token}, refresh_token => $tok->{refresh_token},
                     expires_at => time - 60 },
};
my $ng = HRIS::Nginx->start(accounts => $acc, server => 'location /admin/ { hris_admin; }');

my $res = $ng->get('/admin/accounts', key => undef);
is($res->{status}, 401, 'no key: 401');
is($ng->get('/admin/accounts', key => 'nope')->{status}, 401, 'unknown key: 401');

$res = $ng->get('/admin/accounts');
is($res->{status}, 200, 'list');
is_deeply([sort map { $_->{id} } @{ $res->{json}{result} }],
          [qw(acme-bamboohr acme-bamboohr-oauth acme-clayhr)], 'only the tenant\'s accounts');
is($res->{json}{result_count}, 3, 'result_count');

my $other = $ng->get('/admin/accounts', key => $HRIS::Nginx::OTHER_KEY);
is_deeply([map { $_->{id} } @{ $other->{json}{result} }], ['globex-clayhr'],
          'another tenant sees its own only');

$res = $ng->get('/admin/accounts/acme-clayhr');
is($res->{status}, 200, 'read one');
my $a = $res->{json}{result};
is($a->{provider}, 'clayhr', 'provider');
is_deeply($a->{context}, { subdomain => 'acme', user_id => '123456' }, 'context with its values');
is_deeply($a->{credentials}, ['api_key'], 'credentials by name only');
is($a->{base_url}, $cl->url, 'base_url');
is($a->{status}, 'ok', 'status ok');

my $missing = $ng->get('/admin/accounts/nope');
my $foreign = $ng->get('/admin/accounts/globex-clayhr');
is($foreign->{status}, 404, 'another tenant\'s account: 404');
is($missing->{status}, 404, 'a missing one: 404');
(my $m1 = $missing->{json}{message}) =~ s/"[^"]*"/X/;
(my $m2 = $foreign->{json}{message}) =~ s/"[^"]*"/X/;
is($m2, $m1, 'said exactly alike');

# the OAuth account: its refresh is refused, then the admin API shows it
is($ng->unified('employees', account => 'acme-bamboohr-oauth')->{status}, 401,
   'the refused grant: 401');
is($ng->get('/admin/accounts/acme-bamboohr-oauth')->{json}{result}{status}, 'needs_reauth',
   'the admin API shows it needs re-authorization');

my $all = join "\n", map { $ng->get($_)->{body} }
    '/admin/accounts', '/admin/accounts/acme-bamboohr', '/admin/accounts/acme-bamboohr-oauth';
for my $secret ('0123456789abcdef0123456789abcdef01234567', 'clayhr-sandbox-0123456789abcdef',
                'sandbox-bamboohr-secret', $tok->{access_token}, $tok->{refresh_token}) {
    unlike($all, qr/\Q$secret\E/, 'no secret in any answer');
}

# writes are t/84's; methods that have no meaning here are refused
for my $m (qw(POST PUT)) {
    is($ng->request($m, '/admin/accounts/acme-clayhr')->{status}, 405, "$m on an account: 405");
}
is($ng->request('OPTIONS', '/admin/accounts')->{status}, 405, 'OPTIONS: 405');
is($ng->get('/admin/other')->{status}, 404, 'unknown path: 404');

$ng->stop;
done_testing;
