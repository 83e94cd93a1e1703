#!/usr/bin/perl
# The unified API over the ClayHR sandbox (mappings/clayhr.json):
#  - employees are listed once per status (A, I, F), 1-based pages, 204 at
#    the end of each: every user of all three statuses exactly once;
#  - groups (org units); gets (an employee through the richer /user/list,
#    a group from the list); golden records;
#  - a refused API key is the contract's 401 with details.upstream_status;
#  - the account's own rate limit: calls over it wait for their slot, or get
#    429 with Retry-After when the wait is longer than hris_retry_after_max.
#
# Strings are compared as UTF-8 bytes (the harness decodes JSON without
# ->utf8; no `use utf8` here either).

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $ACCOUNT = 'acme-clayhr';
my $API_KEY = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $USER_ID = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $J = JSON::PP->new->canonical;

# -- the provider's own data ----------------------------------------------------

my $sb = HRIS::Sandbox->start('clayhr');
my $UP = HTTP::Tiny->new(keep_alive => 1, timeout => 10);

sub up_get {
    my ($path) = @_;
    my $res = $UP->get($sb->url . $path, { headers => {
        'x-api-key' => $API_KEY, userid => $USER_ID, Accept => 'application/json' } });
    die "$path: $res->{status} $res->{content}" unless $res->{status} =~ /^20[04]$/;
    return $res->{status} == 204 ? undef : $J->decode($res->{content});
}

my %users_by_status;
for my $status (qw(A I F)) {
    for (my $page = 1; ; $page++) {
        my $batch = up_get("/users?status=$status&page=$page&pageSize=100") or last;
        push @{ $users_by_status{$status} }, @$batch;
    }
}
my @users = map { @{ $users_by_status{$_} } } qw(A I F);
my %full  = map { $_->{userId} => $_ } @{ up_get('/user/list') };
my $units = up_get('/orgunits');

is(scalar @users, 280, 'the sandbox holds 280 users');
is_deeply([ map { scalar @{ $users_by_status{$_} } } qw(A I F) ], [238, 30, 12],
          '238 active, 30 inactive, 12 future');
is(scalar keys %full, 280, '/user/list has every one of them');
is(scalar @$units, 18, '18 org units');
$sb->reset;

# -- expected unified records ------------------------------------------------------

sub nz { my ($v) = @_; defined $v && $v ne '' ? $v : undef }

sub enum_of {
    my ($map, $v) = @_;
    return undef unless defined nz($v);
    return exists $map->{$v} ? $map->{$v} : $v;
}

# "yyyy-MM-dd HH:mm:ss" (UTC) as RFC 3339
sub ts { my ($v) = @_; defined nz($v) ? ($v =~ s/ /T/r) . 'Z' : undef }

my %STATUS = (A => 'active', I => 'inactive', F => 'pending');

sub employee_from_list {
    my ($u) = @_;
    my $boss = $u->{supervisorModelList}[0];
    return {
        id => "$u->{userId}", remote_id => "$u->{userId}",
        first_name => nz($u->{firstName}), last_name => nz($u->{lastName}),
        display_name => nz($u->{displayFullName}), email => nz($u->{email}),
        work_phone => nz($u->{phone}), mobile_phone => nz($u->{cellPhone}),
        employment_status => enum_of(\%STATUS, $u->{status}),
        start_date => nz($u->{userStartDate}),
        gender => enum_of({ M => 'male', F => 'female' }, $u->{gender}),
        manager => $boss ? { id => "$boss->{userId}", remote_id => "$boss->{userId}",
                             name => nz($boss->{displayFullName}) } : undef,
        created_at => ts($u->{createts}),
    };
}

