#!/usr/bin/perl
# Many run-time accounts (2,000, from a state file written as the gateway
# writes it): one change through the administration API makes each worker
# read from the shared zone and recompile only the changed account, not
# all of them (issue 9; README, Known limits): the debug log counts what
# each generation read and compiled, and the times are printed (the first
# request reads and compiles all 2,000; HRIS_ACCOUNTS_MANY=10000 for the
# figures of bench/README.md). Every other account is untouched by a
# change, a delete and a create.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use Time::HiRes qw(time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $N = $ENV{HRIS_ACCOUNTS_MANY} || 2000;
my $J = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;
my $state = "$dir/state.json";
my $cl = HRIS::Sandbox->start('clayhr');
my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);
my $CLAY = $HRIS::Nginx::PROVIDER{clayhr};
my $ADMIN = 'location /admin/ { hris_admin; }';

sub api {
    my ($ng, $method, $path, $body) = @_;
    return $ng->request($method, $path, defined $body ? (body => $J->encode($body)) : ());
}

# one account made through the API, as the state file keeps it: the model
my $ng = HRIS::Nginx->start(accounts => $acc, http => "hris_state_file $state;", server => $ADMIN);
my $res = api($ng, 'POST', '/admin/accounts',
              { id => 'many-0', provider => 'clayhr', base_url => $cl->url,
                context => $CLAY->{context}, credentials => $CLAY->{credentials} });
is($res->{status}, 201, 'an account through the API') or diag $res->{body};
$ng->stop;
my $file = do { local (@ARGV, $/) = $state; $J->decode(<>) };
my $model = $file->{accounts}{'many-0'};
ok($model, 'the state file keeps it');
$file->{accounts}{"many-$_"} = { %$model, id => "many-$_" } for 1 .. $N - 1;
open my $fh, '>', $state or die;
print $fh $J->encode($file);
close $fh;

# one worker: each request below is its; the debug log says what it compiles
# one tenant's accounts: its cap, and its quarter of the zone, hold them
my $zone = 'hris_zone_size ' . int($N / 1000 + 1) * 4 . "m; hris_tenant_accounts $N;";
$ng = HRIS::Nginx->start(accounts => $acc, http => "hris_state_file $state; $zone", server => $ADMIN,
                         log_level => 'debug');

sub compiles {
    my @n = $ng->error_log =~ /run-time accounts, generation \d+: \d+ read(?: \(all\))?, (\d+ of \d+) compiled/g;
    return \@n;
}

sub reads {
    my @n = $ng->error_log =~ /run-time accounts, generation \d+: (\d+ read(?: \(all\))?),/g;
    return \@n;
}

sub timed {
    my ($id) = @_;
    my $t0 = time;
    my $r = $ng->unified('employees', account => $id, limit => 1);
    return (time - $t0, $r->{status});
}

my ($first, $st) = timed('many-1');
is($st, 200, "the first request (compiles $N accounts): 200");
my @steady = map { (timed("many-$_"))[0] } 2 .. 6;
my $steady = (sort { $a <=> $b } @steady)[2];

my (@after, @patch);
for my $k (1 .. 3) {
    my $t0 = time;
    $res = api($ng, 'PATCH', "/admin/accounts/many-$k",
               { context => { %{ $CLAY->{context} }, subdomain => "acme" } ,
                 credentials => { api_key => "changed-key-$k-0000000000000000" } });
    push @patch, time - $t0;
    is($res->{status}, 200, "account many-$k changed") or diag $res->{body};
    my ($t, $s) = timed('many-1000');
    is($s, 200, 'another account answers after the change');
    push @after, $t;
}
my $after = (sort { $a <=> $b } @after)[1];
diag(sprintf('%d run-time accounts: first request %.1f ms, steady %.1f ms, '
             . 'first after one change %.1f ms, a PATCH %.1f ms', $N, 1000 * $first,
             1000 * $steady, 1000 * $after, 1000 * (sort { $a <=> $b } @patch)[1]));
my $c = compiles();
my $r = reads();
is($r->[0], "$N read (all)", "the first request read all $N from the zone") or diag explain $r;
is_deeply([ @$r[1 .. $#$r] ], [ ('1 read') x 3 ], 'each change then read one account from the zone')
    or diag explain $r;
is($c->[0], "$N of $N", "the first request compiled all $N") or diag explain $c;
is_deeply([ @$c[1 .. $#$c] ], [ ("1 of $N") x 3 ], 'each change then compiled one account')
    or diag explain $c;

# the others are untouched: the changed one uses its new key, the rest theirs
is($ng->unified('employees', account => 'many-1', limit => 1)->{status}, 401,
   'the changed account uses its new (wrong) key');
for my $id (qw(many-0 many-4 many-999 many-1999)) {
    is($ng->unified('employees', account => $id, limit => 1)->{status}, 200, "$id still answers");
}
$res = api($ng, 'DELETE', '/admin/accounts/many-500');
is($res->{status}, 200, 'one deleted');
is($ng->unified('employees', account => 'many-500', limit => 1)->{status}, 404, 'it is gone');
is($ng->unified('employees', account => 'many-501', limit => 1)->{status}, 200, 'its neighbour stays');
$res = api($ng, 'POST', '/admin/accounts',
           { id => 'many-new', provider => 'clayhr', base_url => $cl->url,
             context => $CLAY->{context}, credentials => $CLAY->{credentials} });
is($res->{status}, 201, 'one created');
is($ng->unified('employees', account => 'many-new', limit => 1)->{status}, 200, 'it answers');
is($ng->unified('employees', account => 'many-499', limit => 1)->{status}, 200, 'others still do');
$c = compiles();
is_deeply([ @$c[-2, -1] ], [ '0 of ' . ($N - 1), "1 of $N" ], 'a delete compiled none, a create one')
    or diag explain $c;
$r = reads();
is_deeply([ @$r[-2, -1] ], [ '1 read', '1 read' ], '... each reading one account (the delete: its tombstone)')
    or diag explain $r;
$res = api($ng, 'GET', '/admin/accounts');
is(scalar @{ $res->{json}{result} // [] }, $N + 1, 'the list: the file\'s one, 2,000 - 1 + 1 run-time')
    or diag scalar @{ $res->{json}{result} // [] };
$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert');

done_testing;
