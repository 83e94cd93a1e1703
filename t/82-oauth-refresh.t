#!/usr/bin/perl
# OAuth2 refresh-token accounts (BambooHR OAuth): the configured access
# token is used while good, refreshed shortly before it expires and once
# on a 401; one refresh at a time across workers; rotated refresh tokens
# persisted in the state file so a restart never loses them; a refused
# grant (invalid_grant) marks the account as needing re-authorization,
# and nothing retries it in a loop.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::OAuth;

my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;    # the state file is written by the workers (user nobody)
my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 0);

sub control        { HRIS::OAuth::control(@_) }
sub grant          { HRIS::OAuth::grant(@_) }
sub refreshes      { HRIS::OAuth::refreshes(@_) }
sub oauth_accounts { HRIS::OAuth::accounts(@_) }

my $state = "$dir/state.json";
my $sb = HRIS::Sandbox->start('bamboohr');
my $tok = grant($sb);
ok($tok->{refresh_token}, 'the sandbox granted a refresh token');

my $ng = HRIS::Nginx->start(accounts => oauth_accounts($sb, $tok), http => "hris_state_file $state;");
is($ng->unified('employees/4')->{status}, 200, 'the configured access token works');
is(refreshes($sb), 0, 'no refresh while it is good');

control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
my $res = $ng->unified('employees/4');
is($res->{status}, 200, 'an access token refused with 401 is refreshed once, the call made again');
is(refreshes($sb), 1, 'one refresh');
is($ng->unified('employees/6')->{status}, 200, 'the new token serves the next calls');
is(refreshes($sb), 1, 'without another refresh');

sleep 1;
my $st = $json->decode(do { local (@ARGV, $/) = $state; <> } // '{}');
is($st->{version}, 2, 'the state file\'s format');
ok($st->{tokens}{'acme-bamboohr'}, 'the state file holds the account');
my $rotated = $st->{tokens}{'acme-bamboohr'}{refresh_token};
ok($rotated && $rotated ne $tok->{refresh_token}, 'with the rotated refresh token');
$ng->stop;

# A restart: the configured refresh token was rotated away; the state file
# has the one that works.
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb, $tok), http => "hris_state_file $state;");
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
is($ng->unified('employees/4')->{status}, 200, 'after a restart the persisted refresh token is used');
is(refreshes($sb), 2, 'one more refresh');
$ng->stop;

# With no state directive at all (CONTRACT §9): the state directory under
# nginx's prefix keeps the rotation across a restart of the same nginx.
my $tokd = grant($sb);
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb, $tokd, expires_at => time - 10));
is($ng->unified('employees/4')->{status}, 200, 'no state directive: the expired token is refreshed');
my $fresh = refreshes($sb);
sleep 1;
ok(-d $ng->dir . '/hris_state', 'nginx made the state directory under its prefix');
my $dst = $json->decode(do { local (@ARGV, $/) = $ng->dir . '/hris_state/state.json'; <> } // '{}');
ok($dst->{tokens}{'acme-bamboohr'}{refresh_token}, 'its state.json holds the rotated refresh token');
$ng->stop;
$ng->start;
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$res = $ng->unified('employees/4');
is($res->{status}, 200, 'after a restart with no state directive the rotation is kept');
is(refreshes($sb), $fresh + 1, 'with one refresh of the kept token') or diag explain $res->{json};
$ng->stop;

# A new prefix (another machine, a wiped directory): the old, rotated-away
# token is all there is.
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb, $tok, expires_at => time - 10));
$res = $ng->unified('employees/4');
is($res->{status}, 401, 'without the state a restart would lose the rotation');
is($res->{json}{details}{needs_reauth}, JSON::PP::true, 'and the account needs re-authorization');
like($res->{json}{message}, qr/needs re-authorization.*connect the account again/, 'which the message says');
my $after = refreshes($sb);
is($ng->unified('employees/4')->{status}, 401, 'it stays so');
is($ng->unified('employees')->{status}, 401, 'for every call');
is(refreshes($sb), $after, 'and nothing retries the refused grant');
$ng->stop;