sub employee_from_get {
    my ($u) = @_;
    my $dept = $u->{departmentModel} // {};
    my $loc = $u->{locationModel} // {};
    return {
        %{ employee_from_list($u) },
        employee_number => nz($u->{empId}), department => nz($u->{departmentName}),
        job_title => nz($u->{position}), termination_date => nz($u->{userEndDate}),
        date_of_birth => nz($u->{userDateOfBirth}),
        employment_type => enum_of({ 'Full Time' => 'full_time', 'Part Time' => 'part_time',
                                     Intern => 'internship', Contractor => 'contract',
                                     Temporary => 'temporary' }, $u->{workerType}),
        groups => defined $dept->{departmentId}
            ? [ { id => "$dept->{departmentId}", name => nz($dept->{name}),
                  type => 'department' } ] : [],
        work_location => defined $loc->{locationId}
            ? { id => "$loc->{locationId}", name => nz($loc->{locationName}) } : undef,
        modified_at => ts($u->{lastupdatets}),
    };
}

sub group_from_unit {
    my ($g) = @_;
    my $parent = $g->{parentDepartmentId};
    return {
        id => "$g->{departmentId}", remote_id => "$g->{departmentId}",
        name => nz($g->{name}), description => nz($g->{description}),
        type => enum_of({ Department => 'department', Division => 'division', Team => 'team',
                          'Business Unit' => 'business_unit' }, $g->{departmentLabel}),
        parent_group => (defined $parent && $parent =~ /^[1-9][0-9]*$/)
            ? { id => "$parent", name => nz($g->{parentDepartmentName}) } : undef,
    };
}

# Deep equality, scalars compared as strings (numbers as Perl prints them).
sub _same {
    my ($x, $y) = @_;
    return !defined $y if !defined $x;
    return 0 if !defined $y;
    if (ref $x eq 'HASH' && ref $y eq 'HASH') {
        return 0 unless keys %$x == keys %$y;
        for (keys %$x) { return 0 unless exists $y->{$_} && _same($x->{$_}, $y->{$_}) }
        return 1;
    }
    if (ref $x eq 'ARRAY' && ref $y eq 'ARRAY') {
        return 0 unless @$x == @$y;
        for (0 .. $#$x) { return 0 unless _same($x->[$_], $y->[$_]) }
        return 1;
    }
    return 0 if grep { ref $_ eq 'HASH' || ref $_ eq 'ARRAY' } $x, $y;
    return "$x" eq "$y";
}

sub diff {
    my ($got, $want) = @_;
    my @bad = map { "$_: got " . $J->encode([ $got->{$_} ]) . ' want ' . $J->encode([ $want->{$_} ]) }
              grep { !exists $got->{$_} || !_same($got->{$_}, $want->{$_}) } sort keys %$want;
    for my $f (sort keys %$got) {
        next if exists $want->{$f} || $f eq 'remote_data';
        push @bad, "$f (unmapped) is " . $J->encode([ $got->{$f} ])
            unless !defined $got->{$f} || (ref $got->{$f} eq 'ARRAY' && !@{ $got->{$f} });
    }
    return @bad;
}

# -- the gateway ---------------------------------------------------------------------

my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(clayhr => $sb,
    extra => { $ACCOUNT => { rate_limit => undef } }));

sub walk { my ($what, %q) = @_; $ng->walk($what, account => $ACCOUNT, %q) }
sub one  { my ($what, %q) = @_; $ng->unified($what, account => $ACCOUNT, %q) }

my @want_ids = sort map { $_->{userId} } @users;
for my $limit (1, 7, 500) {
    $sb->reset;
    my ($records, $pages, $responses) = walk('employees', limit => $limit, remote_data => 'false');
    is_deeply([sort map { $_->{id} } @$records], \@want_ids,
              "employees: limit $limit walks every user of every status exactly once ($pages pages)");
    ok(!(grep { $_->{json}{result_count} > $limit } @$responses),
       "employees: limit $limit: no page holds more than the limit");
    my $calls = $sb->stats->{by_path}{'/users'};
    if ($limit == 1) {
        # Every page is full: only the provider's 204 can end a status.
        is($calls, 280 + 3, 'limit 1: one call per user and one 204 per status');
    }
    else {
        cmp_ok($calls, '<=', int(280 / $limit) + 3 + 3, "limit $limit: $calls calls");
    }
}
{
    my ($records) = walk('employees', limit => 100, remote_data => 'false');
    my %count;
    $count{ $_->{employment_status} }++ for @$records;
    is_deeply(\%count, { active => 238, inactive => 30, pending => 12 },
              'every status is walked: A, I and F');
}

