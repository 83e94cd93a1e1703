#!/usr/bin/perl
# The ClayHR sandbox behaves like the ClayHR API of
# shared/reference/providers-peoplehr-heavenhr-clayhr.md part 3, and its
# fault switches and statistics work.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time);
use B ();
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $KEY = 'clayhr-sandbox-0123456789abcdef';
my $UID = '123456';
my ($TOTAL, $ACTIVE, $INACTIVE, $FUTURE, $TODAY) = (280, 238, 30, 12, '2026-06-01');

my $sb = HRIS::Sandbox->start('clayhr');
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 1);

# -- helpers ------------------------------------------------------------------

# GET a provider path. Default headers: x-api-key + userid. Options:
# headers => {...} replaces them, base => another sandbox URL.
sub get {
    my ($path, %o) = @_;
    my $headers = exists $o{headers} ? $o{headers} : { 'x-api-key' => $KEY, userid => $UID };
    return $http->get(($o{base} // $sb->url) . $path, { headers => $headers });
}

sub get_json {
    my ($path, %o) = @_;
    my $response = get($path, %o);
    my $data = eval { decode_json($response->{content}) };
    return ($response, $data);
}

sub uri_escape {
    my ($text) = @_;
    utf8::encode($text);
    $text =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $text;
}

# The "message" of a ClayHR error body, or undef.
sub message {
    my ($r) = @_;
    my $d = eval { decode_json($r->{content}) };
    return $d && ref $d eq 'HASH' ? $d->{message} : undef;
}

# JSON kinds ("string", "number", ...) of every value of "$key" in a raw JSON
# text: decoded Perl scalars do not say whether they were strings.
sub json_kinds {
    my ($raw, $key) = @_;
    my %kind = ('"' => 'string', 'n' => 'null', 't' => 'bool', 'f' => 'bool', '{' => 'object', '[' => 'array');
    my %seen;
    $seen{ $kind{$1} // 'number' }++ while $raw =~ /"\Q$key\E":\s*(["nft{\[]|-?\d)/g;
    return join ',', sort keys %seen;
}

# JSON kind of one decoded scalar: JSON::PP keeps numbers as IV/NV and
# strings as PV, so the flags tell which one the JSON text had.
sub kind {
    my ($value) = @_;
    return 'null' unless defined $value;
    return 'bool' if JSON::PP::is_bool($value);
    return ref $value ? lc ref $value : 'number' if ref $value;
    my $flags = B::svref_2object(\$value)->FLAGS;
    return ($flags & (B::SVf_IOK | B::SVf_NOK)) && !($flags & B::SVf_POK) ? 'number' : 'string';
}

# Kinds of $key over a list of decoded hashes.
sub kinds_of {
    my ($items, $key) = @_;
    my %seen = map { (kind($_->{$key}) => 1) } @$items;
    return join ',', sort keys %seen;
}

# Walk a page-number list (/users, /users/basic) until 204. Returns (ids,
# number of 200 pages, the 204 response, every item).
sub walk {
    my ($route, $size, $query) = @_;
    my (@ids, @items, $pages, $end);
    for (my $page = 1; ; $page++) {
        my $path = "$route?page=$page&pageSize=$size" . ($query // '');
        my $r = get($path);
        if ($r->{status} == 204) { $end = $r; last }
        die "walk $path: $r->{status} $r->{content}" unless $r->{status} == 200;
        my $data = decode_json($r->{content});
        die "walk $path: empty page" unless @$data;
        die "walk $path: runaway" if $page > 1000;
        $pages++;
        push @items, @$data;
        push @ids, map { $_->{userId} } @$data;
    }
    return (\@ids, $pages // 0, $end, \@items);
}

sub ceil_div { int(($_[0] + $_[1] - 1) / $_[1]) }

like($sb->url, qr{^http://127\.0\.0\.1:\d+$}, 'sandbox started on a loopback port');

# -- the reference data: every user, full model -------------------------------

my ($list_r, $everyone) = get_json('/user/list');
is($list_r->{status}, 200, 'GET /user/list: 200');
is(scalar @$everyone, $TOTAL, "/user/list without name: all $TOTAL users, every status");
my %user = map { ($_->{userId} => $_) } @$everyone;
my %by_status;
push @{ $by_status{ $_->{status} } }, $_->{userId} for @$everyone;
is(scalar @{ $by_status{A} }, $ACTIVE, "$ACTIVE Active");
is(scalar @{ $by_status{I} }, $INACTIVE, "$INACTIVE Inactive");
is(scalar @{ $by_status{F} }, $FUTURE, "$FUTURE Future joiners");
is_deeply([map { $_->{userId} } @$everyone], [sort { $a <=> $b } keys %user], '/user/list ordered by userId');

# -- authentication (§3.2) ------------------------------------------------------

{
    my $r = get('/users', headers => {});
    is($r->{status}, 401, 'no credentials: 401');
    like($r->{headers}{'content-type'}, qr{^application/json}, '401 is JSON');
    is(message($r), 'Unauthorized', '401 {"message": "Unauthorized"}');

    is(get('/users', headers => { 'x-api-key' => $KEY })->{status}, 401, 'key without userid: 401');
    is(get('/users', headers => { userid => $UID })->{status}, 401, 'userid without key: 401');
    $r = get('/users', headers => { 'x-api-key' => 'clayhr-sandbox-ffffffffffffffff', userid => $UID });
    is($r->{status}, 401, 'wrong key: 401');
    is(message($r), 'Unauthorized', '... with the message');
    is(get('/users', headers => { 'x-api-key' => $KEY, userid => '123400' })->{status}, 401,
       'right key, another user id: 401');
    is(get('/users', headers => { 'x-api-key' => $KEY, userid => 'abc' })->{status}, 401, 'non-numeric userid: 401');
    is(get('/users', headers => { 'X-API-KEY' => $KEY, UserId => $UID })->{status}, 200,
       'header names are case-insensitive');

    $r = get('/users?pageSize=1', headers => { Authorization => qq({"userId": $UID, "apiKey": "$KEY"}) });
    is($r->{status}, 200, 'legacy Authorization JSON {"userId", "apiKey"}: 200');
    is(get('/users?pageSize=1', headers => { Authorization => qq({"userId": "$UID", "apiKey": "$KEY"}) })->{status},
       200, 'legacy userId as a string: 200');
    is(get('/users', headers => { Authorization => qq({"userId": 123400, "apiKey": "$KEY"}) })->{status},
       401, 'legacy header, another user id: 401');
    is(get('/users', headers => { Authorization => qq({"apiKey": "$KEY"}) })->{status},
       401, 'legacy header without userId: 401');
    is(get('/users?pageSize=1', headers => { Authorization => qq({"x-API-key": "$KEY"}), userid => $UID })->{status},
       200, 'legacy {"x-API-key"} plus userid header: 200');
    is(get('/users', headers => { Authorization => "Bearer $KEY", userid => $UID })->{status}, 401,
       'a bearer header is not a credential');
    is(get('/users', headers => { Authorization => '{not json', userid => $UID })->{status}, 401,
       'malformed legacy header: 401');

    my ($tr, $token) = get_json('/token');
    is($tr->{status}, 200, 'GET /token: 200');
    like($token->{accessToken}, qr/^[0-9a-f]{64}$/, '{"accessToken": ...}');
    is(get('/token', headers => {})->{status}, 401, '/token needs the headers too');
}

{
    my $other = HRIS::Sandbox->start('clayhr', args => ['--api-key', 'key-one', '--user-id', '123400',
                                                        '--api-key', 'key-two', '--user-id', $UID]);
    my $base = $other->url;
    is(get('/users?pageSize=1', base => $base, headers => { 'x-api-key' => 'key-one', userid => '123400' })->{status},
       200, 'first key/user pair');
    is(get('/users?pageSize=1', base => $base, headers => { 'x-api-key' => 'key-two', userid => $UID })->{status},
       200, 'second key/user pair');
    is(get('/users', base => $base, headers => { 'x-api-key' => 'key-one', userid => $UID })->{status},
       401, 'keys are bound to their own user id');
    is(get('/users', base => $base)->{status}, 401, 'explicit --api-key replaces the default key');
    my (undef, $me) = get_json('/user', base => $base, headers => { 'x-api-key' => 'key-one', userid => '123400' });
    is($me->{userId}, 123400, 'GET /user answers the caller');
    $other->stop;

    my $single = HRIS::Sandbox->start('clayhr', api_keys => ['k1', 'k2']);
    is(get('/users?pageSize=1', base => $single->url, headers => { 'x-api-key' => 'k2', userid => $UID })->{status},
       200, 'api_keys => [...] with the default user id');
    $single->stop;
}

# -- path shapes (§3.1) ---------------------------------------------------------

{
    my @shapes = ('/users', '/api/users', '/rm/api/users', '/rm/api/api/users');
    my @bodies = map { get("$_?page=2&pageSize=3&status=I")->{content} } @shapes;
    is($bodies[$_], $bodies[0], "$shapes[$_] answers like /users") for 1 .. $#shapes;
    is(scalar @{ decode_json($bodies[0]) }, 3, 'three users');

    my @resource = map { get("$_?pageSize=2")->{content} } ('/resource', '/rm/resource', '/rm/resource/',
                                                            '/rm/api/resource', '/rm/api/api/resource');
    is($resource[$_], $resource[0], "resource shape $_ answers alike") for 1 .. $#resource;

    is(get('/rm/api/orgunits')->{content}, get('/orgunits')->{content}, '/rm/api/orgunits');
    is(get('/rm/api/api/user/')->{content}, get('/user')->{content}, 'trailing slash ignored (/user/)');

    my $r = get('/rm/users');
    is($r->{status}, 404, '/rm/<route> is not an API path (only /rm/resource)');
    is(message($r), 'Not Found', '404 {"message": "Not Found"}');
    is(get('/rm/api/no/such/thing')->{status}, 404, 'unknown route: 404');
    is(get('/rm/api/no/such/thing', headers => {})->{status}, 401, 'authentication comes before routing');
    $r = $http->post($sb->url . '/users', { headers => { 'x-api-key' => $KEY, userid => $UID } });
    is($r->{status}, 405, 'POST /users: 405');
}

# -- GET /users: paging (§3.3, §3.5) ------------------------------------------------

my %LIST_FIELDS = map { ($_ => 1) } qw(cid userId firstName shortName lastName displayFullName userStartDate
    email cellPhone userName employmentModelList educationModelList licenseModelList supervisorModelList
    awardModelList addressModelList customFieldValueModelList status gender phone createts
    financialModelList allocation userDisplayName star isView);

my %walked;
for my $status (qw(A I F)) {
    my @expect = @{ $by_status{$status} };
    for my $size (1, 7, 500) {
        my ($ids, $pages, $end, $items) = walk('/users', $size, "&status=$status");
        my %count;
        $count{$_}++ for @$ids;
        is_deeply([sort { $a <=> $b } keys %count], [sort { $a <=> $b } @expect],
                  "status $status, pageSize $size: every user seen");
        is(scalar(grep { $_ != 1 } values %count), 0, "status $status, pageSize $size: each exactly once");
        is($pages, ceil_div(scalar @expect, $size), "status $status, pageSize $size: $pages pages, then 204");
        is($end->{content} // '', '', '204 has an empty body');
        ok(!grep({ $_->{status} ne $status } @$items), "status $status: only status $status");
        $walked{$status} = $items if $size == 500;
    }
}
{
    my @all = map { @{ $walked{$_} } } qw(A I F);
    is(scalar @all, $TOTAL, 'walking A, I and F gives every user');
    my %seen;
    is(scalar(grep { !$seen{ $_->{userId} }++ } @all), $TOTAL, '... each once (statuses are disjoint)');

    my ($default_ids, $default_pages) = walk('/users', 20);
    is_deeply($default_ids, [map { $_->{userId} } @{ $walked{A} }], 'status defaults to A');
    my ($r, $first) = get_json('/users');
    is(scalar @$first, 20, 'pageSize defaults to 20, page to 1');
    is_deeply([map { $_->{userId} } @$first], [@{ $by_status{A} }[0 .. 19]], 'default page is the first');
    is_deeply([map { $_->{userId} } @{ $walked{A} }], [sort { $a <=> $b } @{ $by_status{A} }], 'ordered by userId');

    ($r) = get_json('/users?status=A,I,F');
    is($r->{status}, 400, 'status=A,I,F: 400 (one status per request)');
    like(message($r), qr/status/, '... {"message"} names the parameter');
    is(get('/users?status=a')->{status}, 400, 'status=a (lower case): 400');
    is(get('/users?status=X')->{status}, 400, 'status=X: 400');

    $r = get("/users?status=F&pageSize=500&page=2");
    is($r->{status}, 204, 'page past the end: 204');
    is($r->{content} // '', '', '... empty body');
    is($r->{headers}{'content-length'} // 0, 0, '... no bytes');
    ok(!defined $r->{headers}{'content-type'}, '... no Content-Type');
    $r = get('/users?page=999999');
    is($r->{status}, 204, 'far past the end: 204');
    $r = get('/users?name=nobody-is-called-this');
    is($r->{status}, 204, 'nothing matches: 204');

    my $exact = get("/users?status=A&pageSize=7&page=" . ($ACTIVE / 7));
    is(scalar @{ decode_json($exact->{content}) }, 7,
       "$ACTIVE Active users fill page " . ($ACTIVE / 7) . ' of 7 exactly');
    is(get("/users?status=A&pageSize=7&page=" . ($ACTIVE / 7 + 1))->{status}, 204, '... the next one is 204');

    for my $bad ('page=0', 'page=-1', 'page=x', 'pageSize=0', 'pageSize=501', 'pageSize=abc',
                 'startDateBefore=2025-13-01', 'endDateAfter=yesterday') {
        my $res = get("/users?$bad");
        is($res->{status}, 400, "$bad: 400");
        ok(defined message($res), "$bad: {\"message\"}");
    }
    is(get('/users?pageSize=500')->{status}, 200, 'pageSize=500 is allowed');
    is(get('/users?page=&pageSize=&status=')->{status}, 200, 'empty parameters take the defaults');

    # a sandbox that accepts comma lists
    my $lists = HRIS::Sandbox->start('clayhr', args => ['--status-lists']);
    my $res = get('/users?status=A,I,F&pageSize=500', base => $lists->url);
    is($res->{status}, 200, '--status-lists: status=A,I,F accepted');
    is_deeply([map { $_->{userId} } @{ decode_json($res->{content}) }], [map { $_->{userId} } @$everyone],
              '--status-lists: every user in userId order');
    is(get('/users?status=A,Q', base => $lists->url)->{status}, 400, '--status-lists: bad member 400');
    $lists->stop;
}

# -- GET /users: item shape (§3.4) ---------------------------------------------------

my @listed = map { @{ $walked{$_} } } qw(A I F);
{
    # Kinds are read from fresh decodes: using a number as a string (a hash
    # key, eq) caches a string form in it and would hide it.
    my @fresh = map { @{ decode_json(get("/users?pageSize=500&status=$_")->{content}) } } qw(A I F);
    is(kinds_of(\@fresh, $_), 'string', "/users $_ values are JSON strings")
        for qw(cid userId firstName lastName shortName displayFullName userDisplayName userStartDate email
               userName cellPhone phone gender status allocation star isView createts);
    my @bad = grep { join(',', sort keys %$_) ne join(',', sort keys %LIST_FIELDS) } @listed;
    is(scalar @bad, 0, 'every /users item has exactly the §3.4 list fields');
    ok(!exists $listed[0]{$_}, "no $_ in /users items") for qw(departmentName position empId userEndDate);
    ok(!grep({ $_->{userStartDate} !~ /^\d{4}-\d\d-\d\d$/ } @listed), 'userStartDate is yyyy-MM-dd');
    ok(!grep({ $_->{createts} !~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/ } @listed), 'createts "yyyy-MM-dd HH:mm:ss"');
    ok(!grep({ ref $_->{supervisorModelList} ne 'ARRAY' || ref $_->{customFieldValueModelList} ne 'ARRAY' } @listed),
       'model lists are JSON arrays');
    ok(!grep({ $_->{status} eq 'F' && $_->{userStartDate} le $TODAY } @listed), 'future joiners start after today');
    ok(!grep({ $_->{status} eq 'A' && $_->{userStartDate} gt $TODAY } @listed), 'Active users have started');
    my %gender = map { ($_->{gender} => 1) } @listed;
    is_deeply([sort keys %gender], ['', 'F', 'M'], 'gender F, M or ""');

    my @sups = map { @{ $_->{supervisorModelList} } } @listed;
    ok(!grep({ !$user{ $_->{userId} } } @sups), 'every supervisor is a user');
    my @fresh_sups = map { @{ $_->{supervisorModelList} } } @fresh;
    is(kinds_of(\@fresh_sups, $_), 'string', "supervisor $_ is a string") for qw(userId locationId departmentID);
    is_deeply([sort keys %{ $sups[0] }],
              [sort qw(userId firstName empId lastName middleName email displayFullName userStartDate
                       locationId departmentID)],
              'supervisor item fields');
    my @top = map { $_->{userId} } grep { !@{ $_->{supervisorModelList} } } @listed;
    is_deeply([sort @top], [qw(123400 123613 123636 123693)], 'the CEO and three future joiners have no supervisor');
    my @matrix = grep { @{ $_->{supervisorModelList} } > 1 } @listed;
    is(scalar @matrix, 5, 'five users have two supervisors');

    my %names = map { ($_->{displayFullName} => 1) } @listed;
    ok($names{$_}, "unicode name $_")
        for ('Zoë Müller', 'José Núñez', 'Łukasz Wiśniewski', 'Siobhán Ó Briain');
    my %emails;
    is(scalar(grep { $emails{ lc $_->{email} }++ } @listed), 0, 'emails are unique');
    my %display;
    ok(scalar(grep { $display{ $_->{displayFullName} }++ } @listed) > 0, 'some display names repeat');

    my @cf = map { @{ $_->{customFieldValueModelList} } } @listed;
    my %cf_names = map { ($_->{customfieldName} => 1) } @cf;
    is_deeply([sort keys %cf_names], ['Badge Number', 'Emergency Contact', 'T-Shirt Size'], 'custom fields');
    ok((grep { !@{ $_->{customFieldValueModelList} } } @listed), 'some users have no custom field values');
    ok((grep { $_->{customFieldValue} eq '' } @cf), 'some custom field values are ""');
}

# -- GET /users: filters -------------------------------------------------------------

{
    my (undef, $zo) = get_json('/users?pageSize=500&name=' . uri_escape('ZOË'));
    ok((grep { $_->{displayFullName} eq 'Zoë Müller' } @$zo), 'name= is a case-insensitive unicode substring');
    ok(!grep({ $_->{displayFullName} !~ /zoë/i } @$zo), '... and only matches');
    my (undef, $mine) = get_json("/users?search=$UID");
    is_deeply([map { $_->{userId} } @$mine], [$UID], 'search=<userId>: that user');
    (undef, $mine) = get_json('/users?search=sofia.hernandez%40acme-clay.example');
    is_deeply([map { $_->{userId} } @$mine], [$UID], 'search=<email>');
    my (undef, $none) = get_json("/users?search=$UID&status=I");
    ok(!defined $none, 'search with the wrong status: 204');

    my (undef, $before) = get_json('/users?pageSize=500&startDateBefore=2016-01-01');
    my @want = grep { $_->{status} eq 'A' && $_->{userStartDate} lt '2016-01-01' } @$everyone;
    is_deeply([map { $_->{userId} } @$before], [map { $_->{userId} } @want], 'startDateBefore (strict)');
    my (undef, $after) = get_json('/users?pageSize=500&status=F&startDateAfter=2026-09-01');
    @want = grep { $_->{status} eq 'F' && $_->{userStartDate} gt '2026-09-01' } @$everyone;
    is_deeply([map { $_->{userId} } @$after], [map { $_->{userId} } @want], 'startDateAfter (strict)');
    ok(@want > 0 && @want < $FUTURE, 'startDateAfter splits the future joiners');
    my (undef, $ended) = get_json('/users?pageSize=500&status=I&endDateAfter=2024-01-01');
    @want = grep { $_->{status} eq 'I' && $_->{userEndDate} gt '2024-01-01' } @$everyone;
    is_deeply([map { $_->{userId} } @$ended], [map { $_->{userId} } @want], 'endDateAfter');
    my (undef, $leaving) = get_json('/users?pageSize=500&endDateAfter=2000-01-01');
    is(scalar @$leaving, 2, 'two Active users have an end date (leaving soon)');
}

# -- GET /users/basic --------------------------------------------------------------

{
    my ($ids, $pages, $end, $items) = walk('/users/basic', 50, '&status=A');
    is_deeply($ids, [map { $_->{userId} } @{ $walked{A} }], '/users/basic walks the same users');
    is($pages, ceil_div($ACTIVE, 50), '/users/basic pages');
    is($end->{content} // '', '', '/users/basic: 204 empty body at the end');
    is_deeply([sort keys %{ $items->[0] }],
              [sort qw(userId firstName lastName name phone email status shortName timezone userStartDate
                       cellPhone allocation userDateFormat star createuserid cid guid hasAccess)],
              'basic item fields (§3.4)');
    my $raw = get('/users/basic?pageSize=500&status=I')->{content};
    my $fresh = decode_json(get('/users/basic?pageSize=500&status=A')->{content});
    is(kinds_of($fresh, $_), 'string', "basic $_ is a string")
        for qw(userId cid hasAccess star allocation createuserid);
    like($raw, qr/"hasAccess":"false"/, 'Inactive users: hasAccess "false"');
    is(get('/users/basic?status=F&page=4&pageSize=4')->{status}, 204, '/users/basic: 204 past the end');
    like($items->[0]{guid}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
         'guid is a UUID');
}

# -- the read-one endpoints ------------------------------------------------------------

{
    my ($r, $one) = get_json("/user/list?name=$UID");
    is($r->{status}, 200, "/user/list?name=$UID: 200");
    is(scalar @$one, 1, '... exactly one user');
    my $me = $one->[0];
    is(kind($me->{$_}), 'number', "full UserModel: $_ is a JSON number") for qw(userId cid profileId star allocation);
    is($me->{userId}, 123456, 'userId');
    is(kinds_of(decode_json(get('/user/list')->{content}), 'userId'), 'number',
       'full UserModel userId is a number for everybody');
    is(kind($me->{$_}), 'bool', "full UserModel: $_ is a boolean") for qw(isView hasAccess);
    is(kind($me->{supervisorModelList}[0]{userId}), 'number', 'UserThinModel userId is a number');
    is_deeply([@$me{qw(firstName lastName displayFullName empId status position departmentName workerType)}],
              ['Sofia', 'Hernández', 'Sofia Hernández', 'E-0002', 'A', 'HR Administrator', 'People & Culture',
               'Full Time'], 'the key owner');
    is($me->{supervisorModelList}[0]{userId}, 123400, 'reports to 123400');
    is_deeply($me->{reportsToListMap}, { 123400 => 'Amara Okafor' }, 'reportsToListMap');
    is($me->{departmentModel}{departmentId}, 2113, 'departmentModel');
    is($me->{locationModel}{locationName}, 'Berlin', 'locationModel');
    is($me->{userEndDate}, '', 'no end date: ""');

    for my $term ('sofia.hernandez@acme-clay.example', 'SOFIA.HERNANDEZ@acme-clay.example', 'E-0002') {
        my (undef, $hit) = get_json('/user/list?name=' . uri_escape($term));
        is_deeply([map { $_->{userId} } @$hit], [123456], "/user/list?name=$term");
    }
    my (undef, $sub) = get_json('/user/list?name=' . uri_escape('müller'));
    ok((grep { $_->{displayFullName} eq 'Zoë Müller' } @$sub), 'name= substring of the full name');
    ($r, my $none) = get_json('/user/list?name=999999');
    is($r->{status}, 200, 'no match: 200');
    is_deeply($none, [], '... []');

    my @inactive = grep { $_->{status} eq 'I' } @$everyone;
    ok(!grep({ $_->{userEndDate} !~ /^\d{4}-\d\d-\d\d$/ || $_->{userEndDate} ge $TODAY } @inactive),
       'every Inactive user has a past userEndDate');
    my @leaving = grep { $_->{status} eq 'A' && $_->{userEndDate} ne '' } @$everyone;
    is(scalar @leaving, 2, 'two Active users have a future userEndDate');
    ok(!grep({ $_->{userEndDate} le $TODAY } @leaving), '... after today');

    my ($br, $basic) = get_json('/user/basic?email=sofia.hernandez%40acme-clay.example');
    is($br->{status}, 200, '/user/basic?email=: 200');
    is($basic->{userId}, '123456', '... the basic item of that user');
    $br = get('/user/basic?email=nobody%40acme-clay.example');
    is($br->{status}, 404, 'unknown email: 404');
    is(message($br), 'User not found', '... {"message"}');
    is(get('/user/basic')->{status}, 400, 'no email: 400');

    my (undef, $self) = get_json('/user');
    is($self->{userId}, 123456, 'GET /user: the caller');
}

# -- GET /orgunits -------------------------------------------------------------------

{
    my ($r, $units) = get_json('/orgunits');
    is($r->{status}, 200, '/orgunits: 200');
    is(scalar @$units, 18, '18 org units');
    is(json_kinds($r->{content}, $_), 'number', "$_ is a JSON integer")
        for qw(departmentId parentDepartmentId deptHead noOfEmployees cid);
    is_deeply([sort keys %{ $units->[0] }],
              [sort qw(departmentId name description departmentCode departmentLabel parentDepartmentId
                       parentDepartmentName deptHead deptHeadName noOfEmployees cid)], 'DepartmentModel fields');
    my %unit = map { ($_->{departmentId} => $_) } @$units;
    my @top = grep { $_->{parentDepartmentId} == 0 } @$units;
    cmp_ok(scalar @top, '>=', 5, 'several top-level units (parentDepartmentId 0)');
    ok(!grep({ $_->{parentDepartmentName} ne '' } @top), 'top-level units: parentDepartmentName ""');
    my @children = grep { $_->{parentDepartmentId} } @$units;
    ok(!grep({ !$unit{ $_->{parentDepartmentId} } } @children), 'every parent exists');
    ok(!grep({ $unit{ $_->{parentDepartmentId} }{name} ne $_->{parentDepartmentName} } @children),
       'parentDepartmentName');
    is($unit{2103}{parentDepartmentId}, 2102, 'a three-level chain (2103 -> 2102 -> 2101)');
    is($unit{2102}{parentDepartmentId}, 2101, '...');
    my @headless = grep { !$_->{deptHead} } @$units;
    is_deeply([map { $_->{departmentId} } @headless], [2117], 'one unit without a head (deptHead 0)');
    ok(!grep({ $_->{deptHead} && (!$user{ $_->{deptHead} }
                                  || $user{ $_->{deptHead} }{displayFullName} ne $_->{deptHeadName}) } @$units),
       'every department head is a user, deptHeadName matches');
    for my $u (@$units) {
        my $n = grep { $_->{status} eq 'A' && $_->{departmentModel}{departmentId} == $u->{departmentId} } @$everyone;
        is($u->{noOfEmployees}, $n, "noOfEmployees of $u->{name}") if $u->{departmentId} =~ /^(2100|2102|2113|2117)$/;
    }
    ok(!grep({ !$unit{ $_->{departmentModel}{departmentId} } } @$everyone), 'every user is in a known unit');
}

# -- GET /resource ----------------------------------------------------------------------

{
    my ($r, $env) = get_json('/resource');
    is($r->{status}, 200, '/resource: 200');
    is_deeply([sort keys %$env], [qw(code data message)], '{code, data, message} envelope');
    is(json_kinds($r->{content}, 'code'), 'string', 'code is a string');
    is(scalar @{ $env->{data} }, 20, 'pageSize defaults to 20');
    my $item = $env->{data}[0];
    is_deeply([sort keys %$item],
              [sort qw(resourceId name position assignments allocation startDate endDate workerType location timeZone
                       notes emailAddress phone im dateOfBirth gender imageName customFieldList department
                       departmentLabel profileName userReporterList empId)], 'resource item fields (§3.4)');
    ok($user{ $item->{resourceId} }, 'resourceId is a userId');

    my (@names, @ids);
    for my $page (1 .. 100) {
        my (undef, $p) = get_json("/resource?page=$page&pageSize=60");
        last unless @{ $p->{data} };
        push @ids, map { $_->{resourceId} } @{ $p->{data} };
        push @names, map { $_->{name} } @{ $p->{data} };
    }
    is_deeply([sort { $a <=> $b } @ids], [sort { $a <=> $b } @{ $by_status{A} }],
              '/resource walk: every Active user once');
    is_deeply(\@names, [sort { lc $a cmp lc $b } @names], 'default order: by name');
    my ($past_r, $past) = get_json('/resource?page=99&pageSize=60');
    is($past_r->{status}, 200, 'past the end: 200 ...');
    is_deeply($past->{data}, [], '... with data []');
    my (undef, $desc) = get_json('/resource?sortBy=resourceId&sortOrder=desc&status=F&pageSize=50');
    is_deeply([map { $_->{resourceId} } @{ $desc->{data} }], [reverse @{ $by_status{F} }], 'sortBy/sortOrder/status');
    is(get('/resource?sortBy=salary')->{status}, 400, 'unknown sortBy: 400');
    my (undef, $me) = get_json('/resource?name=sofia%20hern');
    is_deeply($me->{data}[0]{userReporterList}, { 123400 => 'Amara Okafor' }, 'userReporterList map');
}

# -- leave requests, job profiles, compensation ---------------------------------------------

{
    my $r = get('/leaverequests');
    is($r->{status}, 400, 'leaverequests without dates: 400');
    ok(defined message($r), '... {"message"}');
    is(get('/leaverequests?startDate=2025-01-01')->{status}, 400, 'without endDate: 400');
    is(get('/leaverequests?startDate=2025-02-30&endDate=2025-03-01')->{status}, 400, 'invalid date: 400');

    my $range = 'startDate=2025-01-01&endDate=2026-12-31';
    my ($ar, $approved) = get_json("/leaverequests?$range");
    is($ar->{status}, 200, 'leaverequests: 200');
    ok(@$approved > 100, scalar(@$approved) . ' approved requests');
    ok(!grep({ $_->{status} ne 'AP' } @$approved), 'status defaults to AP');
    my @all;
    for my $status (qw(AP WA RJ PAP RCAL)) {
        my (undef, $part) = get_json("/leaverequests?$range&status=$status");
        ok(@$part, "status $status has requests");
        ok(!grep({ $_->{status} ne $status } @$part), "status=$status filters");
        push @all, @$part;
    }
    cmp_ok(scalar @all, '>=', 300, scalar(@all) . ' requests in 2025-2026');
    is(get("/leaverequests?$range&status=AP,WA")->{status}, 400, 'one leave status per request');
    is(json_kinds($ar->{content}, $_), 'number', "$_ is a number") for qw(leaveId numberOfDays);
    ok(!grep({ !$user{ $_->{userId} } } @all), 'every request belongs to a user');
    my %units = map { ($_->{ptoPolicyModel}{unit} => 1) } @all;
    is_deeply([sort keys %units], ['days', 'hours'], 'days and hours policies');

    my ($from, $to) = ('2025-06-10', '2025-06-12');
    my @expect = sort map { $_->{leaveId} }
                 grep { $_->{status} eq 'AP' && $_->{endDate} ge $from && $_->{date} le $to } @all;
    my (undef, $window) = get_json("/leaverequests?startDate=$from&endDate=$to");
    ok(@expect, 'the window has requests');
    is_deeply([sort map { $_->{leaveId} } @$window], \@expect, 'overlap semantics');
    my $who = $approved->[0]{userId};
    my (undef, $theirs) = get_json("/leaverequests?$range&leaveUserid=$who");
    is_deeply([map { $_->{leaveId} } @$theirs], [map { $_->{leaveId} } grep { $_->{userId} == $who } @$approved],
              'leaveUserid filter');

    my (undef, $jobs) = get_json('/jobprofiles');
    ok(@$jobs > 20, 'job profiles');
    my %titles = map { ($_->{jobProfileName} => 1) } @$jobs;
    ok(!grep({ !$titles{ $_->{position} } } @$everyone), 'every position is a job profile');

    my ($cr, $comp) = get_json('/user/compensation?email=sofia.hernandez%40acme-clay.example');
    is($cr->{status}, 200, '/user/compensation: 200');
    ok(!grep({ $_->{userId} != 123456 } @$comp), '... records of that user');
    is(scalar(grep { $_->{status} eq 'ACTV' && $_->{compensationType} eq 'sal' } @$comp), 1, 'one active salary');
    my (undef, $own) = get_json('/user/compensation');
    is_deeply($own, $comp, 'without email: the caller');
    is(get('/user/compensation?email=nobody%40example.com')->{status}, 404, 'unknown email: 404');
    my ($future) = grep { $_->{status} eq 'F' } @$everyone;
    my (undef, $offer) = get_json('/user/compensation?email=' . uri_escape($future->{email}));
    is($offer->[0]{status}, 'PVNL', 'future joiners: provisional compensation');
}

# -- fault switches -----------------------------------------------------------

$sb->reset;
{
    $sb->fault({ fault => '429', retry_after => '7' });
    my $r = get('/rm/api/users');
    is($r->{status}, 429, '429 fault on /rm/api/users');
    is($r->{headers}{'retry-after'}, '7', '... with Retry-After');
    like($r->{headers}{'content-type'}, qr{^application/json}, '... JSON');
    is(message($r), 'Too Many Requests', '... {"message"}');
    is(get('/rm/api/users')->{status}, 200, 'count defaults to 1');

    $sb->fault({ fault => '503', path => '/orgunits' });
    is(get('/users?pageSize=1')->{status}, 200, 'path fault: other paths untouched');
    $r = get('/rm/api/api/orgunits');
    is($r->{status}, 503, 'path fault hits /rm/api/api/orgunits');
    ok(!exists $r->{headers}{'retry-after'}, '... without Retry-After');

    $sb->fault({ fault => 'truncated_json' });
    $r = get('/users?pageSize=50');
    is($r->{status}, 200, 'truncated_json: 200');
    ok(!eval { decode_json($r->{content}); 1 }, 'truncated_json: body is not valid JSON');

    $sb->fault({ fault => 'html500' });
    $r = get('/resource');
    is($r->{status}, 500, 'html500: 500');
    like($r->{headers}{'content-type'}, qr{^text/html}, 'html500: text/html');

    $sb->fault({ fault => 'slow', delay_ms => 400 });
    my $t0 = time;
    $r = get('/users?status=F&page=9');
    cmp_ok(time - $t0, '>=', 0.35, 'slow: delayed');
    is($r->{status}, 204, 'slow: then the normal answer (204)');

    $sb->fault({ fault => '500', path => 'status=I' });
    is(get('/users?status=A')->{status}, 200, 'path matches the query string too: not this one');
    is(get('/users?status=I')->{status}, 500, '... this one');

    $sb->fault({ fault => '429', path => '/users' });
    is(get('/users', headers => {})->{status}, 429, 'faults come before authentication');
}

# -- statistics ---------------------------------------------------------------

{
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears stats');
    $sb->fault({ fault => '502' });
    get('/rm/api/users?page=1') for 1 .. 3;
    get('/users?page=99');
    get('/orgunits', headers => {});
    my $stats = $sb->stats;
    is($stats->{requests}, 5, 'every provider request is counted (faulted, 204 and 401 too)');
    is($stats->{by_path}{'/rm/api/users'}, 3, 'by_path keyed by the path as sent, without the query');
    is($stats->{by_path}{'/users'}, 1, '/users counted apart');
    is($stats->{by_path}{'/orgunits'}, 1, '401 counted');
    is($stats->{faults_served}, 1, 'faults_served');
}

# -- determinism --------------------------------------------------------------

{
    my $twin = HRIS::Sandbox->start('clayhr');
    for my $path ('/user/list', '/orgunits', '/leaverequests?startDate=2025-01-01&endDate=2026-12-31&status=WA',
                  '/users?pageSize=500&status=I', '/resource?pageSize=500') {
        is(get($path, base => $twin->url)->{content}, get($path)->{content},
           "byte-identical in a second process: $path");
    }
    my $seeded = HRIS::Sandbox->start('clayhr', args => ['--seed', '7']);
    isnt(get('/user/list', base => $seeded->url)->{content}, get('/user/list')->{content}, '--seed changes the data');
    $seeded->stop;
    my $pid = $twin->pid;
    $twin->stop;
    ok(!kill(0, $pid), 'stop() ends the process');
}

done_testing();
