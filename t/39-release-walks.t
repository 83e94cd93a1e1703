#!/usr/bin/perl
# The memory a mapped page holds is given back whenever it has to be.
#
# A list's records mapped from a slot parse whose every node came from
# the request's arena hold only arena nodes and the table's immortal
# values: the walks that would give their references back at the
# request's end are skipped (src/ngx_http_hris_walk.c, walk_map() and
# walk_release(); parse_slots.c, slots_release()). A node that malloc()
# gave (a block larger than the arena takes) must still be freed: made by
# the mapping (a template's long string), or read by the parse (a long
# string in the provider's answer). Were those walks skipped too, each
# page would leak its long strings: 60 records of 10 KB, 100 pages,
# 60 MB. The worker's RSS must stay flat instead, and the answers whole.
# (Under ASan its allocator's quarantine holds freed blocks: the RSS is
# not checked there.)

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use HTTP::Tiny;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $dir = tempdir(CLEANUP => 1);
my $body_file = "$dir/body.json";
my $sb = HRIS::Sandbox->fixed_body($body_file);
my $accounts = HRIS::Nginx::accounts_for(heavenhr => $sb);
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] },
    id => 'acme-heavenhr-long',
    overrides => {
        'resources.employees.fields.custom_fields' => { object => {
            twice => { template => '{{/firstName}}{{/firstName}}' },
            kind  => { path => '/kind', enum => { a => 'Active' },
                       enum_default => 'other' },
        } },
    },
};
my $ng = HRIS::Nginx->start(accounts => $accounts,
                            http => 'hris_max_response_size 16m;');
my $asan = $ENV{HRIS_PRELOAD} ? 1 : 0;

sub page {
    my ($name_len) = @_;
    return JSON::PP->new->canonical->encode({ data => [ map {
        { id => "$_", firstName => chr(97 + $_ % 26) x $name_len,
          kind => ($_ % 2 ? 'a' : 'b') }
    } 1 .. 60 ] });
}

sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or die "status: $!";
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+) kB/ }
    die 'no VmRSS';
}

# n pages of the list, every answer checked whole (by pattern: JSON::PP
# would take seconds for each of these megabytes)
my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 1);

sub pages {
    my ($n, $name_len, $rd) = @_;
    my $bad = 0;
    my $url = $ng->url . '/unified/hris/employees?integrated_account_id='
              . "acme-heavenhr-long&limit=60&remote_data=$rd";
    for (1 .. $n) {
        my $res = $http->get($url, { headers => {
            Authorization => "Bearer $HRIS::Nginx::KEY" } });
        my $body = $res->{content} // '';
        my $twice = () = $body =~ /"twice":"[a-z]{@{[ 2 * $name_len ]}}"/g;
        my $active = () = $body =~ /"kind":"Active"/g;
        my $other = () = $body =~ /"kind":"other"/g;
        my $raw = () = $body =~ /"remote_data":\{"firstName":"[a-z]{$name_len}"/g;
        next if $res->{status} == 200 && $twice == 60 && $active == 30
                && $other == 30 && $raw == ($rd eq 'true' ? 60 : 0);
        diag "$res->{status}: twice $twice, Active $active, other $other, "
             . "remote_data $raw: " . substr($body, 0, 200) unless $bad++;
    }
    return $bad;
}

my $worker = $ng->worker_pid;

for my $case ([ 'short names: the walks skipped', 100 ],
              [ 'the template makes 10 KB strings (malloc)', 5000 ],
              [ 'the answer holds 10 KB strings (malloc)', 10000 ]) {
    my ($what, $len) = @$case;
    HRIS::Nginx::write_file($body_file, page($len));
    for my $rd (qw(false true)) {
        is(pages(10, $len, $rd), 0, "$what, remote_data=$rd: warm-up answers whole");
        my $rss0 = rss_kb($worker);
        is(pages(100, $len, $rd), 0, "$what, remote_data=$rd: 100 pages, every answer whole");
        my $grown = rss_kb($worker) - $rss0;
        SKIP: {
            skip 'ASan quarantines freed memory', 1 if $asan;
            cmp_ok($grown, '<', 16 * 1024,
                   "$what, remote_data=$rd: the worker's RSS stays flat (grew $grown kB)");
        }
    }
}

is($ng->worker_pid, $worker, 'the same worker throughout');
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts');
$ng->stop;
done_testing();
