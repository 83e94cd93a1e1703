#!/usr/bin/perl
# The unified API over the BambooHR sandbox: every page walk returns every
# record exactly once, and records map field by field as the table says.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));

# What the provider itself holds, read straight from the sandbox.
my $upstream = do {
    my $res = HTTP::Tiny->new->get($sb->url . '/v1/employees?page%5Blimit%5D=2500&fields=terminationDate',
        { headers => { Accept => 'application/json',
                       Authorization => 'Basic ' . encode_base64(
                           '0123456789abcdef0123456789abcdef01234567:x', '') } });
    JSON::PP->new->decode($res->{content})->{data};
};
my @upstream_ids = map { $_->{employeeId} } @$upstream;
cmp_ok(scalar @upstream_ids, '>=', 300, 'the sandbox holds at least 300 employees');

for my $limit (1, 7, 50, 500) {
    my ($records, $pages) = $ng->walk('employees', limit => $limit, remote_data => 'false');
    my @ids = map { $_->{id} } @$records;
    is_deeply([sort @ids], [sort @upstream_ids],
              "limit $limit: every employee exactly once ($pages pages)");
    my $want = int((@upstream_ids + $limit - 1) / $limit);
    ok($pages == $want || $pages == $want + 1, "limit $limit: $pages pages");
}

{
    my $res = $ng->unified('employees', limit => 1000);
    is($res->{status}, 200, 'limit over 500 is clamped, not refused');
    is($res->{json}{result_count}, 500 < @upstream_ids ? 500 : scalar @upstream_ids,
       'clamped to 500');
}

# Golden records: each mapped field, from records chosen for their quirks.
my %golden = (
    '4' => {   # active, full time, with a manager and custom fields
        id => '4', remote_id => '4', employee_number => '1',
        first_name => 'Charlotte', last_name => 'Abbott',
        display_name => 'Charlotte Abbott', preferred_name => undef,
        email => 'charlotte.abbott@efficientoffice.example',
        personal_email => 'charlotte.abbott0@mail.example',
        work_phone => '801-555-1000', mobile_phone => '385-555-3000',
        department => 'Human Resources', job_title => 'Sr. HR Administrator',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2017-03-18', termination_date => undef,
        date_of_birth => '1970-10-18', gender => undef,
        work_location => { id => '18240', name => 'Berlin, Germany' },
        manager => { id => '6', remote_id => '6', name => 'Jennifer Caldwell' },
        company => undef,
        groups => [ { id => '18201', name => 'Human Resources', type => 'department' },
                    { id => '18302', name => 'EMEA', type => 'division' } ],
        avatar => 'https://images.sandbox.invalid/photos/4-2-4.jpg',
        created_at => undef, modified_at => undef,
        custom_fields => { customShirtSize => 'XXL', customDietaryRestrictions => 'Halal' },
    },
    '210' => {   # terminated, with a termination date
        employment_status => 'terminated', employment_type => undef,
        start_date => '2016-01-13', termination_date => '2020-05-12',
        manager => { id => '99', remote_id => '99', name => 'Olivia Baker' },
    },
    '62' => { start_date => undef, termination_date => undef },     # 0000-00-00
    '34' => { start_date => undef, termination_date => undef },     # ""
    '135' => { employment_status => 'on_leave', employment_type => undef },
    '159' => { employment_type => 'contract' },
    '333' => { employment_type => 'internship', start_date => undef },
    '179' => { employment_type => 'part_time' },
    '6' => { manager => undef },                                    # top of the chart
);

my %by_id = map { $_->{id} => $_ } @{ ($ng->walk('employees', limit => 500))[0] };
for my $id (sort keys %golden) {
    my $rec = $by_id{$id};
    ok($rec, "employee $id listed") or next;
    for my $f (sort keys %{ $golden{$id} }) {
        is_deeply($rec->{$f}, $golden{$id}{$f}, "employee $id: $f");
    }
    my $get = $ng->unified("employees/$id");
    is($get->{status}, 200, "get employee $id");
    is_deeply($get->{json}{result}, $rec, "get employee $id equals its list record");
}