# Every listed employee and every group, field by field.
my ($listed) = walk('employees', limit => 500);
my %listed = map { $_->{id} => $_ } @$listed;
{
    my @bad = grep { !$listed{ $_->{userId} }
                     || diff($listed{ $_->{userId} }, employee_from_list($_))
                     || !_same($listed{ $_->{userId} }{remote_data}, $_) } @users;
    is(scalar @bad, 0, 'every listed employee maps every field from its /users item')
        or diag join "\n", $bad[0]{userId}, diff($listed{ $bad[0]{userId} } // {},
                                                 employee_from_list($bad[0]));
}

my ($groups) = walk('groups', limit => 500);
my %groups = map { $_->{id} => $_ } @$groups;
is_deeply([sort keys %groups], [sort map { "$_->{departmentId}" } @$units],
          'groups: every org unit once');
for my $limit (1, 7) {
    my ($recs, $pages) = walk('groups', limit => $limit);
    is_deeply([sort map { $_->{id} } @$recs], [sort keys %groups],
              "groups: limit $limit walks every org unit exactly once ($pages pages)");
}
{
    my @bad = grep { diff($groups{ $_->{departmentId} } // {}, group_from_unit($_))
                     || !_same($groups{ $_->{departmentId} }{remote_data}, $_) } @$units;
    is(scalar @bad, 0, 'every group maps every field from its org unit')
        or diag join "\n", diff($groups{ $bad[0]{departmentId} } // {}, group_from_unit($bad[0]));
}

# -- golden records -------------------------------------------------------------

my %golden_list = (
    '123456' => {    # the key owner
        id => '123456', remote_id => '123456', first_name => 'Sofia', last_name => 'Hernández',
        display_name => 'Sofia Hernández', email => 'sofia.hernandez@acme-clay.example',
        work_phone => '+49 151 290221', mobile_phone => '+49 151 255568',
        employment_status => 'active', start_date => '2016-06-23', gender => 'female',
        manager => { id => '123400', remote_id => '123400', name => 'Amara Okafor' },
        created_at => '2016-06-01T09:25:52Z',
        department => undef, job_title => undef, employee_number => undef,    # not in /users
        groups => [],
    },
    '123661' => {    # inactive, no phones
        id => '123661', first_name => 'Oluwaseun', last_name => 'Novak',
        employment_status => 'inactive', work_phone => undef, mobile_phone => undef,
        gender => 'female', start_date => '2022-04-30', created_at => '2022-04-01T14:45:30Z',
        manager => { id => '123478', remote_id => '123478', name => 'James Scott' },
    },
    '123613' => {    # a future joiner without a supervisor yet
        employment_status => 'pending', manager => undef, start_date => '2026-09-12',
        gender => 'male',
    },
);
my %golden_get = (
    '123456' => {
        id => '123456', remote_id => '123456', employee_number => 'E-0002',
        first_name => 'Sofia', last_name => 'Hernández', display_name => 'Sofia Hernández',
        preferred_name => undef, email => 'sofia.hernandez@acme-clay.example',
        personal_email => undef, work_phone => '+49 151 290221', mobile_phone => '+49 151 255568',
        department => 'People & Culture', job_title => 'HR Administrator',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2016-06-23', termination_date => undef, date_of_birth => '1980-11-15',
        gender => 'female', work_location => { id => '12', name => 'Berlin' },
        manager => { id => '123400', remote_id => '123400', name => 'Amara Okafor' },
        company => undef,
        groups => [ { id => '2113', name => 'People & Culture', type => 'department' } ],
        avatar => undef, created_at => '2016-06-01T09:25:52Z',
        modified_at => '2018-04-04T11:07:33Z', custom_fields => undef,
    },
    '123611' => {    # active but leaving
        id => '123611', employee_number => 'E-0046', first_name => 'Saoirse',
        last_name => 'Şahin', employment_status => 'active', termination_date => '2026-07-24',
        start_date => '2019-03-13', date_of_birth => '1997-02-26', job_title => 'UX Researcher',
        department => 'Product & Design',
        groups => [ { id => '2106', name => 'Product & Design', type => 'department' } ],
        work_location => { id => '14', name => 'Bengaluru' },
        manager => { id => '123478', remote_id => '123478', name => 'James Scott' },
        modified_at => '2020-01-14T11:10:44Z',
    },
    '123661' => {
        employment_status => 'inactive', termination_date => '2023-04-03',
        employee_number => 'E-0058', job_title => 'Product Manager',
        modified_at => '2024-05-05T17:00:23Z',
    },
    '123613' => {
        employment_status => 'pending', manager => undef, department => 'Platform Engineering',
        groups => [ { id => '2102', name => 'Platform Engineering', type => 'department' } ],
        job_title => 'API Engineer', employee_number => 'E-0047',
    },
);
for my $id (sort keys %golden_list) {
    my $rec = $listed{$id};
    ok($rec, "employee $id is listed") or next;
    is_deeply($rec->{$_}, $golden_list{$id}{$_}, "list record $id: $_")
        for sort keys %{ $golden_list{$id} };
}
for my $id (sort keys %golden_get) {
    my $res = one("employees/$id");
    is($res->{status}, 200, "get employee $id") or next;
    is_deeply($res->{json}{result}{$_}, $golden_get{$id}{$_}, "get record $id: $_")
        for sort keys %{ $golden_get{$id} };
    is_deeply($res->{json}{result}{remote_data}, $full{$id},
              "get record $id: remote_data is the full UserModel");
}

# Gets of a sample of employees (every status), against the full UserModel.
{
    my @sample = (@{ $users_by_status{A} }[0, 17, 100, -1], @{ $users_by_status{I} }[0, -1],
                  @{ $users_by_status{F} }[0, -1]);
    for my $u (@sample) {
        my $res = one("employees/$u->{userId}", remote_data => 'false');
        my @bad = $res->{status} == 200 ? diff($res->{json}{result}, employee_from_get($full{ $u->{userId} }))
                                        : ("status $res->{status}");
        ok(!@bad, "get employee $u->{userId} ($u->{status}) maps every field from /user/list")
            or diag join "\n", @bad;
    }
    cmp_ok($sb->stats->{by_path}{'/user/list'}, '>=', scalar @sample, 'gets read /user/list');
}

my %golden_groups = (
    '2103' => { id => '2103', remote_id => '2103', name => 'Site Reliability',
                description => 'Infrastructure and on-call', type => 'team',
                parent_group => { id => '2102', name => 'Platform Engineering' },
                created_at => undef, modified_at => undef },
    '2100' => { id => '2100', remote_id => '2100', name => 'Executive',
                description => 'Executive leadership team', type => 'department',
                parent_group => undef },    # parentDepartmentId 0: top level
    '2117' => { name => 'Research Lab', description => 'Dormant unit without staff',
                type => 'team', parent_group => { id => '2101', name => 'Engineering' } },
);
for my $id (sort keys %golden_groups) {
    my $res = one("groups/$id");
    is($res->{status}, 200, "get group $id") or next;
    is_deeply($res->{json}{result}{$_}, $golden_groups{$id}{$_}, "group $id: $_")
        for sort keys %{ $golden_groups{$id} };
    is_deeply($res->{json}{result}, $groups{$id}, "get group $id equals its list record");
}

for my $what (qw(employees/999 employees/1234567 groups/999 groups/0)) {
    my $res = one($what);
    is($res->{status}, 404, "$what: 404");
    is($res->{json}{statusCode}, 404, "$what: 404 envelope");
}

# A get takes an id: a name, an employee number or an e-mail address is not
# one, even though the provider's /user/list?name= matches them too.
for my $not_an_id ('Okafor', 'E-0002', 'sofia.hernandez@acme-clay.example') {
    my $res = one('employees/' . HRIS::Nginx::uri_escape($not_an_id));
    is($res->{status}, 404, "employees/$not_an_id is not an id: 404")
        or diag "got $res->{status} with id " . ($res->{json}{result}{id} // 'none');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

# -- a refused API key ---------------------------------------------------------------

{
    my $bad = 'clayhr-wrong-key-5f3a9e1b';
    my $ng2 = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(clayhr => $sb,
        extra => { $ACCOUNT => { credentials => { api_key => $bad } } }));
    for my $what (qw(employees groups employees/123456)) {
        my $res = $ng2->unified($what, account => $ACCOUNT);
        is($res->{status}, 401, "wrong key, $what: 401");
        is($res->{json}{statusCode}, 401, '... in the error envelope');
        is($res->{json}{error}, 'Unauthorized', '... reason phrase');
        is($res->{json}{details}{upstream_status}, 401, '... details.upstream_status 401');
        like($res->{json}{message}, qr/credential/i, '... the message says the credentials');
        unlike($res->{body}, qr/\Q$bad\E/, '... and does not show the key');
    }
    $ng2->stop;
    unlike($ng2->error_log, qr/\Q$bad\E/, 'the key is not in the error log');
}

# -- the account's rate limit -------------------------------------------------------

{
    $sb->reset;
    my $ng3 = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(clayhr => $sb,
        extra => { $ACCOUNT => { rate_limit => { calls => 3, per => '2s' } } }));
    my (@status, @took);
    my $start = time;
    for (1 .. 5) {
        my $t = time;
        push @status, $ng3->unified('groups', account => $ACCOUNT)->{status};
        push @took, time - $t;
    }
    my $elapsed = time - $start;
    is_deeply(\@status, [ (200) x 5 ], '3 calls per 2 s: 5 sequential requests all succeed');
    cmp_ok($elapsed, '>=', 1.5, sprintf('... the 4th and 5th waited for a slot (%.2f s in all)',
                                        $elapsed));
    cmp_ok($took[0] + $took[1] + $took[2], '<', 2,
           '... the first three, within the limit, did not wait a window');
    cmp_ok($took[3], '>=', 1, sprintf('... the 4th waited (%.2f s)', $took[3]));
    is($sb->stats->{by_path}{'/orgunits'}, 5, '... and the provider saw the 5 calls');
    $ng3->stop;
    unlike($ng3->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');
}

{
    $sb->reset;
    my $ng4 = HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(clayhr => $sb,
            extra => { $ACCOUNT => { rate_limit => { calls => 3, per => '2s' } } }),
        http => 'hris_retry_after_max 300ms;');
    my @status = map { $ng4->unified('groups', account => $ACCOUNT)->{status} } 1 .. 3;
    is_deeply(\@status, [200, 200, 200], 'hris_retry_after_max 300ms: 3 calls inside the window');
    my $t = time;
    my $res = $ng4->unified('groups', account => $ACCOUNT);
    my $took = time - $t;
    is($res->{status}, 429, 'the 4th inside the window: 429');
    like($res->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/,
         '... with Retry-After in seconds (' . ($res->{headers}{'retry-after'} // 'none') . ')');
    cmp_ok($res->{headers}{'retry-after'} // 0, '<=', 2, '... no longer than the window');
    is($res->{json}{statusCode}, 429, '... in the error envelope');
    is($res->{json}{error}, 'Too Many Requests', '... reason phrase');
    ok(length($res->{json}{message} // ''), '... with a message');
    ok(ref $res->{json}{details} eq 'HASH', '... and details');
    cmp_ok($took, '<', 1, '... at once, without waiting for the slot');
    is($sb->stats->{by_path}{'/orgunits'}, 3, 'the provider saw only the 3 calls');

    sleep($res->{headers}{'retry-after'} // 2);
    $res = $ng4->unified('groups', account => $ACCOUNT);
    is($res->{status}, 200, 'after Retry-After seconds the next request succeeds');
    is($sb->stats->{by_path}{'/orgunits'}, 4, '... with the 4th call');
    $ng4->stop;
    unlike($ng4->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');
}

done_testing;
