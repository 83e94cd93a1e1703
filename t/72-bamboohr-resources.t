#!/usr/bin/perl
# The BambooHR resources beyond employees (mappings/bamboohr.json):
# companies, job_roles, employments, employee_compensations, and the two
# read per employee (a fan-out over the employee list): timeoff_balances and
# benefits. Walks return every record exactly once, records map field by
# field (literal golden records and every record against the provider's),
# gets where the table has one, 501 where it has none.
#
# Strings are compared as UTF-8 bytes (the harness decodes JSON without
# ->utf8; no `use utf8` here either).

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $ACCOUNT = 'acme-bamboohr';
my $API_KEY = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};
my $J = JSON::PP->new->canonical;
my $FANOUT_MAX = 20;    # for_each.max_calls in the table

# -- the provider's own data ---------------------------------------------------

my $sb = HRIS::Sandbox->start('bamboohr');
my $UP = HTTP::Tiny->new(keep_alive => 1, timeout => 10);

# An OAuth grant, as a client gets one: companies come from /v1/meta/company,
# which BambooHR serves to OAuth tokens only.
sub grant {
    my $res = $UP->post($sb->url . '/_sandbox/oauth/code', {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"scope": "company:info employee offline_access"}' });
    my $code = $J->decode($res->{content})->{code};
    $res = $UP->post_form($sb->url . '/token.php?request=token', {
        grant_type => 'authorization_code', code => $code,
        redirect_uri => 'http://127.0.0.1/callback',
        client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret' });
    die "token: $res->{status} $res->{content}" unless $res->{status} == 200;
    return $J->decode($res->{content});
}
my $TOKEN = grant();

sub up_get {
    my ($path, %o) = @_;
    my $res = $UP->get($sb->url . '/api/gateway.php/acme' . $path, { headers => {
        Accept => 'application/json',
        Authorization => $o{oauth} ? "Bearer $TOKEN->{access_token}"
                                   : 'Basic ' . encode_base64("$API_KEY:x", '') } });
    die "$path: $res->{status}" unless $res->{status} == 200;
    return $J->decode($res->{content});
}

my @employees = @{ up_get('/v1/employees?page%5Blimit%5D=2500')->{data} };
my @employee_ids = map { $_->{employeeId} } @employees;
my %raw;
$raw{companies} = [ up_get('/v1/meta/company', oauth => 1) ];
$raw{job_roles} = [ map { @{ $_->{options} } }
                    grep { ($_->{alias} // '') eq 'jobTitle' } @{ up_get('/v1/meta/lists') } ];
$raw{employments} = up_get('/v1/employees/all/tables/jobInfo');
$raw{employee_compensations} = up_get('/v1/employees/all/tables/compensation');
for my $eid (@employee_ids) {
    push @{ $raw{timeoff_balances} },
        map { { %$_, _eid => $eid } } @{ up_get("/v1/employees/$eid/time_off/calculator") };
    my $benefits = up_get("/v1/benefit/employee_benefit?employeeId=$eid")->{employeeBenefits};
    push @{ $raw{benefits} },
        map { { %$_, _eid => $eid } } map { @{ $_->{employeeBenefit} } } @$benefits;
}

is(scalar @employees, 330, 'the sandbox holds 330 employees');
is(scalar @{ $raw{job_roles} }, 32, '32 job titles (one archived)');
is(scalar @{ $raw{employments} }, 422, '422 jobInfo rows');
is(scalar @{ $raw{employee_compensations} }, 422, '422 compensation rows');
# money in both of BambooHR's shapes: "65000.00 USD" and {value, currency}
is(scalar(grep { !ref $_->{rate} } @{ $raw{employee_compensations} }), 211,
   '211 compensation rows with the rate as text ("79500.00 EUR")');
is(scalar(grep { ref $_->{rate} eq 'HASH' } @{ $raw{employee_compensations} }), 211,
   '211 with the rate as {value, currency}');
is(scalar @{ $raw{timeoff_balances} }, 1439, '1439 time-off balances');
is(scalar @{ $raw{benefits} }, 1980, '1980 benefit enrolments');
$sb->reset;
$TOKEN = grant();    # the reset forgot every grant

# -- expected unified records ------------------------------------------------------

sub nz { my ($v) = @_; defined $v && $v ne '' ? $v : undef }

sub enum_of {
    my ($map, $v) = @_;
    return undef unless defined nz($v);
    return exists $map->{$v} ? $map->{$v} : $v;
}

sub date_of {
    my ($v) = @_;
    return defined $v && $v =~ /^\d{4}-\d\d-\d\d$/ && $v ne '0000-00-00' ? $v : undef;
}

sub num { my ($v) = @_; defined nz($v) ? 0 + $v : undef }

sub ref_to { my ($id) = @_; defined nz($id) ? { id => "$id", remote_id => "$id" } : undef }

# the rate of a compensation row: (amount, currency) of either shape
sub money {
    my ($rate) = @_;
    return (nz($rate->{value}), nz($rate->{currency})) if ref $rate eq 'HASH';
    return (undef, undef) unless defined $rate;
    my ($amount, $currency) = $rate =~ /^\s*([-+]?\d+(?:\.\d+)?)(?:\s+([A-Za-z]{3}))?\s*$/;
    return ($amount, $currency);
}

my %expect = (
    companies => sub {
        my ($c) = @_;
        return { id => "$c->{id}", remote_id => "$c->{id}", display_name => nz($c->{name}) };
    },
    job_roles => sub {
        my ($o) = @_;
        return { id => "$o->{id}", remote_id => "$o->{id}", name => nz($o->{name}) };
    },
    employments => sub {
        my ($r) = @_;
        return { id => $r->{id}, remote_id => $r->{id}, employee => ref_to($r->{employeeId}),
                 job_title => nz($r->{jobTitle}), effective_date => date_of($r->{date}) };
    },
    employee_compensations => sub {
        my ($r) = @_;
        return {
            id => $r->{id}, remote_id => $r->{id}, employee => ref_to($r->{employeeId}),
            type => enum_of({ Salary => 'salary', Hourly => 'hourly',
                              Commission => 'commission', Bonus => 'bonus' }, $r->{type}),
            description => nz($r->{comment}), amount => num((money($r->{rate}))[0]),
            currency => (money($r->{rate}))[1],
            period => enum_of({ Hour => 'hourly', Day => 'daily', Week => 'weekly',
                                Month => 'monthly', Quarter => 'quarterly', Year => 'annually',
                                'Pay Period' => 'fixed' }, $r->{paidPer}),
            payment_frequency => enum_of({ Weekly => 'weekly', 'Bi-Weekly' => 'biweekly',
                                           'Every other week' => 'biweekly',
                                           'Semi-Monthly' => 'semimonthly',
                                           'Twice a month' => 'semimonthly',
                                           Monthly => 'monthly', Quarterly => 'quarterly',
                                           Annually => 'annually' }, $r->{paySchedule}),
            start_date => date_of($r->{startDate}),
        };
    },
    timeoff_balances => sub {
        my ($b) = @_;
        my $id = "$b->{_eid}-$b->{timeOffType}";
        return {
            id => $id, remote_id => $id, employee => ref_to($b->{_eid}),
            timeoff_type => { %{ ref_to($b->{timeOffType}) }, name => nz($b->{name}) },
            policy_type => nz($b->{policyType}), balance => num($b->{balance}),
            used => num($b->{usedYearToDate}),
            units => enum_of({ hours => 'hours', days => 'days' }, $b->{units}),
        };
    },
    benefits => sub {
        my ($b) = @_;
        my $id = "$b->{_eid}-$b->{companyBenefitId}";
        return {
            id => $id, remote_id => $id, name => nz($b->{companyBenefitName}),
            employee => ref_to($b->{_eid}),
            company_benefit => { %{ ref_to($b->{companyBenefitId}) },
                                 name => nz($b->{companyBenefitName}) },
            employee_contribution => num($b->{employeeAmount}),
            company_contribution => num($b->{companyAmount}),
            currency => nz($b->{currencyCode}),
            start_date => date_of($b->{deductionStartDate}),
            end_date => date_of($b->{deductionEndDate}),
            status => enum_of({ Enrolled => 'active', Waived => 'inactive',
                                Terminated => 'inactive', Eligible => 'inactive' },
                              $b->{enrollmentStatus}),
        };
    },
);

sub raw_of { my ($r) = @_; +{ map { $_ => $r->{$_} } grep { $_ ne '_eid' } keys %$r } }

# Deep equality, scalars compared as strings (numbers as Perl prints them).
sub same {
    my ($x, $y) = @_;
    return !defined $y if !defined $x;
    return 0 if !defined $y;
    if (ref $x eq 'HASH' && ref $y eq 'HASH') {
        return 0 unless keys %$x == keys %$y;
        for (keys %$x) { return 0 unless exists $y->{$_} && same($x->{$_}, $y->{$_}) }
        return 1;
    }
    if (ref $x eq 'ARRAY' && ref $y eq 'ARRAY') {
        return 0 unless @$x == @$y;
        for (0 .. $#$x) { return 0 unless same($x->[$_], $y->[$_]) }
        return 1;
    }
    return 0 if (ref $x eq 'HASH' || ref $x eq 'ARRAY' || ref $y eq 'HASH' || ref $y eq 'ARRAY');
    return "$x" eq "$y";
}

sub diff {
    my ($got, $want, $raw) = @_;
    my @bad = map { "$_: got " . $J->encode([ $got->{$_} ]) . ' want ' . $J->encode([ $want->{$_} ]) }
              grep { !exists $got->{$_} || !same($got->{$_}, $want->{$_}) } sort keys %$want;
    for my $f (sort keys %$got) {
        next if exists $want->{$f} || $f eq 'remote_data';
        push @bad, "$f (unmapped) is " . $J->encode([ $got->{$f} ])
            unless !defined $got->{$f} || (ref $got->{$f} eq 'ARRAY' && !@{ $got->{$f} });
    }
    push @bad, 'remote_data is not the provider record'
        if $raw && !same($got->{remote_data}, raw_of($raw));
    return @bad;
}

# -- the gateway ---------------------------------------------------------------------

my $accounts = HRIS::Nginx::accounts_for(bamboohr => $sb);
my $OAUTH = 'acme-bamboohr-oauth';
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] }, id => $OAUTH,
    credentials => { client_id => 'sandbox-bamboohr-client',
                     client_secret => 'sandbox-bamboohr-secret',
                     access_token => $TOKEN->{access_token},
                     refresh_token => $TOKEN->{refresh_token}, expires_at => time + 3600 },
    token_url => $sb->url . '/token.php?request=token' };
# without the ids of the lists (a user who may not read them): the names stand in
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] }, id => 'acme-bamboohr-noids',
    overrides => { 'resources.employees.list.query.fields' =>
                   'departmentName,divisionName,locationName' } };
my $ng = HRIS::Nginx->start(accounts => $accounts);

# companies need the OAuth account; everything else reads with the API key
sub account_of { $_[0] =~ /^companies\b/ ? $OAUTH : $ACCOUNT }
sub walk { my ($what, %q) = @_; $ng->walk($what, account => account_of($what), %q) }
sub one  { my ($what, %q) = @_; $ng->unified($what, account => account_of($what), %q) }

my %FANOUT = (timeoff_balances => qr{/time_off/calculator$},
              benefits => qr{/benefit/employee_benefit$});

sub fanout_calls {
    my ($res) = @_;
    my $by = $sb->stats->{by_path};
    my $n = 0;
    $n += $by->{$_} for grep { $_ =~ $FANOUT{$res} } keys %$by;
    return $n;
}

my %listed;
for my $res (qw(companies job_roles employments employee_compensations timeoff_balances benefits)) {
    my $id_of = sub { $expect{$res}->($_[0])->{id} };
    my @want = sort map { $id_of->($_) } @{ $raw{$res} };
    for my $limit (7, 500) {
        my ($records, $pages, $responses) =
            walk($res, limit => $limit, $limit == 500 ? () : (remote_data => 'false'));
        is_deeply([sort map { $_->{id} } @$records], \@want,
                  "$res: limit $limit walks every record exactly once ($pages pages, "
                  . scalar(@want) . ' records)');
        ok(!(grep { $_->{json}{result_count} > $limit
                    || $_->{json}{result_count} != @{ $_->{json}{result} } } @$responses),
           "$res: limit $limit: no page over the limit, result_count right");
        $listed{$res} = { map { $_->{id} => $_ } @$records } if $limit == 500;
        next unless $FANOUT{$res} && $limit == 500;
        my @short = grep { $_->{json}{result_count} < $limit && defined $_->{json}{next_cursor} }
                    @$responses;
        ok(@short > 0, "$res: limit $limit: " . scalar(@short) . ' short pages with a cursor,'
                       . ' and the walk still completes');
    }
}

# The fan-out: at most 20 per-employee calls for one unified page.
for my $res (qw(timeoff_balances benefits)) {
    my ($cursor, @calls, $records);
    for (1 .. 100) {
        my $before = fanout_calls($res);
        my $page = one($res, limit => 500, remote_data => 'false',
                       defined $cursor ? (cursor => $cursor) : ());
        is($page->{status}, 200, "$res: page") unless $page->{status} == 200;
        push @calls, fanout_calls($res) - $before;
        $records += $page->{json}{result_count};
        $cursor = $page->{json}{next_cursor};
        last unless defined $cursor;
    }
    ok(!defined $cursor, "$res: the walk ends");
    ok(!(grep { $_ > $FANOUT_MAX || $_ < 1 } @calls),
       "$res: each page made 1..$FANOUT_MAX per-employee calls (@calls)");
    cmp_ok(eval { my $s = 0; $s += $_ for @calls; $s }, '>=', scalar @employee_ids,
           "$res: every employee was read");
    is($records, scalar @{ $raw{$res} }, "$res: every record once");
}

# Every record, every field, against the provider's own.
for my $res (qw(companies job_roles employments employee_compensations timeoff_balances benefits)) {
    my @bad;
    for my $raw (@{ $raw{$res} }) {
        my $want = $expect{$res}->($raw);
        my $got = $listed{$res}{ $want->{id} };
        my @d = $got ? diff($got, $want, $raw) : ('not listed');
        push @bad, "$want->{id}: " . join('; ', @d) if @d;
    }
    is(scalar @bad, 0, "$res: every record maps every field from the provider record")
        or diag join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)];
}

