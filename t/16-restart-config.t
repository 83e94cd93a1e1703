#!/usr/bin/perl
# Directives whose effect shows across restarts or at nginx -t:
# hris_cursor_secret keeps cursors valid across a restart (without it they
# are not), a state file that is not JSON fails nginx -t, and
# hris_zone_size has a floor; hris_connect_url must be a URL with a path.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $acc = HRIS::Nginx::accounts($sb);
my $secret = 'hris_cursor_secret 0f1e2d3c4b5a69788796a5b4c3d2e1f0;';

sub next_cursor {
    my ($ng) = @_;
    my $res = $ng->unified('employees', limit => 5, remote_data => 'false');
    return $res->{json}{next_cursor};
}

# with a configured secret: a cursor outlives the nginx that issued it
my $ng = HRIS::Nginx->start(accounts => $acc, http => $secret);
my $cursor = next_cursor($ng);
ok($cursor, 'a cursor');
$ng->stop;
$ng = HRIS::Nginx->start(accounts => $acc, http => $secret);
my $res = $ng->unified('employees', limit => 5, cursor => $cursor, remote_data => 'false');
is($res->{status}, 200, 'hris_cursor_secret: the cursor works after a restart');
is($res->{json}{result}[0]{id}, '24', 'and continues where it stopped') or diag explain $res->{json}{result}[0]{id};
$ng->stop;

# without it: the key made at the first start is kept in the state
# directory: cursors survive a reload and a restart of the same nginx
$ng = HRIS::Nginx->start(accounts => $acc);
$cursor = next_cursor($ng);
my $keyfile = $ng->dir . '/hris_state/cursor.key';
ok(-s $keyfile, 'the key is kept in the state directory');
is((stat $keyfile)[2] & 0777, 0600, 'readable by its owner only');
$ng->reload;
$res = $ng->unified('employees', limit => 5, cursor => $cursor, remote_data => 'false');
is($res->{status}, 200, 'no hris_cursor_secret: the cursor works after a reload');
$ng->stop;
$ng->start;
$res = $ng->unified('employees', limit => 5, cursor => $cursor, remote_data => 'false');
is($res->{status}, 200, 'and after a restart');
is($res->{json}{result}[0]{id}, '24', 'continuing where it stopped');
my $keytext = do { local (@ARGV, $/) = $keyfile; <> };
ok(index($ng->error_log, $keytext) < 0, 'the key is not logged');
$ng->stop;

# a new prefix (no state directory) has a new key: the old cursor is refused
$ng = HRIS::Nginx->start(accounts => $acc);
$res = $ng->unified('employees', limit => 5, cursor => $cursor);
is($res->{status}, 400, 'another nginx without hris_cursor_secret refuses it');
like($res->{json}{message}, qr/invalid cursor/, 'as the README says');
$ng->stop;

# a key file that is not a key fails nginx -t, naming it
my $kdir = tempdir(CLEANUP => 1);
mkdir "$kdir/st";
HRIS::Nginx::write_file("$kdir/st/cursor.key", "short");
my ($krc, $kout) = HRIS::Nginx->prepare(accounts => $acc, http => "hris_state_path $kdir/st;")->test_config;
isnt($krc, 0, 'a broken cursor.key fails nginx -t');
like($kout, qr/\Q$kdir\E\/st\/cursor\.key" does not hold a cursor key/, 'naming it');

# a state file that is not JSON fails nginx -t, naming it
my $dir = tempdir(CLEANUP => 1);
HRIS::Nginx::write_file("$dir/state.json", "{ not json");
my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc,
                                      http => "hris_state_file $dir/state.json;")->test_config;
isnt($rc, 0, 'a broken state file fails nginx -t');
like($out, qr/\Q$dir\E\/state\.json: line 1/, 'naming the file and the line');

# a missing state file is a fresh start
($rc, $out) = HRIS::Nginx->prepare(accounts => $acc,
                                   http => "hris_state_file $dir/none.json;")->test_config;
is($rc, 0, 'a state file that does not exist yet is fine') or diag $out;

($rc, $out) = HRIS::Nginx->prepare(accounts => $acc, http => 'hris_zone_size 4k;')->test_config;
isnt($rc, 0, 'hris_zone_size below its floor fails nginx -t');
like($out, qr/"hris_zone_size" must be at least/, 'saying the floor');

# hris_connect_url must be an absolute URL with the connect location's path
for my $bad ('gw.example.com/connect/', 'https://gw.example.com', 'ftp://gw/connect/',
             'https://gw.example.com/connect/?x=1') {
    ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc, http => "hris_connect_url $bad;")->test_config;
    isnt($rc, 0, "hris_connect_url $bad fails nginx -t");
    like($out, qr/"hris_connect_url" must be an absolute/, 'saying what it must be');
}
($rc, $out) = HRIS::Nginx->prepare(accounts => $acc,
                                   http => 'hris_connect_url https://gw.example.com/connect;')->test_config;
is($rc, 0, 'hris_connect_url without the final slash is fine') or diag $out;

done_testing;
