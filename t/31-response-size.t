#!/usr/bin/perl
# hris_max_response_size: a provider answer over the limit is refused with
# a 502 that names the directive, and nginx keeps serving.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb),
                            location => 'hris_max_response_size 16k;');

my $big = $ng->unified('employees', limit => 500);
is($big->{status}, 502, 'a page over hris_max_response_size: 502');
like($big->{json}{message}, qr/larger than hris_max_response_size \(16384 bytes\)/,
     'the message names the directive and the limit');
is($big->{json}{details}{attempts}, 1, 'not retried: it would be as large again');

my $small = $ng->unified('employees', limit => 5);
is($small->{status}, 200, 'a small page still passes');
is($small->{json}{result_count}, 5, 'with its records');

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
done_testing;
