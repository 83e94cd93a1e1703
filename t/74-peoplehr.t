#!/usr/bin/perl
# The unified API over the PeopleHR sandbox (mappings/peoplehr.json):
# employees (one RPC call answers all of them, leavers included), time-off
# requests (holidays), employee compensations (salaries) and benefits, the
# last three read per employee (a fan-out of at most 10 upstream calls per
# unified page). Every walk returns every sandbox record exactly once;
# golden records; gets and 404s; errors that come inside HTTP 200 (the
# table's in-body rules); the time-off filter window; and the gateway's own
# rate limit for PeopleHR (30 calls a minute per account by default, shared
# by all workers) next to the provider's throttle answer.

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

my $ACCOUNT = 'acme-peoplehr';
my $API_KEY = $HRIS::Nginx::PROVIDER{peoplehr}{credentials}{api_key};
my $J = JSON::PP->new->canonical;
# No keep-alive: a POST's headers and body go out separately and a reused
# connection stalls on the delayed ACK.
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 0);

# -- the provider itself, read directly --------------------------------------

sub rpc {
    my ($sb, $path, %body) = @_;
    my $res = $http->post($sb->url . $path, {
        headers => { 'Content-Type' => 'application/json' },
        content => $J->encode({ APIKey => $API_KEY, %body }) });
    die "sandbox $path: $res->{status}" unless $res->{status} == 200;
    my $env = $J->decode($res->{content});
    die "sandbox $path $body{Action}: Status $env->{Status} $env->{Message}"
        if $env->{isError};
    return $env->{Status} == 10 ? [] : $env->{Result};
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

sub walk_ids {
    my ($ng, $what, %q) = @_;
    my ($records, $pages, $responses) = walk($ng, $what, account => $ACCOUNT,
                                             remote_data => 'false', %q);
    my @over = grep { $_->{json}{result_count} != @{ $_->{json}{result} }
                      || ($q{limit} && $_->{json}{result_count} > $q{limit}) } @$responses;
    ok(!@over, "$what limit " . ($q{limit} // '-') . ': result_count matches and '
               . 'stays within the limit on every page');
    return ([map { $_->{id} } @$records], $pages, $records, $responses);
}

sub same_ids {
    my ($got, $want, $name) = @_;
    my %seen;
    my @dups = grep { $seen{$_}++ } @$got;
    ok(!@dups, "$name: no record twice") or diag "twice: @dups[0 .. ($#dups > 9 ? 9 : $#dups)]";
    is_deeply([sort @$got], [sort @$want], "$name: every record of the sandbox");
}

sub list {
    my ($ng, $what, %q) = @_;
    return $ng->unified($what, account => $ACCOUNT, remote_data => 'false', %q);
}

# N requests at once (forked children released together): a list of
# [status, X-Worker, Retry-After] per answer.
sub burst { HRIS::Nginx::burst(@_) }

# -- the data set, straight from the sandbox ----------------------------------

# This sandbox runs without its own limit and the account without the
# table's: the walks below make about 4000 calls.
my $sb = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);

my $employees = rpc($sb, '/Employee', Action => 'GetAllEmployeeDetail', IncludeLeavers => 'true');
my @emp_ids = map { $_->{EmployeeId}{DisplayValue} } @$employees;
is(scalar @emp_ids, 300, 'the sandbox holds 300 employees, leavers included');
my (@holiday_ids, @salary_ids, @benefit_ids, @window_ids);
for my $id (@emp_ids) {
    push @holiday_ids, map { $_->{AnnualLeaveTxnId} }
        @{ rpc($sb, '/Holiday', Action => 'GetHolidayDetail', EmployeeId => $id) };
    push @salary_ids, map { "$id-$_->{EffectiveFrom}" }
        @{ rpc($sb, '/Salary', Action => 'GetSalaryDetail', EmployeeId => $id,
               IsIncludeHistory => 'true') };
    push @benefit_ids, map { $_->{BenefitId} }
        @{ rpc($sb, '/Benefit', Action => 'GetBenefitByEmployeeId', EmployeeId => $id) };
    push @window_ids, map { $_->{AnnualLeaveTxnId} }
        @{ rpc($sb, '/Holiday', Action => 'GetHolidayDetail', EmployeeId => $id,
               StartDate => '2026-01-01', EndDate => '2026-03-31') };
}
is(scalar @holiday_ids, 773, '773 holidays');
is(scalar @salary_ids, 588, '588 salary rows');
is(scalar @benefit_ids, 338, '338 benefits');
$sb->reset;

my $accounts = HRIS::Nginx::accounts_for(peoplehr => $sb,
                                          extra => { $ACCOUNT => { rate_limit => undef } });
push @{ $accounts->{accounts} }, { %{ $accounts->{accounts}[0] }, id => 'acme-badkey',
                                   credentials => { api_key => 'bad-key-0f-acme-0123456789' } };
my $ng = HRIS::Nginx->start(accounts => $accounts);

# -- walks: every record exactly once ------------------------------------------

# The walks at 500 keep remote_data: the golden records below come from them.
my %walked;
for my $limit (1, 7, 500) {
    my ($ids, $pages, $recs) = walk_ids($ng, 'employees', limit => $limit,
                                        $limit == 500 ? (remote_data => 'true') : ());
    $walked{employees} = $recs if $limit == 500;
    same_ids($ids, \@emp_ids, "employees limit $limit ($pages pages)");
}
for my $case (['timeoff_requests', '/Holiday', \@holiday_ids],
              ['employee_compensations', '/Salary', \@salary_ids],
              ['benefits', '/Benefit', \@benefit_ids]) {
    my ($what, $path, $want) = @$case;
    for my $limit (7, 500) {
        $sb->reset;
        my ($ids, $pages, $recs, $responses) = walk_ids($ng, $what, limit => $limit,
                                                      $limit == 500 ? (remote_data => 'true') : ());
        $walked{$what} = $recs if $limit == 500;
        same_ids($ids, $want, "$what limit $limit ($pages pages)");
        my $calls = $sb->stats->{by_path}{$path} // 0;
        cmp_ok($calls, '<=', 10 * $pages, "$what limit $limit: $calls per-employee calls, "
                                          . 'at most 10 per page');
        cmp_ok($calls, '>=', 300, "$what limit $limit: every employee read");
        if ($limit == 500) {
            my $first = $responses->[0]{json};
            ok($first && $first->{result_count} < 500 && defined $first->{next_cursor},
               "$what limit 500: the fan-out cap makes a short first page with a cursor");
        }
    }
}

# -- golden employees -------------------------------------------------------------------

my $all = $walked{employees};
my %emp = map { $_->{id} => $_ } @$all;

my %golden = (
    'PW1' => {
        id => 'PW1', remote_id => 'PW1', employee_number => 'PW1',
        first_name => 'Margaret', last_name => 'Thornton', display_name => 'Margaret Thornton',
        preferred_name => 'Maggie',
        email => 'margaret.thornton@sandboxtrading.example', personal_email => undef,
        work_phone => undef, mobile_phone => undef,
        department => 'Executive', job_title => 'Chief Executive Officer',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2013-10-21', termination_date => undef,
        date_of_birth => '1969-09-04', gender => 'female',
        work_location => { id => 'Head Office', name => 'Head Office' }, manager => undef,
        company => { id => 'Sandbox Trading Ltd', name => 'Sandbox Trading Ltd' },
        groups => [ { id => 'Executive', name => 'Executive', type => 'department' } ],
        avatar => undef, created_at => undef, modified_at => undef,
        custom_fields => { APIColumn1 => 'EXT-20007', APIColumn2 => 'CC-40',
                           APIColumn3 => 'Hybrid', APIColumn4 => undef, APIColumn5 => undef },
    },
    'PW4' => {
        id => 'PW4', remote_id => 'PW4', employee_number => 'PW4',
        first_name => 'Björn', last_name => 'Ødegaard', display_name => 'Björn Ødegaard',
        preferred_name => undef,
        email => 'bjorn.odegaard@sandboxtrading.example', personal_email => undef,
        work_phone => undef, mobile_phone => undef,
        department => 'R&D', job_title => 'Engineering Manager',
        employment_status => 'active', employment_type => 'full_time',
        start_date => '2015-06-05', termination_date => undef,
        date_of_birth => '1971-12-05', gender => 'male',
        work_location => { id => 'Head Office', name => 'Head Office' },
        manager => { id => 'PW1', remote_id => 'PW1', name => 'Margaret Thornton' },
        company => { id => 'Sandbox Trading Ltd', name => 'Sandbox Trading Ltd' },
        groups => [ { id => 'R&D', name => 'R&D', type => 'department' } ],
        avatar => undef, created_at => undef, modified_at => undef,
        custom_fields => { APIColumn1 => 'EXT-20028', APIColumn2 => 'CC-43',
                           APIColumn3 => undef, APIColumn4 => 'Ünicode ✓', APIColumn5 => undef },
    },
    'PW64' => {             # a leaver
        display_name => 'Arjun Taylor', employment_status => 'terminated',
        start_date => '2025-03-13', termination_date => '2025-06-22',
        manager => { id => 'PW26', remote_id => 'PW26', name => 'Søren Evans' },
        company => { id => 'Sandbox Trading Ireland Ltd', name => 'Sandbox Trading Ireland Ltd' },
        work_location => { id => 'Dublin', name => 'Dublin' },
    },
    'PW83' => { employment_status => 'terminated', termination_date => '2023-07-07',
                employment_type => 'part_time' },
    'PW83-2' => { display_name => 'Aoife Byrne', employment_status => 'active',
                  termination_date => undef, start_date => '2024-01-23' },    # rehired
    'PW210' => { employment_status => 'active', termination_date => '2026-07-07' },
    'PW248' => { employment_status => 'active', start_date => '2026-08-24' },
);
for my $id (sort keys %golden) {
    my $rec = $emp{$id};
    ok($rec, "employee $id listed") or next;
    for my $f (sort keys %{ $golden{$id} }) {
        is_deeply($rec->{$f}, $golden{$id}{$f}, "employee $id: $f");
    }
}
for my $id ('PW1', 'PW4') {
    my %keys = map { $_ => 1 } keys %{ $emp{$id} };
    delete @keys{ keys %{ $golden{$id} }, 'remote_data' };
    my @left = grep { defined $emp{$id}{$_} } sort keys %keys;
    ok(!@left, "employee $id: no field beyond the golden ones has a value") or diag "@left";
}
{
    my %status;
    $status{ $_->{remote_data}{EmployeeStatus}{DisplayValue} }{ $_->{employment_status} }++
        for @$all;
    is_deeply({ map { $_ => [sort keys %{ $status{$_} }] } keys %status },
              { 1 => ['active'], 0 => ['terminated'] }, 'EmployeeStatus 1 -> active, 0 -> terminated');
    is(scalar(grep { $_->{employment_status} eq 'terminated' && $_->{termination_date} } @$all),
       30, 'the 30 leavers are terminated with a termination_date');
    is($emp{PW4}{remote_data}{ReportsToEmployeeId}{DisplayValue}, 'PW1',
       'remote_data is the provider record');
}

# -- references: each carries an id (CONTRACT 4) ----------------------------------------------

# PeopleHR knows departments, locations, companies and approvers by name
# only: the name stands for the id. Every reference in every walked record
# has a non-empty string id.
{
    my (@bad, %seen);
    my $check = sub {
        my ($what, $rec, $field, $ref) = @_;
        $seen{$field}++;
        push @bad, "$what $rec->{id}: $field"
            unless ref $ref eq 'HASH' && defined $ref->{id} && !ref $ref->{id} && length $ref->{id};
    };
    for my $what (sort keys %walked) {
        for my $rec (@{ $walked{$what} }) {
            for my $field (qw(work_location manager company employee approver timeoff_type
                              company_benefit)) {
                $check->($what, $rec, $field, $rec->{$field}) if defined $rec->{$field};
            }
            $check->($what, $rec, 'groups', $_) for @{ $rec->{groups} // [] };
        }
    }
    ok(!@bad, 'every reference carries an id') or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
    ok($seen{$_}, "some records have a $_") for qw(work_location company groups manager employee approver);
}

# -- gets and 404s ---------------------------------------------------------------------------

for my $id ('PW4', 'PW64', 'PW83-2') {
    my $res = list($ng, "employees/$id");
    is($res->{status}, 200, "get employee $id");
    my %listed = %{ $emp{$id} || {} };
    delete $listed{remote_data};
    is_deeply($res->{json}{result}, \%listed, "get employee $id equals its list record");
}
{
    my $res = $ng->unified('employees/PW4', account => $ACCOUNT);
    ok(ref $res->{json}{result}{remote_data}{EmploymentDetail} eq 'HASH',
       'the get carries the detailed provider record');
    $res = $ng->unified('employees/PW9999', account => $ACCOUNT);
    is($res->{status}, 404, 'an unknown employee (Status 5 "does not exists" in a 200): 404');
    is($res->{json} && $res->{json}{statusCode}, 404, '404: JSON error body');
}

# -- errors inside HTTP 200 -----------------------------------------------------------------

{
    my $res = $ng->unified('employees', account => 'acme-badkey');
    is($res->{status}, 401, 'an invalid API key (Status 2 in a 200): 401');
    is($res->{json}{details}{upstream_status}, 401, 'details.upstream_status 401');
    like($res->{json}{details}{upstream_message} // '', qr/Invalid API Key/,
         "the provider's message in details");
    unlike($res->{body}, qr/bad-key-0f-acme|\Q$API_KEY\E/, 'no key in the answer');
    unlike($ng->error_log, qr/bad-key-0f-acme|\Q$API_KEY\E/, 'no key in the error log');
    $res = $ng->unified('timeoff_requests', account => 'acme-badkey');
    is($res->{status}, 401, 'fan-out with an invalid key: 401');
}

# -- golden time-offs, salaries, benefits ---------------------------------------------------

my $holidays = $walked{timeoff_requests};
{
    my $pw4 = { id => 'PW4', remote_id => 'PW4', name => 'Björn Ødegaard' };
    # PeopleHR names the approver only: the name stands for the id
    my $approver = { id => 'Margaret Thornton', name => 'Margaret Thornton' };
    my @mine = sort { $a->{start_time} cmp $b->{start_time} }
               grep { $_->{employee}{id} eq 'PW4' } @$holidays;
    delete $_->{remote_data} for @mine;
    is_deeply(\@mine, [
        { id => '139400158', remote_id => '139400158', employee => $pw4,
          approver => $approver, status => 'declined', units => 'days',
          amount => 0.27, request_type => 'vacation', timeoff_type => undef,
          start_time => '2025-04-11', end_time => '2025-04-11', employee_note => 'Wedding',
          created_at => undef, modified_at => '2025-04-03T09:55:38Z' },
        { id => '139400146', remote_id => '139400146', employee => $pw4,
          approver => $approver, status => 'approved', units => 'days',
          amount => 3, request_type => 'vacation', timeoff_type => undef,
          start_time => '2025-06-23', end_time => '2025-06-25',
          employee_note => 'Family holiday',
          created_at => undef, modified_at => '2025-05-10T12:47:21Z' },
        { id => '139400184', remote_id => '139400184', employee => $pw4,
          approver => $approver, status => 'requested', units => 'days',
          amount => 3, request_type => 'vacation', timeoff_type => undef,
          start_time => '2026-08-17', end_time => '2026-08-19', employee_note => 'Moving house',
          created_at => undef, modified_at => '2026-05-27T11:17:21Z' },
    ], "PW4's three holidays");
    my %status = map { $_->{status} => 1 } @$holidays;
    is_deeply([sort keys %status], [qw(approved declined requested)], 'holiday statuses');

    # remote_data is the provider's own text: its 1.00-style numbers stay
    # as sent (written again from the parsed tree they would read 1.0)
    my $res = $ng->unified('timeoff_requests', account => $ACCOUNT, limit => 5,
                           remote_data => 'true');
    is($res->{status}, 200, 'a page of holidays with remote_data');
    ok($res->{json} && @{ $res->{json}{result} }, 'the answer is JSON with records');
    like($res->{body}, qr/"remote_data":\{[^{}]*"DurationInDays":\d+\.\d\d[,}]/,
         'remote_data keeps the provider\'s DurationInDays text (1.00, not 1.0)');
}

my $salaries = $walked{employee_compensations};
{
    my %sal = map { $_->{id} => $_ } @$salaries;
    my $row = $sal{'PW4-2021-04-01'};
    delete $row->{remote_data} if $row;
    is_deeply($row, {
        id => 'PW4-2021-04-01', remote_id => 'PW4-2021-04-01',
        employee => { id => 'PW4', remote_id => 'PW4', name => 'Björn Ødegaard' },
        type => 'salary', description => 'Annual Review', amount => 87800, currency => 'GBP',
        period => 'annually', payment_frequency => 'monthly', start_date => '2021-04-01',
        end_date => undef, status => undef, created_at => undef, modified_at => undef,
    }, 'salary row PW4 2021-04-01');
    ok(JSON::PP->new->encode([$sal{'PW4-2021-04-01'}{amount}]) eq '[87800]',
       'the amount is a JSON number (the provider sends "87800.0000")');
    is_deeply([ @{ $sal{'PW5-2014-03-17'} || {} }{qw(currency amount payment_frequency)} ],
              ['EUR', 54500, 'weekly'], 'a Dublin salary is in EUR');
    is(scalar(grep { $_->{employee}{id} eq 'PW4' } @$salaries), 3, 'PW4 has three salary rows');
}

my $benefits = $walked{benefits};
{
    my %ben = map { $_->{id} => $_ } @$benefits;
    my $row = $ben{'12600009'};
    delete $row->{remote_data} if $row;
    my $pw2 = { id => 'PW2', remote_id => 'PW2', name => 'José García' };
    is_deeply($row, {
        id => '12600009', remote_id => '12600009', name => 'Gym Membership', employee => $pw2,
        company_contribution => 360, start_date => '2021-07-22', end_date => '2024-07-22',
        employee_contribution => undef, benefit_plan_type => undef, company_benefit => undef,
        currency => undef, provider_name => undef, status => undef,
        created_at => undef, modified_at => undef,
    }, 'benefit 12600009');
    is_deeply([ @{ $ben{'12600018'} || {} }{qw(name employee end_date company_contribution)} ],
              ['Season Ticket Loan', $pw2, undef, 4500], 'benefit 12600018: no expiry date');
    ok(!(grep { $_->{employee}{id} eq 'PW1' || $_->{employee}{id} eq 'PW4' } @$benefits),
       'PW1 and PW4 have no benefits (Status 10: no records)');
}

# -- the filter window on time-offs -----------------------------------------------------------

{
    my %window = (start_date => '2026-01-01', end_date => '2026-03-31');
    my ($ids, $pages, $recs) = walk_ids($ng, 'timeoff_requests', limit => 50, %window);
    ok(@$ids > 0 && @$ids < @holiday_ids, 'start_date/end_date narrow the list (' . @$ids . ')');
    same_ids($ids, \@window_ids, 'holidays in 2026 Q1');
    ok(!(grep { $_->{end_time} lt '2026-01-01' || $_->{start_time} gt '2026-03-31' } @$recs),
       'every holiday in the window overlaps it');
    my $res = list($ng, 'timeoff_requests', start_date => '2026-13-45x');
    is($res->{status}, 400, 'a malformed start_date: 400');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

# -- the gateway's rate limit ---------------------------------------------------------------

# A sandbox at PeopleHR's own limit: 30 calls a minute per client.
my $limited = HRIS::Sandbox->start('peoplehr');

sub limited_gateway {
    my (%o) = @_;
    $limited->reset;
    return HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(peoplehr => $limited,
                                              extra => { $ACCOUNT => { rate_limit => $o{rate_limit} } }),
        map { exists $o{$_} ? ($_ => $o{$_}) : () } qw(http workers server location));
}

{
    my $ngl = limited_gateway(rate_limit => { calls => 5, per => '3s' });
    my $t0 = time;
    my @status = map { my $r = list($ngl, 'employees', limit => 500);
                       $r->{status} == 200 && $r->{json}{result_count} == 300 ? 200 : $r->{status} }
                 1 .. 8;
    my $elapsed = time - $t0;
    is("@status", '200 ' x 7 . '200', '5 calls per 3s: 8 employee lists in a row all succeed');
    cmp_ok($elapsed, '>=', 2.5, sprintf('the later ones waited for the window (%.1fs)', $elapsed));
    is($limited->stats->{by_path}{'/Employee'}, 8, 'the sandbox answered 8 calls, none refused');
    $ngl->stop;
}
{
    my $ngl = limited_gateway(rate_limit => { calls => 5, per => '3s' },
                              http => 'hris_retry_after_max 300ms;');
    my @res = map { list($ngl, 'employees', limit => 10) } 1 .. 6;
    is(join(' ', map { $_->{status} } @res), '200 200 200 200 200 429',
       'hris_retry_after_max 300ms: the 6th call within the window is a 429');
    my $ra = $res[5]{headers}{'retry-after'};
    ok(defined $ra && $ra =~ /^\d+$/ && $ra >= 1 && $ra <= 3, 'with Retry-After ' . ($ra // 'none'));
    is($res[5]{json} && $res[5]{json}{statusCode}, 429, 'a JSON error body');
    is($limited->stats->{by_path}{'/Employee'}, 5, 'the sandbox saw only 5 calls');
    $ngl->stop;
}
{
    my $port2 = HRIS::Nginx::free_port();
    my $ngl = limited_gateway(rate_limit => { calls => 5, per => '60s' },
                              http => 'hris_retry_after_max 300ms;', workers => 2,
                              server => "listen 127.0.0.1:$port2 reuseport;",
                              location => 'add_header X-Worker $pid always;');
    my @answers = burst($port2, "/unified/hris/employees?integrated_account_id=$ACCOUNT&limit=5", 12);
    is(scalar @answers, 12, '12 concurrent requests answered');
    my %by;
    $by{ $_->[0] }++ for @answers;
    is_deeply(\%by, { 200 => 5, 429 => 7 }, 'two workers, 5 calls per 60s: 5 succeed, 7 get 429');
    ok(!(grep { $_->[0] == 429 && $_->[2] !~ /^\d+$/ } @answers), 'every 429 has Retry-After');
    my %workers = map { $_->[1] => 1 } @answers;
    cmp_ok(scalar keys %workers, '>=', 2, 'both workers answered some');
    is($limited->stats->{by_path}{'/Employee'}, 5, 'exactly 5 reached the sandbox');
    $ngl->stop;
}
{
    # No rate_limit in the account: the table's 30 calls per 60s.
    my $ngl = HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(peoplehr => $sb),
        http => 'hris_retry_after_max 300ms;');
    $sb->reset;
    my @status = map { list($ngl, 'employees', limit => 1)->{status} } 1 .. 31;
    is(scalar(grep { $_ == 200 } @status[0 .. 29]), 30, "the table's limit: 30 calls pass");
    is($status[30], 429, 'the 31st within the minute is a 429');
    is($sb->stats->{by_path}{'/Employee'}, 30, 'the sandbox saw 30 calls');
    $ngl->stop;
}

# -- the provider's own throttle ---------------------------------------------------------------

{
    my $tight = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '2']);
    my $ngt = HRIS::Nginx->start(
        accounts => HRIS::Nginx::accounts_for(peoplehr => $tight,
                                              extra => { $ACCOUNT => { rate_limit => undef } }));
    my @res = map { list($ngt, 'employees', limit => 1) } 1 .. 3;
    is(join(' ', map { $_->{status} } @res), '200 200 429',
       "the sandbox's throttle answer (Status 6 in a 200) is the contract's 429");
    ok(($res[2]{headers}{'retry-after'} // '') =~ /^\d+$/, 'with Retry-After');
    is($res[2]{json}{details}{upstream_status}, 429, 'details.upstream_status 429');
    like($res[2]{json}{details}{upstream_message} // '', qr/limited to/,
         "the provider's message in details");
    $ngt->stop;
}

done_testing;
