#!/usr/bin/perl
# Run-time accounts for a fleet (CONTRACT §9): with hris_redis, an account
# created through one gateway's administration API is served by the other
# gateway within a second; a change and a delete follow it; a gateway
# started later gets the fleet's accounts at once; another tenant still
# sees none of them.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $J = JSON::PP->new->canonical;
my $rd = HRIS::Redis->start;
my $cl = HRIS::Sandbox->start('clayhr');
my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);
my $CLAY = $HRIS::Nginx::PROVIDER{clayhr};

sub gateway {
    return HRIS::Nginx->start(accounts => $acc, workers => 2,
                              http => 'hris_redis ' . $rd->url . ';',
                              server => 'location /admin/ { hris_admin; }');
}

# until the account answers as wanted at gateway $ng, at most $secs
sub within {
    my ($ng, $id, $want, $secs) = @_;
    my $t0 = time;
    my $st;
    while (time - $t0 < $secs) {
        $st = $ng->unified('employees', account => $id, limit => 1)->{status};
        return (time - $t0, $st) if $st == $want;
        sleep 0.05;
    }
    return (time - $t0, $st);
}

my $A = gateway();
my $B = gateway();

my $new = { id => 'acme-clay-fleet', provider => 'clayhr', base_url => $cl->url,
            context => $CLAY->{context}, credentials => $CLAY->{credentials} };
my $res = $A->request('POST', '/admin/accounts', body => $J->encode($new));
is($res->{status}, 201, 'an account created through gateway A') or diag $res->{body};
is($A->unified('employees', account => 'acme-clay-fleet', limit => 1)->{status}, 200,
   'A serves it at once');
my ($secs, $st) = within($B, 'acme-clay-fleet', 200, 3);
is($st, 200, 'gateway B serves it too');
cmp_ok($secs, '<', 1.5, sprintf('within a second (%.2f s)', $secs));
is($B->unified('employees', account => 'acme-clay-fleet', limit => 1,
               key => $HRIS::Nginx::OTHER_KEY)->{status}, 404,
   'another tenant gets 404 for it at B');

# a change at B reaches A: wrong credentials make A's calls fail
$res = $B->request('PATCH', '/admin/accounts/acme-clay-fleet',
                   body => $J->encode({ credentials => { api_key => 'wrong-key-0000000000000000' } }));
is($res->{status}, 200, 'a change through B') or diag $res->{body};
($secs, $st) = within($A, 'acme-clay-fleet', 401, 3);
is($st, 401, 'A uses the changed credentials (the provider refuses them)');

# a delete at A reaches B
$res = $A->request('DELETE', '/admin/accounts/acme-clay-fleet');
is($res->{status}, 200, 'a delete through A');
($secs, $st) = within($B, 'acme-clay-fleet', 404, 3);
is($st, 404, 'B no longer serves it');

# a gateway started later has the fleet's accounts
$res = $A->request('POST', '/admin/accounts', body => $J->encode({ %$new, id => 'acme-clay-late' }));
is($res->{status}, 201, 'another account through A');
my $C = gateway();
($secs, $st) = within($C, 'acme-clay-late', 200, 3);
is($st, 200, 'a gateway started afterwards serves it');
($secs, $st) = within($C, 'acme-clay-fleet', 404, 1);
is($st, 404, '... and not the deleted one');
$_->stop for $A, $B, $C;

done_testing;