{
    my $raw = (grep { $_->{employeeId} eq '210' } @$upstream)[0];
    my $rec = $by_id{'210'};
    is($rec->{remote_data}{terminationDate}, $raw->{terminationDate},
       'remote_data is the provider record');
    is($rec->{remote_data}{status}, 'Inactive', 'remote_data keeps raw values');
    my $res = $ng->unified('employees/210', remote_data => 'false');
    ok(!exists $res->{json}{result}{remote_data}, 'remote_data=false drops it');
    my @keys = keys %{ $res->{json}{result} };
    for my $f (qw(id remote_id first_name last_name display_name email personal_email
                  department job_title employment_status employment_type start_date
                  termination_date work_location manager groups created_at modified_at
                  custom_fields)) {
        ok(exists $res->{json}{result}{$f}, "employee records carry $f");
    }
}

# The other resources of the table.
my %expect_count = (groups => undef, locations => undef, timeoff_types => undef);
for my $res (qw(groups locations timeoff_types timeoff_requests)) {
    my ($all) = $ng->walk($res, limit => 500);
    ok(scalar @$all, "$res: listed " . scalar @$all);
    for my $limit (1, 7) {
        next if $res eq 'timeoff_requests' && $limit == 1;
        my ($recs) = $ng->walk($res, limit => $limit);
        is_deeply([sort map { $_->{id} } @$recs], [sort map { $_->{id} } @$all],
                  "$res: limit $limit walks every record once");
    }
    my $one = $all->[-1];
    my $get = $ng->unified("$res/" . HRIS::Nginx::uri_escape($one->{id}));
    is($get->{status}, 200, "$res: get one");
    is_deeply($get->{json}{result}, $one, "$res: get equals the list record");
    is($ng->unified("$res/nope-404")->{status}, 404, "$res: unknown id is a 404");
}

{
    my ($groups) = $ng->walk('groups');
    my %types = map { $_->{type} => 1 } @$groups;
    is_deeply([sort keys %types], ['department', 'division'],
              'groups are departments and divisions');
    my ($hr) = grep { $_->{name} eq 'Human Resources' } @$groups;
    is_deeply([ @$hr{qw(id type)} ], ['18201', 'department'], 'department group');
    my ($locs) = $ng->walk('locations');
    ok((grep { $_->{name} eq 'London, UK' && $_->{location_type} eq 'work' } @$locs),
       'locations carry name and type');
    my ($types) = $ng->walk('timeoff_types');
    my ($vac) = grep { $_->{name} eq 'Vacation' } @$types;
    is($vac->{unit}, 'hours', 'time-off type unit');
}

{
    my ($reqs) = $ng->walk('timeoff_requests', limit => 100);
    my %status = map { $_->{status} => 1 } @$reqs;
    ok($status{declined} && $status{cancelled} && $status{approved} && $status{requested},
       'time-off statuses normalized (' . join(',', sort keys %status) . ')');
    ok($status{superceded}, 'an unmapped status passes through raw');
    my $r = $reqs->[0];
    like($r->{start_time}, qr/^\d{4}-\d\d-\d\d$/, 'start date');
    ok(ref $r->{employee} eq 'HASH' && $r->{employee}{id}, 'employee reference');
    ok(!ref $r->{amount} && $r->{amount} =~ /^[\d.]+$/, 'amount is a number');
    like($r->{units}, qr/^(hours|days)$/, 'units');

    my ($window) = $ng->walk('timeoff_requests', start_date => '2026-01-01',
                             end_date => '2026-01-31', limit => 50);
    ok(@$window < @$reqs && @$window > 0, 'start_date/end_date narrow the window');
    ok(!(grep { $_->{end_time} lt '2026-01-01' || $_->{start_time} gt '2026-01-31' } @$window),
       'every request overlaps the window');

    my $emp = $r->{employee}{id};
    my ($mine) = $ng->walk('timeoff_requests', employee_id => $emp);
    ok(@$mine && !(grep { $_->{employee}{id} ne $emp } @$mine), 'employee_id filter');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

done_testing;
