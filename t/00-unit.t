#!/usr/bin/perl

# Runs the C unit tests (t/unit, under valgrind when installed) and reports
# each of their TAP lines as a test of its own.

use strict;
use warnings;

use FindBin;
use Test::More;

my $dir = "$FindBin::Bin/unit";
my @out = `make -s -C '$dir' test 2>&1`;
my $status = $?;
my $seen = 0;

for (@out) {
    chomp;

    if (/^(not )?ok \d+(?: - (.*))?$/) {
        ok(!defined $1, $2 // 'unnamed');
        $seen++;

    } elsif (/^#/) {
        diag($_);
    }
}

ok($seen > 0, 'unit tests ran');
ok($status == 0, 'make -C t/unit test succeeded (no failure, no leak)')
    or diag(join "\n", grep { !/^(?:not )?ok \d+/ } @out);

done_testing();
