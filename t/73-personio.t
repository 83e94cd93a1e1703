#!/usr/bin/perl
# The unified API over the Personio sandbox (mappings/personio.json):
# employees (record-offset paging), time-off requests (1-based page
# numbers), time-off types and balances (read per employee). Every walk
# returns every sandbox record exactly once; golden records map field by
# field; gets and 404s; the time-off filters; and the token the gateway
# exchanges the client credentials for: one exchange for many requests and
# for concurrent requests on two workers, renewal after expiry and after a
# 401, the token Personio echoes in `authorization` (one-time tokens), a
# wrong secret, and the X-Personio-App-ID header.

use strict;
use warnings;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

# Strings are compared as UTF-8 bytes: the harness decodes JSON without
# ->utf8, and so does this file (no `use utf8`: literals are bytes too).

my $ACCOUNT = 'acme-personio';
my %CRED = %{ $HRIS::Nginx::PROVIDER{personio}{credentials} };
my $J = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 0);

# -- the provider itself, read directly --------------------------------------

sub upstream_token {
    my ($sb) = @_;
    my $res = $http->post($sb->url . "/v1/auth?client_id=$CRED{client_id}"
                          . "&client_secret=$CRED{client_secret}");
    die "sandbox /v1/auth: $res->{status} $res->{content}" unless $res->{status} == 200;
    return $J->decode($res->{content})->{data}{token};
}

sub upstream {
    my ($sb, $token, $path) = @_;
    my $res = $http->get($sb->url . $path, { headers => {
        Accept => 'application/json', Authorization => "Bearer $token" } });
    die "sandbox $path: $res->{status} $res->{content}" unless $res->{status} == 200;
    return $J->decode($res->{content});
}

# Every employee id, paging by record offset.
sub upstream_employee_ids {
    my ($sb, $token) = @_;
    my @ids;
    for (my $offset = 0; ; $offset += 100) {
        my $page = upstream($sb, $token, "/v1/company/employees?limit=100&offset=$offset");
        push @ids, map { $_->{attributes}{id}{value} } @{ $page->{data} };
        last if $offset + 100 >= $page->{metadata}{total_elements};
    }
    return @ids;
}

# Every time-off id (1-based page numbers); $query adds filters.
sub upstream_time_off_ids {
    my ($sb, $token, $query) = @_;
    my @ids;
    for (my $page = 1; ; $page++) {
        my $body = upstream($sb, $token, "/v1/company/time-offs?limit=200&offset=$page"
                                         . ($query ? "&$query" : ''));
        push @ids, map { $_->{attributes}{id} } @{ $body->{data} };
        last if $page >= $body->{metadata}{total_pages};
    }
    return @ids;
}

# -- helpers --------------------------------------------------------------------

# The harness's walk, failing a test instead of dying on an error page.
sub walk {
    my ($ng, $what, %q) = @_;
    my @got = eval { $ng->walk($what, %q) };
    return @got unless $@;
    fail("walk of $what: $@");
    return ([], 0, []);
}

