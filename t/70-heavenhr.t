#!/usr/bin/perl
# The unified API over the HeavenHR sandbox (mappings/heavenhr.json):
#  - every resource's page walk returns every sandbox record exactly once;
#  - records map field by field (literal golden records, and every record
#    checked against the sandbox's own raw record);
#  - gets, 404s, the time-off filters (bound into the cursor);
#  - the OAuth2 client-credentials token: one exchange for many requests,
#    renewed when it expires, one exchange for a burst across two workers,
#    refused credentials (401 naming the exchange, no secret leaked), and a
#    data call answered 401 (the gateway renews the token and retries once).
#
# Strings are compared as UTF-8 bytes: the harness decodes JSON without
# ->utf8, and so does this file (no `use utf8`: literals are bytes too).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use POSIX ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $ACCOUNT   = 'acme-heavenhr';
my $CLIENT_ID = $HRIS::Nginx::PROVIDER{heavenhr}{credentials}{client_id};
my $SECRET    = $HRIS::Nginx::PROVIDER{heavenhr}{credentials}{client_secret};
my $TOKEN_PATH = '/oauth2/token';

my $J = JSON::PP->new->canonical;

# -- the provider's own data, read with a token of our own --------------------

my $sb = HRIS::Sandbox->start('heavenhr');
my $UP = HTTP::Tiny->new(keep_alive => 1, timeout => 10);
my $upstream_token = do {
    my $res = $UP->get($sb->url . "$TOKEN_PATH?grant_type=client_credentials&scope=all",
        { headers => { Authorization => 'Basic ' . encode_base64("$CLIENT_ID:$SECRET", '') } });
    die "token: $res->{status} $res->{content}" unless $res->{status} == 200;
    $J->decode($res->{content})->{access_token};
};

sub up_get {
    my ($path) = @_;
    my $res = $UP->get($sb->url . $path,
        { headers => { Authorization => "Bearer $upstream_token", Accept => 'application/json' } });
    return ($res->{status}, $res->{status} == 200 ? $J->decode($res->{content}) : undef);
}

# Every page of a HeavenHR list (0-based pages, 404 past the end).
sub up_all {
    my ($path, %q) = @_;
    my @all;
    for (my $page = 0; ; $page++) {
        my $qs = join '&', "page=$page", 'pageSize=200',
                 map { "$_=" . HRIS::Nginx::uri_escape($q{$_}) } sort keys %q;
        my ($status, $body) = up_get("$path?$qs");
        last if $status == 404;
        die "$path page $page: $status" unless $status == 200;
        push @all, @{ $body->{data} };
        last if $page + 1 >= $body->{totalPages};
    }
    return \@all;
}

my %raw = (
    employees        => up_all('/employees'),
    companies        => up_all('/companies'),
    groups           => up_all('/departments'),
    locations        => up_all('/locations'),
    timeoff_requests => up_all('/absences'),
);
my %full;    # the full employee objects (GET /employees/{id})
for my $e (@{ $raw{employees} }) {
    my ($status, $body) = up_get("/employees/$e->{id}");
    die "employee $e->{id}: $status" unless $status == 200;
    $full{ $e->{id} } = $body;
}

is(scalar @{ $raw{employees} }, 265, 'the sandbox holds 265 employees');
is(scalar @{ $raw{companies} }, 3, '3 companies');
is(scalar @{ $raw{groups} }, 13, '13 departments');
is(scalar @{ $raw{locations} }, 6, '6 locations');
is(scalar @{ $raw{timeoff_requests} }, 560, '560 absences');

# Our own reads must not count as the gateway's token exchange.
$sb->reset;

# -- expected unified records, derived from the raw ones ----------------------

sub nz { my ($v) = @_; defined $v && $v ne '' ? $v : undef }

sub enum_of {
    my ($map, $v) = @_;
    return undef unless defined nz($v);
    return exists $map->{$v} ? $map->{$v} : $v;
}

sub joined {
    my $s = join ' ', grep { defined && $_ ne '' } @_;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\s+/ /g;
    return $s eq '' ? undef : $s;
}

sub ref_to {
    my ($id, %more) = @_;
    return defined nz($id) ? { id => "$id", %more } : undef;
}

my %STATUS = (ACTIVE => 'active', INACTIVE => 'inactive');

