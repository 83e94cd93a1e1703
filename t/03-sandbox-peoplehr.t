#!/usr/bin/perl
# The PeopleHR sandbox behaves like the PeopleHR API of
# shared/reference/providers-peoplehr-heavenhr-clayhr.md part 1: RPC over
# POST with APIKey/Action in the JSON body, the {isError, Status, Message,
# Result} envelope with HTTP 200 for application errors, DisplayValue-wrapped
# employee records, per-employee holiday/absence/salary/benefit actions, the
# 30-calls-a-minute limit; and the common fault switches and statistics work.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time sleep);
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $KEY = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
my $TODAY = '2026-06-01';
my $MSG_REQUEST = 'The request processed successfully.';
my $MSG_REQUESTED = 'The requested processed successfully.';
my $DATE = qr/^(?:\d{4}-\d{2}-\d{2})?$/;              # yyyy-MM-dd or ""

my $JSON = JSON::PP->new->utf8->canonical;
# No keep-alive: HTTP::Tiny writes a POST's headers and body separately, and
# on a reused connection Nagle plus the server's delayed ACK stall each
# request by ~40 ms (fresh connections are not affected).
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 0);

# The main sandbox runs without a rate limit: this file makes many calls.
my $sb = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);

# -- helpers ------------------------------------------------------------------