# Walk a list and check that no page holds more records than asked for.
sub walk_ids {
    my ($ng, $what, %q) = @_;
    my ($records, $pages, $responses) = walk($ng, $what, account => $ACCOUNT,
                                             remote_data => 'false', %q);
    my @over = grep { $_->{json}{result_count} != @{ $_->{json}{result} }
                      || ($q{limit} && $_->{json}{result_count} > $q{limit}) } @$responses;
    ok(!@over, "$what limit " . ($q{limit} // '-') . ": result_count matches and "
               . "stays within the limit on every page");
    return ([map { $_->{id} } @$records], $pages, $records);
}

sub same_ids {
    my ($got, $want, $name) = @_;
    my %seen;
    my @dups = grep { $seen{$_}++ } @$got;
    ok(!@dups, "$name: no record twice") or diag "twice: @dups[0 .. ($#dups > 9 ? 9 : $#dups)]";
    is_deeply([sort @$got], [sort @$want], "$name: every record of the sandbox");
}

# N requests at once (forked children released together): a list of
# [status, X-Worker, Retry-After] per answer.
sub burst { HRIS::Nginx::burst(@_) }

# -- the data set, straight from the sandbox ----------------------------------

my $sb = HRIS::Sandbox->start('personio');
my $app_sb = HRIS::Sandbox->start('personio', args => ['--require-app-id']);

my $token = upstream_token($sb);
my @emp_ids = upstream_employee_ids($sb, $token);
is(scalar @emp_ids, 272, 'the sandbox holds 272 employees');
my @off_ids = upstream_time_off_ids($sb, $token);
is(scalar @off_ids, 587, 'the sandbox shows 587 time-offs');
my @type_ids = map { $_->{attributes}{id} }
               @{ upstream($sb, $token, '/v1/company/time-off-types?limit=200')->{data} };
is(scalar @type_ids, 6, 'six time-off types');
my @balance_ids;
for my $id (@emp_ids) {
    push @balance_ids, map { "$id-$_->{id}" }
        @{ upstream($sb, $token, "/v1/company/employees/$id/absences/balance")->{data} };
}
cmp_ok(scalar @balance_ids, '>', 700, 'balances: ' . scalar @balance_ids);

my %window = (start_date => '2026-01-01', end_date => '2026-01-31');
my @window_ids = upstream_time_off_ids($sb, $token, 'start_date=2026-01-01&end_date=2026-01-31');
my @emp_off_ids = upstream_time_off_ids($sb, $token, 'employees[]=2040687');
my @both_ids = upstream_time_off_ids($sb, $token,
                                     'employees[]=2040687&start_date=2026-01-01&end_date=2026-12-31');

# From here on the sandbox counts only the gateway's requests (its tokens
# stay valid across a reset).
$sb->reset;

my $accounts = HRIS::Nginx::accounts_for(personio => $sb);
my %base = %{ $accounts->{accounts}[0] };
push @{ $accounts->{accounts} },
    { %base, id => 'acme-wrong',
      credentials => { client_id => $CRED{client_id}, client_secret => 'Wr0ng-S3cret-0f-acme-xyz' } },
    { %base, id => 'acme-app', base_url => $app_sb->url, context => { app_id => 'ACME_HRIS' } },
    { %base, id => 'acme-noapp', base_url => $app_sb->url };
my $ng = HRIS::Nginx->start(accounts => $accounts);

# -- walks: every record exactly once ------------------------------------------

# The walks at 100, 200 and 500 keep remote_data: the golden records below
# come from them.
my (%emp, %off, %bal, @types);
for my $limit (1, 7, 100, 500) {
    my ($ids, $pages, $recs) = walk_ids($ng, 'employees', limit => $limit,
                                        $limit == 100 ? (remote_data => 'true') : ());
    %emp = map { $_->{id} => $_ } @$recs if $limit == 100;
    same_ids($ids, \@emp_ids, "employees limit $limit ($pages pages)");
    cmp_ok($pages, '>=', int((272 + $limit - 1) / $limit),
           "employees limit $limit: at least ceil(272/limit) pages") if $limit <= 100;
}
for my $limit (7, 200, 500) {
    my ($ids, $pages, $recs) = walk_ids($ng, 'timeoff_requests', limit => $limit,
                                        $limit == 200 ? (remote_data => 'true') : ());
    %off = map { $_->{id} => $_ } @$recs if $limit == 200;
    same_ids($ids, \@off_ids, "timeoff_requests limit $limit ($pages pages)");
}
for my $limit (undef, 2) {
    my ($ids, $pages, $recs) = walk_ids($ng, 'timeoff_types',
                                        defined $limit ? (limit => $limit) : ());
    @types = @$recs unless defined $limit;
    same_ids($ids, \@type_ids, 'timeoff_types limit ' . ($limit // 'default') . " ($pages pages)");
}
for my $limit (7, 500) {
    my ($ids, $pages, $recs) = walk_ids($ng, 'timeoff_balances', limit => $limit,
                                        $limit == 500 ? (remote_data => 'true') : ());
    %bal = map { $_->{id} => $_ } @$recs if $limit == 500;
    same_ids($ids, \@balance_ids, "timeoff_balances limit $limit ($pages pages)");
}

# -- golden employees ------------------------------------------------------------

my $all = [ values %emp ];
my $sandbox_host = $sb->url;

my %golden = (
    '2040634' => {          # active; supervisor, department, team, one cost center
        id => '2040634', remote_id => '2040634', employee_number => undef,
        first_name => 'Björn', last_name => 'Ødegaard', display_name => 'Björn Ødegaard',
        preferred_name => 'Björn Ødegaard',
        email => 'bjorn.odegaard@sandbox-demo.example', personal_email => undef,
        work_phone => undef, mobile_phone => undef,
        department => 'Product', job_title => 'Product Designer',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2016-06-05', termination_date => undef,
        date_of_birth => '2001-07-26', gender => 'male',
        work_location => { id => '131018', name => 'Remote' },
        manager => { id => '2040618', remote_id => '2040618', name => 'Mehmet Yılmaz' },
        company => { id => '7033', name => 'Sandbox Demo GmbH' },
        groups => [ { id => '281527', name => 'Product', type => 'department' },
                    { id => '59061', name => 'Discovery', type => 'team' },
                    { id => '82958', name => 'R&D', type => 'cost_center' } ],
        avatar => "$sandbox_host/v1/company/employees/2040634/profile-picture",
        created_at => '2017-05-23T11:25:22Z', modified_at => '2026-04-02T11:18:58Z',
        custom_fields => { dynamic_21827 => 'DE85 8086 6024 0357 4781 00',
                           dynamic_24407 => undef, dynamic_1203344 => 'S' },
    },
    '2040687' => {          # on leave
        id => '2040687', remote_id => '2040687', employee_number => undef,
        first_name => 'Tobias', last_name => "O'Connor", display_name => "Tobias O'Connor",
        preferred_name => "Tobias O'Connor",
        email => 'tobias.oconnor@sandbox-demo.example', personal_email => undef,
        work_phone => undef, mobile_phone => undef,
        department => 'Engineering', job_title => 'DevOps Engineer',
        employment_status => 'on_leave', employment_type => 'full_time',
        start_date => '2014-06-22', termination_date => undef,
        date_of_birth => '2003-06-10', gender => 'male',
        work_location => { id => '131015', name => 'Berlin' },
        manager => { id => '2040640', remote_id => '2040640', name => 'Tobias Jones' },
        company => { id => '7033', name => 'Sandbox Demo GmbH' },
        groups => [ { id => '281522', name => 'Engineering', type => 'department' },
                    { id => '59026', name => 'T_X', type => 'team' },
                    { id => '82958', name => 'R&D', type => 'cost_center' } ],
        avatar => "$sandbox_host/v1/company/employees/2040687/profile-picture",
        created_at => '2017-05-23T16:58:17Z', modified_at => '2025-08-04T07:38:16Z',
        custom_fields => { dynamic_21827 => 'DE62 1067 7407 7239 0250 00',
                           dynamic_24407 => undef, dynamic_1203344 => 'XS' },
    },
    '2040790' => {          # onboarding: hired in the future
        employment_status => 'pending', start_date => '2026-08-27',
        created_at => '2026-06-01T15:42:43Z',
        groups => [ { id => '281522', name => 'Engineering', type => 'department' },
                    { id => '59026', name => 'T_X', type => 'team' } ],   # no cost center
    },
    '2040601' => {          # the CEO: nobody above, winter offset (+01:00) hire date
        first_name => 'Alexander', last_name => 'Bergmann', job_title => 'CEO',
        manager => undef, start_date => '2014-11-08', date_of_birth => '1995-11-11',
        groups => [ { id => '281528', name => 'Operations', type => 'department' },
                    { id => '82960', name => 'G&A', type => 'cost_center' } ],
    },
    '2040631' => {          # cost centers split 70/30, no team, London subcompany
        groups => [ { id => '281528', name => 'Operations', type => 'department' },
                    { id => '82960', name => 'G&A', type => 'cost_center' },
                    { id => '82957', name => 'Cost center 1', type => 'cost_center' } ],
        company => { id => '7034', name => 'Sandbox Demo Ltd.' },
        work_location => { id => '131016', name => 'London' },
        avatar => undef, start_date => '2018-02-01', display_name => 'Julia Groß',
        custom_fields => { dynamic_21827 => 'GB94 SBDX 1668 8923 528113',
                           dynamic_24407 => undef, dynamic_1203344 => 'M' },
    },
    '2040672' => {          # inactive, summer-offset termination date, custom title
        display_name => 'Łukasz Wójcik', employment_status => 'inactive',
        start_date => '2021-01-22', termination_date => '2022-05-18',
        manager => { id => '2040634', remote_id => '2040634', name => 'Björn Ødegaard' },
        custom_fields => { dynamic_21827 => 'DE70 8548 8293 2856 5449 00',
                           dynamic_24407 => 'Dr', dynamic_1203344 => 'XS' },
    },
    '2040658' => {          # no department: neither the field nor a group
        department => undef,
        groups => [ { id => '82959', name => 'Go-to-market', type => 'cost_center' } ],
    },
    '2040647' => { work_location => undef },                          # no office
    '2040766' => { employment_type => 'contract' },                   # external
);

for my $id (sort keys %golden) {
    my $rec = $emp{$id};
    ok($rec, "employee $id listed") or next;
    for my $f (sort keys %{ $golden{$id} }) {
        is_deeply($rec->{$f}, $golden{$id}{$f}, "employee $id: $f");
    }
}
for my $id ('2040634', '2040687') {
    my %keys = map { $_ => 1 } keys %{ $emp{$id} };
    delete @keys{ keys %{ $golden{$id} }, 'remote_data' };
    my @left = grep { defined $emp{$id}{$_} } sort keys %keys;
    ok(!@left, "employee $id: no field beyond the golden ones has a value") or diag "@left";
}

{
    # remote_data is Personio's record: the attribute envelopes, unmodified.
    my $attrs = $emp{'2040634'}{remote_data}{attributes};
    is_deeply($attrs->{first_name}, { label => 'First name', value => 'Björn',
                                      type => 'standard', universal_id => 'first_name' },
              'remote_data keeps the attribute envelope');
    is_deeply($attrs->{dynamic_24407}, { label => 'Titel', value => '', type => 'standard',
                                         universal_id => undef },
              'remote_data keeps the empty custom attribute the record maps to null');
    is($attrs->{hire_date}{value}, '2016-06-05T00:00:00+02:00',
       'remote_data keeps the offset date start_date normalizes');
    is($attrs->{supervisor}{value}{attributes}{id}{value}, 2040618,
       'remote_data keeps the supervisor envelope');
    my %status;
    $status{ $_->{remote_data}{attributes}{status}{value} }{ $_->{employment_status} }++ for @$all;
    is_deeply({ map { $_ => [sort keys %{ $status{$_} }] } keys %status },
              { active => ['active'], inactive => ['inactive'], leave => ['on_leave'],
                onboarding => ['pending'] },
              'every Personio status maps: active, inactive, leave -> on_leave, '
              . 'onboarding -> pending');
    ok(!(grep { defined $_->{start_date} && $_->{start_date} !~ /^\d{4}-\d\d-\d\d$/ } @$all),
       'every start_date is YYYY-MM-DD');
}

# -- golden time-offs ----------------------------------------------------------------

my $offs = [ values %off ];

my %golden_off = (
    '17205942' => {
        id => '17205942', remote_id => '17205942',
        employee => { id => '2041076', remote_id => '2041076', name => 'Zoë Zimmermann' },
        approver => undef, status => 'approved', units => 'days', amount => 1,
        timeoff_type => { id => '195824', remote_id => '195824', name => 'Paid vacation' },
        request_type => 'vacation', start_time => '2025-01-01', end_time => '2025-01-01',
        employee_note => undef,
        created_at => '2024-11-11T06:56:32Z', modified_at => '2024-11-11T07:24:12Z',
    },
    '17205991' => {         # a half day (half_day_start) Friday before a weekend
        employee => { id => '2041046', remote_id => '2041046', name => 'Bärbel Zimmermann' },
        status => 'approved', amount => 0.5, start_time => '2025-01-24',
        end_time => '2025-01-26', request_type => 'vacation',
    },
    '17206438' => {         # Personio "pending"
        employee => { id => '2041295', remote_id => '2041295', name => 'Oliver Dubois' },
        status => 'requested', amount => 1, employee_note => "Doctor's appointment",
        start_time => '2025-09-17', end_time => '2025-09-17',
        created_at => '2025-07-31T05:42:18Z', modified_at => '2025-07-31T16:31:39Z',
    },
    '17205998' => {         # parental leave (category maternity_parental_leave)
        employee => { id => '2041155', remote_id => '2041155', name => 'Hiroshi Schneider' },
        timeoff_type => { id => '195827', remote_id => '195827', name => 'Parental leave' },
        request_type => 'parental', amount => 15,
        start_time => '2025-02-04', end_time => '2025-02-24',
    },
);
for my $id (sort keys %golden_off) {
    my $rec = $off{$id};
    ok($rec, "time-off $id listed") or next;
    for my $f (sort keys %{ $golden_off{$id} }) {
        is_deeply($rec->{$f}, $golden_off{$id}{$f}, "time-off $id: $f");
    }
}
ok(!ref $off{'17205991'}{amount} && JSON::PP->new->encode([$off{'17205991'}{amount}]) eq '[0.5]',
   'a half day is the JSON number 0.5');
{
    my %status;
    $status{ $_->{remote_data}{attributes}{status} }{ $_->{status} }++ for @$offs;
    is_deeply({ map { $_ => [sort keys %{ $status{$_} }] } keys %status },
              { approved => ['approved'], pending => ['requested'], requested => ['requested'] },
              'time-off statuses: approved, pending and requested -> requested');
    my @mismatch = grep { $_->{amount} != $_->{remote_data}{attributes}{days_count} } @$offs;
    ok(!@mismatch, 'amount is days_count on every time-off');
}

# -- types and balances -------------------------------------------------------------------

{
    is_deeply([ map { [ @$_{qw(id remote_id name unit request_type)} ] } @types ],
              [ [ '195824', '195824', 'Paid vacation', 'days', 'vacation' ],
                [ '195825', '195825', 'Sick leave', 'days', 'sick' ],
                [ '195826', '195826', 'Unpaid leave', 'days', 'other' ],
                [ '195827', '195827', 'Parental leave', 'days', 'parental' ],
                [ '195828', '195828', 'Special leave', 'days', 'other' ],
                [ '195829', '195829', 'Home office', 'hours', 'other' ] ],
              'time-off types: ids, names, units, request types');

    my $balances = [ values %bal ];
    my $ref = { id => '2040618', remote_id => '2040618' };
    my %want = (
        '2040618-195824' => { balance => 24, policy_type => 'vacation',
                              timeoff_type => { id => '195824', remote_id => '195824',
                                                name => 'Paid vacation' } },
        '2040618-195825' => { balance => 0, policy_type => 'sick',
                              timeoff_type => { id => '195825', remote_id => '195825',
                                                name => 'Sick leave' } },
        '2040618-195828' => { balance => 2, policy_type => 'other',
                              timeoff_type => { id => '195828', remote_id => '195828',
                                                name => 'Special leave' } },
        '2040601-195824' => { balance => 25, policy_type => 'vacation',
                              employee => { id => '2040601', remote_id => '2040601' } },
    );
    for my $id (sort keys %want) {
        my $rec = $bal{$id};
        ok($rec, "balance $id listed") or next;
        is($rec->{remote_id}, $id, "balance $id: remote_id");
        is($rec->{units}, 'days', "balance $id: units");
        is_deeply($rec->{employee}, $ref, "balance $id: employee") if $id =~ /^2040618/;
        is_deeply($rec->{$_}, $want{$id}{$_}, "balance $id: $_") for sort keys %{ $want{$id} };
    }
    is($bal{'2040618-195824'}{remote_data}{available_balance}, 22.5,
       'balance remote_data is the provider entry');
    my %per = map { $_->{employee}{id} => 1 } @$balances;
    ok(!$per{'2040766'}, 'an external employee (no entitlements) has no balances');
}

# -- gets and 404s ----------------------------------------------------------------------------

for my $case (['employees', '2040634', $emp{'2040634'}], ['employees', '2040687', $emp{'2040687'}],
              ['timeoff_requests', '17205991', $off{'17205991'}],
              ['timeoff_requests', '17205998', $off{'17205998'}]) {
    my ($what, $id, $listed) = @$case;
    my $res = $ng->unified("$what/$id", account => $ACCOUNT);
    is($res->{status}, 200, "get $what/$id");
    is_deeply($res->{json}{result}, $listed, "get $what/$id equals its list record");
}
{
    my $res = $ng->unified('timeoff_types/195827', account => $ACCOUNT, remote_data => 'false');
    is($res->{status}, 200, 'get timeoff_types/195827 (read from the list)');
    is_deeply($res->{json}{result}, (grep { $_->{id} eq '195827' } @types)[0],
              'get timeoff_types/195827 equals its list record');
}
for my $case (['employees', '9999999'], ['employees', '2040602x'],
              ['timeoff_requests', '17205948'],      # rejected: Personio hides it
              ['timeoff_requests', '99999999'], ['timeoff_types', '4242']) {
    my ($what, $id) = @$case;
    my $res = $ng->unified("$what/$id", account => $ACCOUNT);
    is($res->{status}, 404, "get $what/$id: 404");
    is($res->{json} && $res->{json}{statusCode}, 404, "get $what/$id: JSON error body");
}

# -- filters ------------------------------------------------------------------------------------

{
    my ($ids) = walk_ids($ng, 'timeoff_requests', limit => 20, %window);
    ok(@$ids > 0 && @$ids < @off_ids, 'start_date/end_date narrow the list (' . @$ids . ')');
    same_ids($ids, \@window_ids, 'timeoff_requests in January 2026');
    my ($recs) = walk($ng, 'timeoff_requests', account => $ACCOUNT, limit => 500, %window);
    ok(!(grep { $_->{end_time} lt '2026-01-01' || $_->{start_time} gt '2026-01-31' } @$recs),
       'every time-off in the window overlaps it');

    ($ids) = walk_ids($ng, 'timeoff_requests', limit => 2, employee_id => '2040687');
    ok(@$ids >= 2, 'employee 2040687 has time-offs (' . @$ids . ')');
    same_ids($ids, \@emp_off_ids, 'timeoff_requests of employee 2040687');

    ($ids) = walk_ids($ng, 'timeoff_requests', employee_id => '2040687',
                      start_date => '2026-01-01', end_date => '2026-12-31');
    same_ids($ids, \@both_ids, 'timeoff_requests of employee 2040687 in 2026');

    for my $bad ([start_date => '2026-1-1'], [employee_id => 'abc'], [department => 'x']) {
        my $res = $ng->unified('timeoff_requests', account => $ACCOUNT, @$bad);
        is($res->{status}, 400, "timeoff_requests with $bad->[0]=$bad->[1]: 400");
    }
}

# -- the token: one exchange for all of the above -------------------------------------------

{
    my $stats = $sb->stats;
    cmp_ok($stats->{requests}, '>', 500, "the gateway made $stats->{requests} calls");
    is($stats->{by_path}{'/v1/auth'}, 1, 'exactly one token exchange for all of them');
}

# -- wrong secret -----------------------------------------------------------------------------

{
    my $res = $ng->unified('employees', account => 'acme-wrong');
    is($res->{status}, 401, 'a wrong client secret: 401');
    like($res->{json}{message}, qr/exchange/i, 'the message names the token exchange');
    is($res->{json}{details}{upstream_status}, 401, 'details.upstream_status');
    unlike($res->{body}, qr/Wr0ng-S3cret|$CRED{client_secret}|papi-/,
           'no secret and no token in the answer');
    $ng->unified('timeoff_types', account => 'acme-wrong');
    my $log = $ng->error_log;
    like($log, qr/acme-wrong/, 'the error log names the request');
    unlike($log, qr/Wr0ng-S3cret|$CRED{client_secret}|papi-/,
           'no secret and no token in the error log');
}

# -- X-Personio-App-ID -----------------------------------------------------------------------

{
    my ($recs) = walk($ng, 'employees', account => 'acme-app', limit => 100,
                           remote_data => 'false');
    same_ids([map { $_->{id} } @$recs], \@emp_ids,
             'with context.app_id the header is sent: the walk works');
    my $res = $ng->unified('employees', account => 'acme-noapp');
    is($res->{status}, 422, "without app_id the sandbox's 400 is the contract's 422");
    is($res->{json}{details}{upstream_status}, 400, 'details.upstream_status 400');
    like($res->{body}, qr/X-Personio-App-ID/, "the provider's message is in the answer");
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

# -- one exchange for concurrent requests on two workers ---------------------------------------

{
    $sb->reset;
    # The exchange answers slowly, so every request arrives while it runs.
    $sb->fault({ fault => 'slow', path => '/v1/auth', delay_ms => 500, count => 1 });
    my $port2 = HRIS::Nginx::free_port();
    my $ng2 = HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(personio => $sb), workers => 2,
        server => "listen 127.0.0.1:$port2 reuseport;",        # spread over both workers
        location => 'add_header X-Worker $pid always;');
    my @answers = burst($port2, "/unified/hris/timeoff_types?integrated_account_id=$ACCOUNT", 20);
    is(scalar @answers, 20, '20 concurrent requests answered');
    is(scalar(grep { $_->[0] == 200 } @answers), 20, 'all of them 200')
        or diag join ', ', map { $_->[0] } @answers;
    my %workers = map { $_->[1] => 1 } @answers;
    cmp_ok(scalar keys %workers, '>=', 2, 'both workers answered some');
    is($sb->stats->{by_path}{'/v1/auth'}, 1, 'exactly one token exchange between them');
    $ng2->stop;
    $sb->clear_faults;
}

# -- expiry: --token-ttl 2 -------------------------------------------------------------------

{
    my $ttl_sb = HRIS::Sandbox->start('personio', args => ['--token-ttl', '2']);
    my $ngt = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(personio => $ttl_sb));
    my $res = $ngt->unified('timeoff_types', account => $ACCOUNT);
    is($res->{status}, 200, 'short-lived token: first request');
    is($ttl_sb->stats->{by_path}{'/v1/auth'}, 1, 'one exchange');
    sleep 2.5;
    $res = $ngt->unified('timeoff_types', account => $ACCOUNT);
    is($res->{status}, 200, 'after the token expired the request still succeeds')
        or diag $res->{body};
    is($ttl_sb->stats->{by_path}{'/v1/auth'}, 2, 'a second exchange after the expiry');
    $ngt->stop;
}

# -- one-time tokens echoed in `authorization`; a refused token is renewed once ---------------

{
    my $rot_sb = HRIS::Sandbox->start('personio',
                                      args => ['--rotate-tokens', '--invalid-token-status', '401']);
    my $ngr = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(personio => $rot_sb));
    my ($ids, $pages) = walk_ids($ngr, 'employees', limit => 7);
    same_ids($ids, \@emp_ids, "one-time tokens: a walk of $pages pages");
    ($ids, $pages) = walk_ids($ngr, 'timeoff_requests', limit => 100);
    same_ids($ids, \@off_ids, "one-time tokens: time-offs in $pages pages");
    is($rot_sb->stats->{by_path}{'/v1/auth'}, 1,
       'one exchange: each echoed token was used for the next call');

    # Someone else uses the account's current token: the gateway's is refused
    # (401), dropped, exchanged again, and the call made once more.
    my $t = upstream_token($rot_sb);
    upstream($rot_sb, $t, '/v1/company/time-off-types');
    $rot_sb->reset;
    my $res = $ngr->unified('timeoff_types', account => $ACCOUNT);
    is($res->{status}, 200, 'a token refused with 401 is renewed and the call retried')
        or diag $res->{body};
    is($rot_sb->stats->{by_path}{'/v1/auth'}, 1, 'one new exchange');
    is($rot_sb->stats->{by_path}{'/v1/company/time-off-types'}, 2, 'the call made twice');
    $ngr->stop;
}

{
    # Personio documents 403 "Provided authorization is not valid" for a
    # wrong or expired token (the sandbox's default).
    my $rot_sb = HRIS::Sandbox->start('personio', args => ['--rotate-tokens']);
    my $ngr = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(personio => $rot_sb));
    is($ngr->unified('timeoff_types', account => $ACCOUNT)->{status}, 200,
       '403 sandbox: first request');
    my $t = upstream_token($rot_sb);
    upstream($rot_sb, $t, '/v1/company/time-off-types');
    my @status = map { $ngr->unified('timeoff_types', account => $ACCOUNT)->{status} } 1 .. 2;
    is("@status", '200 200', 'a token refused with 403 is renewed too (auth.renew_on)');
    $ngr->stop;
}

done_testing;