sub employee_from_list {
    my ($e) = @_;
    return {
        id => $e->{id}, remote_id => $e->{id},
        employee_number => "$e->{employeeNumber}",
        first_name => nz($e->{firstName}), last_name => nz($e->{lastName}),
        display_name => joined($e->{firstName}, $e->{lastName}),
        employment_status => enum_of(\%STATUS, $e->{jobStatus}),
        department => nz($e->{departmentName}),
        groups => defined nz($e->{departmentId})
            ? [ { id => $e->{departmentId}, name => nz($e->{departmentName}),
                  type => 'department' } ] : [],
        modified_at => $e->{updatedAt},
        email => nz($e->{email}),
    };
}

sub employee_from_get {
    my ($e) = @_;
    return {
        %{ employee_from_list({ %$e, email => $e->{professionalEmail} }) },
        personal_email => nz($e->{privateEmail}),
        mobile_phone => nz($e->{mobilePhone}),
        job_title => nz($e->{jobTitle}),
        employment_type => enum_of({ FULL_TIME => 'full_time', PART_TIME => 'part_time',
                                     WORKING_STUDENT => 'working_student',
                                     INTERN => 'internship', MINI_JOB => 'mini_job' },
                                   $e->{employmentType}),
        start_date => nz($e->{startDate}),
        termination_date => nz($e->{endOfContract}),
        date_of_birth => nz($e->{dateOfBirth}),
        gender => enum_of({ MALE => 'male', FEMALE => 'female', DIVERSE => 'non_binary' },
                          $e->{gender}),
        work_location => ref_to($e->{locationId}),
        manager => ref_to($e->{supervisorId}, remote_id => $e->{supervisorId}),
        company => ref_to($e->{companyId}),
        created_at => $e->{createdAt},
        custom_fields => { weeklyHours => $e->{weeklyHours},
                           permanentOrTemporary => nz($e->{permanentOrTemporary}),
                           nationality => nz($e->{nationality}) },
    };
}

my %expect = (
    employees => \&employee_from_list,
    companies => sub {
        my ($c) = @_;
        return {
            id => $c->{id}, remote_id => $c->{id},
            legal_name => nz($c->{legalName}), display_name => nz($c->{name}),
            eins => [ grep { defined } nz($c->{vatId}) ],
            addresses => defined nz($c->{city})
                ? [ { street_1 => joined($c->{street}, $c->{streetNumber}),
                      postal_code => nz($c->{zipCode}), city => $c->{city},
                      country => nz($c->{country}) } ] : [],
            created_at => $c->{createdAt}, modified_at => $c->{updatedAt},
        };
    },
    groups => sub {
        my ($d) = @_;
        return {
            id => $d->{id}, remote_id => $d->{id}, name => nz($d->{name}),
            type => 'department',
            parent_group => ref_to($d->{parentId}, remote_id => $d->{parentId}),
            created_at => $d->{createdAt}, modified_at => $d->{updatedAt},
        };
    },
    locations => sub {
        my ($l) = @_;
        return {
            id => $l->{id}, remote_id => $l->{id}, name => nz($l->{name}),
            street_1 => joined($l->{street}, $l->{streetNumber}),
            postal_code => nz($l->{zipCode}), city => nz($l->{city}),
            country => nz($l->{country}), location_type => 'work',
            created_at => $l->{createdAt}, modified_at => $l->{updatedAt},
        };
    },
    timeoff_requests => sub {
        my ($a) = @_;
        return {
            id => $a->{id}, remote_id => $a->{id},
            employee => ref_to($a->{employeeId}, remote_id => $a->{employeeId}),
            status => enum_of({ APPROVED => 'approved', PENDING => 'requested',
                                REJECTED => 'declined', CANCELLED => 'cancelled' }, $a->{status}),
            units => enum_of({ DAYS => 'days', HOURS => 'hours' }, $a->{unit}),
            amount => $a->{amount},
            timeoff_type => ref_to($a->{absenceType}{id}, remote_id => $a->{absenceType}{id},
                                   name => nz($a->{absenceType}{name})),
            start_time => nz($a->{startDate}), end_time => nz($a->{endDate}),
            employee_note => nz($a->{employeeNote}),
            created_at => $a->{createdAt}, modified_at => $a->{updatedAt},
        };
    },
);

