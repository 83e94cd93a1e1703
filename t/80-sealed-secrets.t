#!/usr/bin/perl
# Sealed credentials (hris_secrets_key, build/hris-seal): they work where
# plaintext does, a wrong key or a damaged value fails nginx -t naming the
# account and the credential, and no secret is ever written to an answer
# or to the error log, debug level included.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use MIME::Base64;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $root = HRIS::Nginx::root();
my $seal = "$root/build/hris-seal";
ok(-x $seal, 'the seal tool is built') or BAIL_OUT('run make');

my $dir = tempdir(CLEANUP => 1);
my $key = "$dir/hris.key";
system("$seal --new-key > $key") == 0 or die;
like(do { local (@ARGV, $/) = $key; <> }, qr/^[0-9a-f]{64}\n$/, 'a new key is 64 hex digits');

sub seal {
    my ($value, $k) = @_;
    my $out = `$seal ${\($k // $key)} '$value'`;
    chomp $out;
    return $out;
}

my $bamboo_key = '0123456789abcdef0123456789abcdef01234567';
my $heaven_secret = 'sandbox-heavenhr-client-secret';
my $sealed = seal($bamboo_key);
like($sealed, qr/^sealed:v1:[A-Za-z0-9_-]+$/, 'a sealed value');
isnt(seal($bamboo_key), $sealed, 'each sealing uses a new nonce');
unlike($sealed, qr/\Q$bamboo_key\E/, 'the sealed value does not show the key');

my $bb = HRIS::Sandbox->start('bamboohr');
my $hh = HRIS::Sandbox->start('heavenhr');

my $accounts = HRIS::Nginx::accounts_for(bamboohr => $bb, heavenhr => $hh);
$_->{credentials}{api_key} = $sealed for grep { $_->{provider} eq 'bamboohr' } @{ $accounts->{accounts} };
$_->{credentials}{client_secret} = seal($heaven_secret)
    for grep { $_->{provider} eq 'heavenhr' } @{ $accounts->{accounts} };

my $ng = HRIS::Nginx->start(accounts => $accounts, http => "hris_secrets_key $key;",
                            log_level => 'debug');
my $r1 = $ng->unified('employees/4', account => 'acme-bamboohr');
is($r1->{status}, 200, 'a sealed API key (Basic auth) works');
my $r2 = $ng->unified('employees', account => 'acme-heavenhr', limit => 3);
is($r2->{status}, 200, 'a sealed client secret (token exchange) works');
is($hh->stats->{by_path}{'/oauth2/token'}, 1, 'one exchange');
my $px = $ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr');
is($px->{status}, 200, 'the proxy API opens sealed values too');

# a bad key: the provider refuses it and says so, the gateway keeps quiet
my $basic = encode_base64("$bamboo_key:x", '');
for my $res ($r1, $r2, $px) {
    unlike($res->{body}, qr/\Q$bamboo_key\E|\Q$heaven_secret\E|\Q$basic\E|sealed:v1/,
           'no secret, opened or sealed, in an answer');
}
$ng->stop;
my $log = $ng->error_log;
ok(length $log > 1000, 'the debug log was written');
unlike($log, qr/\Q$bamboo_key\E/, 'the API key is not in the debug log');
unlike($log, qr/\Q$basic\E/, 'nor its Basic form');
unlike($log, qr/\Q$heaven_secret\E/, 'the client secret is not in the debug log');
my $hh_basic = encode_base64("sandbox-heavenhr-client-id:$heaven_secret", '');
unlike($log, qr/\Q$hh_basic\E/, 'nor its Basic form');

# mistakes fail nginx -t, naming the account and the credential
my $other = "$dir/other.key";
system("$seal --new-key > $other") == 0 or die;
my @cases = (
    [ 'sealed with another key', { api_key => seal($bamboo_key, $other) }, "hris_secrets_key $key;",
      qr/account "acme-bamboohr": credentials\.api_key does not open with the key in \Q$key\E/ ],
    [ 'a damaged sealed value', { api_key => substr($sealed, 0, -3) . 'AAA' }, "hris_secrets_key $key;",
      qr/credentials\.api_key does not open/ ],
    [ 'a sealed value without a key', { api_key => $sealed }, '',
      qr/credentials\.api_key is sealed but "hris_secrets_key" is not set/ ],
);
for my $c (@cases) {
    my ($name, $creds, $http, $re) = @$c;
    my $acc = HRIS::Nginx::accounts($bb);
    $acc->{accounts}[0]{credentials} = $creds;
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc, http => $http)->test_config;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: says which");
}

