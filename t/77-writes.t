#!/usr/bin/perl
# Writes through the unified API (CONTRACT.md §7), against the sandboxes:
#
#   - every operation of the contract's table end to end: the answer is the
#     record as a get maps it (201 for a create), and later reads see it;
#   - each validation error is a 400 naming the field, and no upstream call
#     is made (counted at the sandbox);
#   - a provider's refusal is a 422 with details.upstream_status and
#     details.upstream_message (a header, a JSON body, an error inside a 200);
#   - 501 for an operation a table does not have, 405 for a method on the
#     wrong path, 404 for a record the provider does not have;
#   - a write is sent once: no answer in time, a cut connection or a 502 is
#     not resent (504/502 with details.outcome "unknown"); a throttled one is;
#   - a create followed by a list holds the new record exactly once;
#   - GET {resource}/meta and the OpenAPI document say what can be written.

use strict;
use warnings;
use Test::More;
use File::Temp ();
use JSON::PP;
use Time::HiRes qw(sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $J = JSON::PP->new->canonical;

my %sb = map { $_ => HRIS::Sandbox->start($_) } qw(bamboohr personio heavenhr peoplehr);
my $accounts = HRIS::Nginx::accounts_for(%sb);

my $ng = HRIS::Nginx->start(accounts => $accounts,
    location => 'hris_timeout 1500ms; hris_retries 2; hris_retry_backoff 10ms;');

# write(METHOD, provider, path below hris/, body (ref or text), headers)
sub write_req {
    my ($method, $p, $path, $body, %h) = @_;
    my $sep = $path =~ /\?/ ? '&' : '?';
    return $ng->request($method, "/unified/hris/$path${sep}integrated_account_id=acme-$p",
        defined $body ? (body => ref $body ? $J->encode($body) : $body) : (),
        headers => { 'Content-Type' => 'application/json', %h });
}

sub get_rec {
    my ($p, $path) = @_;
    return $ng->get("/unified/hris/$path?integrated_account_id=acme-$p");
}

sub calls { $sb{$_[0]}->stats->{requests} }

sub path_calls {
    my ($p, $path) = @_;
    return $sb{$p}->stats->{by_path}{$path} // 0;
}

# a 400 that names the field, and nothing sent to the provider
sub bad_input {
    my ($method, $p, $path, $body, $field, $name, $like) = @_;
    subtest $name => sub {
        my $before = calls($p);
        my $res = write_req($method, $p, $path, $body);
        is($res->{status}, 400, 'status 400');
        is($res->{json}{statusCode}, 400, 'the error envelope');
        is($res->{json}{details}{field}, $field, "details.field: " . ($field // 'none'))
            if defined $field;
        like($res->{json}{message}, $like, "message: $res->{json}{message}") if $like;
        is(calls($p), $before, 'no upstream call');
    };
}

my $BP = '/api/gateway.php/acme';

# -- BambooHR ------------------------------------------------------------------

my ($ada, $req_id);

subtest 'bamboohr: employees create (201, Location, no body) is read back' => sub {
    my $before = path_calls('bamboohr', "$BP/v1/employees");
    my $res = write_req('POST', 'bamboohr', 'employees', {
        first_name => 'Ada', last_name => 'Lovelace', email => 'ada.lovelace@analytical.example',
        start_date => '2026-07-01', employment_type => 'part_time', job_title => 'Analyst',
        department => 'Engineering', date_of_birth => '1815-12-10' });
    is($res->{status}, 201, '201 Created');
    my $r = $res->{json}{result};
    ok($r->{id} =~ /^\d+$/, "the new id from Location: $r->{id}");
    is($r->{remote_id}, $r->{id}, 'remote_id');
    is($r->{first_name}, 'Ada', 'first_name');
    is($r->{email}, 'ada.lovelace@analytical.example', 'email');
    is($r->{start_date}, '2026-07-01', 'start_date');
    is($r->{employment_type}, 'part_time', 'employment_type mapped back and forth');
    is($r->{department}, 'Engineering', 'department');
    is($r->{date_of_birth}, '1815-12-10', 'date_of_birth');
    is($r->{remote_data}{employmentStatusName}, 'Part-Time', 'the provider got Part-Time');
    is(path_calls('bamboohr', "$BP/v1/employees"), $before + 2,
       'one POST, one read back (GET of the same path)');
    $ada = $r->{id};
    my $got = get_rec('bamboohr', "employees/$ada");
    is($got->{json}{result}{last_name}, 'Lovelace', 'a later get sees it');
};

subtest 'bamboohr: employees update (POST /v1/employees/{id}) answers the record' => sub {
    my $res = write_req('PATCH', 'bamboohr', "employees/$ada",
                        { job_title => 'Countess', mobile_phone => '555-1815' });
    is($res->{status}, 200, 'status 200');
    is($res->{json}{result}{job_title}, 'Countess', 'job_title changed');
    is($res->{json}{result}{mobile_phone}, '555-1815', 'mobile_phone changed');
    is($res->{json}{result}{first_name}, 'Ada', 'the rest kept');
    my ($post) = grep { $_->{method} eq 'POST' && $_->{target} =~ m{/v1/employees/$ada$} }
                 @{ $sb{bamboohr}->requests };
    ok($post, 'sent as POST /v1/employees/{id}');
};

subtest 'bamboohr: time-off request create (PUT) answers the request' => sub {
    my $res = write_req('POST', 'bamboohr', 'timeoff_requests', {
        employee => { id => '4' }, timeoff_type => { id => '78' },
        start_time => '2026-08-03', end_time => '2026-08-04T00:00:00+02:00',
        employee_note => 'Lake Como' });
    is($res->{status}, 201, 'status 201') or diag $res->{body};
    my $r = $res->{json}{result};
    is($r->{status}, 'requested', 'requested, for the manager');
    is($r->{employee}{id}, '4', 'employee');
    is($r->{timeoff_type}{id}, '78', 'timeoff_type');
    is($r->{start_time}, '2026-08-03', 'start_time');
    is($r->{end_time}, '2026-08-04', 'end_time: the date of a timestamp');
    is($r->{employee_note}, 'Lake Como', 'employee_note');
    my ($put) = grep { $_->{method} eq 'PUT' && $_->{target} =~ m{/v1/employees/4/time_off/request$} }
                @{ $sb{bamboohr}->requests };
    ok($put, 'PUT /v1/employees/{id}/time_off/request');
    $req_id = $r->{id};
};

subtest 'bamboohr: time-off status: approved, declined, cancelled mapped back' => sub {
    my $res = write_req('PATCH', 'bamboohr', "timeoff_requests/$req_id", { status => 'approved' });
    is($res->{status}, 200, 'approved: 200');
    is($res->{json}{result}{status}, 'approved', 'the record read back says approved');
    $res = write_req('PATCH', 'bamboohr', "timeoff_requests/$req_id", { status => 'cancelled' });
    is($res->{status}, 200, 'cancelled: 200');
    is($res->{json}{result}{status}, 'cancelled', 'cancelled');
    is($res->{json}{result}{remote_data}{status}{status}, 'canceled', 'BambooHR spells it canceled');

    my $new = write_req('POST', 'bamboohr', 'timeoff_requests', {
        employee => { id => '4' }, timeoff_type => { id => '77' },
        start_time => '2026-09-07', end_time => '2026-09-07' })->{json}{result}{id};
    $res = write_req('PATCH', 'bamboohr', "timeoff_requests/$new", { status => 'declined' });
    is($res->{json}{result}{status}, 'declined', 'declined');
    is($res->{json}{result}{remote_data}{status}{status}, 'denied', 'BambooHR says denied');
};

# -- Personio ------------------------------------------------------------------

my ($grace, $off);

subtest 'personio: employees create ({"employee": ...}, answer without record) is read back' => sub {
    my $res = write_req('POST', 'personio', 'employees', {
        first_name => 'Grace', last_name => 'Hopper', email => 'grace@navy.example',
        gender => 'female', employment_status => 'pending', start_date => '2026-09-01',
        manager => { id => '2040601' }, department => 'Engineering' });
    is($res->{status}, 201, 'status 201') or diag $res->{body};
    my $r = $res->{json}{result};
    like($r->{id}, qr/^\d+$/, "id from data.id: $r->{id}");
    is($r->{last_name}, 'Hopper', 'last_name');
    is($r->{gender}, 'female', 'gender');
    is($r->{employment_status}, 'pending', 'pending: onboarding at Personio');
    is($r->{remote_data}{attributes}{status}{value}, 'onboarding', 'the provider got onboarding');
    is($r->{manager}{id}, '2040601', 'manager: supervisor_id as an integer');
    is($r->{department}, 'Engineering', 'department');
    $grace = $r->{id};
};

subtest 'personio: employees update (PATCH)' => sub {
    my $res = write_req('PATCH', 'personio', "employees/$grace",
                        { job_title => 'Rear Admiral', gender => 'non_binary' });
    is($res->{status}, 200, 'status 200');
    is($res->{json}{result}{job_title}, 'Rear Admiral', 'job_title');
    is($res->{json}{result}{gender}, 'non_binary', 'non_binary: diverse at Personio');
    my ($patch) = grep { $_->{method} eq 'PATCH' } @{ $sb{personio}->requests };
    ok($patch, 'sent as PATCH');
    bad_input('PATCH', 'personio', "employees/$grace", { email => 'x@y.example' }, 'email',
              'personio: the e-mail cannot be written by an update', qr/cannot be written/);
};

subtest 'personio: time-off create lands as requested, for the manager' => sub {
    my $res = write_req('POST', 'personio', 'timeoff_requests', {
        employee => { id => '2040618' }, timeoff_type => { id => '195824' },
        start_time => '2026-11-02', end_time => '2026-11-04', employee_note => 'Tokyo' });
    is($res->{status}, 201, 'status 201') or diag $res->{body};
    my $r = $res->{json}{result};
    is($r->{status}, 'requested', 'requested (Personio: pending, not approved)');
    is($r->{remote_data}{attributes}{status}, 'pending', 'skip_approval was false');
    is($r->{amount}, 3, 'three days');
    is($r->{employee_note}, 'Tokyo', 'employee_note');
    $off = $r->{id};
    my ($post) = grep { $_->{method} eq 'POST' && $_->{target} =~ m{/time-offs$} }
                 @{ $sb{personio}->requests };
    my ($ctype) = map { $_->[1] } grep { lc $_->[0] eq 'content-type' } @{ $post->{headers} };
    is($ctype, 'application/x-www-form-urlencoded', 'sent as a form');
    is(get_rec('personio', "timeoff_requests/$off")->{json}{result}{status}, 'requested',
       'a later get sees it');
};

subtest 'personio: time-off delete' => sub {
    my $res = write_req('DELETE', 'personio', "timeoff_requests/$off");
    is($res->{status}, 200, 'status 200');
    is_deeply($res->{json}, { result => { id => $off } }, '{"result": {"id": ...}}');
    is(get_rec('personio', "timeoff_requests/$off")->{status}, 404, 'gone');
    $res = write_req('DELETE', 'personio', "timeoff_requests/$off");
    is($res->{status}, 404, 'deleting it again: 404');
    is($res->{json}{details}{id}, $off, 'details.id');
};

# -- HeavenHR, PeopleHR --------------------------------------------------------

subtest 'heavenhr: employees create (camelCase) answers the created employee' => sub {
    my $before = calls('heavenhr');
    my $res = write_req('POST', 'heavenhr', 'employees', {
        first_name => 'Hedy', last_name => 'Lamarr', email => 'hedy@heaven.example',
        gender => 'female', employment_type => 'part_time', start_date => '2026-10-01' });
    is($res->{status}, 201, 'status 201') or diag $res->{body};
    my $r = $res->{json}{result};
    like($r->{id}, qr/^_.+_$/, "HeavenHR's id: $r->{id}");
    is($r->{email}, 'hedy@heaven.example', 'email (professionalEmail)');
    is($r->{employment_type}, 'part_time', 'employment_type');
    is($r->{remote_data}{gender}, 'FEMALE', 'UPPER_CASE enums at HeavenHR');
    cmp_ok(calls('heavenhr') - $before, '<=', 2, 'no read back (a token exchange at most)');
    is(get_rec('heavenhr', "employees/$r->{id}")->{json}{result}{last_name}, 'Lamarr',
       'a later get sees it');
};

subtest 'peoplehr: holiday create (AddNewHoliday), read back among the holidays' => sub {
    my $res = write_req('POST', 'peoplehr', 'timeoff_requests', {
        employee => { id => 'PW4' }, start_time => '2026-10-05', end_time => '2026-10-06',
        amount => 2, employee_note => 'Harvest' });
    is($res->{status}, 201, 'status 201') or diag $res->{body};
    my $r = $res->{json}{result};
    like($r->{id}, qr/^\d+$/, "AnnualLeaveTxnId: $r->{id}");
    is($r->{employee}{id}, 'PW4', 'employee (from the body the write sent)');
    is($r->{status}, 'requested', 'Pending: requested');
    is($r->{start_time}, '2026-10-05', 'start_time');
    is($r->{employee_note}, 'Harvest', 'employee_note');
    my ($add) = grep { $_->{target} eq '/Holiday' } @{ $sb{peoplehr}->requests };
    ok($add, 'POST /Holiday');
};

# -- validation: 400 naming the field, no upstream call --------------------------

bad_input('POST', 'bamboohr', 'employees', '[1, 2]', undef, 'a body that is an array',
          qr/JSON object/);
bad_input('POST', 'bamboohr', 'employees', '"Ada"', undef, 'a body that is a string',
          qr/JSON object/);
bad_input('POST', 'bamboohr', 'employees', '{"first_name": ', undef, 'malformed JSON',
          qr/JSON object/);
bad_input('POST', 'bamboohr', 'employees', '', undef, 'an empty body', qr/empty/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', shoe_size => 44 },
          'shoe_size', 'an unknown field', qr/unknown field "shoe_size"/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', avatar => 'x' },
          'avatar', 'a field this provider cannot write', qr/cannot be written.*bamboohr/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', id => '9' },
          'id', 'the id', qr/cannot be written/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A' }, 'last_name',
          'a required field missing', qr/"last_name" is required/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 5, last_name => 'B' }, 'first_name',
          'a number for a string', qr/must be a string/);
bad_input('POST', 'bamboohr', 'employees', { first_name => undef, last_name => 'B' }, 'first_name',
          'null', qr/not null/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', start_date => 'soon' },
          'start_date', 'a date that is not one', qr/YYYY-MM-DD/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', start_date => '2026-02-30' },
          'start_date', 'a date that does not exist', qr/YYYY-MM-DD/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', employment_type => 'boss' },
          'employment_type', 'a value outside the enumeration', qr/one of the unified values/);
bad_input('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B', employment_type => 'volunteer' },
          'employment_type', 'a unified value this provider does not take', qr/bamboohr takes/);
bad_input('POST', 'bamboohr', 'timeoff_requests', { employee => '4', timeoff_type => { id => '78' },
          start_time => '2026-01-01', end_time => '2026-01-01' },
          'employee', 'a reference that is not an object', qr/reference/);
bad_input('POST', 'bamboohr', 'timeoff_requests', { employee => { id => 'x' }, timeoff_type => { id => '78' },
          start_time => '2026-01-01', end_time => '2026-01-01' },
          'employee', 'a reference whose id the provider cannot take', qr/whole number/);
bad_input('POST', 'bamboohr', 'timeoff_requests', { employee => { id => '4' },
          start_time => '2026-01-01', end_time => '2026-01-01' },
          'timeoff_type', 'time off without its type', qr/required/);
bad_input('PATCH', 'bamboohr', "timeoff_requests/$req_id", { status => 'requested' },
          'status', 'a status the status change does not take', qr/bamboohr takes/);
bad_input('PATCH', 'bamboohr', "employees/$ada", {}, undef, 'an update of nothing',
          qr/nothing to update/);
bad_input('POST', 'bamboohr', 'employees?limit=3', { first_name => 'A', last_name => 'B' }, undef,
          'a query parameter writes do not take', qr/unknown query parameter "limit"/);
bad_input('POST', 'personio', 'employees', { first_name => 'A', last_name => 'B' }, 'email',
          'personio: email is required', qr/required/);

subtest 'meta says what the 400 said' => sub {
    my $res = $ng->get('/unified/hris/employees/meta?integrated_account_id=acme-bamboohr');
    is($res->{status}, 200, 'status 200');
    my $ops = $res->{json}{result}{operations};
    is_deeply([sort keys %$ops], ['create', 'update'], 'bamboohr employees: create, update');
    is_deeply($ops->{create}{required}, ['first_name', 'last_name'], 'required');
    is($ops->{create}{fields}{start_date}{type}, 'date', 'types');
    is_deeply($ops->{create}{fields}{employment_type}{enum},
              ['full_time', 'part_time', 'contract', 'internship'], 'enumerations: what it takes');
    ok(!exists $ops->{create}{fields}{avatar}, 'only writable fields');
    $res = $ng->get('/unified/hris/timeoff_requests/meta?integrated_account_id=acme-personio');
    is_deeply([sort keys %{ $res->{json}{result}{operations} }], ['create', 'delete'],
              'personio time off: create, delete');
    is($res->{json}{result}{operations}{create}{fields}{timeoff_type}{type}, 'reference',
       'timeoff_type is a reference');
    $res = $ng->get('/unified/hris/groups/meta?integrated_account_id=acme-bamboohr');
    is_deeply($res->{json}{result}{operations}, {}, 'nothing to write: no operations');
    $res = $ng->get('/unified/hris/employees/meta?integrated_account_id=acme-bamboohr&x=1');
    is($res->{status}, 400, 'another parameter: 400');
};

# -- 501, 405, 404 -------------------------------------------------------------

subtest '501 names resource, operation and provider; 405 for a wrong path' => sub {
    my $before = calls('bamboohr');
    my $res = write_req('DELETE', 'bamboohr', "employees/$ada");
    is($res->{status}, 501, 'delete of a BambooHR employee: 501');
    is_deeply($res->{json}{details}, { provider => 'bamboohr', resource => 'employees',
                                       operation => 'delete' }, 'details');
    like($res->{json}{message}, qr/delete.*employees.*bamboohr/, 'the message names all three');
    $res = write_req('POST', 'peoplehr', 'employees', { first_name => 'A' });
    is($res->{status}, 501, 'a PeopleHR employee create: 501');
    $res = write_req('POST', 'bamboohr', 'groups', { name => 'x' });
    is($res->{status}, 501, 'groups: 501');
    $res = write_req('POST', 'bamboohr', "employees/$ada", { first_name => 'A' });
    is($res->{status}, 405, 'POST with an id: 405');
    $res = write_req('PATCH', 'bamboohr', 'employees', { first_name => 'A' });
    is($res->{status}, 405, 'PATCH without an id: 405');
    $res = write_req('POST', 'bamboohr', 'nothings', { first_name => 'A' });
    is($res->{status}, 404, 'an unknown resource: 404');
    is(calls('bamboohr'), $before, 'no upstream call');
    $res = write_req('PATCH', 'bamboohr', 'employees/99999', { job_title => 'x' });
    is($res->{status}, 404, 'an update of an employee the provider does not have: 404');
};

# -- the provider refuses: 422 -------------------------------------------------

subtest 'refusals: 422 with the upstream status and message' => sub {
    my $res = write_req('POST', 'bamboohr', 'employees', { first_name => 'Twin', last_name => 'Ada',
        email => 'ada.lovelace@analytical.example' });
    is($res->{status}, 422, 'bamboohr duplicate e-mail: 422');
    is($res->{json}{details}{upstream_status}, 409, 'details.upstream_status 409');
    like($res->{json}{details}{upstream_message}, qr/Duplicate email/,
         'details.upstream_message from X-BambooHR-Error-Message');

    $res = write_req('POST', 'bamboohr', 'employees', { first_name => 'A', last_name => 'B',
        department => 'Alchemy' });
    is($res->{json}{details}{upstream_status}, 400, 'bamboohr unknown department: 400 upstream');

    $res = write_req('PATCH', 'bamboohr', "timeoff_requests/$req_id", { status => 'approved' });
    is($res->{status}, 422, 'approving a cancelled request: 422');
    like($res->{json}{details}{upstream_message}, qr/cannot change/, 'the provider says why');

    $res = write_req('POST', 'personio', 'employees', { first_name => 'A', last_name => 'B',
        email => 'c@d.example', manager => { id => '1' } });
    is($res->{status}, 422, 'personio unknown supervisor: 422');
    is($res->{json}{details}{upstream_message}, 'Supervisor with ID 1 not found',
       'message from the JSON body');

    $res = write_req('POST', 'personio', 'timeoff_requests', { employee => { id => '2040618' },
        timeoff_type => { id => '1' }, start_time => '2026-12-01', end_time => '2026-12-01' });
    is($res->{status}, 422, 'personio unknown time-off type (404 upstream): 422');
    is($res->{json}{details}{upstream_status}, 404, 'upstream_status 404');
    is($res->{json}{details}{upstream_message}, 'Time-off type not found.', 'message');

    $res = write_req('POST', 'peoplehr', 'timeoff_requests', { employee => { id => 'PW999' },
        start_time => '2026-10-05', end_time => '2026-10-06', amount => 2 });
    is($res->{status}, 422, 'peoplehr unknown employee (isError in a 200): 422');
    is($res->{json}{details}{upstream_status}, 200, 'upstream_status 200');
    is($res->{json}{details}{upstream_code}, '5', 'upstream_code');
    is($res->{json}{details}{upstream_message}, 'EmployeeId does not exists.', 'upstream_message');

    $res = write_req('POST', 'peoplehr', 'timeoff_requests', { employee => { id => 'PW4' },
        start_time => '2026-10-06', end_time => '2026-10-07', amount => 2 });
    is($res->{status}, 422, 'peoplehr overlapping holiday: 422');
    like($res->{json}{details}{upstream_message}, qr/already exists/, 'message');
};

# -- sent once -----------------------------------------------------------------

subtest 'no answer in time: 504, outcome unknown, not resent' => sub {
    my $path = "$BP/v1/employees";
    $sb{bamboohr}->fault({ fault => 'slow', delay_ms => 2500, path => '/v1/employees',
                           count => 1 });
    my $before = path_calls('bamboohr', $path);
    my $res = write_req('POST', 'bamboohr', 'employees', { first_name => 'Slow', last_name => 'Poke',
        email => 'slow.poke@analytical.example' });
    is($res->{status}, 504, 'status 504');
    is($res->{json}{details}{outcome}, 'unknown', 'details.outcome: unknown');
    like($res->{json}{message}, qr/not sent again/, 'the message says so');
    sleep 1.5;      # the provider finishes it meanwhile
    is(path_calls('bamboohr', $path), $before + 1, 'the provider got it once');
    my ($all) = $ng->walk('employees', account => 'acme-bamboohr', remote_data => 'false',
                          limit => 500);
    is(scalar(grep { ($_->{email} // '') eq 'slow.poke@analytical.example' } @$all), 1,
       'it was carried out, once');
};

subtest 'a cut connection: 504, outcome unknown, not resent' => sub {
    $sb{personio}->clear_faults;
    my $before = path_calls('personio', '/v1/company/employees');
    $sb{personio}->fault({ fault => 'reset', path => '/v1/company/employees', count => 1 });
    my $res = write_req('POST', 'personio', 'employees', { first_name => 'Cut', last_name => 'Off',
        email => 'cut@off.example' });
    is($res->{status}, 504, 'status 504');
    is($res->{json}{details}{outcome}, 'unknown', 'outcome unknown');
    is(path_calls('personio', '/v1/company/employees'), $before + 1, 'sent once');
};

subtest 'a 502 from the provider: 502, outcome unknown, not resent' => sub {
    my $before = path_calls('bamboohr', "$BP/v1/employees/4/time_off/request");
    $sb{bamboohr}->fault({ fault => '502', path => '/time_off/request', count => 1 });
    my $res = write_req('POST', 'bamboohr', 'timeoff_requests', { employee => { id => '4' },
        timeoff_type => { id => '78' }, start_time => '2026-10-12', end_time => '2026-10-12' });
    is($res->{status}, 502, '502 from the gateway');
    is($res->{json}{details}{outcome}, 'unknown', 'outcome unknown');
    is($res->{json}{details}{upstream_status}, 502, 'upstream_status');
    is(path_calls('bamboohr', "$BP/v1/employees/4/time_off/request"), $before + 1,
       'sent once, whatever hris_retries says');
};

subtest 'throttled (429 with Retry-After): certainly not done, so sent again' => sub {
    my $before = path_calls('bamboohr', "$BP/v1/employees/4/time_off/request");
    $sb{bamboohr}->fault({ fault => '429', retry_after => '1', path => '/time_off/request',
                           count => 1 });
    my $res = write_req('POST', 'bamboohr', 'timeoff_requests', { employee => { id => '4' },
        timeoff_type => { id => '78' }, start_time => '2026-10-19', end_time => '2026-10-19' });
    is($res->{status}, 201, '201 after the wait');
    is(path_calls('bamboohr', "$BP/v1/employees/4/time_off/request"), $before + 2,
       'the throttled try and the one that worked');
};

subtest 'an unreachable provider: 503, nothing written' => sub {
    my $acc = { %{ $accounts->{accounts}[0] } };
    my $down = HRIS::Nginx->start(accounts => { %$accounts, accounts => [ { %$acc,
        id => 'acme-bamboohr', base_url => 'http://127.0.0.1:' . HRIS::Nginx::free_port() } ] },
        location => 'hris_retries 1; hris_retry_backoff 10ms;');
    my $res = $down->request('POST', '/unified/hris/employees?integrated_account_id=acme-bamboohr',
        body => '{"first_name": "A", "last_name": "B"}',
        headers => { 'Content-Type' => 'application/json' });
    is($res->{status}, 503, 'status 503');
    ok(!exists $res->{json}{details}{outcome}, 'no unknown outcome: it never got there');
    $down->stop;
};

# -- create, then list: once ---------------------------------------------------

subtest 'a create, then a list: the new record exactly once' => sub {
    my $res = write_req('POST', 'bamboohr', 'employees', { first_name => 'Once', last_name => 'Only',
        email => 'once.only@analytical.example' });
    is($res->{status}, 201, 'created');
    my $id = $res->{json}{result}{id};
    my ($all) = $ng->walk('employees', account => 'acme-bamboohr', remote_data => 'false',
                          limit => 37);
    is(scalar(grep { $_->{id} eq $id } @$all), 1, 'bamboohr employees: once, over every page');
    my %seen;
    ok(!(grep { $seen{$_->{id}}++ } @$all), 'no record twice');

    $res = write_req('POST', 'personio', 'timeoff_requests', { employee => { id => '2040601' },
        timeoff_type => { id => '195828' }, start_time => '2026-12-14', end_time => '2026-12-14' });
    is($res->{status}, 201, 'a time-off created') or diag $res->{body};
    my $tid = $res->{json}{result}{id};
    ($all) = $ng->walk('timeoff_requests', account => 'acme-personio', remote_data => 'false',
                       limit => 100);
    is(scalar(grep { $_->{id} eq $tid } @$all), 1, 'personio time-offs: once');
};

subtest 'remote_data=false on a write' => sub {
    my $res = write_req('PATCH', 'bamboohr', "employees/$ada?remote_data=false",
                        { preferred_name => 'Ada' });
    is($res->{status}, 200, 'status 200');
    ok(!exists $res->{json}{result}{remote_data}, 'no remote_data');
};

subtest 'the OpenAPI document has the write operations and their bodies' => sub {
    my $doc = $ng->get('/unified/openapi.json', key => undef)->{json};
    my $one = $doc->{paths}{'/hris/employees/{id}'};
    my $all = $doc->{paths}{'/hris/employees'};
    ok($all->{post}{requestBody}, 'POST hris/employees has a request body');
    ok($one->{patch}{requestBody}, 'PATCH hris/employees/{id} too');
    ok($one->{delete}, 'DELETE hris/employees/{id}');
    ok($all->{post}{responses}{201}, 'a create answers 201');
    ok($doc->{paths}{'/hris/employees/meta'}{get}, 'GET hris/employees/meta');
    my $schema = $doc->{components}{schemas}{employees_input};
    ok($schema && !exists $schema->{properties}{id}, 'the input schema leaves the id out');
    is($schema->{properties}{start_date}{format}, 'date', 'dates');
    ok($doc->{components}{parameters}{idempotency_key}, 'the Idempotency-Key header');
};

subtest 'a broken write operation fails nginx -t, naming the file and the key' => sub {
    my $root = HRIS::Nginx::root();
    my @cases = (
        [ sub { $_[0]{create}{body}{x} = '{{input.nope}}' },
          qr/resources\.employees\.create: \{\{input\.nope\}\}: not a field of "input"/,
          'an input that is not declared' ],
        [ sub { $_[0]{create}{input}{gender} = {} },
          qr/resources\.employees\.create\.input\.gender: is an enumeration: it needs an "enum"/,
          'an enumeration without a way back' ],
        [ sub { $_[0]{create}{input}{avatar} = {} },
          qr/input "avatar" is not used/, 'an input that no template uses' ],
        [ sub { $_[0]{create}{input}{id} = {} },
          qr/create\.input\.id: is set by the provider/, 'the id as an input' ],
        [ sub { $_[0]{create}{input}{employment_type}{enum} = { boss => 'Boss' } },
          qr/employment_type: "enum": "boss" is not a unified value of this field/,
          'an enum with a value that is not unified' ],
        [ sub { delete $_[0]{update}{then} },
          qr/resources\.employees\.update: needs "records"/, 'an update that answers nothing' ],
        [ sub { $_[0]{create}{body_as} = 'xml' },
          qr/create\.body_as: must be "json", "form" or "query"/, 'an unknown body_as' ],
        [ sub { $_[0]{create}{idempotent} = 'yes' },
          qr/create\.idempotent: must be true or false/, 'idempotent not a boolean' ],
        [ sub { $_[0]{create}{shape} = 1 },
          qr/resources\.employees\.create: unknown key "shape"/, 'an unknown key' ],
    );
    for my $case (@cases) {
        my ($change, $like, $name) = @$case;
        my $dir = File::Temp::tempdir('hris-77-XXXXXX', TMPDIR => 1, CLEANUP => 1);
        for my $f (glob "$root/mappings/*.json") {
            my ($base) = $f =~ m{([^/]+)$};
            open my $in, '<', $f or die;
            local $/;
            my $text = <$in>;
            if ($base eq 'bamboohr.json') {
                my $t = JSON::PP->new->decode($text);
                $change->($t->{resources}{employees});
                $text = JSON::PP->new->encode($t);
            }
            HRIS::Nginx::write_file("$dir/$base", $text);
        }
        my $bad = HRIS::Nginx->prepare(accounts => $accounts, mappings => $dir);
        my ($rc, $out) = $bad->test_config;
        isnt($rc, 0, "$name: nginx -t fails");
        like($out, qr/bamboohr\.json/, "$name: names the file");
        like($out, $like, "$name: says what is wrong");
    }
};

$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');

done_testing;