# What differs from the expected record: every mapped field as expected,
# every other field null (or an empty list), remote_data the provider's.
sub diff {
    my ($got, $want, $raw) = @_;
    my @bad = map { "$_: got " . $J->encode([ $got->{$_} ]) . ' want ' . $J->encode([ $want->{$_} ]) }
              grep { !exists $got->{$_} || !_same($got->{$_}, $want->{$_}) } sort keys %$want;
    for my $f (sort keys %$got) {
        next if exists $want->{$f} || $f eq 'remote_data';
        push @bad, "$f (unmapped) is " . $J->encode([ $got->{$f} ])
            unless !defined $got->{$f} || (ref $got->{$f} eq 'ARRAY' && !@{ $got->{$f} });
    }
    push @bad, 'remote_data is not the provider record'
        if defined $raw && !_same($got->{remote_data}, $raw);
    return @bad;
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

# -- the gateway ---------------------------------------------------------------

my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(heavenhr => $sb));

sub walk { my ($what, %q) = @_; $ng->walk($what, account => $ACCOUNT, %q) }
sub one  { my ($what, %q) = @_; $ng->unified($what, account => $ACCOUNT, %q) }

# Page walks: every record exactly once, at every limit.
for my $res (qw(employees companies groups locations timeoff_requests)) {
    my @want = sort map { $_->{id} } @{ $raw{$res} };
    my $small = @want < 20;
    for my $limit (($small ? (1) : ()), 7, 200, 500) {
        my ($records, $pages, $responses) = walk($res, limit => $limit, remote_data => 'false');
        my @ids = map { $_->{id} } @$records;
        is_deeply([sort @ids], \@want, "$res: limit $limit walks every record exactly once"
                                       . " ($pages pages)");
        ok(!(grep { $_->{json}{result_count} > $limit
                    || $_->{json}{result_count} != @{ $_->{json}{result} } } @$responses),
           "$res: limit $limit: no page holds more than the limit, result_count is right");
    }
}

# Every record, every field, against the provider's own record.
my %listed;
for my $res (qw(employees companies groups locations timeoff_requests)) {
    my ($records) = walk($res, limit => 500);
    my %by_id = map { $_->{id} => $_ } @$records;
    $listed{$res} = \%by_id;
    my @bad;
    for my $raw (@{ $raw{$res} }) {
        my $got = $by_id{ $raw->{id} };
        my @d = $got ? diff($got, $expect{$res}->($raw), $raw) : ('not listed');
        push @bad, "$raw->{id}: " . join('; ', @d) if @d;
    }
    is(scalar @bad, 0, "$res: every listed record maps every field from the provider record"
                       . ' (unmapped ones null)')
        or diag join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)];
}

# -- golden records, written out --------------------------------------------------

my %golden_list = (
    '_8bDnZIWoboVMRyUoHQyfFA_' => {    # the CEO
        id => '_8bDnZIWoboVMRyUoHQyfFA_', remote_id => '_8bDnZIWoboVMRyUoHQyfFA_',
        employee_number => '101', first_name => 'Katharina', last_name => 'Schäfer',
        display_name => 'Katharina Schäfer', employment_status => 'active',
        department => 'Management',
        groups => [ { id => '_evcX8lTdxDJ3IQw_KpNnvA_', name => 'Management',
                      type => 'department' } ],
        modified_at => '2026-02-24T06:21:08Z',
        email => 'katharina.schafer@nordlicht.example',
        job_title => undef, manager => undef, start_date => undef,    # not in the short record
    },
    '_uGPjfvN3wSVjc0KZDMbgvw_' => {    # no work e-mail
        id => '_uGPjfvN3wSVjc0KZDMbgvw_', remote_id => '_uGPjfvN3wSVjc0KZDMbgvw_',
        employee_number => '137', first_name => 'David', last_name => 'Wagner',
        display_name => 'David Wagner', employment_status => 'active',
        department => 'Sales DACH',
        groups => [ { id => '_GFIejMzdAOy-W9p1ltVoPQ_', name => 'Sales DACH',
                      type => 'department' } ],
        modified_at => '2024-06-02T13:04:54Z', email => undef,
    },
    '_XtxXj5kSa_wSaLiPraOYoA_' => {    # left the company
        employee_number => '144', first_name => 'Ayşe', last_name => 'Yılmaz',
        display_name => 'Ayşe Yılmaz', employment_status => 'inactive',
        department => 'Frontend', email => 'ayse.yilmaz@nordlicht.example',
        modified_at => '2025-06-17T14:37:09Z',
    },
);