HRIS::Nginx::write_file("$dir/bad.key", "not a key\n");
my ($rc, $out) = HRIS::Nginx->prepare(accounts => HRIS::Nginx::accounts($bb),
                                      http => "hris_secrets_key $dir/bad.key;")->test_config;
isnt($rc, 0, 'a key file that is not 64 hex digits fails nginx -t');
like($out, qr/must hold 64 hex digits/, 'and says what a key looks like');

# an OAuth app's client_secret may be sealed: checked by nginx -t, opened
# for the connect flow's code exchange; what the flow stores is sealed too
my $app = { tenant => 'acme', provider => 'bamboohr', client_id => 'sandbox-bamboohr-client',
            client_secret => seal('sandbox-bamboohr-secret'),
            authorize_url => $bb->url . '/authorize.php?request=authorize',
            token_url => $bb->url . '/token.php?request=token', base_url => $bb->url };
for my $c ([ 'an app secret sealed with another key',
             seal('sandbox-bamboohr-secret', $other), "hris_secrets_key $key;",
             qr/oauth_apps\[0\]: client_secret does not open with the key/ ],
           [ 'a sealed app secret without a key', $app->{client_secret}, '',
             qr/oauth_apps\[0\]: client_secret is sealed but "hris_secrets_key" is not set/ ]) {
    my ($name, $secret, $http, $re) = @$c;
    my $acc = HRIS::Nginx::accounts($bb);
    $acc->{oauth_apps} = [ { %$app, client_secret => $secret } ];
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc, http => $http)->test_config;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: says which");
}

my $sdir = tempdir(CLEANUP => 1);
chmod 0777, $sdir;
my $acc3 = HRIS::Nginx::accounts($bb);
$acc3->{oauth_apps} = [$app];
my $ng3 = HRIS::Nginx->start(accounts => $acc3,
    http => "hris_secrets_key $key; hris_state_file $sdir/state.json;",
    server => 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }');
my $link = $ng3->request('POST', '/admin/connect_links', body =>
    '{"integrated_account_id": "acme-sealed-oauth", "provider": "bamboohr", '
  . '"context": {"subdomain": "acme"}, "redirect_uri": "http://app.example/done"}');
is($link->{status}, 201, 'a connect link') or diag $link->{body};
my ($path) = ($link->{json}{result}{url} // '') =~ m{^https?://[^/]+(/.*)$};
my $go = $ng3->request('GET', $path // '/connect/x', key => undef);
my ($cookie) = ($go->{headers}{'set-cookie'} // '') =~ /^(hris_connect=[^;]+)/;
my $back = HTTP::Tiny->new(max_redirect => 0)->get($go->{headers}{location} // 'http://127.0.0.1:1/');
my ($cb) = ($back->{headers}{location} // '') =~ m{^https?://[^/]+(/.*)$};
my $done = $ng3->request('GET', $cb // '/connect/callback', key => undef,
                         headers => { Cookie => $cookie // '' });
like($done->{headers}{location} // '', qr/status=connected/, 'connected with a sealed app secret');
is($ng3->unified('employees', account => 'acme-sealed-oauth', limit => 1)->{status}, 200,
   'the connected account works');
sleep 1;
my $state = do { local (@ARGV, $/) = "$sdir/state.json"; <> } // '';
like($state, qr/acme-sealed-oauth/, 'the state file holds the connected account');
unlike($state, qr/sandbox-bamboohr-secret|bhr-(at|rt)-/, 'with no secret or token in clear');
$ng3->stop;

# plaintext keeps working beside sealed values
my $mixed = HRIS::Nginx::accounts_for(bamboohr => $bb, heavenhr => $hh);
$_->{credentials}{api_key} = $sealed for grep { $_->{provider} eq 'bamboohr' } @{ $mixed->{accounts} };
my $ng2 = HRIS::Nginx->start(accounts => $mixed, http => "hris_secrets_key $key;");
is($ng2->unified('employees', account => 'acme-heavenhr', limit => 1)->{status}, 200,
   'plaintext credentials beside sealed ones');
is($ng2->unified('employees', account => 'acme-bamboohr', limit => 1)->{status}, 200,
   'and the sealed ones');
$ng2->stop;

done_testing;
