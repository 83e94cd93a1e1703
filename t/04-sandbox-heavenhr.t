#!/usr/bin/perl
# The HeavenHR sandbox behaves like the HeavenHR API v2 of
# shared/reference/providers-peoplehr-heavenhr-clayhr.md part 2 (and the
# PLAUSIBLE design of §2.7), and its fault switches and statistics work.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $ID = 'sandbox-heavenhr-client-id';
my $SECRET = 'sandbox-heavenhr-client-secret';
my $ID_RE = qr/^_[A-Za-z0-9_-]{22}_$/;
my $sb = HRIS::Sandbox->start('heavenhr');
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 1);

# -- helpers ------------------------------------------------------------------

sub basic { 'Basic ' . encode_base64("$_[0]:$_[1]", '') }

# Exchange client credentials at $box's token endpoint; returns (response, data).
sub exchange {
    my ($box, %o) = @_;
    my $path = $o{path} // '/api/v2/oauth2/token?grant_type=client_credentials&scope=all';
    my $r = $http->get($box->url . $path,
                       { headers => { Authorization => $o{auth} // basic($ID, $SECRET) } });
    return ($r, eval { decode_json($r->{content}) });
}

sub new_token { my ($box) = @_; my (undef, $data) = exchange($box); return $data->{access_token} }

my $TOKEN = new_token($sb);

# A request to a provider path. Options: auth => header or undef (none),
# box => another sandbox, content => body, type => Content-Type.
sub call {
    my ($method, $path, %o) = @_;
    my $box = $o{box} // $sb;
    my %headers;
    my $auth = exists $o{auth} ? $o{auth} : "Bearer $TOKEN";
    $headers{Authorization} = $auth if defined $auth;
    $headers{'Content-Type'} = $o{type} if $o{type};
    my %options = (headers => \%headers);
    $options{content} = $o{content} if defined $o{content};
    return $http->request($method, $box->url . $path, \%options);
}

sub get { call('GET', @_) }

sub get_json {
    my ($path, %o) = @_;
    my $r = get($path, %o);
    return ($r, eval { decode_json($r->{content}) });
}

sub span_ok {
    my ($r, $what) = @_;
    like($r->{headers}{'x-b3-spanid'} // '', qr/^[0-9a-f]{16}$/, "$what: X-B3-SpanId is 16 hex");
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

# Walk a list with pageSize=$size; returns (items, pages, last envelope).
# Also checks that the page after the last one is a 404.
sub walk {
    my ($resource, $size, $query, $noun) = @_;
    my (@items, $envelope);
    my $page = 0;
    my $base = "/api/v2/$resource?pageSize=$size" . ($query // '');
    while (1) {
        my ($r, $data) = get_json("$base&page=$page");
        die "walk $base failed: $r->{status} $r->{content}" unless $r->{status} == 200;
        die "walk $base: currentPage $data->{currentPage} on page $page" unless $data->{currentPage} == $page;
        push @items, @{ $data->{data} };
        $envelope = $data;
        $page++;
        last if $page >= $data->{totalPages};
    }
    my ($r, $data) = get_json("$base&page=$page");
    is($r->{status}, 404, "$resource pageSize $size: the page after the last is a 404");
    is_deeply($data, { message => "No $noun found" }, "... {\"message\":\"No $noun found\"}") if $noun;
    return (\@items, $page, $envelope);
}

# -- start-up and health ------------------------------------------------------

like($sb->url, qr{^http://127\.0\.0\.1:\d+$}, 'sandbox started on a loopback port');
for my $path ('/api/v2/health/check', '/health/check') {
    my $r = get($path, auth => undef);
    is($r->{status}, 200, "$path: 200 without credentials");
    is_deeply(decode_json($r->{content}), { message => 'OK' }, "$path: {\"message\":\"OK\"}");
    span_ok($r, $path);
}

# -- token endpoint (§2.2) ----------------------------------------------------

{
    my ($r, $data) = exchange($sb);
    is($r->{status}, 200, 'GET /api/v2/oauth2/token with Basic: 200');
    span_ok($r, 'token');
    like($r->{headers}{'content-type'}, qr{^application/json}, 'token answer is JSON');
    is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
    is_deeply([sort keys %$data], [qw(access_token expires_in scope token_type)], 'token answer fields');
    is($data->{token_type}, 'bearer', 'token_type bearer');
    is($data->{expires_in}, 3600, 'expires_in defaults to 3600');
    is($data->{scope}, 'all', 'scope all');
    is(json_kinds($r->{content}, 'expires_in'), 'number', 'expires_in is a number');
    my $second = new_token($sb);
    isnt($second, $data->{access_token}, 'each exchange issues a new token');
    isnt($second, $TOKEN, '... different from every earlier one');
    is(get('/employees?pageSize=1', auth => "Bearer $data->{access_token}")->{status}, 200,
       'the earlier token stays valid');
    is(get('/employees?pageSize=1', auth => "Bearer $second")->{status}, 200, 'the new one works');

    ($r, $data) = exchange($sb, path => '/oauth2/token?grant_type=client_credentials&scope=all');
    is($r->{status}, 200, 'bare /oauth2/token works too');

    ($r, $data) = exchange($sb, auth => basic($ID, 'wrong'));
    is($r->{status}, 401, 'wrong secret: 401');
    is_deeply($data, { error => 'unauthorized', error_description => 'Bad credentials' }, 'Bad credentials body');
    span_ok($r, 'token 401');
    ($r, $data) = exchange($sb, auth => basic('someone-else', $SECRET));
    is($r->{status}, 401, 'wrong client id: 401');
    ($r, $data) = exchange($sb, auth => 'Basic !!!not-base64');
    is($r->{status}, 401, 'garbage Basic: 401');
    my $none = $http->get($sb->url . '/api/v2/oauth2/token?grant_type=client_credentials&scope=all');
    is($none->{status}, 401, 'no client credentials: 401');
    is(decode_json($none->{content})->{error}, 'unauthorized', '... error unauthorized');

    ($r, $data) = exchange($sb, path => '/api/v2/oauth2/token?scope=all');
    is($r->{status}, 400, 'no grant_type: 400');
    is($data->{error}, 'invalid_request', '... invalid_request');
    ($r, $data) = exchange($sb, path => '/api/v2/oauth2/token?grant_type=password&scope=all');
    is($r->{status}, 400, 'grant_type=password: 400');
    is($data->{error}, 'unsupported_grant_type', '... unsupported_grant_type');
    ($r, $data) = exchange($sb, path => '/api/v2/oauth2/token?grant_type=client_credentials&scope=read');
    is($r->{status}, 400, 'scope=read: 400');
    is($data->{error}, 'invalid_scope', '... invalid_scope');
    ($r, $data) = exchange($sb, path => '/api/v2/oauth2/token?grant_type=client_credentials');
    is($r->{status}, 200, 'scope may be left out');
    is($data->{scope}, 'all', '... and is all');

    my $post = $http->request('POST', $sb->url . '/api/v2/oauth2/token', {
        headers => { Authorization => basic($ID, $SECRET),
                     'Content-Type' => 'application/x-www-form-urlencoded' },
        content => 'grant_type=client_credentials&scope=all' });
    is($post->{status}, 200, 'POST with a form body and Basic: 200');
    ok(decode_json($post->{content})->{access_token}, '... issues a token');
    $post = $http->request('POST', $sb->url . '/oauth2/token', {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "grant_type=client_credentials&client_id=$ID&client_secret=$SECRET" });
    is($post->{status}, 200, 'POST with client_id/client_secret in the form: 200');
    $post = $http->request('POST', $sb->url . '/oauth2/token', {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "grant_type=client_credentials&client_id=$ID&client_secret=nope" });
    is($post->{status}, 401, 'POST with a wrong form secret: 401');
    is(call('DELETE', '/oauth2/token', auth => basic($ID, $SECRET))->{status}, 405, 'DELETE on the token endpoint: 405');
}

# -- bearer required ----------------------------------------------------------

{
    my ($r, $data) = get_json('/api/v2/employees', auth => undef);
    is($r->{status}, 401, 'no Authorization: 401');
    is($data->{error}, 'unauthorized', '... error unauthorized');
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer /, '... WWW-Authenticate: Bearer');
    span_ok($r, '401');
    ($r, $data) = get_json('/api/v2/employees', auth => 'Bearer not-a-token');
    is($r->{status}, 401, 'unknown bearer token: 401');
    is($data->{error}, 'invalid_token', '... error invalid_token');
    ($r, $data) = get_json('/api/v2/employees', auth => basic($ID, $SECRET));
    is($r->{status}, 401, 'the Basic key is refused without --accept-basic');
    is(get('/api/v2/no/such/route', auth => undef)->{status}, 401, 'authentication comes before routing');
    my $lower = get('/employees?pageSize=1', auth => "bearer $TOKEN");
    is($lower->{status}, 200, 'the scheme name is case-insensitive');
}

{
    my $short = HRIS::Sandbox->start('heavenhr', args => ['--token-ttl', '2']);
    my ($r, $data) = exchange($short);
    is($data->{expires_in}, 2, '--token-ttl 2: expires_in 2');
    my $token = $data->{access_token};
    is(get('/employees?pageSize=1', box => $short, auth => "Bearer $token")->{status}, 200, 'fresh token works');
    sleep 2.3;
    ($r, $data) = get_json('/employees?pageSize=1', box => $short, auth => "Bearer $token");
    is($r->{status}, 401, 'after the TTL: 401');
    is($data->{error}, 'invalid_token', '... invalid_token');
    like($data->{error_description}, qr/expired/i, '... "expired"');
    is(get('/employees?pageSize=1', box => $short, auth => 'Bearer ' . new_token($short))->{status}, 200,
       'a new exchange gives a working token');
    $short->stop;
}

{
    my $lax = HRIS::Sandbox->start('heavenhr',
        args => ['--accept-basic', '--client-id', 'acme-id', '--client-secret', 'acme-secret']);
    my ($r) = exchange($lax, auth => basic('acme-id', 'acme-secret'));
    is($r->{status}, 200, '--client-id/--client-secret are the accepted credentials');
    ($r) = exchange($lax);
    is($r->{status}, 401, '... and replace the defaults');
    is(get('/employees?pageSize=1', box => $lax, auth => basic('acme-id', 'acme-secret'))->{status}, 200,
       '--accept-basic: the Basic key is accepted on data endpoints');
    my $bad = get('/employees?pageSize=1', box => $lax, auth => basic('acme-id', 'nope'));
    is($bad->{status}, 401, '--accept-basic: a wrong Basic key is 401');
    is(decode_json($bad->{content})->{error_description}, 'Bad credentials', '... Bad credentials');
    my $token = decode_json($http->get($lax->url . '/oauth2/token?grant_type=client_credentials',
        { headers => { Authorization => basic('acme-id', 'acme-secret') } })->{content})->{access_token};
    is(get('/employees?pageSize=1', box => $lax, auth => "Bearer $token")->{status}, 200,
       '--accept-basic: bearer tokens still work');
    is(get('/employees?pageSize=1', box => $lax, auth => undef)->{status}, 401, '--accept-basic: no credentials is 401');
    $lax->stop;
}

# -- path shapes --------------------------------------------------------------

my ($first_r, $first_page) = get_json('/api/v2/employees?pageSize=3');
my $EMP0 = $first_page->{data}[0]{id};
{
    for my $pair (["/api/v2/employees/$EMP0", "/employees/$EMP0"],
                  ['/api/v2/companies', '/companies'],
                  ['/api/v2/absences?pageSize=5&page=3', '/absences?pageSize=5&page=3'],
                  ['/api/v2/employees?pageSize=3', '/employees/?pageSize=3']) {
        my ($long, $short) = map { get($_) } @$pair;
        is($long->{status}, 200, "$pair->[0]: 200");
        is($short->{content}, $long->{content}, "$pair->[1] answers like $pair->[0]");
    }
    is(get('/api/v1/employees')->{status}, 404, '/api/v1 is not served');
    my ($r, $data) = get_json('/api/v2/nothing-here');
    is($r->{status}, 404, 'unknown route: 404');
    ok(defined $data->{message}, '... with a message');
    span_ok($r, '404');
    is(call('PUT', '/api/v2/employees')->{status}, 405, 'wrong method: 405');
}

# -- employees: pagination (§2.4) ----------------------------------------------

my ($all, $pages, $last) = walk('employees', 200, '', 'employees');
my $TOTAL = scalar @$all;
cmp_ok($TOTAL, '>=', 260, "at least 260 employees ($TOTAL)");
is($pages, 2, 'pageSize 200: two pages');
is($last->{totalItems}, $TOTAL, 'totalItems counts everyone');
is($last->{totalPages}, 2, 'totalPages');
is($last->{pageSize}, 200, 'pageSize echoed');
is_deeply([sort keys %$first_page], [qw(currentPage data pageSize totalItems totalPages)], 'page envelope keys');
my @ALL_IDS = map { $_->{id} } @$all;
my %seen;
is(scalar(grep { !$seen{$_}++ } @ALL_IDS), $TOTAL, 'ids are unique');
ok(!grep({ $_ !~ $ID_RE } @ALL_IDS), 'ids look like _<22 base64url chars>_');
ok((grep { /^_.*[-_].*_$/ && substr($_, 1, -1) =~ /[-_]/ } @ALL_IDS), 'some ids contain - or _ inside');
my @numbers = map { $_->{employeeNumber} } @$all;
is_deeply(\@numbers, [sort { $a <=> $b } @numbers], 'sorted by employeeNumber');
is(json_kinds($first_r->{content}, 'employeeNumber'), 'number', 'employeeNumber is a JSON number');

for my $size (1, 7, 50) {
    my ($items, $page_count, $final) = walk('employees', $size, '', 'employees');
    my %count;
    $count{ $_->{id} }++ for @$items;
    is_deeply([sort keys %count], [sort @ALL_IDS], "pageSize $size: every employee seen");
    is(scalar(grep { $_ != 1 } values %count), 0, "pageSize $size: each exactly once");
    is($page_count, int(($TOTAL + $size - 1) / $size), "pageSize $size: $page_count pages");
    is($final->{totalPages}, $page_count, "pageSize $size: totalPages");
}
{
    my ($r, $data) = get_json('/employees');
    is($data->{pageSize}, 50, 'default pageSize 50');
    is($data->{currentPage}, 0, 'default page 0 (pages are 0-based)');
    is(scalar @{ $data->{data} }, 50, 'fifty records');
    ($r, $data) = get_json('/employees?pageSize=1000');
    is($r->{status}, 200, 'pageSize above the maximum: 200');
    is($data->{pageSize}, 200, '... clamped to 200');
    is(scalar @{ $data->{data} }, 200, '... 200 records');
    for my $bad ('page=-1', 'pageSize=0', 'pageSize=abc', 'page=x') {
        ($r, $data) = get_json("/employees?$bad");
        is($r->{status}, 400, "$bad: 400");
        ok($data->{message}, '... with a message');
    }
    ($r, $data) = get_json('/employees?page=99999');
    is($r->{status}, 404, 'far past the end: 404');
}

my %list_item = map { ($_->{id} => $_) } @$all;
{
    is_deeply([sort keys %{ $all->[0] }],
              [sort qw(id firstName lastName employeeNumber jobStatus updatedAt departmentName departmentId email)],
              'list items carry the limited field set');
    ok(!grep({ $_->{jobStatus} !~ /^(ACTIVE|INACTIVE)$/ } @$all), 'jobStatus ACTIVE/INACTIVE');
    ok(!grep({ $_->{updatedAt} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/ } @$all), 'updatedAt is ISO-8601 Z');
    ok((grep { !defined $_->{email} } @$all), 'some employees have no e-mail (null)');
    ok((grep { $_->{firstName} eq 'Zoë' && $_->{lastName} eq 'Müller' } @$all), 'unicode: Zoë Müller');
    ok((grep { $_->{firstName} eq 'Łukasz' } @$all) && (grep { $_->{lastName} eq 'Ødegaard' } @$all),
       'unicode: Łukasz, Ødegaard');
}

# -- employees: filters ---------------------------------------------------------

sub all_of {
    my ($resource, $query) = @_;
    my ($r, $data) = get_json("/api/v2/$resource?pageSize=200$query");
    return [] if $r->{status} == 404;
    die "all_of $resource$query: $r->{status}" unless $r->{status} == 200;
    my @items = @{ $data->{data} };
    for my $page (1 .. $data->{totalPages} - 1) {
        push @items, @{ (get_json("/api/v2/$resource?pageSize=200$query&page=$page"))[1]{data} };
    }
    return \@items;
}

{
    my $inactive = all_of('employees', '&jobStatus=INACTIVE');
    my $active = all_of('employees', '&jobStatus=ACTIVE');
    cmp_ok(scalar @$inactive, '>=', 20, scalar(@$inactive) . ' INACTIVE employees');
    is(@$inactive + @$active, $TOTAL, 'ACTIVE + INACTIVE = all');
    ok(!grep({ $_->{jobStatus} ne 'INACTIVE' } @$inactive), 'jobStatus filter');
    is(scalar @{ all_of('employees', '&jobStatus=inactive') }, scalar @$inactive, 'jobStatus is case-insensitive');
    is(get('/employees?jobStatus=GONE')->{status}, 400, 'bad jobStatus: 400');

    my $pick = $all->[100];
    my (undef, $one) = get_json("/employees?employeeNumber=$pick->{employeeNumber}");
    is_deeply([map { $_->{id} } @{ $one->{data} }], [$pick->{id}], 'employeeNumber filter');
    is($one->{totalItems}, 1, '... one item');
    is(get('/employees?employeeNumber=abc')->{status}, 400, 'employeeNumber must be a number');

    my $dept = $pick->{departmentId};
    my $in_dept = all_of('employees', "&departmentId=$dept");
    is_deeply([map { $_->{id} } @$in_dept], [map { $_->{id} } grep { $_->{departmentId} eq $dept } @$all],
              'departmentId filter');
    my $both = all_of('employees', "&departmentId=$dept&jobStatus=ACTIVE");
    ok(!grep({ $_->{jobStatus} ne 'ACTIVE' || $_->{departmentId} ne $dept } @$both), 'filters AND together');

    my $recent = all_of('employees', '&updatedDate=2026-01-01');
    is_deeply([map { $_->{id} } @$recent], [map { $_->{id} } grep { $_->{updatedAt} ge '2026-01-01' } @$all],
              'updatedDate: updated on or after the day');
    my $recent_ts = all_of('employees', '&updatedDate=2026-01-01T12:00:00Z');
    is_deeply([map { $_->{id} } @$recent_ts],
              [map { $_->{id} } grep { $_->{updatedAt} ge '2026-01-01T12:00:00Z' } @$all],
              'updatedDate accepts an ISO timestamp');
    is(get('/employees?updatedDate=yesterday')->{status}, 400, 'bad updatedDate: 400');
    is(get('/employees?startDate=2025-02-30')->{status}, 400, 'bad startDate: 400');

    my ($r, $data) = get_json('/api/v2/employees?jobStatus=INACTIVE&startDate=2099-01-01');
    is($r->{status}, 404, 'a filter matching nobody: 404');
    is_deeply($data, { message => 'No employees found' }, '... No employees found');
    ($r) = get_json('/api/v2/employees?departmentId=_nosuchdepartment000000_');
    is($r->{status}, 404, 'unknown departmentId: 404 (empty result)');
}

# -- employees: get by id -------------------------------------------------------

my @FULL = map { scalar((get_json("/api/v2/employees/$_"))[1]) } @ALL_IDS;
my %emp = map { ($_->{id} => $_) } @FULL;
{
    my ($r, $e) = get_json("/api/v2/employees/$EMP0");
    is($r->{status}, 200, 'GET /employees/{id}: 200');
    span_ok($r, 'employee');
    for my $field (qw(id employeeNumber firstName lastName gender dateOfBirth nationality professionalEmail
                      streetPersonal streetNumberPersonal companyId departmentId departmentName locationId
                      supervisorId jobTitle occupation permanentOrTemporary weeklyHours startDate endOfContract
                      additionalContractInformation jobStatus createdAt updatedAt)) {
        ok(exists $e->{$field}, "full employee has $field");
    }
    is($e->{firstName}, 'Katharina', 'first employee: Katharina');
    is($e->{lastName}, 'Schäfer', '... Schäfer');
    is($e->{employeeNumber}, 101, '... employee number 101');
    is($e->{jobTitle}, 'Chief Executive Officer', '... the CEO');
    is($e->{supervisorId}, undef, '... reports to nobody');
    is(json_kinds($r->{content}, $_), 'number', "$_ is a JSON number") for qw(employeeNumber streetNumberPersonal weeklyHours);

    my $item = $list_item{$EMP0};
    is($item->{email}, $e->{professionalEmail}, 'list email = professionalEmail');
    is($item->{$_}, $e->{$_}, "list $_ = full $_") for qw(firstName lastName employeeNumber jobStatus updatedAt departmentId departmentName);

    ($r, $e) = get_json('/api/v2/employees/_AAAAAAAAAAAAAAAAAAAAAA_');
    is($r->{status}, 404, 'unknown employee: 404');
    is_deeply($e, { message => 'Employee not found' }, '... Employee not found');

    ok(!grep({ $_->{gender} && $_->{gender} !~ /^(MALE|FEMALE|DIVERSE)$/ } @FULL), 'gender is UPPER_CASE');
    ok(!grep({ $_->{permanentOrTemporary} !~ /^(PERMANENT|TEMPORARY)$/ } @FULL), 'permanentOrTemporary');
    ok(!grep({ ($_->{nationality} // 'DE') !~ /^[A-Z]{2}$/ } @FULL), 'nationality is alpha-2');
    my @inactive = grep { $_->{jobStatus} eq 'INACTIVE' } @FULL;
    my @ended = grep { ($_->{endOfContract} // '') =~ /^\d{4}-\d\d-\d\d$/ } @inactive;
    cmp_ok(scalar @ended, '>=', @inactive - 2, 'INACTIVE employees have an endOfContract (but for 2)');
    ok(!grep({ $_->{endOfContract} ge '2026-06-01' } @ended), '... in the past');
    ok((grep { $_->{jobStatus} eq 'ACTIVE' && defined $_->{endOfContract} && $_->{permanentOrTemporary} eq 'TEMPORARY' } @FULL),
       'some ACTIVE temporary contracts end in the future');
    ok((grep { !defined $_->{startDate} } @FULL), 'some startDate null');
    ok((grep { defined $_->{startDate} && $_->{startDate} eq '' } @FULL), 'one startDate ""');
    ok((grep { !defined $_->{dateOfBirth} } @FULL), 'some dateOfBirth null');
    ok((grep { defined $_->{dateOfBirth} && $_->{dateOfBirth} eq '' } @FULL), 'some dateOfBirth ""');
    ok(!grep({ defined $_->{supervisorId} && !$emp{ $_->{supervisorId} } } @FULL), 'every supervisorId is an employee');
    is(scalar(grep { !defined $_->{supervisorId} } @FULL), 2, 'two employees report to nobody');
    is(scalar(grep { defined $_->{startDate} && $_->{startDate} gt '2026-06-01' } @FULL), 3, 'three future hires');
}

# -- companies, departments, locations -----------------------------------------

{
    my $companies = all_of('companies', '');
    is(scalar @$companies, 3, 'three companies');
    ok(!grep({ $_->{id} !~ $ID_RE || !$_->{name} || !$_->{legalName} } @$companies), 'company id, name, legalName');
    my %company = map { ($_->{id} => 1) } @$companies;
    ok(!grep({ !$company{ $_->{companyId} } } @FULL), 'every employee companyId is a company');
    my ($r, $one) = get_json("/companies/$companies->[1]{id}");
    is_deeply($one, $companies->[1], 'GET /companies/{id}');
    is(get('/companies/_AAAAAAAAAAAAAAAAAAAAAA_')->{status}, 404, 'unknown company: 404');

    my $departments = all_of('departments', '');
    cmp_ok(scalar @$departments, '>=', 10, scalar(@$departments) . ' departments');
    my %dept = map { ($_->{id} => $_) } @$departments;
    ok((grep { !defined $_->{parentId} } @$departments), 'some top-level departments');
    my @children = grep { defined $_->{parentId} } @$departments;
    ok(@children, 'some sub-departments');
    ok(!grep({ !$dept{ $_->{parentId} } } @children), 'every parentId is a department');
    ok(!grep({ !$dept{ $_->{departmentId} } || $dept{ $_->{departmentId} }{name} ne $_->{departmentName} } @FULL),
       'employee departmentId/departmentName match /departments');
    ($r, $one) = get_json("/api/v2/departments/$children[0]{id}");
    is_deeply($one, $children[0], 'GET /departments/{id}');
    my (undef, $small) = get_json('/departments?pageSize=5&page=2');
    is(scalar @{ $small->{data} }, @$departments - 10, 'departments paginate too');
    ($r, $one) = get_json('/departments?pageSize=5&page=3');
    is($r->{status}, 404, 'departments past the end: 404');
    is_deeply($one, { message => 'No departments found' }, '... No departments found');

    my $locations = all_of('locations', '');
    cmp_ok(scalar @$locations, '>=', 5, scalar(@$locations) . ' locations');
    my %loc = map { ($_->{id} => $_) } @$locations;
    ok(!grep({ !$loc{ $_->{locationId} } } @FULL), 'every employee locationId is a location');
    ok(!grep({ !exists $_->{city} || !exists $_->{zipCode} || !exists $_->{street} || !$_->{country} } @$locations),
       'locations carry an address');
    ok((grep { ($_->{city} // '') eq 'Zürich' } @$locations), 'unicode city');
    ok(!grep({ !$company{ $_->{companyId} } } @$locations), 'location companyId is a company');
}

# -- absences -------------------------------------------------------------------

my ($absences) = walk('absences', 200, '', 'absences');
my %types;
{
    cmp_ok(scalar @$absences, '>=', 500, scalar(@$absences) . ' absences');
    my %aid;
    is(scalar(grep { !$aid{ $_->{id} }++ } @$absences), scalar @$absences, 'absence ids are unique');
    ok(!grep({ $_->{id} !~ $ID_RE } @$absences), 'absence ids in HeavenHR style');
    my ($one) = @$absences;
    is_deeply([sort keys %$one], [sort qw(id employeeId absenceType startDate endDate startHalfDay endHalfDay
                                          amount unit status employeeNote createdAt updatedAt)], 'absence fields');
    is_deeply([sort keys %{ $one->{absenceType} }], [qw(id name)], 'absenceType is {id, name}');
    my %status = map { ($_->{status} => 1) } @$absences;
    is_deeply([sort keys %status], [qw(APPROVED CANCELLED PENDING REJECTED)], 'every status');
    my %unit = map { ($_->{unit} => 1) } @$absences;
    is_deeply([sort keys %unit], [qw(DAYS HOURS)], 'units DAYS and HOURS');
    ok(!grep({ !$emp{ $_->{employeeId} } } @$absences), 'every employeeId is an employee');
    ok(!grep({ $_->{startDate} lt '2025-01-01' || $_->{endDate} gt '2026-12-31' } @$absences), 'all in 2025-2026');
    ok((grep { $_->{startDate} lt '2026-01-01' } @$absences) && (grep { $_->{startDate} ge '2026-01-01' } @$absences),
       'both years');
    ok(!grep({ $_->{endDate} lt $_->{startDate} } @$absences), 'endDate >= startDate');
    ok(!grep({ $_->{amount} <= 0 } @$absences), 'amounts are positive');
    ok((grep { $_->{amount} != int $_->{amount} } @$absences), 'some fractional amounts');
    ok((grep { !defined $_->{employeeNote} } @$absences) && (grep { ($_->{employeeNote} // 'x') eq '' } @$absences)
       && (grep { length($_->{employeeNote} // '') } @$absences), 'employeeNote null, "" or text');
    my @starts = map { $_->{startDate} } @$absences;
    is_deeply(\@starts, [sort @starts], 'sorted by startDate');

    my $types_list = all_of('absence-types', '');
    %types = map { ($_->{id} => $_) } @$types_list;
    cmp_ok(scalar @$types_list, '>=', 5, 'absence types');
    ok(!grep({ !$types{ $_->{absenceType}{id} } || $types{ $_->{absenceType}{id} }{name} ne $_->{absenceType}{name} }
             @$absences), 'absenceType matches /absence-types');
    ok(!grep({ $_->{unit} ne $types{ $_->{absenceType}{id} }{unit} } @$absences), 'unit follows the type');
    ok(!grep({ $_->{unit} !~ /^(DAYS|HOURS)$/ } @$types_list), 'type units');
    my ($tr, $t1) = get_json("/absence-types/$types_list->[0]{id}");
    is_deeply($t1, $types_list->[0], 'GET /absence-types/{id}');

    my ($r, $got) = get_json("/api/v2/absences/$one->{id}");
    is($r->{status}, 200, 'GET /absences/{id}');
    is_deeply($got, $one, '... same record as in the list');
    ($r, $got) = get_json('/api/v2/absences/_AAAAAAAAAAAAAAAAAAAAAA_');
    is($r->{status}, 404, 'unknown absence: 404');
    is_deeply($got, { message => 'Absence not found' }, '... Absence not found');
    is(json_kinds(get("/absences/$one->{id}")->{content}, 'amount'), 'number', 'amount is a number');

    # Filters.
    my $who = $absences->[10]{employeeId};
    my $mine = all_of('absences', "&employeeId=$who");
    is_deeply([map { $_->{id} } @$mine], [map { $_->{id} } grep { $_->{employeeId} eq $who } @$absences],
              'employeeId filter');
    ($r, $got) = get_json('/absences?employeeId=_AAAAAAAAAAAAAAAAAAAAAA_');
    is($r->{status}, 404, 'unknown employeeId: 404');
    is_deeply($got, { message => 'Employee not found' }, '... Employee not found');
    my ($from, $to) = ('2025-06-10', '2025-06-12');
    my $window = all_of('absences', "&startDate=$from&endDate=$to");
    my @expect = map { $_->{id} } grep { $_->{endDate} ge $from && $_->{startDate} le $to } @$absences;
    cmp_ok(scalar @expect, '>', 0, 'window has absences');
    is_deeply([map { $_->{id} } @$window], \@expect, 'startDate/endDate: overlap semantics');
    my $from_only = all_of('absences', '&startDate=2026-10-01');
    is_deeply([map { $_->{id} } @$from_only], [map { $_->{id} } grep { $_->{endDate} ge '2026-10-01' } @$absences],
              'startDate alone');
    my $pending = all_of('absences', '&status=PENDING,REJECTED');
    is_deeply([map { $_->{id} } @$pending],
              [map { $_->{id} } grep { $_->{status} =~ /^(PENDING|REJECTED)$/ } @$absences], 'status filter');
    my $type = $one->{absenceType}{id};
    is_deeply([map { $_->{id} } @{ all_of('absences', "&absenceTypeId=$type") }],
              [map { $_->{id} } grep { $_->{absenceType}{id} eq $type } @$absences], 'absenceTypeId filter');
    is(get('/absences?startDate=2025-06-12&endDate=2025-06-10')->{status}, 400, 'startDate after endDate: 400');
    is(get('/absences?status=MAYBE')->{status}, 400, 'bad status: 400');
    ($r, $got) = get_json('/absences?startDate=2030-01-01');
    is($r->{status}, 404, 'empty absence result: 404');
    is_deeply($got, { message => 'No absences found' }, '... No absences found');
}

# -- writes (PLAUSIBLE) ------------------------------------------------------------

{
    my ($pending) = grep { $_->{status} eq 'PENDING' } @$absences;
    my ($approved) = grep { $_->{status} eq 'APPROVED' } @$absences;
    my $r = call('PATCH', "/api/v2/absences/$pending->{id}/status", content => '{"status":"APPROVED"}',
                 type => 'application/json');
    is($r->{status}, 200, 'PATCH /absences/{id}/status on a PENDING absence: 200');
    is(decode_json($r->{content})->{status}, 'APPROVED', '... now APPROVED');
    is((get_json("/absences/$pending->{id}"))[1]{status}, 'APPROVED', '... and stays so');
    is(call('PUT', "/absences/$approved->{id}/status", content => '{"status":"REJECTED"}')->{status}, 409,
       'an absence already decided: 409');
    is(call('PUT', "/absences/$approved->{id}/status", content => '{"status":"MAYBE"}')->{status}, 400,
       'bad status value: 400');

    $r = call('DELETE', "/api/v2/absences/$approved->{id}");
    is($r->{status}, 204, 'DELETE /absences/{id}: 204');
    is(get("/absences/$approved->{id}")->{status}, 404, '... then 404');
    is((get_json('/absences?pageSize=1'))[1]{totalItems}, @$absences - 1, '... and one absence fewer');
    is(call('DELETE', "/absences/$approved->{id}")->{status}, 404, 'DELETE twice: 404');

    $r = call('POST', '/api/v2/employees/', type => 'application/json',
              content => encode_json({ firstName => 'Jane', lastName => 'Doe', startDate => '2026-07-01',
                                       jobTitle => 'Head of Sales', gender => 'FEMALE', nationality => 'DE',
                                       permanentOrTemporary => 'PERMANENT', locationId => $FULL[0]{locationId} }));
    is($r->{status}, 201, 'POST /employees/: 201');
    my $jane = decode_json($r->{content});
    like($jane->{id}, $ID_RE, '... with a HeavenHR id');
    is($jane->{jobStatus}, 'ACTIVE', '... ACTIVE');
    is($jane->{employeeNumber}, $numbers[-1] + 1, '... next employee number');
    is((get_json("/employees/$jane->{id}"))[1]{lastName}, 'Doe', '... readable');
    is((get_json('/employees?pageSize=1'))[1]{totalItems}, $TOTAL + 1, '... listed');
    is(call('POST', '/employees', content => '{"lastName":"Doe"}')->{status}, 400, 'no firstName: 400');
    is(call('POST', '/employees', content => encode_json({ firstName => 'A', lastName => 'B',
                                                           employeeNumber => $numbers[0] }))->{status},
       409, 'duplicate employeeNumber: 409');

    $sb->reset;
    is((get_json('/employees?pageSize=1'))[1]{totalItems}, $TOTAL, 'reset restores the employees');
    is((get_json('/absences?pageSize=1'))[1]{totalItems}, scalar @$absences, 'reset restores the absences');
    is((get_json("/absences/$pending->{id}"))[1]{status}, 'PENDING', 'reset restores statuses');
    is(get('/employees?pageSize=1')->{status}, 200, 'tokens survive reset');
}

# -- fault switches ---------------------------------------------------------------

$sb->reset;
{
    $sb->fault({ fault => '429', retry_after => '7' });
    my ($r, $data) = get_json('/api/v2/employees');
    is($r->{status}, 429, '429 fault');
    is($r->{headers}{'retry-after'}, '7', '... with Retry-After');
    is_deeply($data, { message => 'Too Many Requests' }, '... JSON message');
    span_ok($r, '429 fault');
    is(get('/api/v2/employees')->{status}, 200, 'count defaults to 1');

    $sb->fault({ fault => '503', path => '/oauth2/token' });
    is(get('/api/v2/employees?pageSize=1')->{status}, 200, 'path fault leaves other paths alone');
    my ($tr) = exchange($sb);
    is($tr->{status}, 503, 'the token endpoint can be faulted');
    ok(!exists $tr->{headers}{'retry-after'}, '... no Retry-After unless asked');
    ($tr) = exchange($sb);
    is($tr->{status}, 200, '... once');

    $sb->fault({ fault => '502', count => 2, path => '/absences' });
    is_deeply([map { get('/absences?pageSize=1')->{status} } 1 .. 3], [502, 502, 200], 'count 2 on /absences');

    $sb->fault({ fault => 'truncated_json', path => '/employees' });
    $r = get('/employees?pageSize=100');
    is($r->{status}, 200, 'truncated_json: 200');
    ok(!eval { decode_json($r->{content}); 1 }, '... body is not valid JSON');

    $sb->fault({ fault => 'html500' });
    $r = get('/api/v2/departments');
    is($r->{status}, 500, 'html500: 500');
    like($r->{content}, qr/<html/i, '... an HTML page');

    $sb->fault({ fault => 'slow', delay_ms => 500 });
    my $t0 = time;
    $r = get('/api/v2/companies');
    is($r->{status}, 200, 'slow answers normally');
    cmp_ok(time - $t0, '>=', 0.45, '... after the delay');

    $sb->fault({ fault => '429', path => '/employees' });
    is(get('/employees', auth => undef)->{status}, 429, 'faults come before authentication');
}

# -- statistics --------------------------------------------------------------------

{
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears stats');
    exchange($sb) for 1 .. 2;
    exchange($sb, path => '/oauth2/token?grant_type=client_credentials');
    get('/api/v2/employees?pageSize=5&page=' . $_) for 0 .. 2;
    get('/api/v2/employees?page=99');
    get("/api/v2/employees/$EMP0", auth => undef);
    get('/absences?pageSize=1');
    my $stats = $sb->stats;
    is($stats->{requests}, 9, 'every provider request is counted (401 and 404 too)');
    is($stats->{by_path}{'/api/v2/oauth2/token'}, 2, 'token exchanges counted on their own path');
    is($stats->{by_path}{'/oauth2/token'}, 1, '... per path shape');
    is($stats->{by_path}{'/api/v2/employees'}, 4, 'list calls keyed without the query');
    is($stats->{by_path}{"/api/v2/employees/$EMP0"}, 1, 'get by id');
    is($stats->{by_path}{'/absences'}, 1, 'bare path shape');
    is($stats->{faults_served}, 0, 'no faults served');
}

# -- determinism ---------------------------------------------------------------------

{
    my $twin = HRIS::Sandbox->start('heavenhr');
    my $token = new_token($twin);
    for my $path ('/api/v2/employees?pageSize=200', '/api/v2/employees?pageSize=200&page=1',
                  "/api/v2/employees/$EMP0", '/api/v2/absences?pageSize=200&page=2', '/api/v2/departments',
                  '/api/v2/locations', '/api/v2/companies', '/api/v2/absence-types') {
        my $theirs = get($path, box => $twin, auth => "Bearer $token");
        is($theirs->{content}, get($path)->{content}, "byte-identical in a second process: $path");
    }
    isnt($token, $TOKEN, 'tokens differ between processes');
    my $pid = $twin->pid;
    $twin->stop;
    ok(!kill(0, $pid), 'stop() ends the process');
}

done_testing();