my %golden_get = (
    '_8bDnZIWoboVMRyUoHQyfFA_' => {
        id => '_8bDnZIWoboVMRyUoHQyfFA_', remote_id => '_8bDnZIWoboVMRyUoHQyfFA_',
        employee_number => '101', first_name => 'Katharina', last_name => 'Schäfer',
        display_name => 'Katharina Schäfer', preferred_name => undef,
        email => 'katharina.schafer@nordlicht.example',
        personal_email => 'katharina.schafer0@mail.example',
        work_phone => undef, mobile_phone => '+49 151 0000000',
        department => 'Management', job_title => 'Chief Executive Officer',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2021-04-09', termination_date => undef, date_of_birth => '1975-06-19',
        gender => 'female',
        work_location => { id => '_o_VPsmsnZqtTZfMX-zHe1Q_' },
        manager => undef,
        company => { id => '_-73hgsBC3H5E6X_Gzt0hHQ_' },
        groups => [ { id => '_evcX8lTdxDJ3IQw_KpNnvA_', name => 'Management',
                      type => 'department' } ],
        avatar => undef,
        created_at => '2021-03-19T16:19:33Z', modified_at => '2026-02-24T06:21:08Z',
        custom_fields => { weeklyHours => 40, permanentOrTemporary => 'PERMANENT',
                           nationality => 'DE' },
    },
    '_uGPjfvN3wSVjc0KZDMbgvw_' => {
        id => '_uGPjfvN3wSVjc0KZDMbgvw_', employee_number => '137',
        email => undef, personal_email => 'david.wagner17@mail.example',
        mobile_phone => '+49 151 0134623', job_title => 'Sales Development Representative',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2014-12-28', termination_date => undef, date_of_birth => '1973-12-03',
        gender => 'male',
        work_location => { id => '_cn-CBgHkddSTM36ycmjVVg_' },
        manager => { id => '_OV1SQEbTltVxm0IBdhZd4A_', remote_id => '_OV1SQEbTltVxm0IBdhZd4A_' },
        company => { id => '_-73hgsBC3H5E6X_Gzt0hHQ_' },
        created_at => '2019-03-01T13:48:33Z', modified_at => '2024-06-02T13:04:54Z',
        custom_fields => { weeklyHours => 40, permanentOrTemporary => 'PERMANENT',
                           nationality => 'DE' },
    },
    '_XtxXj5kSa_wSaLiPraOYoA_' => {
        employment_status => 'inactive', termination_date => '2025-07-06',
        start_date => '2018-01-31', job_title => 'UI Developer',
        manager => { id => '_PjPgP9RndR0cCG8w8vihcQ_', remote_id => '_PjPgP9RndR0cCG8w8vihcQ_' },
        custom_fields => { weeklyHours => 38.5, permanentOrTemporary => 'PERMANENT',
                           nationality => 'TR' },
    },
    '_l-OW-aM1WcBXIN2sY-R_cQ_' => {    # DIVERSE, no private e-mail, no mobile
        first_name => 'Frieda', last_name => 'Kowalski', gender => 'non_binary',
        personal_email => undef, mobile_phone => undef, department => 'Product',
        manager => { id => '_YjSNQPhuuaW25lNDZijP0Q_', remote_id => '_YjSNQPhuuaW25lNDZijP0Q_' },
    },
    '_Wwx6TH71t6ALLw_cfTpj1A_' => {    # working student on a fixed-term contract
        first_name => 'Elias', last_name => 'Köhler', employment_type => 'working_student',
        termination_date => '2026-10-28', start_date => '2025-07-20',
        work_location => { id => '_A7uv8wId1fJWbH2xSMnQhg_' },
        company => { id => '_Oh97YFAS2iOSoZslSRIy1g_' },
        custom_fields => { weeklyHours => 20, permanentOrTemporary => 'TEMPORARY',
                           nationality => 'PL' },
    },
);

for my $id (sort keys %golden_list) {
    my $rec = $listed{employees}{$id};
    ok($rec, "employee $id is listed") or next;
    for my $f (sort keys %{ $golden_list{$id} }) {
        is_deeply($rec->{$f}, $golden_list{$id}{$f}, "list record $id: $f");
    }
}
for my $id (sort keys %golden_get) {
    my $res = one("employees/$id");
    is($res->{status}, 200, "get employee $id") or next;
    my $rec = $res->{json}{result};
    for my $f (sort keys %{ $golden_get{$id} }) {
        is_deeply($rec->{$f}, $golden_get{$id}{$f}, "get record $id: $f");
    }
    is_deeply($rec->{remote_data}, $full{$id}, "get record $id: remote_data is the full object");
}

