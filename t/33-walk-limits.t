#!/usr/bin/perl
# A provider whose pages never end cannot make one unified request call it
# without end, nor hold all its pages: hris_max_upstream_calls bounds the
# calls, hris_max_response_size the bytes of all answers together, and a
# next-page cursor that does not move is refused at once. Each is a 502
# that names what stopped it.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(
    accounts => HRIS::Nginx::accounts($sb),
    location => 'hris_max_upstream_calls 30;',
    server   => 'location /small/ { hris_unified; hris_max_response_size 1m; }');

my $LIST = '/api/gateway.php/acme/v1/employees';    # the employee list's path

sub calls {
    my ($path) = @_;
    my $by = $sb->stats->{by_path};
    return $path ? $by->{$path} // 0
                 : scalar grep { m{/time_off/calculator$} } keys %$by;
}

# -- a legitimate fan-out fits: one parent call, 20 per-employee calls ------
{
    $sb->reset;
    my $res = $ng->unified('timeoff_balances', remote_data => 'false');
    is($res->{status}, 200, 'timeoff_balances: 200 within hris_max_upstream_calls 30')
        or diag $res->{body};
    is(calls($LIST), 1, 'its parent list: one call');
}

# -- a parent list that always has a next page ------------------------------
{
    $sb->reset;
    $sb->fault({ fault => 'endless_pages', count => -1, path => "$LIST?" });
    my $t0 = time;
    my $res = $ng->unified('timeoff_balances', remote_data => 'false');
    my $took = time - $t0;
    is($res->{status}, 502, 'endless parent pages: 502');
    like($res->{json}{message} // '',
         qr/did not end after 30 upstream calls.*\(hris_max_upstream_calls\)/,
         'the message names the limit and the directive');
    is($res->{json}{details}{upstream_calls}, 30, 'details.upstream_calls');
    is($res->{json}{details}{provider}, 'bamboohr', 'details.provider');
    is(calls($LIST), 30, 'the provider was called exactly 30 times');
    is(calls(), 0, 'and no per-employee call was made');
    ok($took < 20, sprintf('answered in %.1f s', $took));

    # the same with a byte budget: 1 MB holds about four full pages
    $sb->reset;
    $sb->fault({ fault => 'endless_pages', count => -1, path => "$LIST?" });
    $res = $ng->get('/small/hris/timeoff_balances?integrated_account_id=acme-bamboohr');
    is($res->{status}, 502, 'endless pages, hris_max_response_size 1m: 502');
    like($res->{json}{message} // '',
         qr/add up to more than hris_max_response_size \(1048576 bytes\) after \d+ upstream calls/,
         'the message names the directive and its size');
    my $n = calls($LIST);
    ok($n >= 4 && $n < 15, "stopped after $n calls, when 1 MB was read");
    is($res->{json}{details}{upstream_calls}, $n, 'details.upstream_calls says so');
    $sb->clear_faults;

    # a list that fits, through the same location
    $res = $ng->get('/small/hris/employees?integrated_account_id=acme-bamboohr&limit=500');
    is($res->{status}, 200, 'a whole list within 1 MB still passes');
    is($res->{json}{result_count}, 330, 'with all its records');
}

# -- a cursor that does not move ----------------------------------------------
{
    $sb->reset;
    $sb->fault({ fault => 'repeat_cursor', count => -1, path => "$LIST?" });
    my $p1 = $ng->unified('employees', limit => 5);
    is($p1->{status}, 200, 'page 1: the provider\'s first cursor is new');
    my $before = calls($LIST);
    my $p2 = $ng->unified('employees', limit => 5, cursor => $p1->{json}{next_cursor});
    is($p2->{status}, 502, 'page 2: the provider answers the cursor it was asked with: 502');
    like($p2->{json}{message} // '',
         qr/same next-page cursor it was asked with: its pages do not advance/,
         'the message says the provider\'s pages do not advance');
    is(calls($LIST) - $before, 1, 'after one call, not a loop');
    $sb->clear_faults;

    my $ok = $ng->unified('employees', limit => 5, cursor => $p1->{json}{next_cursor});
    is($ok->{status}, 200, 'the same cursor works once the provider behaves');
}

# -- the directive is checked ---------------------------------------------------
{
    my $bad = HRIS::Nginx->prepare(accounts => HRIS::Nginx::accounts($sb),
                                   location => 'hris_max_upstream_calls 0;');
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, 'hris_max_upstream_calls 0 fails nginx -t');
    like($out, qr/hris_max_upstream_calls must be at least 1/, 'saying why');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
done_testing;
