#!/usr/bin/perl
# Two gateways on one Redis (hris_redis) share the gate's state (CONTRACT
# §9): an expired OAuth2 token is refreshed once across the fleet, however
# many requests on however many gateways and workers notice it at once,
# and the rotated refresh token is never lost to the race; the rotation
# survives a restart of both gateways (even on new machines: new
# prefixes); a valid token kept in a worker costs no Redis round trip; an
# account's rate limit holds for the fleet; with Redis down a kept token
# still serves and what needs the store gets 503 naming it; a refused
# grant marks the account for every gateway.

use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use JSON::PP;
use HTTP::Tiny;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::OAuth;
use HRIS::Redis;

my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 10);

sub control        { HRIS::OAuth::control(@_) }
sub grant          { HRIS::OAuth::grant(@_) }
sub refreshes      { HRIS::OAuth::refreshes(@_) }
sub oauth_accounts { HRIS::OAuth::accounts(@_) }

sub gateway {
    my ($rd, $acc, %o) = @_;
    return HRIS::Nginx->start(accounts => $acc, workers => $o{workers} // 2,
                              http => 'hris_redis ' . $rd->url . '; ' . ($o{http} // ''),
                              server => 'listen 127.0.0.1:' . ($o{port} //= HRIS::Nginx::free_port())
                                        . ' reuseport;');
}

sub commands {
    my ($rd) = @_;
    my ($n) = $rd->cli('INFO', 'stats') =~ /total_commands_processed:(\d+)/;
    return $n;
}

my $rd = HRIS::Redis->start;
my $sb = HRIS::Sandbox->start('bamboohr', args => ['--token-delay-ms', '400']);
my $tok = grant($sb);
my $acc = oauth_accounts($sb, $tok, expires_at => time - 10);

# --- the race: both gateways, two workers each, all at once -------------
my $A = gateway($rd, $acc);
my $B = gateway($rd, $acc);
my $path = '/unified/hris/employees/4?integrated_account_id=acme-bamboohr';
my @answers;
{
    my $pa = fork // die;
    if ($pa == 0) {
        my @a = HRIS::Nginx::burst($A->port, $path, 8);
        print STDOUT '';
        open my $fh, '>', "/tmp/hris-fleet-$$.a" or die; print $fh join("\n", map { $_->[0] } @a); close $fh;
        POSIX::_exit(0);
    }
    my @b = HRIS::Nginx::burst($B->port, $path, 8);
    waitpid($pa, 0);
    open my $fh, '<', "/tmp/hris-fleet-$pa.a" or die; my @a = map { chomp; $_ } <$fh>; close $fh;
    unlink "/tmp/hris-fleet-$pa.a";
    @answers = (@a, map { $_->[0] } @b);
}
is(scalar(@answers), 16, 'sixteen requests on two gateways');
is(scalar(grep { $_ == 200 } @answers), 16, 'every one answered 200') or diag "@answers";
is(refreshes($sb), 1, 'the expired token was refreshed once for the whole fleet');

my $stored = $rd->cli('HGET', 'hris:{acct:acme-bamboohr}:tok', 'rt');
ok($stored && $stored ne $tok->{refresh_token}, 'Redis holds the rotated refresh token');
is($rd->cli('EXISTS', 'hris:{acct:acme-bamboohr}:lock'), 0, 'and the lock was given back');

# --- a valid token kept in the worker: no round trip ---------------------
$A->unified('employees/4') for 1 .. 4;          # both workers have it now
# the account's token key is watched (MONITOR): the workers' background
# polls (accounts, subscriptions, cool-downs) go on meanwhile and are not
# the requests' doing
my $mpid = open(my $mon, '-|', 'redis-cli', '-p', $rd->port, 'monitor') or die "monitor: $!";
Time::HiRes::sleep(0.6);
is($A->unified('employees/6')->{status}, 200, 'with a valid token') for 1 .. 6;
Time::HiRes::sleep(0.6);
kill 'TERM', $mpid;
my @all = <$mon>;
close $mon;
ok(scalar(grep { /"GET"/ } @all), 'the monitor saw the background polls') or diag(scalar(@all) . ' lines');
# a worker the warm-up did not reach (reuseport) fetches the token once;
# the six requests must not cost a round trip each
my @seen = grep { /acct:acme-bamboohr/ && !/\[\d+ lua\]/ } @all;
cmp_ok(scalar(@seen), '<=', 1,
       'requests with a valid token send (almost) no Redis command for the account')
    or diag(scalar(@seen) . ' commands for the account');

# --- the provider refuses the access token: renewed once, for all --------
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
is($A->unified('employees/4')->{status}, 200, 'a refused access token is renewed at A');
is(refreshes($sb), 2, 'with one refresh');
is($B->unified('employees/4')->{status}, 200, 'B uses the renewed token') for 1 .. 3;
cmp_ok(refreshes($sb), '<=', 3, 'B renews at most once on its own refused token');
my $after_b = refreshes($sb);

# --- both gateways restart, on new prefixes: the rotation is in Redis ---
$A->stop; $B->stop;
$A = gateway($rd, $acc);
$B = gateway($rd, $acc);
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
my $r = $A->unified('employees/4');
is($r->{status}, 200, 'after a restart of both, the stored refresh token is used') or diag explain $r->{json};
is(refreshes($sb), $after_b + 1, 'one refresh');
is($B->unified('employees/4')->{status}, 200, 'and B is served with it');
is(refreshes($sb), $after_b + 1, 'without another');
unlike($A->error_log . $B->error_log, qr/needs re-authorization/, 'no account was marked needs_reauth');

# --- Redis down: a kept token serves; what needs the store gets 503 -----
$A->unified('employees/4') for 1 .. 16;          # both workers keep it
$rd->stop;
is($A->unified('employees/4')->{status}, 200, 'Redis down: the token kept in the worker still serves');
control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$r = $A->unified('employees/6');
is($r->{status}, 503, 'a token that must be renewed: 503') or diag explain $r->{json};
is($r->{json}{details}{store}, 'redis', 'naming the store');
like($r->{json}{message}, qr/hris_redis/, 'and the directive');
is($r->{headers}{'retry-after'}, '1', 'with Retry-After');
$rd->restart;
# the restarted Redis is empty: the gateways start over from the configured
# (rotated-away) refresh token: a real deployment keeps Redis's data (AOF)
$rd->cli('HSET', 'hris:{acct:acme-bamboohr}:tok', 'base', 'stale');   # harmless
$A->stop; $B->stop;

# --- a refused grant marks the account for the fleet --------------------
my $rd2 = HRIS::Redis->start;
my $sb2 = HRIS::Sandbox->start('bamboohr');
my $tok2 = grant($sb2);
my $acc2 = oauth_accounts($sb2, $tok2, expires_at => time - 10);
my $C = gateway($rd2, $acc2, workers => 1);
my $D = gateway($rd2, $acc2, workers => 1);
is($C->unified('employees/4')->{status}, 200, 'C refreshes');
# the provider forgets every grant: the stored refresh token is now refused
control($sb2, '/_sandbox/oauth/revoke', { all => JSON::PP::true });
control($sb2, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$r = $C->unified('employees/4');
is($r->{status}, 401, 'a refused grant: 401') or diag explain $r->{json};
is($r->{json}{details}{needs_reauth}, JSON::PP::true, 'needs_reauth');
is($rd2->cli('HGET', 'hris:{acct:acme-bamboohr}:tok', 'reauth'), '1', 'marked in Redis');
my $n = refreshes($sb2);
$r = $D->unified('employees/4');
is($r->{status}, 401, 'the other gateway knows it without a call');
is(refreshes($sb2), $n, 'and sends no refresh');
$C->unified('employees/4') for 1 .. 2;
my $told = () = ($C->error_log . $D->error_log)
    =~ /hris event integrated_account\.needs_reauth for tenant "acme", account "acme-bamboohr"/g;
is($told, 1, 'integrated_account.needs_reauth told once for the fleet (the script\'s reply)');
$C->stop; $D->stop;

# --- one-time tokens echoed by the provider: the fleet follows them -------
my $rd4 = HRIS::Redis->start;
my $ps = HRIS::Sandbox->start('personio', args => ['--rotate-tokens', '--invalid-token-status', '401']);
my $acc4 = HRIS::Nginx::accounts_for(personio => $ps);
my $G = gateway($rd4, $acc4, workers => 1);
my $H = gateway($rd4, $acc4, workers => 1);
my @ps;
for (1 .. 4) {
    push @ps, $G->unified('employees', account => 'acme-personio', limit => 2)->{status};
    push @ps, $H->unified('employees', account => 'acme-personio', limit => 2)->{status};
}
is(join(' ', @ps), '200 ' x 7 . '200', 'one-time tokens, calls alternating between gateways: all 200');
is($ps->stats->{by_path}{'/v1/auth'}, 1, 'one exchange: each echoed token served the next call on either gateway');
$G->stop; $H->stop;

# --- the rate limit holds for the fleet ----------------------------------
my $rd3 = HRIS::Redis->start;
my $cl = HRIS::Sandbox->start('clayhr');
my $acc3 = HRIS::Nginx::accounts_for(clayhr => $cl,
                                      extra => { 'acme-clayhr' => { rate_limit => { calls => 4, per => '60s' } } });
my $clay = { id => 'acme-clayhr' };
my $E = gateway($rd3, $acc3, workers => 1, http => 'hris_retry_after_max 1s;');
my $F = gateway($rd3, $acc3, workers => 1, http => 'hris_retry_after_max 1s;');
my @st;
for my $i (1 .. 4) {
    push @st, $E->unified('employees', account => $clay->{id}, limit => 1)->{status};
    push @st, $F->unified('employees', account => $clay->{id}, limit => 1)->{status};
}
is(scalar(grep { $_ == 200 } @st), 4, 'four calls a minute for the fleet: four 200s') or diag "@st";
is(scalar(grep { $_ == 429 } @st), 4, 'and four 429s, split over both gateways') or diag "@st";
$rd3->stop;
$r = $E->unified('employees', account => $clay->{id}, limit => 1);
is($r->{status}, 200, 'Redis down: the gateway\'s own window applies (it had no call yet)');
like($E->error_log, qr/this gateway's own rate limit applies/, 'which the error log says');
$E->stop; $F->stop;

done_testing;