# Every employee's get, against the full object; the list's fields agree.
{
    my (@bad, @disagree);
    for my $e (@{ $raw{employees} }) {
        my $res = one("employees/$e->{id}", remote_data => 'false');
        my $want = employee_from_get($full{ $e->{id} });
        if ($res->{status} != 200 || diff($res->{json}{result}, $want)) {
            push @bad, $e->{id};
            next;
        }
        my $list = $listed{employees}{ $e->{id} };
        push @disagree, $e->{id}
            if grep { !_same($res->{json}{result}{$_}, $list->{$_}) }
               grep { $_ ne 'remote_data' } keys %{ employee_from_list($e) };
    }
    is(scalar @bad, 0, 'every employee get maps every field from the full object')
        or diag join "\n", $bad[0],
                diff(one("employees/$bad[0]")->{json}{result}, employee_from_get($full{ $bad[0] }));
    is(scalar @disagree, 0, 'a get agrees with the list record on the fields both carry')
        or diag "@disagree";
}

# A get per resource equals its list record; unknown ids are 404s.
for my $res (qw(companies groups locations timeoff_requests)) {
    for my $raw (@{ $raw{$res} }[0, -1]) {
        my $got = one("$res/$raw->{id}");
        is($got->{status}, 200, "$res: get $raw->{id}");
        is_deeply($got->{json}{result}, $listed{$res}{ $raw->{id} },
                  "$res: get $raw->{id} equals the list record");
    }
}
for my $res (qw(employees companies groups locations timeoff_requests)) {
    my $got = one("$res/_AAAAAAAAAAAAAAAAAAAAAA_");
    is($got->{status}, 404, "$res: an unknown id is a 404");
    is($got->{json}{statusCode}, 404, "$res: 404 envelope");
    is($got->{json}{details}{resource}, $res, "$res: 404 names the resource");
}
{
    # The id goes into the upstream path percent-encoded.
    my $before = $sb->stats->{by_path};
    my $got = one('employees/a%3Fpage%3D1');
    is($got->{status}, 404, 'an id with "?" is a 404, not another call');
    my $after = $sb->stats->{by_path};
    is(($after->{'/employees/a%3Fpage%3D1'} // 0) - ($before->{'/employees/a%3Fpage%3D1'} // 0),
       1, 'the id was percent-encoded into the upstream path');
}

# -- list filters ------------------------------------------------------------------

{
    my @all = @{ $raw{timeoff_requests} };
    my $window = up_all('/absences', startDate => '2026-01-01', endDate => '2026-01-31');
    ok(@$window > 0 && @$window < @all, 'the sandbox has absences in January 2026 ('
                                        . scalar(@$window) . ')');
    my ($got) = walk('timeoff_requests', start_date => '2026-01-01', end_date => '2026-01-31',
                     limit => 7);
    is_deeply([sort map { $_->{id} } @$got], [sort map { $_->{id} } @$window],
              'start_date/end_date: exactly the provider\'s absences of the window');
    ok(!(grep { $_->{end_time} lt '2026-01-01' || $_->{start_time} gt '2026-01-31' } @$got),
       'every absence overlaps the window');

    my ($after) = walk('timeoff_requests', start_date => '2026-06-01', limit => 200);
    my $up_after = up_all('/absences', startDate => '2026-06-01');
    is_deeply([sort map { $_->{id} } @$after], [sort map { $_->{id} } @$up_after],
              'start_date alone');

    my $emp = $all[0]{employeeId};
    my @mine = grep { $_->{employeeId} eq $emp } @all;
    my ($got_mine) = walk('timeoff_requests', employee_id => $emp, limit => 2);
    is_deeply([sort map { $_->{id} } @$got_mine], [sort map { $_->{id} } @mine],
              'employee_id: exactly that employee\'s absences (' . scalar(@mine) . ')');

    my @both = grep { $_->{endDate} ge '2025-01-01' && $_->{startDate} le '2025-06-30' } @mine;
    my ($got_both) = walk('timeoff_requests', employee_id => $emp, start_date => '2025-01-01',
                          end_date => '2025-06-30');
    is_deeply([sort map { $_->{id} } @$got_both], [sort map { $_->{id} } @both],
              'employee_id with a window');

    my $res = one('timeoff_requests', employee_id => '_AAAAAAAAAAAAAAAAAAAAAA_');
    is($res->{status}, 200, 'an employee without absences (the provider says 404) is a 200');
    is_deeply([ $res->{json}{result}, $res->{json}{next_cursor} ], [ [], undef ],
              '... with an empty page and no cursor');

    $res = one('timeoff_requests', employee_id => 'not-an-id');
    is($res->{status}, 400, 'an employee_id that fails the table\'s pattern is a 400');
    is($res->{json}{details}{parameter}, 'employee_id', '... naming the parameter');

    $res = one('timeoff_requests', start_date => '2026-1-1');
    is($res->{status}, 400, 'a malformed start_date is a 400');

    $res = one('employees', start_date => '2026-01-01');
    is($res->{status}, 400, 'the employee list takes no time-off filters');

    # A cursor is bound to its filters.
    my $page = one('timeoff_requests', start_date => '2026-01-01', end_date => '2026-01-31',
                   limit => 3);
    my $cursor = $page->{json}{next_cursor};
    ok(defined $cursor, 'a filtered page has a cursor');
    $res = one('timeoff_requests', start_date => '2026-01-01', end_date => '2026-01-31',
               limit => 3, cursor => $cursor);
    is($res->{status}, 200, 'the cursor works with the same filters');
    $res = one('timeoff_requests', start_date => '2025-01-01', end_date => '2026-01-31',
               limit => 3, cursor => $cursor);
    is($res->{status}, 400, 'the cursor with another start_date is a 400');
    $res = one('timeoff_requests', limit => 3, cursor => $cursor);
    is($res->{status}, 400, 'the cursor without its filters is a 400');
}

# -- the token -----------------------------------------------------------------------

{
    my $stats = $sb->stats;
    cmp_ok($stats->{requests}, '>', 300, 'many data calls were made (' . $stats->{requests} . ')');
    is($stats->{by_path}{$TOKEN_PATH}, 1,
       'one token exchange served them all (' . $stats->{requests} . ' requests)');
}

# A data call answered 401: a new sandbox process on the same port knows
# none of the old tokens, while nginx still holds its cached one.
{
    my $port = $sb->port;
    $sb->stop;
    $sb = HRIS::Sandbox->start('heavenhr', port => $port);
    my $res = one('employees', limit => 5);
    is($res->{status}, 200, 'a data call refused with 401: the client still gets 200')
        or diag $res->{body};
    is($res->{json}{result_count}, 5, '... with the page');
    my $stats = $sb->stats->{by_path};
    is($stats->{$TOKEN_PATH}, 1, '... after one new token exchange');
    is($stats->{'/employees'}, 2, '... and the data call made twice (refused, then retried)');
    $res = one('companies');
    is($res->{status}, 200, 'the next request works');
    is($sb->stats->{by_path}{$TOKEN_PATH}, 1, '... with the renewed token');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

# Wrong client secret: the exchange is refused.
{
    my $bad = 'wrong-secret-7d1f0c3e9a';
    my $ng2 = HRIS::Nginx->start(log_level => 'debug',
                                 accounts => HRIS::Nginx::accounts_for(heavenhr => $sb,
        extra => { $ACCOUNT => { credentials => { client_id => $CLIENT_ID,
                                                  client_secret => $bad } } }));
    my $before = $sb->stats->{by_path};
    my $res = $ng2->unified('employees', account => $ACCOUNT);
    is($res->{status}, 401, 'wrong client secret: 401');
    is($res->{json}{statusCode}, 401, '... in the error envelope');
    is($res->{json}{error}, 'Unauthorized', '... reason phrase');
    like($res->{json}{message}, qr/exchang/i, '... the message names the exchange')
        or diag $res->{json}{message};
    like($res->{json}{message}, qr/token/i, '... and the token');
    is($res->{json}{details}{upstream_status}, 401, '... details.upstream_status');
    my $after = $sb->stats->{by_path};
    is(($after->{$TOKEN_PATH} // 0) - ($before->{$TOKEN_PATH} // 0), 1,
       '... after one exchange attempt');
    is($after->{'/employees'} // 0, $before->{'/employees'} // 0, '... and no data call');
    $res = $ng2->unified('companies', account => $ACCOUNT);
    is($res->{status}, 401, 'the next request is refused as well');
    $ng2->stop;
    my $basic = encode_base64("$CLIENT_ID:$bad", '');
    my $log = $ng2->error_log;
    for my $text ($res->{body}, $log) {
        unlike($text, qr/\Q$bad\E/, 'the secret is not in the answer or the log');
        unlike($text, qr/\Q$basic\E/, 'nor the Basic credentials');
        unlike($text, qr/\Q$SECRET\E/, 'nor the right secret');
    }
}

# A short-lived token is renewed when it expires.
{
    my $sb2 = HRIS::Sandbox->start('heavenhr', args => ['--token-ttl', '2']);
    my $ng3 = HRIS::Nginx->start(log_level => 'debug',
                                 accounts => HRIS::Nginx::accounts_for(heavenhr => $sb2));
    my $res = $ng3->unified('companies', account => $ACCOUNT);
    is($res->{status}, 200, 'token lifetime 2 s: first request');
    is($sb2->stats->{by_path}{$TOKEN_PATH}, 1, '... one exchange');
    sleep 2.5;    # the token has expired at the provider
    my $calls = $sb2->stats->{by_path}{'/companies'};
    $res = $ng3->unified('companies', account => $ACCOUNT);
    is($res->{status}, 200, 'a request after the token expired still works') or diag $res->{body};
    is($sb2->stats->{by_path}{$TOKEN_PATH}, 2, '... with a second exchange');
    is($sb2->stats->{by_path}{'/companies'} - $calls, 1,
       '... made before the data call (renewed ahead, not after a refusal)');
    $ng3->stop;
    unlike($ng3->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');
    # the sandbox's tokens are UUIDs
    unlike($ng3->error_log, qr/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/,
           'no access token in the (debug) error log');
    unlike($ng3->error_log, qr/\Q$SECRET\E/, 'nor the client secret');
    $sb2->stop;
}

# Two workers, a fresh nginx, 20 concurrent requests: one exchange. The
# exchange is slowed down so that every request arrives while it runs; a
# reuseport listener spreads the connections over both workers.
{
    $sb->reset;
    $sb->fault({ fault => 'slow', delay_ms => 800, path => $TOKEN_PATH, count => -1 });
    my $logdir = tempdir('hris-70-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port2 = HRIS::Nginx::free_port();
    my $ng4 = HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(heavenhr => $sb),
        workers  => 2,
        http     => q{log_format hris_pid '$pid $status';},
        server   => "listen 127.0.0.1:$port2 reuseport;",
        location => "access_log $logdir/access.log hris_pid;",
    );
    my $url = "http://127.0.0.1:$port2/unified/hris/companies?integrated_account_id=$ACCOUNT";
    my %kids;
    for my $n (1 .. 20) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $r = HTTP::Tiny->new(timeout => 20, keep_alive => 0)->get($url,
                { headers => { Authorization => "Bearer $HRIS::Nginx::KEY" } });
            my $count = eval { JSON::PP->new->decode($r->{content})->{result_count} } // -1;
            open my $fh, '>', "$logdir/res.$n" or POSIX::_exit(1);
            print $fh "$r->{status} $count\n";
            close $fh;
            POSIX::_exit(0);    # no destructors: they would stop the parent's servers
        }
        $kids{$pid} = $n;
    }
    waitpid($_, 0) for keys %kids;
    my @answers = map {
        open my $fh, '<', "$logdir/res.$_" or die "res.$_: $!";
        my $line = <$fh>; chomp $line; $line;
    } 1 .. 20;
    is_deeply(\@answers, [ ('200 3') x 20 ], '20 concurrent requests all answered 200 with the page');
    is($sb->stats->{by_path}{$TOKEN_PATH}, 1, '... after exactly one token exchange');
    is($sb->stats->{by_path}{'/companies'}, 20, '... and one data call each');
    $ng4->stop;
    open my $fh, '<', "$logdir/access.log" or die "access.log: $!";
    my %pids = map { (split ' ')[0] => 1 } <$fh>;
    is(scalar keys %pids, 2, 'both workers served some of them');
    unlike($ng4->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');
    $sb->clear_faults;
}

done_testing;
