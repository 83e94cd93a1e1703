#!/usr/bin/perl
# The Personio sandbox behaves like the Personio v1 API of
# shared/reference/providers-bamboohr-personio.md PART B: token exchange,
# stable tokens and their expiry, the auth rate limit, the attribute
# envelope, record-offset paging of employees, page-number paging of
# time-offs, filters, types, balances; and the common fault switches and
# statistics work on its routes.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(ceil);
use Time::HiRes qw(sleep time);
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $ID = 'sandbox-personio-client-id';
my $SECRET = 'sandbox-personio-client-secret';
my $sb = HRIS::Sandbox->start('personio');
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 1);
my $json = JSON::PP->new->utf8;

# -- helpers ------------------------------------------------------------------

sub decode { my $r = shift; return eval { $json->decode($r->{content}) } }

# POST /v1/auth. %o: query => '...', json => {...}, form => {...}, base, path.
sub auth_request {
    my (%o) = @_;
    my $url = ($o{base} // $sb->url) . ($o{path} // '/v1/auth');
    $url .= "?$o{query}" if defined $o{query};
    my %options;
    if ($o{json}) {
        $options{headers}{'Content-Type'} = 'application/json';
        $options{content} = $json->encode($o{json});
    }
    elsif ($o{form}) {
        return $http->post_form($url, $o{form});
    }
    return $http->post($url, \%options);
}

sub token_for {
    my ($base, $id, $secret) = @_;
    my $r = auth_request(base => $base, query => "client_id=$id&client_secret=$secret");
    die "auth failed: $r->{status} $r->{content}" unless $r->{status} == 200;
    return decode($r)->{data}{token};
}

my $TOKEN = token_for($sb->url, $ID, $SECRET);

# GET a provider path. %o: token => TOKEN or undef (no header), auth => raw
# Authorization header, base => other sandbox, headers => {...}.
sub get {
    my ($path, %o) = @_;
    my %headers = (Accept => 'application/json', %{ $o{headers} || {} });
    if (exists $o{auth}) {
        $headers{Authorization} = $o{auth} if defined $o{auth};
    }
    else {
        my $token = exists $o{token} ? $o{token} : $TOKEN;
        $headers{Authorization} = "Bearer $token" if defined $token;
    }
    return $http->get(($o{base} // $sb->url) . $path, { headers => \%headers });
}

sub get_json {
    my ($path, %o) = @_;
    my $r = get($path, %o);
    return ($r, decode($r));
}

# JSON kinds of every value of "$key" in a raw JSON text.
sub json_kinds {
    my ($raw, $key) = @_;
    my %kind = ('"' => 'string', 'n' => 'null', 't' => 'bool', 'f' => 'bool', '{' => 'object', '[' => 'array');
    my %seen;
    $seen{ $kind{$1} // 'number' }++ while $raw =~ /"\Q$key\E":\s*(["nft{\[]|-?\d)/g;
    return join ',', sort keys %seen;
}

sub is_v1_error {
    my ($r, $status, $message, $name) = @_;
    my $body = decode($r);
    is($r->{status}, $status, "$name: HTTP $status");
    is(ref $body && $body->{success}, JSON::PP::false, "$name: success false")
        if ref $body;
    ok(ref $body && ref $body->{error} eq 'HASH', "$name: v1 error envelope");
    like($body->{error}{message} // '', $message, "$name: message") if defined $message;
    like($body->{error}{code} // '', qr/^\d+$/, "$name: integer error.code");
    like($r->{headers}{'content-type'} // '', qr{^application/json}, "$name: JSON");
    ok(!exists $r->{headers}{authorization}, "$name: no authorization echo on errors");
    return $body;
}

sub attr_value { $_[0]->{attributes}{ $_[1] }{value} }

# Walk GET /v1/company/employees with record offsets; returns (records, pages, bodies).
sub walk_employees {
    my ($limit, %o) = @_;
    my ($offset, @records, @bodies) = (0);
    while (1) {
        my ($r, $body) = get_json("/v1/company/employees?limit=$limit&offset=$offset", %o);
        die "employees walk: $r->{status} $r->{content}" unless $r->{status} == 200;
        push @bodies, $body;
        push @records, @{ $body->{data} };
        $offset += $body->{limit};
        last if $offset >= $body->{metadata}{total_elements} || !@{ $body->{data} };
    }
    return (\@records, scalar @bodies, \@bodies);
}

# Walk GET /v1/company/time-offs with page numbers (start at $first, 0 or 1).
sub walk_time_offs {
    my ($limit, $query, $first) = @_;
    my ($page, @records, @bodies) = ($first // 1);
    while (1) {
        my ($r, $body) = get_json("/v1/company/time-offs?limit=$limit&offset=$page" . ($query // ''));
        die "time-offs walk: $r->{status} $r->{content}" unless $r->{status} == 200;
        push @bodies, $body;
        push @records, @{ $body->{data} };
        last if !@{ $body->{data} } || $body->{metadata}{current_page} >= $body->{metadata}{total_pages};
        $page = $body->{metadata}{current_page} + 1;
    }
    return (\@records, \@bodies);
}

sub ids_of { [map { ref $_->{attributes}{id} ? $_->{attributes}{id}{value} : $_->{attributes}{id} } @{ $_[0] }] }

sub once_each {
    my ($ids) = @_;
    my %count;
    $count{$_}++ for @$ids;
    return !grep { $_ != 1 } values %count;
}

# -- start-up -----------------------------------------------------------------

like($sb->url, qr{^http://127\.0\.0\.1:\d+$}, 'sandbox started on a loopback port');

# -- token exchange (B2.1) -----------------------------------------------------

{
    my $r = auth_request(query => "client_id=$ID&client_secret=$SECRET");
    is($r->{status}, 200, 'auth with query parameters (Postman style)');
    my $body = decode($r);
    is($body->{success}, JSON::PP::true, 'success true');
    like($body->{data}{token}, qr/^papi-[A-Za-z0-9_-]{86}$/, 'papi- token');
    is($body->{data}{token}, $TOKEN, 'the same credentials get the same (stable) token');
    cmp_ok($body->{data}{expires_in}, '<=', 86400, 'expires_in at most 24 h');
    cmp_ok($body->{data}{expires_in}, '>', 86000, 'expires_in close to 24 h');
    like($body->{data}{scope}, qr/employees:read/, 'scope');

    $r = auth_request(json => { client_id => $ID, client_secret => $SECRET });
    is($r->{status}, 200, 'auth with a JSON body');
    is(decode($r)->{data}{token}, $TOKEN, '... same token');

    $r = auth_request(form => { client_id => $ID, client_secret => $SECRET });
    is($r->{status}, 200, 'auth with a form body');
    is(decode($r)->{data}{token}, $TOKEN, '... same token');

    $r = auth_request(path => '/auth', query => "client_id=$ID&client_secret=$SECRET");
    is($r->{status}, 200, '/auth without the /v1 prefix');
    is(decode($r)->{data}{token}, $TOKEN, '... same token');

    is_v1_error(auth_request(query => "client_id=$ID&client_secret=wrong"), 401, qr/Wrong credentials/,
                'wrong secret');
    is_v1_error(auth_request(json => { client_id => 'someone-else', client_secret => $SECRET }), 401, undef,
                'unknown client id');
    is_v1_error(auth_request(form => { client_id => $ID }), 400, qr/required/, 'missing client_secret');
    is_v1_error(auth_request(json => {}), 400, undef, 'empty JSON body');
    is_v1_error($http->get($sb->url . "/v1/auth?client_id=$ID&client_secret=$SECRET"), 405, undef,
                'GET /v1/auth');
    is(token_for($sb->url, $ID, $SECRET), $TOKEN, 'failed attempts do not change the token');
}

# -- bearer authentication (B2.1, B6) -------------------------------------------

{
    my $body = is_v1_error(get('/v1/company/employees', token => undef), 401,
                           qr/^Authorization is not provided$/, 'no Authorization');
    is($body->{error}{code}, 401, '401 error.code');
    is_v1_error(get('/v1/company/employees', auth => 'Bearer '), 401, qr/not provided/, 'empty bearer');
    $body = is_v1_error(get('/v1/company/employees', token => 'papi-not-a-token'), 403,
                        qr/^Provided authorization is not valid$/, 'unknown token');
    is($body->{error}{code}, 403, '403 error.code');
    is_v1_error(get('/v1/company/employees', auth => "Basic $TOKEN"), 403, qr/not valid/, 'not a bearer');
    is_v1_error(get('/v1/company/time-offs', token => 'x'), 403, undef, 'time-offs need a token too');

    my $r = get('/v1/company/employees?limit=1', auth => "bearer $TOKEN");
    is($r->{status}, 200, 'the scheme is case-insensitive');
    $r = get('/v1/company/employees?limit=1',
             headers => { 'X-Personio-Partner-ID' => 'ACME', 'X-Personio-App-ID' => 'MY_APPLICATION' });
    is($r->{status}, 200, 'X-Personio-Partner-ID / X-Personio-App-ID are accepted');
    $r = get('/v1/company/employees?limit=1');
    is($r->{status}, 200, '... and not required');
}

# -- the echoed authorization header --------------------------------------------

for my $path ('/v1/company/employees?limit=2', '/v1/company/employees/2040601',
              '/v1/company/employees/attributes', '/v1/company/employees/2040601/absences/balance',
              '/v1/company/time-offs?limit=2', '/v1/company/time-off-types',
              '/company/employees?limit=1') {
    my $r = get($path);
    is($r->{status}, 200, "$path: 200");
    is($r->{headers}{authorization}, "Bearer $TOKEN", "$path: echoes authorization: Bearer <token>");
}
{
    my $sock_answer = do {
        require IO::Socket::INET;
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sb->port, Proto => 'tcp')
            or die "connect: $!";
        print {$sock} "GET /v1/company/time-off-types HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $TOKEN\r\n"
            . "Connection: close\r\n\r\n";
        local $/;
        <$sock>;
    };
    like($sock_answer, qr/\r\nauthorization: Bearer \Q$TOKEN\E\r\n/, 'the header name is lowercase on the wire');
}

# -- employees: record-offset pagination (B3.2, B5) -----------------------------

my ($all, $all_pages) = walk_employees(100);
my $TOTAL = scalar @$all;
my @all_ids = @{ ids_of($all) };
cmp_ok($TOTAL, '>=', 260, "at least 260 employees ($TOTAL)");
is($all_pages, ceil($TOTAL / 100), 'limit 100: pages');
ok(once_each(\@all_ids), 'ids are unique');
is_deeply(\@all_ids, [sort { $a <=> $b } @all_ids], 'listed in id order');
ok(!grep({ !/^\d+$/ } @all_ids), 'ids are integers');
my %emp = map { (attr_value($_, 'id') => $_) } @$all;

for my $limit (1, 7, 100) {
    my ($records, $pages, $bodies) = walk_employees($limit);
    my $ids = ids_of($records);
    is_deeply([sort { $a <=> $b } @$ids], [sort { $a <=> $b } @all_ids], "limit $limit: every employee seen");
    ok(once_each($ids), "limit $limit: each exactly once");
    is($pages, ceil($TOTAL / $limit), "limit $limit: $pages pages");
    my @bad = grep {
        my $n = $_;
        my $b = $bodies->[$n];
        $b->{metadata}{current_page} != $n || $b->{offset} != $n * $limit || $b->{limit} != $limit
            || $b->{metadata}{total_elements} != $TOTAL || $b->{metadata}{total_pages} != ceil($TOTAL / $limit)
    } 0 .. $#$bodies;
    is(scalar @bad, 0, "limit $limit: metadata (0-based current_page, offset, limit, totals) on every page");
}

{
    my ($r, $body) = get_json('/v1/company/employees?limit=500');
    is($r->{status}, 200, 'limit 500: 200 (clamped, not refused)');
    is($body->{limit}, 100, 'limit 500 is clamped to 100');
    is(scalar @{ $body->{data} }, 100, '... 100 records');
    is($body->{metadata}{total_pages}, ceil($TOTAL / 100), '... total_pages for 100');

    ($r, $body) = get_json('/v1/company/employees');
    is($body->{limit}, 50, 'default limit 50');
    is($body->{offset}, 0, 'default offset 0');
    is(scalar @{ $body->{data} }, 50, '50 records');
    is_deeply($body->{metadata}, { total_elements => $TOTAL, current_page => 0, total_pages => ceil($TOTAL / 50) },
              'metadata of the first page');

    ($r, $body) = get_json('/v1/company/employees?limit=10&offset=25');
    is($body->{metadata}{current_page}, 2, 'offset 25 / limit 10: current_page 2');
    is_deeply(ids_of($body->{data}), [@all_ids[25 .. 34]], 'offset is a record index');

    ($r, $body) = get_json("/v1/company/employees?limit=10&offset=$TOTAL");
    is($r->{status}, 200, 'offset past the end: 200');
    is_deeply($body->{data}, [], '... data []');

    is_v1_error(get('/v1/company/employees?limit=0'), 400, undef, 'limit 0');
    is_v1_error(get('/v1/company/employees?limit=abc'), 400, undef, 'limit abc');
    is_v1_error(get('/v1/company/employees?offset=-1'), 400, undef, 'offset -1');
}

# -- employees: the attribute envelope (B3.1, B7) --------------------------------

{
    my $raw = get('/v1/company/employees?limit=100')->{content};
    my @bad = grep {
        my $a = $_;
        grep { ref $a->{$_} ne 'HASH' || join(',', sort grep { $_ ne 'currency' } keys %{ $a->{$_} })
                                              ne 'label,type,universal_id,value' } keys %$a
    } map { $_->{attributes} } @$all;
    is(scalar @bad, 0, 'every attribute is {label, value, type, universal_id}');
    ok(!grep({ $_->{type} ne 'Employee' } @$all), 'records are {type: Employee, attributes}');
    like(json_kinds($raw, 'value'), qr/number/, 'some values are JSON numbers');

    my $first = $all->[0]{attributes};
    is_deeply($first->{id}, { label => 'ID', value => 2040601, type => 'integer', universal_id => 'id' }, 'id attribute');
    is($first->{first_name}{value} . ' ' . $first->{last_name}{value}, 'Alexander Bergmann', 'first employee');
    is($first->{supervisor}{value}, undef, 'the CEO has no supervisor (value null)');
    like($first->{weekly_working_hours}{value}, qr/^\d+$/, 'weekly_working_hours');
    is(json_kinds($raw, 'weekly_working_hours') , 'object', 'weekly_working_hours is an envelope');
    like($raw, qr/"weekly_working_hours":\{"label":"Weekly hours","value":"\d+"/, 'weekly_working_hours value is a string');
    like($first->{hire_date}{value}, qr/^\d{4}-\d\d-\d\dT00:00:00[+-]\d\d:\d\d$/, 'dates are midnight with an offset');
    is($first->{hire_date}{type}, 'date', 'date type');
    is($first->{fix_salary}{type}, 'decimal', 'fix_salary is decimal');
    like($first->{fix_salary}{currency}, qr/^[A-Z]{3}$/, 'money attributes carry a currency');
    is($first->{subcompany}{value}{type}, 'Subcompany', 'nested {type, attributes}: subcompany');
    like($first->{subcompany}{value}{attributes}{id}, qr/^\d+$/, 'nested ids are integers');
    is($first->{work_schedule}{value}{type}, 'WorkSchedule', 'work_schedule');
    is($first->{work_schedule}{value}{attributes}{monday}, '08:00', 'work_schedule hours');
    is($first->{holiday_calendar}{value}{type}, 'HolidayCalendar', 'holiday_calendar');
    is(ref $first->{cost_centers}{value}, 'ARRAY', 'cost_centers is a list');
    is(ref $first->{absence_entitlement}{value}, 'ARRAY', 'absence_entitlement is a list');
    is($first->{absence_entitlement}{value}[0]{type}, 'TimeOffType', 'absence_entitlement items are TimeOffType');
    like($first->{profile_picture}{value}, qr{^http://127\.0\.0\.1:\d+/v1/company/employees/2040601/profile-picture$},
         'profile_picture URL');

    my @supervised = grep { defined attr_value($_, 'supervisor') } @$all;
    cmp_ok(scalar @supervised, '>=', $TOTAL - 2, 'everybody but two has a supervisor');
    my $sup = attr_value($supervised[0], 'supervisor');
    is($sup->{type}, 'Employee', 'supervisor value is an Employee');
    ok($emp{ $sup->{attributes}{id}{value} }, 'supervisor id is an employee');
    ok(exists $sup->{attributes}{first_name}{value} && exists $sup->{attributes}{email}{value},
       'supervisor carries the short employee (name, email)');
    for my $key (qw(department office team)) {
        my @values = map { attr_value($_, $key) } @$all;
        ok((grep { !defined } @values), "$key is sometimes null");
        ok((grep { defined && $_->{type} eq ucfirst($key) && $_->{attributes}{name} } @values), "$key {type, attributes{id,name}}");
    }
    ok((grep { !@{ attr_value($_, 'cost_centers') } } @$all), 'some cost_centers are []');
    ok((grep { @{ attr_value($_, 'cost_centers') } == 2 } @$all), 'some employees have split cost centers');

    my %status;
    $status{ attr_value($_, 'status') }++ for @$all;
    is_deeply([sort keys %status], [qw(active inactive leave onboarding)], 'statuses active/inactive/leave/onboarding');
    my @inactive = grep { attr_value($_, 'status') eq 'inactive' } @$all;
    my @terminated = grep { defined attr_value($_, 'termination_date') } @inactive;
    cmp_ok(scalar @terminated, '>=', @inactive - 1, 'inactive employees have a termination date (all but one)');
    ok((grep { !defined attr_value($_, 'termination_date') } @inactive), 'one inactive employee without one (null)');
    ok(!grep({ attr_value($_, 'termination_type') eq '' } @terminated), 'terminated: termination_type set');
    ok((grep { defined attr_value($_, 'termination_date') && attr_value($_, 'status') eq 'active' } @$all),
       'some active employees have a (future) termination date');
    my @active = grep { attr_value($_, 'status') eq 'active' && !defined attr_value($_, 'termination_date') } @$all;
    is_deeply([map { attr_value($_, 'termination_type') } @active[0 .. 4]], ['', '', '', '', ''],
              'unset text is ""');
    ok(!grep({ defined attr_value($_, 'last_working_day') } @active), 'unset dates are null');
    my @external = grep { attr_value($_, 'employment_type') eq 'external' } @$all;
    ok(@external && !grep({ attr_value($_, 'employment_type') !~ /^(internal|external)$/ } @$all),
       'employment_type internal/external');
    ok(!grep({ attr_value($_, 'gender') !~ /^(male|female|diverse)$/ } @$all), 'gender vocabulary');

    my %names = map { (attr_value($_, 'first_name') . ' ' . attr_value($_, 'last_name') => 1) } @$all;
    ok($names{$_}, "unicode name $_") for ('Zoë Müller', 'José García', 'Björn Ødegaard', "Siobhán O'Connor", 'Łukasz Wójcik');

    my @dynamic = grep { /^dynamic_\d+$/ } keys %$first;
    cmp_ok(scalar @dynamic, '>=', 8, 'custom dynamic_<id> attributes');
    my %types = map { ($_->{type} => 1) } map { values %{ $_->{attributes} } } @$all;
    is_deeply([sort keys %types], [sort qw(standard date integer decimal list link tags multiline)],
              'every v1 attribute type occurs');
    is($first->{dynamic_1146666}{universal_id}, 'date_of_birth', 'a custom attribute with a universal_id');
    is($first->{dynamic_24407}{universal_id}, undef, 'a custom attribute with universal_id null');
    for my $key (@dynamic) {
        my @values = map { attr_value($_, $key) } @$all;
        ok((grep { defined && $_ ne '' } @values), "$key has values");
    }
    ok((grep { !defined attr_value($_, 'dynamic_1146666') } @$all), 'a custom date is sometimes null');
    ok((grep { (attr_value($_, 'dynamic_21827') // 'x') eq '' } @$all), 'a custom text is sometimes ""');
    like(join('', map { attr_value($_, 'dynamic_1170389') } @$all), qr/\n/, 'multiline values contain newlines');
}

# -- employees: filters, projection, single record --------------------------------

{
    my $target = $all->[17];
    my $email = attr_value($target, 'email');
    my ($r, $body) = get_json('/v1/company/employees?email=' . uc $email);
    is_deeply(ids_of($body->{data}), [attr_value($target, 'id')], 'email filter (exact, case-insensitive)');
    is($body->{metadata}{total_elements}, 1, '... total_elements 1');
    ($r, $body) = get_json('/v1/company/employees?email=nobody@nowhere.example');
    is_deeply([$body->{data}, $body->{metadata}{total_elements}], [[], 0], 'unknown email: empty list');

    ($r, $body) = get_json('/v1/company/employees?limit=3&attributes%5B%5D=first_name&attributes%5B%5D=email&attributes%5B%5D=nope');
    is_deeply([sort keys %{ $body->{data}[0]{attributes} }], [qw(email first_name id)],
              'attributes[] projection (id always, unknown names ignored)');
    ($r, $body) = get_json('/v1/company/employees?limit=3&attributes[]=last_name');
    is_deeply([sort keys %{ $body->{data}[0]{attributes} }], [qw(id last_name)], 'unencoded attributes[] works too');

    # 2026-03-01T00:00:00 (naive = UTC) is 01:00 in Berlin (+01:00 until the end of March).
    my @expect = sort { $a <=> $b } map { attr_value($_, 'id') }
                 grep { attr_value($_, 'last_modified_at') ge '2026-03-01T01:00:00' } @$all;
    ($r, $body) = get_json('/v1/company/employees?updated_since=2026-03-01T00:00:00&limit=1&offset=5&email=x');
    my @got = @{ $body->{data} };
    cmp_ok(scalar @got, '>', 5, 'updated_since: several employees (' . scalar(@got) . ')');
    is($body->{metadata}{total_elements}, scalar @got, 'updated_since ignores limit/offset/email: one page');
    is_deeply(ids_of(\@got), \@expect, 'exactly the employees modified since');
    is_deeply([$body->{offset}, $body->{limit}, $body->{metadata}{current_page}, $body->{metadata}{total_pages}],
              [0, scalar @got, 0, 1], 'updated_since envelope: offset 0, limit = count, one page');
    ($r, $body) = get_json('/v1/company/employees?updated_since=2026-03-01T01:00:00%2B01:00');
    is_deeply(ids_of($body->{data}), \@expect, 'updated_since with an explicit offset');
    ($r, $body) = get_json("/v1/company/employees?updated_since=2026-03-01&attributes%5B%5D=status");
    cmp_ok(scalar @{ $body->{data} }, '<', scalar @got, 'updated_since + attributes[]: only those that changed them');
    is_deeply([sort keys %{ $body->{data}[0]{attributes} }], [qw(id status)], '... projected');
    is_v1_error(get('/v1/company/employees?updated_since=yesterday'), 400, undef, 'bad updated_since');

    ($r, $body) = get_json('/v1/company/employees/2040610');
    is($r->{status}, 200, 'GET /v1/company/employees/{id}');
    is_deeply($body->{data}, $emp{2040610}, '... same record as in the list');
    is(attr_value($body->{data}, 'first_name'), 'Zoë', '... Zoë');
    ($r, $body) = get_json('/v1/company/employees/2040610?attributes%5B%5D=last_name');
    is_deeply([sort keys %{ $body->{data}{attributes} }], [qw(id last_name)], 'single record projection');
    $body = is_v1_error(get('/v1/company/employees/999'), 404, qr/Es ist ein Problem aufgetreten/, 'unknown employee');
    is($body->{error}{code}, 404, '404 error.code');
    is_v1_error(get('/v1/company/employees/abc'), 404, undef, 'non-numeric employee id');
    is_v1_error(get('/v1/company/nothing'), 404, undef, 'unknown route');
    is($http->get($sb->url . '/elsewhere')->{status}, 404, 'path outside the API: 404');
    is_v1_error($http->request('PUT', $sb->url . '/v1/company/employees', { headers => { Authorization => "Bearer $TOKEN" } }),
                405, undef, 'PUT employees (a method the route does not take)');

    my (undef, $catalogue) = get_json('/v1/company/employees/attributes');
    my (undef, $alias) = get_json('/v1/company/employees/custom-attributes');
    is_deeply($alias, $catalogue, 'custom-attributes is an alias of attributes');
    my %cat = map { ($_->{key} => $_) } @{ $catalogue->{data} };
    ok($cat{first_name} && $cat{dynamic_21827} && !$cat{id}, 'catalogue lists standard and dynamic keys');
    is($cat{dynamic_21827}{universal_id}, 'iban', 'catalogue universal_id');
    is($cat{dynamic_1146670}{type}, 'list', 'catalogue type');
    ok(@{ $cat{dynamic_1146670}{options} }, 'list attributes have options');
    my @missing = grep { !$cat{$_} } grep { $_ ne 'id' } keys %{ $all->[0]{attributes} };
    is_deeply(\@missing, [], 'every employee attribute is in the catalogue');

    my $pic = get('/v1/company/employees/2040601/profile-picture/100');
    is($pic->{status}, 200, 'profile picture');
    is($pic->{headers}{'content-type'}, 'image/png', '... PNG');
    my ($nopic) = grep { !defined attr_value($_, 'profile_picture') } @$all;
    is(get('/v1/company/employees/' . attr_value($nopic, 'id') . '/profile-picture')->{status}, 404,
       'no picture: 404');
}

# -- time-offs: page-number pagination (B3.8, B5) ----------------------------------

my ($time_offs) = walk_time_offs(200);
my $TIME_OFFS = scalar @$time_offs;
my @time_off_ids = @{ ids_of($time_offs) };
cmp_ok($TIME_OFFS, '>=', 500, "at least 500 time-offs ($TIME_OFFS)");
ok(once_each(\@time_off_ids), 'time-off ids are unique');
is_deeply(\@time_off_ids, [sort { $a <=> $b } @time_off_ids], 'listed in id order');
my %time_off = map { ($_->{attributes}{id} => $_) } @$time_offs;

{
    my ($r, $page0) = get_json('/v1/company/time-offs?limit=25&offset=0');
    my (undef, $page1) = get_json('/v1/company/time-offs?limit=25&offset=1');
    my (undef, $page2) = get_json('/v1/company/time-offs?limit=25&offset=2');
    is_deeply($page0->{data}, $page1->{data}, 'offset 0 and offset 1 return the same page');
    is($page0->{metadata}{current_page}, 1, 'offset 0: current_page 1');
    is($page1->{metadata}{current_page}, 1, 'offset 1: current_page 1');
    is($page2->{metadata}{current_page}, 2, 'offset 2: current_page 2');
    is_deeply(ids_of($page2->{data}), [@time_off_ids[25 .. 49]], 'offset 2 is the second page (records 25..49)');
    is($page0->{offset}, 0, 'top-level offset echoes the request');
    is($page0->{limit}, 25, 'top-level limit');
    is_deeply($page0->{metadata}, { total_elements => $TIME_OFFS, current_page => 1, total_pages => ceil($TIME_OFFS / 25) },
              'metadata');

    for my $limit (1, 7, 50, 200) {
        next if $limit == 1 && $ENV{HRIS_QUICK};
        my ($records, $bodies) = walk_time_offs($limit, '', 0);
        my $ids = ids_of($records);
        is_deeply([sort { $a <=> $b } @$ids], [sort { $a <=> $b } @time_off_ids], "limit $limit: every time-off seen");
        ok(once_each($ids), "limit $limit: each exactly once (the walk from offset 0 goes on at page 2)");
        is(scalar @$bodies, ceil($TIME_OFFS / $limit), "limit $limit: " . scalar(@$bodies) . ' pages');
        is($bodies->[-1]{metadata}{current_page}, $bodies->[-1]{metadata}{total_pages}, "limit $limit: ends at current_page == total_pages");
    }

    # A client that treats offset as a record index skips most records.
    my (undef, $as_records) = get_json('/v1/company/time-offs?limit=100&offset=100');
    is($as_records->{metadata}{current_page}, 100, 'offset 100 is page 100, not record 100');
    is_deeply($as_records->{data}, [], '... which is past the end: data []');

    ($r, my $body) = get_json('/v1/company/time-offs?limit=500');
    is($body->{limit}, 200, 'limit 500 is clamped to 200');
    ($r, $body) = get_json('/v1/company/time-offs');
    is_deeply([$body->{limit}, scalar @{ $body->{data} }], [200, 200], 'default limit 200');
    is_v1_error(get('/v1/company/time-offs?offset=-1'), 400, undef, 'offset -1');
    is_v1_error(get('/v1/company/time-offs?limit=0'), 400, undef, 'limit 0');
}

# -- time-offs: record shape -------------------------------------------------------

{
    my $raw = get('/v1/company/time-offs?limit=200')->{content};
    is(json_kinds($raw, 'id'), 'number,object', 'time-off and type ids are JSON integers (employee id an envelope)');
    is(json_kinds($raw, 'half_day_start'), 'number', 'half_day_start is 0/1');
    is(json_kinds($raw, 'days_count'), 'number', 'days_count is a number');
    my @attrs = map { $_->{attributes} } @$time_offs;
    ok(!grep({ $_->{half_day_start} !~ /^[01]$/ || $_->{half_day_end} !~ /^[01]$/ } @attrs), 'half days are 0/1');
    ok((grep { $_->{days_count} == 0.5 } @attrs), 'some half-day time-offs (0.5)');
    ok((grep { $_->{days_count} =~ /\.5$/ && $_->{days_count} > 1 } @attrs), 'some multi-day ones ending in a half day');
    my %status = map { ($_->{status} => 1) } @attrs;
    is_deeply([sort keys %status], [qw(approved pending requested)], 'statuses approved/pending/requested (rejected vanish)');
    my %type = map { ($_->{time_off_type}{attributes}{name} => 1) } @attrs;
    cmp_ok(scalar keys %type, '>=', 4, 'several time-off types: ' . join(', ', sort keys %type));
    ok(!grep({ $_->{time_off_type}{type} ne 'TimeOffType' || !defined $_->{time_off_type}{attributes}{category} } @attrs),
       'time_off_type {type, attributes{id, name, category}}');
    ok(!grep({ !$emp{ $_->{employee}{attributes}{id}{value} } } @attrs), 'employee is a short employee of the list');
    ok(!grep({ $_->{start_date} !~ /^20(25|26)-\d\d-\d\dT00:00:00[+-]\d\d:\d\d$/ } @attrs), 'start_date 2025-2026 with offset');
    ok(!grep({ $_->{end_date} lt $_->{start_date} } @attrs), 'end_date >= start_date');
    my %years = map { (substr($_->{start_date}, 0, 4) => 1) } @attrs;
    is_deeply([sort keys %years], [2025, 2026], 'both years');
    ok((grep { $_->{created_by} eq 'API' } @attrs) && (grep { $_->{created_by} =~ / / } @attrs), 'created_by API or a name');
    ok(!grep({ !$_->{certificate}{status} } @attrs), 'certificate.status');
    ok(!grep({ $_->{updated_at} lt $_->{created_at} } @attrs), 'updated_at >= created_at');

    my $one = $time_offs->[10];
    my ($r, $body) = get_json("/v1/company/time-offs/$one->{attributes}{id}");
    is($r->{status}, 200, 'GET /v1/company/time-offs/{id}');
    is_deeply($body->{data}, $one, '... same record as in the list');
    is($r->{headers}{authorization}, "Bearer $TOKEN", '... echoes the token');
    is_v1_error(get('/v1/company/time-offs/1'), 404, qr/^The absence period was not found\.$/, 'unknown time-off');
    is_v1_error(get('/v1/company/time-offs/abc'), 400, undef, 'non-numeric time-off id');
}

# -- time-offs: filters ------------------------------------------------------------

{
    my @attrs = map { $_->{attributes} } @$time_offs;
    my ($from, $to) = ('2025-06-10', '2025-06-20');
    my @expect = map { $_->{id} } grep { substr($_->{end_date}, 0, 10) ge $from && substr($_->{start_date}, 0, 10) le $to } @attrs;
    my ($records) = walk_time_offs(200, "&start_date=$from&end_date=$to");
    cmp_ok(scalar @expect, '>', 3, 'window has time-offs');
    is_deeply(ids_of($records), \@expect, 'start_date/end_date: inclusive overlap');

    my @emps = map { $_->{employee}{attributes}{id}{value} } @attrs[0, 40, 80];
    @expect = map { $_->{id} } grep { my $e = $_->{employee}{attributes}{id}{value}; grep { $_ == $e } @emps } @attrs;
    ($records) = walk_time_offs(200, join '', map { "&employees%5B%5D=$_" } @emps);
    is_deeply(ids_of($records), \@expect, 'employees[] filter');
    ($records) = walk_time_offs(200, '&employees[]=' . join(',', @emps));
    is_deeply(ids_of($records), \@expect, 'employees[] with a comma list');
    ($records) = walk_time_offs(200, '&employees%5B%5D=999');
    is_deeply($records, [], 'unknown employee: nothing');

    # updated_at is local time between 07:00 and 20:00, so its date is the UTC date.
    my @upd = map { $_->{id} } grep { substr($_->{updated_at}, 0, 10) ge '2026-01-01' && substr($_->{updated_at}, 0, 10) le '2026-02-28' } @attrs;
    ($records) = walk_time_offs(200, '&updated_from=2026-01-01&updated_to=2026-02-28');
    cmp_ok(scalar @upd, '>', 3, 'updated window has time-offs');
    is_deeply(ids_of($records), \@upd, 'updated_from/updated_to (dates, inclusive)');
    ($records) = walk_time_offs(200, "&updated_from=2026-01-01&updated_to=2026-02-28&start_date=$from&end_date=2026-12-31");
    ok(!grep({ substr($time_off{$_}{attributes}{end_date}, 0, 10) lt $from } @{ ids_of($records) }), 'filters AND together');
    is_v1_error(get('/v1/company/time-offs?updated_from=2026-03-01&updated_to=2026-01-01'), 422, undef,
                'updated_from after updated_to');

    my ($r, $page) = get_json("/v1/company/time-offs?start_date=$from&end_date=$to&limit=2&offset=2");
    is($page->{metadata}{total_elements}, scalar(@{ ids_of(walk_time_offs(200, "&start_date=$from&end_date=$to")) }),
       'filters combine with paging (total_elements of the filtered set)');
    is_v1_error(get('/v1/company/time-offs?start_date=2025-13-01'), 400, undef, 'invalid start_date');
    my $body = is_v1_error(get('/v1/company/time-offs?start_date=2025-06-01&end_date=2025-05-01'), 422, undef,
                           'start_date after end_date');
    is($body->{error}{code}, 0, '422: error.code 0 (as the spec shows)');
    ok($body->{error}{error_data}{end_date}, '422: error_data names the field');
    is_v1_error(get('/v1/company/time-offs?employees%5B%5D=abc'), 400, undef, 'non-numeric employees[]');
}

# -- time-off types and balances (B3.6, B3.7) ------------------------------------------

{
    my ($r, $body) = get_json('/v1/company/time-off-types');
    my @types = @{ $body->{data} };
    cmp_ok(scalar @types, '>=', 4, scalar(@types) . ' time-off types');
    cmp_ok(scalar @types, '<=', 6, '... at most 6');
    is_deeply($body->{metadata}, { total_elements => scalar @types, current_page => 1, total_pages => 1 }, 'one page');
    ok(!grep({ $_->{type} ne 'TimeOffType' } @types), 'TimeOffType resources');
    my %unit = map { ($_->{attributes}{unit} => 1) } @types;
    is_deeply([sort keys %unit], [qw(day hour)], 'units day and hour');
    for my $key (qw(id name category legacy_category unit half_day_requests_enabled certification_required
                    substitute_option approval_required)) {
        ok(!grep({ !exists $_->{attributes}{$key} } @types), "types have $key");
    }
    is(json_kinds($r->{content}, 'id'), 'number', 'type ids are integers');
    my %type_ids = map { ($_->{attributes}{id} => $_->{attributes}) } @types;
    ok(!grep({ !$type_ids{ $_->{attributes}{time_off_type}{attributes}{id} } } @$time_offs),
       'every time-off has a listed type');
    ok(!grep({ $type_ids{ $_->{attributes}{time_off_type}{attributes}{id} }{unit} ne 'day' } @$time_offs),
       'time-offs only use day types');
    ($r, $body) = get_json('/v1/company/time-off-types?limit=2&offset=2');
    is_deeply([$body->{metadata}{current_page}, scalar @{ $body->{data} }], [2, 2], 'types page like time-offs');

    ($r, $body) = get_json('/v1/company/employees/2040601/absences/balance');
    is($r->{status}, 200, 'balance: 200');
    my @balances = @{ $body->{data} };
    ok(@balances, 'balance entries');
    ok(!grep({ join(',', sort keys %$_) ne 'available_balance,balance,category,id,name' } @balances),
       'entries {id, name, category, balance, available_balance}');
    ok(!grep({ !$type_ids{ $_->{id} } } @balances), 'balance ids are time-off types');
    my ($vacation) = grep { $type_ids{ $_->{id} }{category} eq 'paid_vacation' } @balances;
    is($vacation->{balance}, attr_value($emp{2040601}, 'vacation_day_balance'), 'paid vacation = vacation_day_balance');
    cmp_ok($vacation->{available_balance}, '<=', $vacation->{balance}, 'available_balance <= balance');
    my ($ext) = grep { attr_value($_, 'employment_type') eq 'external' } @$all;
    (undef, $body) = get_json('/v1/company/employees/' . attr_value($ext, 'id') . '/absences/balance');
    is_deeply($body->{data}, [], 'external employees: no balances');
    is_v1_error(get('/v1/company/employees/999/absences/balance'), 404, qr/Es ist ein Problem/, 'balance of unknown employee');
}

# -- rejected time-offs (--show-rejected) ------------------------------------------------

{
    my $other = HRIS::Sandbox->start('personio', args => ['--show-rejected']);
    my $token = token_for($other->url, $ID, $SECRET);
    my ($r, $body) = get_json('/v1/company/time-offs?limit=200&offset=1', base => $other->url, token => $token);
    my %status = map { ($_->{attributes}{status} => 1) } @{ $body->{data} };
    ok($status{rejected} && $status{cancelled}, '--show-rejected: rejected and cancelled appear');
    cmp_ok($body->{metadata}{total_elements}, '>', $TIME_OFFS, '... more time-offs in total');
    my ($rejected) = grep { $_->{attributes}{status} eq 'rejected' } @{ $body->{data} };
    is(get("/v1/company/time-offs/$rejected->{attributes}{id}")->{status}, 404, 'by default a rejected time-off is 404');
    is(get("/v1/company/time-offs/$rejected->{attributes}{id}", base => $other->url, token => $token)->{status}, 200,
       '... and 200 with --show-rejected');
    $other->stop;
}

# -- token expiry (--token-ttl 2) ----------------------------------------------------------

{
    my $short = HRIS::Sandbox->start('personio', args => ['--token-ttl', '2']);
    my $r = auth_request(base => $short->url, query => "client_id=$ID&client_secret=$SECRET");
    my $first = decode($r)->{data};
    is($first->{expires_in}, 2, 'expires_in reflects --token-ttl');
    my $old = $first->{token};
    is(get('/v1/company/time-off-types', base => $short->url, token => $old)->{status}, 200, 'fresh token works');
    is(token_for($short->url, $ID, $SECRET), $old, 'within the TTL: the same token again');
    sleep 2.3;
    is_v1_error(get('/v1/company/time-off-types', base => $short->url, token => $old), 403,
                qr/Provided authorization is not valid/, 'expired token');
    my $new = token_for($short->url, $ID, $SECRET);
    isnt($new, $old, 'after the TTL a new token is issued');
    my $ok = get('/v1/company/time-off-types', base => $short->url, token => $new);
    is($ok->{status}, 200, 'the new token works');
    is($ok->{headers}{authorization}, "Bearer $new", '... and is echoed');
    is(get('/v1/company/time-off-types', base => $short->url, token => $old)->{status}, 403, 'the old one stays refused');
    $short->stop;
}

# -- auth rate limit (--auth-rate-limit) ---------------------------------------------------

{
    my $limited = HRIS::Sandbox->start('personio', args => ['--auth-rate-limit', '3', '--auth-rate-window', '1.5']);
    my @status = map { auth_request(base => $limited->url, query => "client_id=$ID&client_secret=$SECRET")->{status} } 1 .. 3;
    is_deeply(\@status, [200, 200, 200], 'three token requests pass');
    my $r = auth_request(base => $limited->url, json => { client_id => $ID, client_secret => $SECRET });
    my $body = is_v1_error($r, 429, qr/Too Many Requests/, 'the fourth within the window');
    is($body->{error}{code}, 429, '429 error.code');
    is(auth_request(base => $limited->url, query => "client_id=$ID&client_secret=wrong")->{status}, 429,
       'during the cool-down every auth request is refused');
    my $token = do {
        sleep 1.7;
        token_for($limited->url, $ID, $SECRET);
    };
    ok($token, 'after the window/cool-down tokens are issued again');
    my @data = map { get('/v1/company/time-off-types', base => $limited->url, token => $token)->{status} } 1 .. 5;
    is_deeply(\@data, [200, 200, 200, 200, 200], 'the auth limit does not touch data endpoints');
    my $stats = $limited->stats;
    is($stats->{by_path}{'/v1/auth'}, 6, 'stats count /v1/auth separately (429s included)');
    is($stats->{by_path}{'/v1/company/time-off-types'}, 5, '... and the data path on its own');
    $limited->stop;
}

# -- options: clients, 401 for bad tokens, rotation, app id, whitelist, burst ----------------

{
    my $multi = HRIS::Sandbox->start('personio', args => [
        '--client-id', 'alpha', '--client-secret', 'alpha-secret', '--client-id', 'beta', '--client-secret', 'beta-secret',
        '--invalid-token-status', '401', '--require-app-id']);
    my $alpha = token_for($multi->url, 'alpha', 'alpha-secret');
    my $beta = token_for($multi->url, 'beta', 'beta-secret');
    ok($alpha && $beta && $alpha ne $beta, 'two client pairs, two tokens');
    is(auth_request(base => $multi->url, query => "client_id=$ID&client_secret=$SECRET")->{status}, 401,
       'explicit clients replace the default one');
    is(auth_request(base => $multi->url, query => 'client_id=alpha&client_secret=beta-secret')->{status}, 401,
       'secrets are paired with their id');
    my %app = (headers => { 'X-Personio-App-ID' => 'HRIS_GATEWAY' });
    is_v1_error(get('/v1/company/time-off-types', base => $multi->url, token => 'bad', %app), 401,
                qr/Provided authorization is not valid/, '--invalid-token-status 401');
    is_v1_error(get('/v1/company/time-off-types', base => $multi->url, token => $alpha), 400, qr/App-ID/,
                '--require-app-id: missing header');
    is(get('/v1/company/time-off-types', base => $multi->url, token => $alpha, %app)->{status}, 200,
       '--require-app-id: X-Personio-App-ID');
    is(get('/v1/company/time-off-types', base => $multi->url, token => $beta,
           headers => { 'Personio-App-ID' => 'HRIS_GATEWAY' })->{status}, 200, '... or Personio-App-ID');
    $multi->stop;

    my $rotating = HRIS::Sandbox->start('personio', args => ['--rotate-tokens', '--readable-attributes',
                                                            'first_name,last_name,email', '--employees-burst', '3']);
    my $t1 = token_for($rotating->url, $ID, $SECRET);
    my $r = get('/v1/company/employees?limit=2', base => $rotating->url, token => $t1);
    is($r->{status}, 200, 'rotating: first request');
    my ($t2) = ($r->{headers}{authorization} // '') =~ /^Bearer (\S+)$/;
    ok($t2 && $t2 ne $t1, '--rotate-tokens: a new token in the answer');
    is(get('/v1/company/time-off-types', base => $rotating->url, token => $t1)->{status}, 403, 'the used token is spent');
    is(get('/v1/company/time-off-types', base => $rotating->url, token => $t2)->{status}, 200, 'the new one works');
    is_deeply([sort keys %{ decode($r)->{data}[0]{attributes} }], [qw(email first_name id last_name)],
              '--readable-attributes: only whitelisted attributes (and id)');
    my (undef, $cat) = get_json('/v1/company/employees/attributes', base => $rotating->url,
                                token => token_for($rotating->url, $ID, $SECRET));
    is_deeply([sort map { $_->{key} } @{ $cat->{data} }], [qw(email first_name last_name)], '... and in the catalogue');

    $rotating->reset;
    my @status;
    my $t = token_for($rotating->url, $ID, $SECRET);
    for (1 .. 4) {
        my $answer = get('/v1/company/employees?limit=1', base => $rotating->url, token => $t);
        push @status, $answer->{status};
        ($t) = ($answer->{headers}{authorization} // "Bearer $t") =~ /^Bearer (\S+)$/;
    }
    is_deeply(\@status, [200, 200, 200, 429], '--employees-burst 3: the fourth request in a second is 429');
    $rotating->stop;
}

# -- fault switches -----------------------------------------------------------------------------

$sb->reset;
{
    $sb->fault({ fault => '429', retry_after => '7', path => '/company/employees' });
    my $r = get('/v1/company/employees?limit=1');
    my $body = is_v1_error($r, 429, qr/Too Many Requests/, '429 fault');
    is($r->{headers}{'retry-after'}, '7', '... with Retry-After');
    is(get('/v1/company/employees?limit=1')->{status}, 200, 'count defaults to 1');

    $sb->fault({ fault => '503' });
    $r = get('/v1/company/time-offs?limit=1');
    is_v1_error($r, 503, undef, '503 fault');
    ok(!exists $r->{headers}{'retry-after'}, '... without Retry-After unless asked');

    $sb->fault({ fault => '500', path => '/v1/auth' });
    $r = auth_request(query => "client_id=$ID&client_secret=$SECRET");
    is_v1_error($r, 500, qr/Something went wrong/, 'a fault on /v1/auth');
    is(decode(auth_request(query => "client_id=$ID&client_secret=$SECRET"))->{data}{token}, $TOKEN,
       'the token survives');

    $sb->fault({ fault => 'truncated_json', path => 'time-offs' });
    $r = get('/v1/company/time-offs?limit=5');
    is($r->{status}, 200, 'truncated_json: 200');
    ok(!eval { $json->decode($r->{content}); 1 }, 'truncated_json: broken JSON');

    $sb->fault({ fault => 'html' });
    $r = get('/v1/company/employees/2040601');
    like($r->{headers}{'content-type'}, qr{^text/html}, 'html fault: an HTML page');

    $sb->fault({ fault => '502', path => '/v1/company/employees' });
    is(get('/v1/company/employees', token => undef)->{status}, 502, 'faults come before authentication');

    $sb->fault({ fault => 'slow', delay_ms => 400 });
    my $t0 = time;
    $r = get('/v1/company/time-off-types');
    is($r->{status}, 200, 'slow: normal answer');
    cmp_ok(time - $t0, '>=', 0.35, '... after the delay');
    is($r->{headers}{authorization}, "Bearer $TOKEN", '... with the echoed token');
    is(scalar @{ $sb->faults }, 0, 'every fault used up');
}

# -- statistics --------------------------------------------------------------------------------

{
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears stats');
    auth_request(query => "client_id=$ID&client_secret=$SECRET") for 1 .. 2;
    auth_request(path => '/auth', form => { client_id => $ID, client_secret => $SECRET });
    get('/v1/company/employees?limit=1') for 1 .. 3;
    get('/v1/company/employees?limit=1', token => undef);
    get('/v1/company/time-offs?limit=1&offset=2');
    my $stats = $sb->stats;
    is($stats->{by_path}{'/v1/auth'}, 2, 'stats: /v1/auth counted separately');
    is($stats->{by_path}{'/auth'}, 1, 'stats: /auth keyed as sent');
    is($stats->{by_path}{'/v1/company/employees'}, 4, 'stats: employees (401 included)');
    is($stats->{by_path}{'/v1/company/time-offs'}, 1, 'stats: time-offs, keyed without the query');
    is($stats->{requests}, 8, 'stats: every provider request');
}

# -- v2 webhooks (fleet-writes-webhooks.md §3) --------------------------------------------------

{
    my $psb = HRIS::Sandbox->start('personio', args => ['--webhook-time-scale', '0.001']);
    my $token = token_for($psb->url, $ID, $SECRET);
    my $call = sub {
        my ($method, $path, $body, %o) = @_;
        my %headers = (Accept => 'application/json', 'Content-Type' => 'application/json');
        $headers{Authorization} = "Bearer " . ($o{token} // $token) unless exists $o{token} && !defined $o{token};
        my $r = $http->request($method, $psb->url . $path,
                               { headers => \%headers, defined $body ? (content => $json->encode($body)) : () });
        return ($r, decode($r));
    };
    my $control = sub {
        my ($method, $path, $body) = @_;
        my $r = $http->request($method, $psb->url . $path, { headers => { 'Content-Type' => 'application/json' },
                                                              defined $body ? (content => $json->encode($body)) : () });
        return ($r, decode($r));
    };
    my $deliveries = sub { ($control->('GET', '/_sandbox/webhooks/deliveries'))[1]{deliveries} };

    my $rx = HRIS::Sandbox->receiver(statuses => [200]);
    my $secret = 'Token s3cr3t-for-the-gateway';
    my %hook = (url => $rx->url, auth_type => 'TOKEN', token => $secret,
                enabled_events => ['person.created', 'person.updated', 'person.deleted',
                                   'absence-period.created', 'absence-period.deleted']);

    is(($call->('GET', '/v2/webhooks', undef, token => undef))[0]{status}, 401, 'GET /v2/webhooks without a token: 401');
    for my $case (['no url' => { url => undef }],
                  ['http to a public host' => { url => 'http://example.com/hook' }],
                  ['unknown auth_type' => { auth_type => 'HMAC' }],
                  ['TOKEN without token' => { token => undef }],
                  ['no events' => { enabled_events => [] }],
                  ['unknown event' => { enabled_events => ['employee.created'] }],
                  ['unknown status' => { status => 'ON' }]) {
        my %body = (%hook, %{ $case->[1] });
        delete $body{$_} for grep { !defined $body{$_} } keys %body;
        my ($r, $error) = $call->('POST', '/v2/webhooks', \%body);
        is($r->{status}, 400, "webhook refused: $case->[0]");
        ok($error->{errors}[0]{detail}, '... with an errors[] entry');
    }

    my ($created, $hook) = $call->('POST', '/v2/webhooks', \%hook);
    is($created->{status}, 201, 'POST /v2/webhooks: 201');
    ok($hook->{id}, 'an id');
    is_deeply([@$hook{qw(url auth_type status)}], [$rx->url, 'TOKEN', 'ENABLED'], 'url, auth_type, status (ENABLED by default)');
    is_deeply($hook->{enabled_events}, $hook{enabled_events}, 'enabled_events');
    my ($list, $listed) = $call->('GET', '/v2/webhooks');
    is(scalar @{ $listed->{_data} }, 1, 'GET /v2/webhooks: _data');
    is(($call->('GET', "/v2/webhooks/$hook->{id}"))[1]{url}, $rx->url, 'GET /v2/webhooks/{id}');
    unlike($created->{content} . $list->{content}, qr/\Q$secret\E/, 'the token is never answered');

    # Writes through the v1 endpoints fire the events, ids only, the token
    # verbatim in Authorization.
    my ($new, $made) = $call->('POST', '/v1/company/employees',
                               { employee => { email => 'hook@example.com', first_name => 'Hook', last_name => 'Test' } });
    my $pid = $made->{data}{id};
    $call->('PATCH', "/v1/company/employees/$pid", { employee => { last_name => 'Tested' } });
    my ($off, $period) = $call->('POST', '/v1/company/time-offs',
                                 { employee_id => $pid, time_off_type_id => 195824, start_date => '2027-03-01',
                                   end_date => '2027-03-02', half_day_start => 0, half_day_end => 0 });
    is($off->{status}, 200, 'time-off created');
    my $tid = $period->{data}{attributes}{id};
    $call->('DELETE', "/v1/company/time-offs/$tid");
    my $got = $rx->wait_for(4, 10);
    is(scalar @$got, 4, 'four writes, four events');
    my @events = map { $json->decode($_->{body}) } @$got;
    is_deeply([map { $_->{event_name} } @events],
              ['person.created', 'person.updated', 'absence-period.created', 'absence-period.deleted'], 'event names');
    is($_->{headers}{authorization}, $secret, 'Authorization: the token verbatim') for @$got;
    like($_->{headers}{'content-type'}, qr{^application/json}, 'JSON') for @$got;
    is_deeply([sort keys %{ $events[0] }], [qw(company_id event_name meta occurred_at payload)],
              'payload keys: company_id, event_name, occurred_at, payload, meta');
    is_deeply($events[0]{payload}, { id => "$pid" }, 'person: the id only');
    is_deeply($events[2]{payload}, { id => "$tid", person => { id => "$pid" } }, 'absence-period: its id and the person id');
    like($_->{occurred_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'occurred_at RFC 3339') for @events;
    my (undef, $log) = $call->('GET', "/v2/webhooks/$hook->{id}/events");
    is(scalar @{ $log->{_data} }, 4, 'GET /v2/webhooks/{id}/events lists them');

    # Narrower registrations: events filter, auth_type NONE, DISABLED.
    my $plain = HRIS::Sandbox->receiver(statuses => [204]);
    my (undef, $plain_hook) = $call->('POST', '/v2/webhooks',
                                      { url => $plain->url, auth_type => 'NONE', enabled_events => ['person.deleted'] });
    my ($fire) = $control->('POST', '/_sandbox/webhooks/fire', { event => 'person.deleted', id => $pid });
    is($fire->{status}, 202, 'fire person.deleted: 202');
    $got = $plain->wait_for(1, 10);
    is(scalar @$got, 1, 'delivered to the NONE registration');
    ok(!exists $got->[0]{headers}{authorization}, 'auth_type NONE: no Authorization');
    is(scalar @{ $rx->wait_for(5, 10) }, 5, '... and to the TOKEN one');
    $control->('POST', '/_sandbox/webhooks/fire', { event => 'person.updated', id => $pid });
    $rx->wait_for(6, 10);
    sleep 0.3;
    is(scalar @{ $plain->received }, 1, 'an event outside enabled_events is not sent');
    my ($patched, $disabled) = $call->('PATCH', "/v2/webhooks/$hook->{id}", { status => 'DISABLED' });
    is($disabled->{status}, 'DISABLED', 'PATCH status DISABLED');
    $control->('POST', '/_sandbox/webhooks/fire', { event => 'person.updated', id => $pid });
    sleep 0.5;
    is(scalar @{ $rx->received }, 6, 'a DISABLED registration gets nothing');
    is(($call->('DELETE', "/v2/webhooks/$hook->{id}"))[0]{status}, 204, 'DELETE /v2/webhooks/{id}: 204');
    is(($call->('GET', "/v2/webhooks/$hook->{id}"))[0]{status}, 404, '... then 404');
    $call->('DELETE', "/v2/webhooks/$plain_hook->{id}");

    # Retries: a failure is tried again (a 4xx too: PLAUSIBLE), and so is no
    # answer within 3 seconds.
    my $flaky = HRIS::Sandbox->receiver(statuses => [500, 422, 200]);
    $call->('POST', '/v2/webhooks', { %hook, url => $flaky->url });
    $control->('DELETE', '/_sandbox/webhooks/deliveries');
    $control->('POST', '/_sandbox/webhooks/fire', { event => 'person.created', id => $pid });
    $got = $flaky->wait_for(3, 10);
    is(scalar @$got, 3, '500 and 422 retried until the 200');
    is($got->[0]{body}, $got->[2]{body}, 'the same event each time');
    is($_->{headers}{authorization}, $secret, 'each attempt with the token') for @$got;
    is_deeply([map { [$_->{attempt}, $_->{status}, $_->{retry_in}] } @{ $deliveries->() }],
              [[1, 500, 0.3], [2, 422, 1.8], [3, 200, undef]], 'deliveries: attempts, statuses, waits (scaled)');
    $psb->reset;
    is_deeply(($call->('GET', '/v2/webhooks'))[1]{_data}, [], 'reset forgets registrations');

    my $slow = HRIS::Sandbox->receiver(statuses => [200], delay => 4);
    $call->('POST', '/v2/webhooks', { %hook, url => $slow->url });
    $control->('POST', '/_sandbox/webhooks/fire', { event => 'person.created', id => 2040601 });
    my $deadline = time + 8;
    sleep 0.2 until @{ $deliveries->() } || time > $deadline;
    my $first = $deliveries->()->[0];
    ok($first && !defined $first->{status} && $first->{error} =~ /time/i,
       'no answer within 3 s: a failed attempt') or diag explain $first;
    is($first && $first->{retry_in}, 0.3, '... to be retried');
}

# -- determinism ----------------------------------------------------------------------------------

{
    my $twin = HRIS::Sandbox->start('personio');
    my $token = token_for($twin->url, $ID, $SECRET);
    isnt($token, $TOKEN, 'another process issues another token');
    for my $path ('/v1/company/employees?limit=100&offset=100', '/v1/company/time-offs?limit=200&offset=2',
                  '/v1/company/time-off-types', '/v1/company/employees/2040700/absences/balance') {
        (my $theirs = get($path, base => $twin->url, token => $token)->{content}) =~ s/127\.0\.0\.1:\d+/HOST/g;
        (my $ours = get($path)->{content}) =~ s/127\.0\.0\.1:\d+/HOST/g;
        is($theirs, $ours, "byte-identical in a second process: $path");
    }
    my $pid = $twin->pid;
    $twin->stop;
    ok(!kill(0, $pid), 'stop() ends the process');
}

done_testing();