# A fresh grant, expired at start: refreshed before the first call.
my $sb2 = HRIS::Sandbox->start('bamboohr', args => ['--token-delay-ms', '400']);
my $tok2 = grant($sb2);
my $state2 = "$dir/state2.json";
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb2, $tok2, expires_at => time - 10),
                         workers => 2, http => "hris_state_file $state2;");
my @kids;
for (1 .. 16) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $r = $ng->unified('employees', limit => 5);
        POSIX::_exit($r->{status} == 200 ? 0 : 1);
    }
    push @kids, $pid;
}
my $bad = 0;
for (@kids) { waitpid($_, 0); $bad++ if $? }
is($bad, 0, '16 concurrent calls on two workers all succeed');
is(refreshes($sb2), 1, 'after exactly one refresh');
my $data = $sb2->stats->{by_path}{'/api/gateway.php/acme/v1/employees'};
is($data, 16, 'and no data call went out with the expired token') or diag explain $sb2->stats;

# invalid_grant while running: marked, persisted, not retried.
control($sb2, '/_sandbox/oauth/revoke', { all => JSON::PP::true });
control($sb2, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$res = $ng->unified('employees/4');
is($res->{status}, 401, 'a revoked grant: 401');
is($res->{json}{details}{needs_reauth}, JSON::PP::true, 'needs_reauth');
my $n = refreshes($sb2);
$ng->unified('employees/4') for 1 .. 3;
is(refreshes($sb2), $n, 'no refresh loop');
$ng->stop;
sleep 1;
$st = $json->decode(do { local (@ARGV, $/) = $state2; <> } // '{}');
is($st->{tokens}{'acme-bamboohr'}{needs_reauth}, JSON::PP::true, 'the state file remembers it');
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb2, $tok2), http => "hris_state_file $state2;");
is($ng->unified('employees/4')->{status}, 401, 'so does a restarted gateway');
is(refreshes($sb2), $n, 'without asking the provider');
$ng->stop;

# the first format (tokens at the top level, no "version") is still read
HRIS::Nginx::write_file($state2, $json->encode($st->{tokens}));
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb2, $tok2), http => "hris_state_file $state2;");
is($ng->unified('employees/4')->{status}, 401, 'a state file of the first format is read');
is(refreshes($sb2), $n, 'still without asking the provider');
$ng->stop;

# A provider that does not rotate: the old refresh token stays in use.
my $sb3 = HRIS::Sandbox->start('bamboohr', args => ['--no-rotate']);
my $tok3 = grant($sb3);
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb3, $tok3, expires_at => time - 10));
is($ng->unified('employees/4')->{status}, 200, 'no rotation: refreshed');
control($sb3, '/_sandbox/oauth/expire', { all => JSON::PP::true });
is($ng->unified('employees/4')->{status}, 200, 'and refreshed again with the same refresh token');
is(refreshes($sb3), 2, 'two refreshes');
$ng->stop;

# With hris_secrets_key the state file holds its tokens sealed.
my $key = "$dir/hris.key";
system(HRIS::Nginx::root() . "/build/hris-seal --new-key > $key") == 0 or die;
my $sb4 = HRIS::Sandbox->start('bamboohr');
my $tok4 = grant($sb4);
my $state4 = "$dir/state4.json";
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb4, $tok4, expires_at => time - 10),
                         http => "hris_state_file $state4; hris_secrets_key $key;");
is($ng->unified('employees/4')->{status}, 200, 'refreshed with a secrets key set');
$ng->stop;
sleep 1;
my $text = do { local (@ARGV, $/) = $state4; <> } // '';
like($text, qr/"refresh_token": "sealed:v1:/, 'the state file\'s refresh token is sealed');
my $grants = control($sb4, '/_sandbox/oauth/grants');
my @live = map { $_->{token} // $_->{refresh_token} // () } @{ $grants->{refresh_tokens} // [] };
unlike($text, qr/bhr-rt-/, 'no refresh token in clear');
$ng = HRIS::Nginx->start(accounts => oauth_accounts($sb4, $tok4), http => "hris_state_file $state4; hris_secrets_key $key;");
control($sb4, '/_sandbox/oauth/expire', { all => JSON::PP::true });
is($ng->unified('employees/4')->{status}, 200, 'and opens again after a restart');
$ng->stop;

done_testing;