# Balances and benefits belong to listed employees.
{
    my ($emps) = walk('employees', limit => 500, remote_data => 'false');
    my %is_employee = map { $_->{id} => 1 } @$emps;
    for my $res (qw(timeoff_balances benefits)) {
        my @orphans = grep { !(ref $_->{employee} eq 'HASH' && $is_employee{ $_->{employee}{id} // '' }) }
                      values %{ $listed{$res} };
        is(scalar @orphans, 0, "$res: every record's employee.id is in the employee list");
        my %whose = map { $_->{employee}{id} => 1 } values %{ $listed{$res} };
        cmp_ok(scalar keys %whose, '>', 250, "$res: they belong to " . scalar(keys %whose)
                                             . ' employees');
    }
}

# -- golden records -------------------------------------------------------------------

my %golden = (
    companies => {
        '48213' => { id => '48213', remote_id => '48213',
                     display_name => 'Sandbox Efficient Office', legal_name => undef,
                     eins => [], addresses => [], created_at => undef, modified_at => undef },
    },
    job_roles => {
        '18401' => { id => '18401', remote_id => '18401', name => 'Sr. HR Administrator',
                     description => undef },
        '18499' => { id => '18499', name => 'Webmaster' },    # archived, still listed
    },
    employments => {
        '101' => { id => '101', remote_id => '101', employee => { id => '4', remote_id => '4' },
                   job_title => 'Sr. HR Administrator', effective_date => '2017-03-18',
                   end_date => undef, pay_rate => undef },
        '103' => { employee => { id => '6', remote_id => '6' },
                   job_title => 'Chief Executive Officer', effective_date => '2024-05-01' },
        '110' => { employee => { id => '34', remote_id => '34' }, job_title => 'QA Analyst',
                   effective_date => undef },                  # date ""
        '127' => { employee => { id => '62', remote_id => '62' },
                   job_title => 'Systems Administrator', effective_date => undef },   # 0000-00-00
    },
    employee_compensations => {
        # the rate as text: "79500.00 EUR"
        '101' => { id => '101', remote_id => '101', employee => { id => '4', remote_id => '4' },
                   type => 'salary', description => undef, amount => 79500, currency => 'EUR',
                   period => 'annually', payment_frequency => 'monthly',
                   start_date => '2017-03-18', end_date => undef, status => undef },
        # the rate as {"value": "77655.00", "currency": "GBP"}
        '102' => { employee => { id => '6', remote_id => '6' }, amount => 77655,
                   currency => 'GBP', start_date => '2015-03-08' },
        '103' => { employee => { id => '6', remote_id => '6' }, amount => 83500,
                   currency => 'GBP', start_date => '2024-05-01' },
        '110' => { employee => { id => '34', remote_id => '34' }, amount => 76500,
                   currency => 'USD', payment_frequency => 'semimonthly', start_date => undef },
    },
    timeoff_balances => {
        '4-78' => { id => '4-78', remote_id => '4-78', employee => { id => '4', remote_id => '4' },
                    timeoff_type => { id => '78', remote_id => '78', name => 'Vacation' },
                    policy_type => 'accruing', balance => 92, used => 0, units => 'hours',
                    created_at => undef },
        '4-79' => { timeoff_type => { id => '79', remote_id => '79', name => 'Sick' },
                    balance => 52, used => 0, units => 'hours' },
        '15-78' => { employee => { id => '15', remote_id => '15' }, balance => 52, used => 8 },
        '210-80' => { employee => { id => '210', remote_id => '210' },
                      timeoff_type => { id => '80', remote_id => '80', name => 'Parental Leave' },
                      policy_type => 'manual', balance => 60, used => 0, units => 'days' },
    },
    benefits => {
        '4-11' => { id => '4-11', remote_id => '4-11', name => 'Aetna PPO Medical',
                    employee => { id => '4', remote_id => '4' },
                    company_benefit => { id => '11', remote_id => '11',
                                         name => 'Aetna PPO Medical' },
                    employee_contribution => 90, company_contribution => 250,
                    currency => 'USD', start_date => '2024-01-01', end_date => undef,
                    status => 'active' },
        '4-14' => { name => '401(k) Retirement Plan', employee_contribution => 7,
                    company_contribution => 4, status => 'active' },
        '4-16' => { name => 'Basic Life Insurance', employee_contribution => undef,
                    company_contribution => 250 },
        '52-12' => { status => 'inactive', employee_contribution => undef, currency => undef,
                     start_date => undef },                      # Waived
        '159-11' => { status => 'Ineligible', currency => undef },   # unmapped: passed raw
        '210-11' => { status => 'inactive', end_date => '2020-05-12',
                      employee_contribution => 77.5 },           # Terminated
    },
);
for my $res (sort keys %golden) {
    for my $id (sort keys %{ $golden{$res} }) {
        my $rec = $listed{$res}{$id};
        ok($rec, "$res $id is listed") or next;
        is_deeply($rec->{$_}, $golden{$res}{$id}{$_}, "$res $id: $_")
            for sort keys %{ $golden{$res}{$id} };
    }
}

# -- gets ----------------------------------------------------------------------------

for my $res (qw(companies job_roles employments employee_compensations)) {
    my @ids = sort { $a <=> $b } keys %{ $listed{$res} };
    for my $id (@ids[0, -1]) {
        my $got = one("$res/$id");
        is($got->{status}, 200, "$res: get $id");
        is_deeply($got->{json}{result}, $listed{$res}{$id}, "$res: get $id equals the list record");
    }
    my $got = one("$res/987654");
    is($got->{status}, 404, "$res: unknown id 404");
    is($got->{json}{details}{resource}, $res, "$res: the 404 names the resource");
}

for my $res (qw(timeoff_balances benefits)) {
    my ($id) = sort keys %{ $listed{$res} };
    my $got = one("$res/$id");
    is($got->{status}, 501, "$res: the table has no get: 501");
    is($got->{json}{statusCode}, 501, "$res: 501 envelope");
    is($got->{json}{error}, 'Not Implemented', "$res: reason phrase");
    like($got->{json}{message}, qr/\bbamboohr\b/, "$res: the message names the provider");
    like($got->{json}{message}, qr/\b$res\b/, "$res: the message names the resource");
    is($got->{json}{details}{provider}, 'bamboohr', "$res: details.provider");
    is($got->{json}{details}{resource}, $res, "$res: details.resource");
}

# -- companies with an API key --------------------------------------------------------

# /v1/meta/company takes OAuth tokens only: an API-key account gets the
# provider's refusal, with its message, rather than a made-up company.
for my $path ('companies', 'companies/48213') {
    my $res = $ng->unified($path, account => $ACCOUNT);
    is($res->{status}, 422, "$path with an API key: 422");
    is($res->{json}{details}{upstream_status}, 403, "$path: the provider's 403 in details");
    like($res->{json}{details}{upstream_message} // '', qr/OAuth access token/,
         "$path: and its message");
    unlike($res->{body}, qr/\Q$API_KEY\E|\Q$TOKEN->{access_token}\E/, "$path: no credential in it");
}

# -- references: each carries an id (CONTRACT 4) ------------------------------------------

{
    my ($emps) = walk('employees', limit => 500, remote_data => 'false');
    my (@bad, %seen);
    for my $rec (@$emps, map { values %$_ } values %listed) {
        for my $field (qw(work_location manager company employee timeoff_type company_benefit)) {
            my $ref = $rec->{$field} // next;
            $seen{$field}++;
            push @bad, "$rec->{id}: $field" unless ref $ref eq 'HASH' && length($ref->{id} // '');
        }
        for my $g (@{ $rec->{groups} // [] }) {
            $seen{groups}++;
            push @bad, "$rec->{id}: groups" unless length($g->{id} // '');
        }
    }
    ok(!@bad, 'every reference carries an id') or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
    ok($seen{$_}, "some records have a $_")
        for qw(work_location manager groups employee timeoff_type company_benefit);

    # a user who may not read the lists' ids: their names stand in
    my ($noids) = $ng->walk('employees', account => 'acme-bamboohr-noids', limit => 500,
                            remote_data => 'false');
    my %by_id = map { $_->{id} => $_ } @$noids;
    my $e4 = $by_id{4} // {};
    is_deeply($e4->{groups}, [ { id => 'Human Resources', name => 'Human Resources',
                                 type => 'department' },
                               { id => 'EMEA', name => 'EMEA',
                                 type => 'division' } ],
              'without departmentId and divisionId, groups take their names as ids');
    is_deeply($e4->{work_location}, { id => 'Berlin, Germany', name => 'Berlin, Germany' },
              'without locationId, so does work_location');
    my @bare = grep { my $r = $_; grep { !length($_->{id} // '') } @{ $r->{groups} // [] },
                                       $r->{work_location} // () } @$noids;
    is(scalar @bare, 0, 'and no reference of any employee lacks an id');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

done_testing;