# POST a body (hash: JSON-encoded, with APIKey unless given; string: sent as
# is) to $base$path. Options: type => Content-Type, method => ..., base => URL.
sub post {
    my ($path, $body, %o) = @_;
    if (ref $body) {
        $body = { APIKey => $KEY, %$body } unless exists $body->{APIKey} || $o{no_key};
        $body = $JSON->encode($body);
    }
    my %headers;
    my $type = exists $o{type} ? $o{type} : 'application/json';
    $headers{'Content-Type'} = $type if defined $type;
    return $http->request($o{method} || 'POST', ($o{base} || $sb->url) . $path,
                          { headers => \%headers, content => $body // '' });
}

sub call {
    my ($path, $body, %o) = @_;
    my $response = post($path, $body, %o);
    my $data = eval { decode_json($response->{content}) };
    return ($response, $data);
}

sub action {
    my ($path, $action, %fields) = @_;
    return call($path, { Action => $action, %fields });
}

# (HTTP status, isError, Status, Message) of an answer, for one is_deeply.
sub outcome {
    my ($r, $d) = @_;
    return [$r->{status}, $d ? (($d->{isError} ? 'true' : 'false'), $d->{Status}, $d->{Message})
                             : ('not JSON')];
}

sub error_is {
    my ($path, $body, $status, $message, $name, %o) = @_;
    my ($r, $d) = call($path, $body, %o);
    is_deeply(outcome($r, $d), [200, 'true', $status, $message], $name);
    is_deeply($d->{Result}, {}, "$name: Result {}") if $d;
}

# JSON kinds ("string", "number", "null", ...) of every value of "$key" in a
# raw JSON text: decoded Perl scalars do not say whether they were strings.
sub json_kinds {
    my ($raw, $key) = @_;
    my %kind = ('"' => 'string', 'n' => 'null', 't' => 'bool', 'f' => 'bool', '{' => 'object', '[' => 'array');
    my %seen;
    $seen{ $kind{$1} // 'number' }++ while $raw =~ /"\Q$key\E":\s*(["nft{\[]|-?\d)/g;
    return join ',', sort keys %seen;
}

sub dv { $_[0]->{ $_[1] }{DisplayValue} }

# -- start-up -----------------------------------------------------------------

like($sb->url, qr{^http://127\.0\.0\.1:\d+$}, 'sandbox started on a loopback port');

# -- envelope errors (1.4, 1.7): all HTTP 200 ---------------------------------

{
    error_is('/Employee', { Action => 'GetAllEmployeeDetail' }, 1, 'API key is missing.',
             'no APIKey: Status 1', no_key => 1);
    error_is('/Employee', { APIKey => '', Action => 'GetAllEmployeeDetail' }, 1,
             'API key is missing.', 'empty APIKey: Status 1');
    error_is('/Employee', { APIKey => '00000000-0000-4000-8000-00000000abcd',
                            Action => 'GetAllEmployeeDetail' }, 2, 'Invalid API Key.',
             'unknown APIKey: Status 2');
    error_is('/Employee', {}, 3, 'Action is missing.', 'no Action: Status 3');
    error_is('/Employee', { Action => '' }, 4, 'Action cannot be empty.', 'empty Action: Status 4');
    error_is('/Employee', { Action => 'GetEverything' }, 4, 'Invalid Action.', 'unknown Action: Status 4');
    error_is('/Employee', { Action => 'GetHolidayDetail', EmployeeId => 'PW1' }, 4, 'Invalid Action.',
             'an Action of another resource: Status 4');
    error_is('/Holiday', { Action => 'UpdateHoliday', EmployeeId => 'PW1' }, 5,
             'API Key does not have access to this action.', 'write action: Status 5 (read-only key)');
    error_is('/Employee', '{"APIKey": "x", ', 9, 'Invalid json data.', 'broken JSON: Status 9');
    error_is('/Employee', '[1, 2]', 9, 'Invalid json data.', 'JSON that is not an object: Status 9');
    error_is('/Employee', '', 7, 'No json data found.', 'empty body: Status 7');
    error_is('/Employee', "APIKey=$KEY&Action=GetAllEmployeeDetail", 7, 'No json data found.',
             'form-encoded body: Status 7', type => 'application/x-www-form-urlencoded');
    error_is('/Employee', '', 7, 'No json data found.', 'GET: Status 7', method => 'GET');

    # The key is checked before the Action.
    error_is('/Employee', { APIKey => 'nope' }, 2, 'Invalid API Key.', 'bad key and no Action: Status 2');

    my $r = post('/Employees', { Action => 'GetAllEmployeeDetail' });
    is($r->{status}, 404, 'unknown resource: HTTP 404');
    like($r->{headers}{'content-type'}, qr{^text/html}, '... an HTML page');

    my ($ok, $d) = action('/Employee', 'GetCompanyInformation');
    like($ok->{headers}{'content-type'}, qr{^application/json}, 'envelope is application/json');
    is_deeply($d, { isError => JSON::PP::false, Status => 0, Message => $MSG_REQUEST,
                    Result => { CompanyId => 40123, SubDomain => 'sandboxtrading',
                                CompanyName => 'Sandbox Trading Ltd' } },
              'GetCompanyInformation: object Result');
    like($ok->{content}, qr/^\{"isError":false,"Status":0,"Message":/, 'envelope key order and lower-case isError');
}

# -- action routing, case-insensitivity, paths --------------------------------

{
    my $reference = post('/Employee', { Action => 'GetCompanyInformation' })->{content};
    for my $variant (['/Employee',  { Action => 'getcompanyinformation' }, 'lower-case Action'],
                     ['/Employee',  { Action => 'GETCOMPANYINFORMATION' }, 'upper-case Action'],
                     ['/Employee',  { Action => ' GetCompanyInformation ' }, 'Action with spaces'],
                     ['/Employee/', { Action => 'GetCompanyInformation' }, 'trailing slash'],
                     ['/employee',  { Action => 'GetCompanyInformation' }, 'lower-case path'],
                     ['/Employee',  { apikey => $KEY, action => 'GetCompanyInformation' },
                      'body keys are case-insensitive']) {
        is(post($variant->[0], $variant->[1])->{content}, $reference, $variant->[2]);
    }
    is(post('/Employee', { Action => 'GetCompanyInformation' }, type => 'text/json')->{content},
       $reference, 'Content-Type text/json is accepted');
    is(post('/Employee', { Action => 'GetCompanyInformation' },
            type => 'application/json; charset=utf-8')->{content},
       $reference, 'Content-Type with charset is accepted');
}

# -- GetAllEmployeeDetail (1.4.1, 1.6) ----------------------------------------

my ($r_all, $all) = action('/Employee', 'GetAllEmployeeDetail', IncludeLeavers => 'true');
my ($r_cur, $current) = action('/Employee', 'GetAllEmployeeDetail', IncludeLeavers => 'false');
my @ALL = @{ $all->{Result} };
my @CURRENT = @{ $current->{Result} };
my %BY_ID = map { (dv($_, 'EmployeeId') => $_) } @ALL;

{
    is_deeply(outcome($r_cur, $current), [200, 'false', 0, $MSG_REQUEST], 'GetAllEmployeeDetail: success');
    is(scalar @ALL, 300, 'IncludeLeavers "true": 300 employees in one array (no paging)');
    is(scalar @CURRENT, 270, 'IncludeLeavers "false": 270 employees');
    is(scalar keys %BY_ID, 300, 'EmployeeIds are unique');

    my %current = map { (dv($_, 'EmployeeId') => 1) } @CURRENT;
    my @leavers = grep { !$current{ dv($_, 'EmployeeId') } } @ALL;
    is(scalar @leavers, 30, '30 leavers are left out without IncludeLeavers');
    is(scalar(grep { $_->{LeavingDate} =~ /^\d{4}-\d{2}-\d{2}$/ && $_->{LeavingDate} lt $TODAY } @leavers),
       30, 'every leaver has a past LeavingDate');
    is(scalar(grep { dv($_, 'EmployeeStatus') eq '0' } @leavers), 30, "leavers' EmployeeStatus is \"0\"");
    is(scalar(grep { $_->{LeavingDate} ne '' && $_->{LeavingDate} lt $TODAY } @CURRENT), 0,
       'no past LeavingDate in the current list');
    is_deeply([sort map { dv($_, 'EmployeeId') } grep { $_->{LeavingDate} ne '' } @CURRENT],
              ['PW210', 'PW347'], 'pending leavers (LeavingDate after today) are still listed');
    is_deeply([map { dv($BY_ID{$_}, 'EmployeeStatus') } 'PW210', 'PW347'], ['1', '1'],
              '... with EmployeeStatus "1"');
    is_deeply([sort map { dv($_, 'EmployeeId') } grep { dv($_, 'StartDate') gt $TODAY } @CURRENT],
              ['PW248', 'PW413'], 'future starters are listed');

    is_deeply([map { dv($_, 'EmployeeId') } @CURRENT],
              [grep { $current{$_} } map { dv($_, 'EmployeeId') } @ALL],
              'the current list is the full list without the leavers, same order');
    is_deeply([map { dv($_, 'EmployeeId') } @ALL[0 .. 9]],
              [qw(PW1 PW2 PW3 PW4 PW5 PW6 PW7 PW8 PW11 PW12)], 'first ids (with gaps)');
    is(scalar(grep { dv($_, 'EmployeeId') !~ /^PW\d+(?:-2)?$/ } @ALL), 0, 'ids look like PW<n>');
    ok(exists $BY_ID{'PW83-2'} && $BY_ID{PW83}{LeavingDate} ne '' && $BY_ID{'PW83-2'}{LeavingDate} eq '',
       'PW83 left and came back as PW83-2');
    is_deeply([dv($BY_ID{'PW83-2'}, 'FirstName'), dv($BY_ID{'PW83-2'}, 'LastName')],
              [dv($BY_ID{PW83}, 'FirstName'), dv($BY_ID{PW83}, 'LastName')], '... same person');

    # Booleans: strings in any case, JSON booleans, absent = false.
    my %count;
    for my $case (['"True"', 'True', 300], ['"TRUE"', 'TRUE', 300], ['"False"', 'False', 270],
                  ['JSON true', JSON::PP::true, 300], ['JSON false', JSON::PP::false, 270]) {
        my (undef, $d) = action('/Employee', 'GetAllEmployeeDetail', IncludeLeavers => $case->[1]);
        is(scalar @{ $d->{Result} }, $case->[2], "IncludeLeavers $case->[0]: $case->[2]");
    }
    my (undef, $d) = action('/Employee', 'GetAllEmployeeDetail');
    is(scalar @{ $d->{Result} }, 270, 'IncludeLeavers absent: false');
    error_is('/Employee', { Action => 'GetAllEmployeeDetail', IncludeLeavers => 'yes' }, 5,
             'IncludeLeavers contains invalid data.', 'IncludeLeavers "yes": Status 5');
}

# -- the DisplayValue wrapping (1.4.1) ----------------------------------------

my @WITH_HISTORY = qw(EmployeeId Title FirstName LastName OtherName KnownAs EmailId StartDate
                      DateOfBirth NISNumber Nationality NoticePeriod ProbationEndDate Gender
                      AnalysisCode1LabelText AnalysisCode2LabelText);
my @WITH_EFFECTIVE = qw(Company Location Department ReportsTo EmploymentType);
my @DISPLAY_ONLY = qw(CompanyEffectiveDate LocationEffectiveDate DepartmentEffectiveDate
                      JobRoleChangeDate ReportsToEffectiveDate ReportsToEmployeeId
                      ReportsToEmailAddress EmploymentTypeEffectiveDate EmployeeStatus
                      HolidayAllowanceDays HolidayAllowanceMins);
my @PLAIN = (qw(LeavingDate ReasonForLeaving EmployeeImage UniqueKey), map { "APIColumn$_" } 1 .. 5);
my @ARRAYS = qw(OtherContact RightToWork BackgroundDetail AdditionalreportsTo);
my @CONTACT = qw(Address WorkPhoneNumber PersonalPhoneNumber PersonalEmail Mobile);
my @BANK = qw(BankName BankAddress BankCode AccountNumber AccountName);
my @EMPLOYMENT = qw(PayrollCompany PayrollID TimeAndAttendanceID RotaID CRMID ATSID PerformanceID
                    BenefitsID System1ID System2ID System3ID MethodOfRecruitment);
my @ALL_KEYS = sort(@WITH_HISTORY, 'JobRole', @WITH_EFFECTIVE, @DISPLAY_ONLY, @PLAIN, @ARRAYS,
                    qw(ContactDetail BankDetail EmploymentDetail lstFieldHistoryJobrole));

# Problems of one record ([] when it has the exact 1.4.1 shape).
sub shape_problems {
    my ($e, $history) = @_;
    my @bad;
    my $wrapper = sub {
        my ($name, $value, $key) = @_;
        my @keys = sort keys %{ ref $value eq 'HASH' ? $value : {} };
        my @want = sort('DisplayValue', $key ? $key : ());
        push @bad, "$name keys @keys" unless "@keys" eq "@want";
        push @bad, "$name not a string" if ref $value->{DisplayValue} || !defined $value->{DisplayValue};
        push @bad, "$name history not an array" if $key && ref $value->{$key} ne 'ARRAY';
        push @bad, "$name history not empty" if $key && !$history && @{ $value->{$key} || [] };
    };
    push @bad, 'keys: ' . join(',', sort keys %$e) unless join(',', sort keys %$e) eq join(',', @ALL_KEYS);
    $wrapper->($_, $e->{$_}, 'FieldHistory') for @WITH_HISTORY;
    $wrapper->('JobRole', $e->{JobRole}, 'FieldHistoryForJobRole');
    $wrapper->($_, $e->{$_}, 'FieldHistoryForEffectiveDate') for @WITH_EFFECTIVE;
    $wrapper->($_, $e->{$_}) for @DISPLAY_ONLY;
    $wrapper->("ContactDetail.$_", $e->{ContactDetail}{$_}, 'FieldHistory') for @CONTACT;
    $wrapper->("BankDetail.$_", $e->{BankDetail}{$_}, 'FieldHistory') for @BANK;
    $wrapper->("EmploymentDetail.$_", $e->{EmploymentDetail}{$_}, 'FieldHistory') for @EMPLOYMENT;
    push @bad, 'ContactDetail keys' unless join(',', sort keys %{ $e->{ContactDetail} }) eq join(',', sort @CONTACT);
    push @bad, 'BankDetail keys' unless join(',', sort keys %{ $e->{BankDetail} }) eq join(',', sort @BANK);
    push @bad, 'EmploymentDetail keys'
        unless join(',', sort keys %{ $e->{EmploymentDetail} }) eq join(',', sort @EMPLOYMENT);
    for (@PLAIN) { push @bad, "$_ not a plain string" if ref $e->{$_} || !defined $e->{$_} }
    for (@ARRAYS) { push @bad, "$_ not an array" unless ref $e->{$_} eq 'ARRAY' }
    push @bad, 'lstFieldHistoryJobrole not null' if defined $e->{lstFieldHistoryJobrole};
    for my $field (qw(StartDate DateOfBirth ProbationEndDate), @DISPLAY_ONLY[0 .. 4], 'EmploymentTypeEffectiveDate') {
        push @bad, "$field '@{[dv($e, $field)]}' not a date" unless dv($e, $field) =~ $DATE;
    }
    push @bad, 'LeavingDate not a date' unless $e->{LeavingDate} =~ $DATE;
    for my $entry (@{ $e->{RightToWork} }) {
        push @bad, 'RightToWork entry' unless join(',', sort keys %$entry)
            eq 'DocumentId,DocumentType,Duration,RightToWorkComments,ValidFrom,ValidTo'
            && !grep { join(',', keys %$_) ne 'DisplayValue' } values %$entry;
    }
    return \@bad;
}

{
    my @problems = map { my $p = shape_problems($_, 0); @$p ? (dv($_, 'EmployeeId') . ": @$p") : () } @ALL;
    is_deeply(\@problems, [], 'every listed record has the exact 1.4.1 shape, history arrays empty')
        or diag explain [@problems[0 .. 4]];
    is(json_kinds($r_all->{content}, 'DisplayValue'), 'string', 'every DisplayValue is a JSON string');
    is(json_kinds($r_all->{content}, 'lstFieldHistoryJobrole'), 'null', 'lstFieldHistoryJobrole is null');
    like($r_all->{content}, qr/^\{"isError":false,"Status":0,"Message":"[^"]+","Result":\[\{"EmployeeId":\{"DisplayValue":"PW1","FieldHistory":\[\]\},"Title":/,
         'records start with EmployeeId, Title (reference key order)');

    my $pw1 = $BY_ID{PW1};
    is_deeply({ map { ($_ => dv($pw1, $_)) } qw(FirstName LastName KnownAs Title JobRole Department Location
                                                 Company EmployeeStatus ReportsTo ReportsToEmployeeId
                                                 HolidayAllowanceDays HolidayAllowanceMins StartDate) },
              { FirstName => 'Margaret', LastName => 'Thornton', KnownAs => 'Maggie', Title => 'Ms',
                JobRole => 'Chief Executive Officer', Department => 'Executive', Location => 'Head Office',
                Company => 'Sandbox Trading Ltd', EmployeeStatus => '1', ReportsTo => '',
                ReportsToEmployeeId => '', HolidayAllowanceDays => '28.00', HolidayAllowanceMins => '12600',
                StartDate => '2013-10-21' },
              'PW1: the CEO, reports to nobody');
    is(dv($pw1, 'EmailId'), 'margaret.thornton@sandboxtrading.example', 'PW1 EmailId');
    is_deeply([map { $pw1->{"APIColumn$_"} } 1 .. 5], ['EXT-20007', 'CC-40', 'Hybrid', '', ''],
              'PW1 APIColumn1..5 (plain strings, some empty)');
    is($BY_ID{PW4}{APIColumn4}, 'Ünicode ✓', 'unicode in an API column');
    is(scalar(grep { $_->{APIColumn1} ne '' } @ALL), 270, 'APIColumn1 set on 270 records');
    is(scalar(grep { $_->{APIColumn5} ne '' } @ALL), 0, 'APIColumn5 always empty');
    is(dv($BY_ID{PW4}, 'Department'), 'R&D', 'a department with "&"');

    is_deeply([map { dv($BY_ID{$_}, 'FirstName') . ' ' . dv($BY_ID{$_}, 'LastName') } qw(PW2 PW3 PW4 PW5 PW6)],
              ['José García', 'Zoë Müller', 'Björn Ødegaard', "Siobhán O'Brien", 'Łukasz Wiśniewski'],
              'unicode names');
    is_deeply({ map { (dv($BY_ID{$_}, 'ReportsToEmployeeId') => 1) } qw(PW2 PW3) }, { PW1 => 1 },
              'PW2 and PW3 report to PW1');

    my @broken = grep {
        my $boss = $BY_ID{ dv($_, 'ReportsToEmployeeId') };
        dv($_, 'EmployeeId') ne 'PW1' && !($boss
            && dv($_, 'ReportsTo') eq dv($boss, 'FirstName') . ' ' . dv($boss, 'LastName')
            && dv($_, 'ReportsToEmailAddress') eq dv($boss, 'EmailId')
            && $boss->{LeavingDate} eq '')
    } @ALL;
    is(scalar @broken, 0, 'ReportsTo / ReportsToEmployeeId / ReportsToEmailAddress name a current employee');

    my %emails;
    is(scalar(grep { !$emails{ dv($_, 'EmailId') }++ } @ALL), 300, 'work e-mails are unique');
    my %gender;
    $gender{ dv($_, 'Gender') }++ for @ALL;
    is_deeply([sort keys %gender], ['Female', 'Male', 'Not Specified'], 'Gender values');
    ok((grep { dv($_, 'DateOfBirth') eq '' } @ALL) && (grep { dv($_, 'ProbationEndDate') eq '' } @ALL),
       'some empty dates are ""');
    ok((grep { @{ $_->{RightToWork} } } @ALL) > 20, 'some RightToWork entries');
    my %currency_company = map { (dv($_, 'Company') => 1) } @ALL;
    is_deeply([sort keys %currency_company],
              ['Sandbox Trading Inc.', 'Sandbox Trading Ireland Ltd', 'Sandbox Trading Ltd'], 'three companies');
}

# -- GetEmployeeDetailById (1.4.1) --------------------------------------------

{
    my ($r, $d) = action('/Employee', 'GetEmployeeDetailById', EmployeeId => 'PW7');
    is_deeply(outcome($r, $d), [200, 'false', 0, $MSG_REQUEST], 'GetEmployeeDetailById: success');
    my $e = $d->{Result};
    is(ref $e, 'HASH', 'Result is one object, not an array');
    is_deeply(shape_problems($e, 1), [], 'same 1.4.1 shape');
    my $jobs = $e->{JobRole}{FieldHistoryForJobRole};
    is(scalar @$jobs, 2, 'PW7 (promoted): two job-role history entries');
    is_deeply([sort keys %{ $jobs->[0] }], [qw(ChangedOn EffectiveDate JobRole ReasonForChange)],
              'job-role history item keys');
    is($jobs->[0]{JobRole}, dv($e, 'JobRole'), 'newest history entry first (the current role)');
    is(dv($e, 'JobRoleChangeDate'), $jobs->[0]{EffectiveDate}, 'JobRoleChangeDate = the promotion date');
    is_deeply([sort keys %{ $e->{Department}{FieldHistoryForEffectiveDate}[0] }],
              [qw(ChangedOn EffectiveDate FieldData ReasonForChange)], 'effective-date history item keys');

    # Blank the histories: what is left equals the list record.
    for my $value (values %$e) {
        next unless ref $value eq 'HASH';
        $_ = [] for grep { ref eq 'ARRAY' } values %$value;
    }
    is_deeply($e, $BY_ID{PW7}, 'apart from history, identical to the GetAllEmployeeDetail record');

    (undef, $d) = action('/Employee', 'GetEmployeeDetailById', EmployeeId => 'PW6');
    is_deeply($d->{Result}{LastName}{FieldHistory}[0] && [sort keys %{ $d->{Result}{LastName}{FieldHistory}[0] }],
              [qw(ChangedOn NewValue OldValue ReasonForChange)], 'PW6: a LastName change (OldValue/NewValue)');

    (undef, $d) = action('/Employee', 'GetEmployeeDetailById', EmployeeId => 'pw3');
    is(dv($d->{Result}, 'EmployeeId'), 'PW3', 'EmployeeId lookup is case-insensitive');
    (undef, $d) = action('/Employee', 'GetEmployeeDetailById', EmployeeId => 'PW64');
    is($d->{Result}{LeavingDate}, $BY_ID{PW64}{LeavingDate}, 'a leaver by id (IncludeLeavers not needed)');
    (undef, $d) = action('/Employee', 'GetEmployeeDetailById', EmployeeId => 'PW83-2');
    is(dv($d->{Result}, 'EmployeeId'), 'PW83-2', 'an id with a dash');

    error_is('/Employee', { Action => 'GetEmployeeDetailById', EmployeeId => 'PW9999' }, 5,
             'EmployeeId does not exists.', 'unknown EmployeeId: Status 5');
    error_is('/Employee', { Action => 'GetEmployeeDetailById' }, 5, 'EmployeeId is missing.',
             'no EmployeeId: Status 5');
    error_is('/Employee', { Action => 'GetEmployeeDetailById', EmployeeId => '' }, 5,
             'EmployeeId cannot be empty.', 'empty EmployeeId: Status 5');
    error_is('/Employee', { Action => 'GetEmployeeDetailById', EmployeeId => 'PW1234567890123456' }, 5,
             'EmployeeId contains more than 15 characters.', 'EmployeeId too long: Status 5');
}

# -- GetHolidayDetail (1.4.2) -------------------------------------------------

my @HOLIDAY_KEYS = qw(AnnualLeaveTxnId StartDate EndDate DurationType DurationInDays DurationInMinutes
                      DurationInDaysThisPeriod DurationInMinutesThisPeriod PartOfDay
                      StartDatePartOfTheDay EndDatePartOfTheDay RequesterComments ApproverComments
                      Approver Status LastActionDateTime IsToilHoliday ReferenceId);
{
    my ($r, $d) = action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW4');
    is_deeply(outcome($r, $d), [200, 'false', 0, $MSG_REQUESTED],
              'GetHolidayDetail: success, "The requested processed successfully."');
    my @h = @{ $d->{Result} };
    is(scalar @h, 3, 'PW4 has 3 holidays');
    like($r->{content}, qr/"Result":\[\{"AnnualLeaveTxnId":\d+,"StartDate":"[^"]+","EndDate":"[^"]+","DurationType":\d,"DurationInDays":\d+\.\d\d,/,
         'reference key order; DurationInDays a number with two decimals');
    is_deeply([sort keys %{ $h[0] }], [sort @HOLIDAY_KEYS], 'holiday keys');
    is_deeply([map { [$_->{StartDate}, $_->{EndDate}, $_->{DurationType}, $_->{Status}] } @h],
              [['2025-04-11', '2025-04-11', 2, 'Declined'], ['2025-06-23', '2025-06-25', 1, 'Approved'],
               ['2026-08-17', '2026-08-19', 1, 'Pending']], 'PW4 holidays, by StartDate');
    like($r->{content}, qr/"DurationInDays":3\.00,"DurationInMinutes":1350,/, 'three days = 3.00 / 1350 minutes');
    is(json_kinds($r->{content}, 'AnnualLeaveTxnId'), 'number', 'AnnualLeaveTxnId is a number');
    is(json_kinds($r->{content}, 'IsToilHoliday'), 'bool', 'IsToilHoliday is a boolean');
    is(scalar(grep { $_->{LastActionDateTime} =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/ } @h), 3,
       'LastActionDateTime yyyy-MM-dd HH:mm:ss');

    # Every employee: ids unique, values in range, within 2025-2026.
    my (%txn, @bad, $none, $total);
    for my $e (@ALL) {
        my ($r2, $d2) = action('/Holiday', 'GetHolidayDetail', EmployeeId => dv($e, 'EmployeeId'));
        if ($d2->{Status} == 10) { $none++; next }
        for my $hol (@{ $d2->{Result} }) {
            $total++;
            push @bad, "txn $hol->{AnnualLeaveTxnId}" if $txn{ $hol->{AnnualLeaveTxnId} }++;
            push @bad, "status $hol->{Status}" unless $hol->{Status} =~ /^(Approved|Pending|Declined)$/;
            push @bad, "type $hol->{DurationType}" unless $hol->{DurationType} =~ /^[123]$/;
            push @bad, "part $hol->{PartOfDay}" unless $hol->{PartOfDay} =~ /^(|AM|PM)$/;
            push @bad, "dates $hol->{StartDate}" unless $hol->{StartDate} ge '2025-01-01'
                && $hol->{EndDate} le '2026-12-31' && $hol->{StartDate} le $hol->{EndDate};
        }
    }
    is_deeply(\@bad, [], "all $total holidays are well-formed, AnnualLeaveTxnId unique");
    is($total, 773, '773 holidays in all');
    is($none, 60, '60 employees have no holidays');

    ($r, $d) = action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW5');
    is_deeply([@{ outcome($r, $d) }, $d->{Result}], [200, 'false', 10, 'No records found.', []],
              'PW5 (no holidays): Status 10, isError false, Result []');

    # Date range: overlap, and the part of the holiday inside it.
    ($r, $d) = action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW4',
                      StartDate => '2025-06-24', EndDate => '2026-01-31');
    is_deeply([map { $_->{StartDate} } @{ $d->{Result} }], ['2025-06-23'], 'StartDate/EndDate select by overlap');
    like($r->{content}, qr/"DurationInDays":3\.00,"DurationInMinutes":1350,"DurationInDaysThisPeriod":2\.00,"DurationInMinutesThisPeriod":900,/,
         'DurationInDaysThisPeriod: the days inside the range');
    (undef, $d) = action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW4', StartDate => '2026-01-01');
    is_deeply([map { $_->{StartDate} } @{ $d->{Result} }], ['2026-08-17'], 'StartDate alone: open range');
    ($r, $d) = action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW4',
                      StartDate => '2030-01-01', EndDate => '2030-12-31');
    is_deeply([$d->{Status}, $d->{Result}], [10, []], 'nothing in the range: Status 10');

    error_is('/Holiday', { Action => 'GetHolidayDetail' }, 5, 'EmployeeId is missing.', 'holiday without EmployeeId');
    error_is('/Holiday', { Action => 'GetHolidayDetail', EmployeeId => 'PW4', StartDate => '2025-13-01' }, 5,
             'StartDate contains invalid data.', 'bad StartDate');
    error_is('/Holiday', { Action => 'GetHolidayDetail', EmployeeId => 'PW4', StartDate => '2026-01-01',
                           EndDate => '2025-01-01' }, 5, 'StartDate should be before to EndDate.',
             'StartDate after EndDate');
}

# -- GetAbsenceDetail (1.4.3) -------------------------------------------------

{
    my @range = (StartDate => '2025-01-01', EndDate => '2026-12-31');
    my ($r, $d) = action('/Absence', 'GetAbsenceDetail', EmployeeId => 'PW1', @range);
    is_deeply(outcome($r, $d), [200, 'false', 0, $MSG_REQUESTED], 'GetAbsenceDetail: success');
    is(scalar @{ $d->{Result} }, 3, 'PW1 has 3 absences');
    is_deeply([sort keys %{ $d->{Result}[0] }],
              [sort qw(AbsenceLeaveTxnId StartDate EndDate DurationDays DurationInDaysThisPeriod PartOfDay
                       BackToWorkInterviewRequried BackToWorkInterviewDate MedicalCertificateType
                       MedicalCertificateReceivedDate Reason Comments AbsencePaidStatus EmergencyLeave
                       ReferenceId)], 'absence keys (BackToWorkInterviewRequried spelling)');
    is(json_kinds($r->{content}, 'DurationDays'), 'string', 'DurationDays is a string');
    is(json_kinds($r->{content}, 'DurationInDaysThisPeriod'), 'string', 'DurationInDaysThisPeriod is a string');
    is(json_kinds($r->{content}, 'AbsenceLeaveTxnId'), 'number', 'AbsenceLeaveTxnId is a number');
    like($r->{content}, qr/"DurationDays":"\d+\.\d\d"/, 'DurationDays like "1.00"');

    ($r, $d) = action('/Absence', 'GetAbsenceDetail', EmployeeId => 'PW6', @range);
    is_deeply([$d->{isError}, $d->{Status}, $d->{Result}], [JSON::PP::false, 10, []], 'PW6 (no absences): Status 10');
    error_is('/Absence', { Action => 'GetAbsenceDetail', EmployeeId => 'PW1' }, 5, 'StartDate is missing.',
             'absence: StartDate required');
    error_is('/Absence', { Action => 'GetAbsenceDetail', EmployeeId => 'PW1', StartDate => '2025-01-01' }, 5,
             'EndDate is missing.', 'absence: EndDate required');
    error_is('/Absence', { Action => 'GetAbsenceDetail', EmployeeId => 'PW1', StartDate => '',
                           EndDate => '2025-01-01' }, 5, 'StartDate cannot be empty.', 'absence: empty StartDate');
}

# -- GetSalaryDetail (1.4.4) --------------------------------------------------

{
    my ($r, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW4', IsIncludeHistory => 'true');
    is_deeply(outcome($r, $d), [200, 'false', 0, $MSG_REQUESTED], 'GetSalaryDetail: success');
    my @rows = @{ $d->{Result} };
    is(scalar @rows, 3, 'PW4: three salary rows with history');
    is_deeply([sort keys %{ $rows[0] }],
              [sort qw(EffectiveFrom SalaryType PaymentFrequency SalaryAmount TotalSalaryAmount Currency
                       ChangeReason Comments Deductions Entitlements)], 'salary keys');
    is_deeply([map { $_->{EffectiveFrom} } @rows], [sort { $b cmp $a } map { $_->{EffectiveFrom} } @rows],
              'newest first');
    is($rows[-1]{ChangeReason}, 'Starting Salary', 'the oldest row is the starting salary');
    is(json_kinds($r->{content}, 'SalaryAmount'), 'string', 'SalaryAmount is a string');
    like($rows[0]{SalaryAmount}, qr/^\d+\.\d{4}$/, 'amount with 4 decimals');
    is($rows[0]{Currency}, '£', 'currency is a symbol');

    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW4', IsIncludeHistory => JSON::PP::false);
    is_deeply($d->{Result}, [$rows[0]], 'IsIncludeHistory false: the current row only');

    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW200', IsIncludeHistory => 'True');
    is_deeply([map { $_->{EffectiveFrom} } @{ $d->{Result} }], ['2026-08-01', '2026-04-01', '2025-03-24'],
              'PW200: a raise dated after today');
    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW200', IsIncludeHistory => 'false');
    is_deeply([map { $_->{EffectiveFrom} } @{ $d->{Result} }], ['2026-04-01'], '... not current yet');

    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW5', IsIncludeHistory => 'false');
    is($d->{Result}[0]{Currency}, '€', 'Dublin: €');
    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW7', IsIncludeHistory => 'false');
    is($d->{Result}[0]{Currency}, '$', 'New York: $');
    (undef, $d) = action('/Salary', 'GetSalaryDetail', EmployeeId => 'PW2', IsIncludeHistory => 'false');
    is($d->{Result}[0]{SalaryType}, 'Monthly', 'PW2: a monthly salary');

    my %freq;
    for my $id (map { dv($_, 'EmployeeId') } @ALL[0 .. 79]) {
        my (undef, $s) = action('/Salary', 'GetSalaryDetail', EmployeeId => $id, IsIncludeHistory => 'true');
        $freq{ $_->{PaymentFrequency} }++ for @{ $s->{Result} };
    }
    is_deeply([sort keys %freq], ['Four Weekly', 'Monthly', 'Weekly'], 'payment frequencies');

    error_is('/Salary', { Action => 'GetSalaryDetail', EmployeeId => 'PW4' }, 5, 'IsIncludeHistory is missing.',
             'IsIncludeHistory required');
}

# -- GetBenefitByEmployeeId (1.4.5) -------------------------------------------

{
    my ($r, $d) = action('/Benefit', 'GetBenefitByEmployeeId', EmployeeId => 'PW2');
    is_deeply(outcome($r, $d), [200, 'false', 0, $MSG_REQUEST], 'GetBenefitByEmployeeId: success');
    is(scalar @{ $d->{Result} }, 2, 'PW2 has 2 benefits');
    is_deeply([sort keys %{ $d->{Result}[0] }],
              [sort qw(BenefitId Benefit DateAwarded ExpiryDate Value Comments RecoverOnTermination
                       Customfields Files Audio Video)], 'benefit keys');
    is(json_kinds($r->{content}, 'BenefitId'), 'number', 'BenefitId is a number');
    is(json_kinds($r->{content}, 'Value'), 'number', 'Value is a number');
    like($d->{Result}[0]{DateAwarded}, qr/^\d{4}-\d\d-\d\d$/, 'DateAwarded yyyy-MM-dd');

    ($r, $d) = action('/Benefit', 'GetBenefitByEmployeeId', EmployeeId => 'PW1');
    is_deeply([@{ outcome($r, $d) }, $d->{Result}], [200, 'false', 10, 'No records found.', []],
              'PW1 (no benefits): Status 10');
}

# -- Status 10 as an error (option) and other API keys ------------------------

{
    my $other = HRIS::Sandbox->start('peoplehr', api_keys => ['key-one', 'key-two'],
                                     args => ['--rate-limit', '0', '--no-records-is-error']);
    my ($r, $d) = call('/Holiday', { APIKey => 'key-two', Action => 'GetHolidayDetail', EmployeeId => 'PW5' },
                       base => $other->url);
    is_deeply([@{ outcome($r, $d) }, $d->{Result}], [200, 'true', 10, 'No records found.', []],
              '--no-records-is-error: Status 10 with isError true');
    ($r, $d) = call('/Employee', { Action => 'GetCompanyInformation' }, base => $other->url);
    is($d->{Status}, 2, 'explicit --api-key replaces the default key');
    $other->stop;
}

# -- rate limit (1.7) ---------------------------------------------------------

{
    my $limited = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '5']);
    my @answers = map { [call('/Employee', { Action => 'GetCompanyInformation' }, base => $limited->url)] } 1 .. 4;
    push @answers, [call('/Holiday', { APIKey => 'wrong', Action => 'GetHolidayDetail' }, base => $limited->url)];
    is_deeply([map { $_->[1]{Status} } @answers], [0, 0, 0, 0, 2], 'five calls pass (failed ones count too)');
    my ($r, $d) = call('/Employee', { Action => 'GetCompanyInformation' }, base => $limited->url);
    is_deeply([$r->{status}, $d], [200, { isError => JSON::PP::true, Status => 6,
                                          Message => 'API calls will be limited to a 5 per minute', Result => [] }],
              'sixth call: HTTP 200 envelope, Status 6, Result []');
    ok(!exists $r->{headers}{'retry-after'}, 'envelope mode: no Retry-After');
    ($r, $d) = call('/Nowhere', { Action => 'x' }, base => $limited->url);
    is($d->{Status}, 6, 'the limit covers every path');
    is($limited->stats->{requests}, 7, 'control endpoints are not limited; stats count throttled calls');
    $limited->reset;
    ($r, $d) = call('/Employee', { Action => 'GetCompanyInformation' }, base => $limited->url);
    is($d->{Status}, 0, '/_sandbox/reset empties the window');
    $limited->stop;

    my $strict = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '5', '--rate-limit-mode', '429']);
    call('/Employee', { Action => 'GetCompanyInformation' }, base => $strict->url) for 1 .. 5;
    ($r, $d) = call('/Employee', { Action => 'GetCompanyInformation' }, base => $strict->url);
    is($r->{status}, 429, '429 mode: HTTP 429');
    like($r->{headers}{'retry-after'} // '', qr/^\d+$/, '... with Retry-After seconds');
    cmp_ok($r->{headers}{'retry-after'} // 0, '<=', 60, '... at most the window');
    is_deeply([$d->{Status}, $d->{Message}], [6, 'API calls will be limited to a 5 per minute'],
              '... and the envelope as body');
    $strict->stop;

    my $sliding = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '2', '--rate-window', '1']);
    my @statuses = map { (call('/Employee', { Action => 'GetCompanyInformation' }, base => $sliding->url))[1]{Status} } 1 .. 3;
    is_deeply(\@statuses, [0, 0, 6], 'limit 2 per 1 s window: third call refused');
    sleep 1.1;
    is((call('/Employee', { Action => 'GetCompanyInformation' }, base => $sliding->url))[1]{Status}, 0,
       'the window slides: calls pass again');
    $sliding->stop;

    my $default = HRIS::Sandbox->start('peoplehr');
    @statuses = map { (call('/Employee', { Action => 'GetCompanyInformation' }, base => $default->url))[1]{Status} } 1 .. 31;
    is_deeply([@statuses[0 .. 29]], [(0) x 30], 'default: 30 calls a minute pass');
    is($statuses[30], 6, 'default: the 31st is refused');
    $default->stop;

    @statuses = map { (action('/Employee', 'GetCompanyInformation'))[1]{Status} } 1 .. 40;
    is(scalar(grep { $_ != 0 } @statuses), 0, '--rate-limit 0: no limit (40 quick calls)');
}

# -- fault switches -----------------------------------------------------------

$sb->reset;
{
    $sb->fault({ fault => '503', retry_after => '7', path => '/Holiday' });
    my $r = post('/Employee', { Action => 'GetCompanyInformation' });
    is($r->{status}, 200, 'path fault: other paths untouched');
    $r = post('/Holiday', { Action => 'GetHolidayDetail', EmployeeId => 'PW4' });
    is($r->{status}, 503, '503 fault on /Holiday');
    is($r->{headers}{'retry-after'}, '7', '... with Retry-After');
    is(post('/Holiday', { Action => 'GetHolidayDetail', EmployeeId => 'PW4' })->{status}, 200, 'fault used up');

    $sb->fault({ fault => '429' });
    $r = post('/Employee', { Action => 'GetAllEmployeeDetail' }, no_key => 1);
    is($r->{status}, 429, 'faults come before the API key check');

    $sb->fault({ fault => 'truncated_json' });
    $r = post('/Employee', { Action => 'GetAllEmployeeDetail' });
    is($r->{status}, 200, 'truncated_json: 200');
    ok(!eval { decode_json($r->{content}); 1 }, 'truncated_json: body is not valid JSON');

    $sb->fault({ fault => 'html' });
    $r = post('/Salary', { Action => 'GetSalaryDetail', EmployeeId => 'PW4', IsIncludeHistory => 'true' });
    is($r->{status}, 200, 'html: 200');
    like($r->{headers}{'content-type'}, qr{^text/html}, 'html: text/html');

    $sb->fault({ fault => 'slow', delay_ms => 400 });
    my $t0 = time;
    my ($r2, $d) = action('/Benefit', 'GetBenefitByEmployeeId', EmployeeId => 'PW2');
    cmp_ok(time - $t0, '>=', 0.35, 'slow: answered after the delay');
    is($d->{Status}, 0, 'slow: normal answer');

    $sb->fault({ fault => 'reset', path => '/Absence' });
    $r = post('/Absence', { Action => 'GetAbsenceDetail', EmployeeId => 'PW1', StartDate => '2025-01-01',
                            EndDate => '2026-12-31' });
    is($r->{status}, 599, 'reset: connection error');
}

# -- statistics ---------------------------------------------------------------

{
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears stats');
    $sb->fault({ fault => '500' });
    action('/Employee', 'GetCompanyInformation') for 1 .. 3;
    action('/Holiday', 'GetHolidayDetail', EmployeeId => 'PW4');
    post('/Employee', { Action => 'GetCompanyInformation' }, no_key => 1);
    my $stats = $sb->stats;
    is($stats->{requests}, 5, 'every provider request is counted (faulted and failed too)');
    is_deeply($stats->{by_path}, { '/Employee' => 4, '/Holiday' => 1 }, 'by_path');
    is($stats->{faults_served}, 1, 'faults_served');
}

# -- webhooks (1.9): a listener URL from the settings, ActionId packets --------

{
    my $psb = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);
    my $control = sub {
        my ($method, $path, $body, $box) = @_;
        my $r = $http->request($method, ($box || $psb)->url . $path,
                               { headers => { 'Content-Type' => 'application/json' },
                                 defined $body ? (content => $JSON->encode($body)) : () });
        return ($r, eval { decode_json($r->{content}) });
    };
    my $holiday = sub {
        my ($box, %fields) = @_;
        return call('/Holiday', { Action => 'AddNewHoliday', EmployeeId => 'PW13', DurationType => 1,
                                  StartDate => '2027-02-01', EndDate => '2027-02-03', DurationInDays => 3,
                                  DurationInMinutes => 0, Comments => 'Ski trip', %fields }, base => $box->url);
    };

    is_deeply(($control->('GET', '/_sandbox/webhooks/listener'))[1], { url => undef }, 'no listener URL at first');
    my (undef, $first) = $holiday->($psb);
    ok(!$first->{isError}, 'a holiday without a listener is added');
    sleep 0.3;
    is_deeply(($control->('GET', '/_sandbox/webhooks/deliveries'))[1]{deliveries}, [], '... and nothing is sent');

    is(($control->('POST', '/_sandbox/webhooks/listener', { url => 'http://example.com/hook' }))[0]{status}, 400,
       'listener: http to a public host refused');
    is(($control->('POST', '/_sandbox/webhooks/listener', { link => 'x' }))[0]{status}, 400, 'listener: no url 400');
    my $rx = HRIS::Sandbox->receiver(statuses => [200]);
    is_deeply(($control->('POST', '/_sandbox/webhooks/listener', { url => $rx->url }))[1], { url => $rx->url },
              'POST /_sandbox/webhooks/listener sets it');

    my (undef, $added) = $holiday->($psb, StartDate => '2027-03-01', EndDate => '2027-03-01', DurationInDays => 0.5,
                                    PartOfDay => 'AM', Comments => 'Dentist');
    my $got = $rx->wait_for(1, 10);
    is(scalar @$got, 1, 'AddNewHoliday sends one packet');
    like($got->[0]{headers}{'content-type'}, qr{^application/json}, 'JSON (PLAUSIBLE)');
    ok(!exists $got->[0]{headers}{authorization}, 'no authentication of any kind');
    my $packet = decode_json($got->[0]{body});
    is_deeply($packet, { ActionId => 4, Action => 'Holiday Added', EmployeeId => 'PW13',
                         HolidayType => 'Less than a day', StartDate => '2027-03-01', EndDate => '2027-03-01',
                         HolidayRecordedIn => 'Days', PartOfDay => 'AM', StartDatePartOfTheDay => '',
                         EndDatePartOfTheDay => '', Duration => '0.50', Comments => 'Dentist',
                         IsToilHoliday => 'No' }, 'ActionId 4 Holiday Added with the documented fields');
    is(json_kinds($got->[0]{body}, 'ActionId'), 'number', 'ActionId is a number');
    is(json_kinds($got->[0]{body}, $_), 'string', "$_ is a string") for qw(EmployeeId Duration StartDate);
    my (undef, $refused) = $holiday->($psb, StartDate => '2027-03-01', EndDate => '2027-03-01');
    ok($refused->{isError}, 'a refused holiday ...');
    sleep 0.3;
    is(scalar @{ $rx->received }, 1, '... sends nothing');

    # The control switch: ActionIds for an employee or a holiday.
    my $txn = $added->{Result}{AnnualLeaveTxnId};
    my @fire = ([1, 'PW13', 'New Starter Added'], [2, 'PW13', 'Employee Detail Updated'], [3, 'PW13', 'Marked Leaver'],
                [18, 'PW999', 'Employee Deleted'], [5, $txn, 'Holiday Updated'], [6, $txn, 'Holiday Deleted'],
                [8, $txn, 'Holiday Approved']);
    for my $case (@fire) {
        my ($r) = $control->('POST', '/_sandbox/webhooks/fire', { event => $case->[0], id => $case->[1] });
        is($r->{status}, 202, "fire ActionId $case->[0]: 202");
    }
    $got = $rx->wait_for(1 + @fire, 10);
    my @packets = map { decode_json($_->{body}) } @$got[1 .. $#$got];
    is_deeply([map { [$_->{ActionId}, $_->{Action}] } @packets], [map { [$_->[0], $_->[2]] } @fire],
              'ActionId and Action of each');
    is_deeply([map { $_->{EmployeeId} } @packets], [('PW13') x 3, 'PW999', ('PW13') x 3],
              'EmployeeId (a holiday\'s employee for 5, 6, 8)');
    ok(exists $packets[1]{FieldName} && exists $packets[1]{NewValue} && exists $packets[1]{OldValue},
       'ActionId 2 names the field, old and new values');
    is($packets[4]{OriginalStartDate}, '2027-03-01', 'ActionId 5 carries the Original* fields');
    ok($packets[6]{AuthorisedByFirstName}, 'ActionId 8 names who authorised it');
    $control->('POST', '/_sandbox/webhooks/fire', { event => 2, id => 'PW13',
                                                   fields => { FieldName => 'Other Name(s)', NewValue => 'Am', OldValue => 'zz' } });
    $got = $rx->wait_for(9, 10);
    is(decode_json($got->[8]{body})->{NewValue}, 'Am', 'fire: fields replace pairs of the packet');
    is(($control->('POST', '/_sandbox/webhooks/fire', { event => 99, id => 'PW13' }))[0]{status}, 400, 'fire: unknown ActionId 400');
    is(($control->('POST', '/_sandbox/webhooks/fire', { event => 1, id => 'PW999' }))[0]{status}, 404, 'fire: unknown employee 404');
    is(($control->('POST', '/_sandbox/webhooks/fire', { event => 4, id => 1 }))[0]{status}, 404, 'fire: unknown holiday 404');

    # No retry is documented: a failed packet is not sent again.
    my $down = HRIS::Sandbox->receiver(statuses => [500]);
    $control->('POST', '/_sandbox/webhooks/listener', { url => $down->url });
    $control->('DELETE', '/_sandbox/webhooks/deliveries');
    $control->('POST', '/_sandbox/webhooks/fire', { event => 1, id => 'PW13' });
    $down->wait_for(1, 10);
    sleep 1;
    is(scalar @{ $down->received }, 1, 'a 500 is not retried (PLAUSIBLE)');
    is_deeply([map { [$_->{attempt}, $_->{status}, $_->{retry_in}, $_->{url}] }
               @{ ($control->('GET', '/_sandbox/webhooks/deliveries'))[1]{deliveries} }],
              [[1, 500, undef, $down->url]], 'deliveries: the attempt, its status, no retry');

    is_deeply(($control->('DELETE', '/_sandbox/webhooks/listener'))[1], { url => undef }, 'DELETE clears the listener');
    $psb->reset;

    # Options: a listener from the start, form bodies.
    my $form_rx = HRIS::Sandbox->receiver(statuses => [200]);
    my $form = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0', '--webhook-url', $form_rx->url,
                                                         '--webhook-encoding', 'form']);
    is_deeply(($control->('GET', '/_sandbox/webhooks/listener', undef, $form))[1], { url => $form_rx->url },
              '--webhook-url sets the listener');
    $holiday->($form);
    $got = $form_rx->wait_for(1, 10);
    like($got->[0]{headers}{'content-type'}, qr{^application/x-www-form-urlencoded}, '--webhook-encoding form');
    like($got->[0]{body}, qr/^ActionId=4&Action=Holiday\+Added&EmployeeId=PW13&/, '... the same pairs');
}

# -- determinism --------------------------------------------------------------

{
    my $twin = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);
    for my $case (['/Employee', { Action => 'GetAllEmployeeDetail', IncludeLeavers => 'true' }],
                  ['/Holiday', { Action => 'GetHolidayDetail', EmployeeId => 'PW13' }],
                  ['/Employee', { Action => 'GetEmployeeDetailById', EmployeeId => 'PW17' }]) {
        is(post($case->[0], $case->[1], base => $twin->url)->{content}, post(@$case)->{content},
           "byte-identical in a second process: $case->[1]{Action}");
    }
    $twin->stop;
}

done_testing();
