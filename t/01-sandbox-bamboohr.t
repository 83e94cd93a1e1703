#!/usr/bin/perl
# The BambooHR sandbox behaves like the BambooHR API of
# shared/reference/providers-bamboohr-personio.md PART A, and its fault
# switches and statistics work.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(sleep time);
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $KEY = '0123456789abcdef0123456789abcdef01234567';
my $sb = HRIS::Sandbox->start('bamboohr');
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 1);

# -- helpers ------------------------------------------------------------------

# Waits (up to $timeout seconds) until $cond->() is true; returns it.
sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + $timeout;
    my $ok;
    sleep 0.05 until ($ok = $cond->()) || time > $deadline;
    return $ok;
}

sub auth { 'Basic ' . encode_base64(shift, '') }

# GET a provider path. Options: auth => header value or undef (none),
# accept => Accept header or undef (none).
sub get {
    my ($path, %o) = @_;
    my %headers;
    my $auth = exists $o{auth} ? $o{auth} : auth("$KEY:x");
    my $accept = exists $o{accept} ? $o{accept} : 'application/json';
    $headers{Authorization} = $auth if defined $auth;
    $headers{Accept} = $accept if defined $accept;
    return $http->get($sb->url . $path, { headers => \%headers });
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

sub error_header { $_[0]->{headers}{'x-bamboohr-error-message'} }

# JSON kinds ("string", "number", "null", ...) of every value of "$key" in a
# raw JSON text: decoded Perl scalars do not say whether they were strings.
sub json_kinds {
    my ($raw, $key) = @_;
    my %kind = ('"' => 'string', 'n' => 'null', 't' => 'bool', 'f' => 'bool', '{' => 'object', '[' => 'array');
    my %seen;
    $seen{ $kind{$1} // 'number' }++ while $raw =~ /"\Q$key\E":\s*(["nft{\[]|-?\d)/g;
    return join ',', sort keys %seen;
}

# Read one HTTP response (headers + Content-Length body) from a socket.
sub read_response {
    my ($sock) = @_;
    my $buffer = '';
    local $SIG{ALRM} = sub { die "read_response timed out\n" };
    alarm 10;
    until ($buffer =~ /\r\n\r\n/ && length($') >= (($buffer =~ /Content-Length: (\d+)/i)[0] // 0)) {
        sysread($sock, my $chunk, 65536) or last;
        $buffer .= $chunk;
    }
    alarm 0;
    return $buffer;
}

# One raw HTTP/1.1 exchange; returns (bytes received, read error or undef).
sub raw_get {
    my ($path) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sb->port,
                                     Proto => 'tcp', Timeout => 5) or die "connect: $!";
    print {$sock} "GET $path HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
        . "Authorization: " . auth("$KEY:x") . "\r\nConnection: close\r\n\r\n";
    my ($data, $error) = ('', undef);
    local $SIG{ALRM} = sub { die "raw_get timed out\n" };
    alarm 10;
    while (1) {
        my $n = sysread($sock, my $chunk, 65536);
        if (!defined $n) { $error = "$!"; last }
        last if $n == 0;
        $data .= $chunk;
    }
    alarm 0;
    close $sock;
    return ($data, $error);
}

# Walk GET /v1/employees with page[limit]=$limit; returns (ids, pages, last body).
sub walk_employees {
    my ($limit, $query) = @_;
    my (@ids, $body, $pages);
    my $path = "/v1/employees?page%5Blimit%5D=$limit" . ($query // '');
    my $first = 1;
    while (1) {
        my ($response, $data) = get_json($path);
        die "walk failed: $response->{status} $response->{content}" unless $response->{status} == 200;
        $pages++;
        is($data->{meta}{page}{prevCursor}, undef, 'first page has no prevCursor') if $first;
        $first = 0;
        push @ids, map { $_->{employeeId} } @{ $data->{data} };
        $body = $data;
        my $next = $data->{meta}{page}{nextCursor} or last;
        $path = "/v1/employees?page%5Blimit%5D=$limit" . ($query // '')
              . '&page%5Bafter%5D=' . uri_escape($next);
    }
    return (\@ids, $pages, $body);
}

# -- start-up -----------------------------------------------------------------

like($sb->url, qr{^http://127\.0\.0\.1:\d+$}, 'sandbox started on a loopback port');

# -- authentication (A2.1, A6) -----------------------------------------------

{
    my $r = get('/v1/employees/4', auth => undef);
    is($r->{status}, 401, 'no credentials: 401');
    is($r->{content}, '', '401 has an empty body');
    ok(error_header($r), '401 carries X-BambooHR-Error-Message');

    $r = get('/v1/employees/4', auth => auth('ffffffffffffffffffffffffffffffffffffffff:x'));
    is($r->{status}, 401, 'wrong API key: 401');
    is($r->{content}, '', 'empty body');
    ok(error_header($r), 'error header present');

    $r = get('/v1/employees/4', auth => 'Bearer some-token');
    is($r->{status}, 401, 'a bearer token not issued by /token.php: 401 (OAuth: t/06)');

    $r = get('/v1/employees/4', auth => auth("$KEY:anything at all"));
    is($r->{status}, 200, 'the password part is ignored');
}

{
    my $other = HRIS::Sandbox->start('bamboohr', api_keys => ['key-one', 'key-two']);
    my $r = $http->get($other->url . '/v1/employees/4',
                       { headers => { Accept => 'application/json', Authorization => auth('key-two:x') } });
    is($r->{status}, 200, '--api-key may be repeated (second key works)');
    $r = $http->get($other->url . '/v1/employees/4',
                    { headers => { Accept => 'application/json', Authorization => auth("$KEY:x") } });
    is($r->{status}, 401, 'explicit --api-key replaces the default key');
    $other->stop;
}

# -- content negotiation (A3) -------------------------------------------------

{
    my $r = get('/v1/employees/4', accept => undef);
    is($r->{status}, 200, 'no Accept: still 200');
    like($r->{headers}{'content-type'}, qr{^text/xml; charset=UTF-8}, 'no Accept: text/xml');
    like($r->{content}, qr{^<\?xml}, 'XML body');
    like($r->{content}, qr{<employee id="4"><field id="firstName">Charlotte</field>},
         'legacy <employee><field> shape');

    $r = get('/v1/employees/directory', accept => '*/*');
    like($r->{headers}{'content-type'}, qr{^text/xml}, 'Accept */* is not JSON');
    unlike($r->{content}, qr/^\s*[\[{]/, 'never a JSON body without application/json');

    my ($lists_r, $lists) = get_json('/v1/meta/lists?format=json', accept => undef);
    like($lists_r->{headers}{'content-type'}, qr{^application/json}, '/meta/lists?format=json is JSON');
    is(ref $lists, 'ARRAY', 'lists decode as an array');
}

# -- path shapes (A1) ---------------------------------------------------------

{
    my @bodies = map { get($_)->{content} } (
        '/v1/employees/15?fields=firstName,lastName,hireDate',
        '/api/gateway.php/acme/v1/employees/15?fields=firstName,lastName,hireDate',
        '/api/gateway.php/another-domain/v1/employees/15?fields=firstName,lastName,hireDate',
        '/api/v1/employees/15?fields=firstName,lastName,hireDate',
    );
    is($bodies[$_], $bodies[0], "path shape $_ answers identically") for 1 .. 3;
    is(decode_json($bodies[0])->{firstName}, 'José', 'UTF-8 survives');

    my $r = get('/v1_1/employees/4/tables/jobInfo');
    is($r->{status}, 200, 'v1_1 path answers where BambooHR has it');
    $r = get('/api/v1/no/such/thing');
    is($r->{status}, 404, 'unknown path: 404');
    $r = get('/nothing-like-bamboohr');
    is($r->{status}, 404, 'path outside the API: 404');
}

# -- GET /v1/employees: pagination (A4.2) -------------------------------------

my ($all_ids, $pages, $last) = walk_employees(2500);
my $TOTAL = scalar @$all_ids;
cmp_ok($TOTAL, '>=', 320, "at least 320 employees ($TOTAL)");
is($pages, 1, 'page[limit]=2500 returns everything in one page');
is($last->{meta}{total}, $TOTAL, 'meta.total counts every employee');
is_deeply($all_ids, [sort { $a <=> $b } @$all_ids], 'sorted by numeric employeeId');
my %seen_id;
is(scalar(grep { !$seen_id{$_}++ } @$all_ids), $TOTAL, 'ids are unique');
ok(scalar(grep { !/^\d+$/ } @$all_ids) == 0, 'ids are digit strings');
ok((grep { $all_ids->[$_] != $all_ids->[$_ - 1] + 1 } 1 .. $#$all_ids) > 10, 'ids are not contiguous');
is($all_ids->[0], '4', 'first id is 4');

for my $limit (1, 7, 500) {
    my ($ids, $page_count, $final) = walk_employees($limit);
    my %count;
    $count{$_}++ for @$ids;
    is_deeply([sort { $a <=> $b } keys %count], [sort { $a <=> $b } @$all_ids],
              "limit $limit: every employee seen");
    is(scalar(grep { $_ != 1 } values %count), 0, "limit $limit: each exactly once");
    is($page_count, int(($TOTAL + $limit - 1) / $limit), "limit $limit: $page_count pages");
    is($final->{meta}{page}{nextCursor}, undef, "limit $limit: nextCursor null at the end");
    ok(!exists $final->{_links}{next}, "limit $limit: no _links.next at the end");
    is($final->{meta}{page}{limit}, $limit, "limit $limit: meta.page.limit echoes it");
}

{
    my ($r, $page) = get_json('/api/gateway.php/acme/v1/employees?page%5Blimit%5D=7');
    is(scalar @{ $page->{data} }, 7, 'limit 7: seven records');
    my $cursor = $page->{meta}{page}{nextCursor};
    like(decode_base64($cursor), qr/^\{"cursor": "after-\d+"\}$/, 'cursor is base64 JSON');
    like($page->{_links}{self}{href}, qr{^http://127\.0\.0\.1:\d+/api/gateway\.php/acme/v1/employees\?},
         '_links.self is absolute, same path shape');
    my $next_href = $page->{_links}{next}{href};
    (my $next_path = $next_href) =~ s{^http://[^/]+}{};
    my ($r2, $page2) = get_json($next_path);
    is($r2->{status}, 200, '_links.next is usable as is');
    is($page2->{data}[0]{employeeId}, $all_ids->[7], '_links.next continues after the page');
    ok($page2->{meta}{page}{prevCursor}, 'second page has a prevCursor');

    my $prev = uri_escape($page2->{meta}{page}{prevCursor});
    my ($r3, $back) = get_json("/v1/employees?page%5Blimit%5D=7&page%5Bbefore%5D=$prev");
    is_deeply([map { $_->{employeeId} } @{ $back->{data} }], [@$all_ids[0 .. 6]],
              'page[before] goes back to the first page');

    my %record = %{ $page->{data}[0] };
    is_deeply([sort keys %record],
              [sort qw(employeeId firstName lastName preferredName photoUrl jobTitleName status _restrictedFields)],
              'default record fields');
    is(ref $record{_restrictedFields}, 'ARRAY', '_restrictedFields is an array');
    like($record{status}, qr/^(Active|Inactive)$/, 'status Active/Inactive');
}

# -- GET /v1/employees: errors ------------------------------------------------

sub error_code {
    my ($path) = @_;
    my ($r, $data) = get_json($path);
    return ($r->{status}, $data && $data->{error} ? $data->{error}{code} : undef);
}

{
    my $cursor = decode_json(get('/v1/employees?page%5Blimit%5D=3')->{content})->{meta}{page}{nextCursor};
    my $tampered = encode_base64(do { (my $c = decode_base64($cursor)) =~ s/after-\d+/after-999999/; $c }, '');
    is_deeply([error_code('/v1/employees?page%5Bafter%5D=' . uri_escape($tampered))], [400, 'BadPage'],
              'tampered cursor: 400 BadPage');
    is_deeply([error_code('/v1/employees?page%5Bafter%5D=not-a-cursor!!')], [400, 'BadPage'],
              'garbage cursor: 400 BadPage');
    (my $flipped = $cursor) =~ tr/A-Za-z/B-ZAb-za/;
    is_deeply([error_code('/v1/employees?page%5Bafter%5D=' . uri_escape($flipped))], [400, 'BadPage'],
              'bit-flipped cursor: 400 BadPage');
    my $before = encode_base64('{"cursor": "before-6"}', '');
    is_deeply([error_code('/v1/employees?page%5Bafter%5D=' . uri_escape($before))], [400, 'BadPage'],
              'cursor used in the wrong direction: 400 BadPage');
    is_deeply([error_code('/v1/employees?filter%5Bstatus%5D=inactive&page%5Bafter%5D=' . uri_escape($cursor))],
              [400, 'BadPage'], 'boundary employee no longer matches the filter: BadPage');

    for my $limit ('0', '2501', 'abc', '-1') {
        is_deeply([error_code("/v1/employees?page%5Blimit%5D=$limit")], [400, 'BadRequest'],
                  "page[limit]=$limit: 400 BadRequest");
    }
    is_deeply([error_code('/v1/employees?page%5Blimit%5D=2500')], [200, undef], 'page[limit]=2500 is allowed');
    is_deeply([error_code('/v1/employees?page%5Bafter%5D=' . uri_escape($cursor) . '&page%5Bbefore%5D=' . uri_escape($cursor))],
              [400, 'BadRequest'], 'page[after] and page[before] together: BadRequest');
    is_deeply([error_code('/v1/employees?filter%5Bstatus%5D=gone')], [400, 'BadRequest'], 'bad filter[status] value');
    is((error_code('/v1/employees?filter%5Bssn%5D=123'))[0], 422, 'unknown filter key: 422');
    is((error_code('/v1/employees?filter%5BpayRate%5D=1'))[0], 422, 'unsupported filter key: 422');
    is_deeply([error_code('/v1/employees?sort=salary')], [400, 'BadRequest'], 'bad sort field');
}

# -- GET /v1/employees: filters and fields ------------------------------------

sub list_ids {
    my ($query) = @_;
    my ($r, $data) = get_json("/v1/employees?page%5Blimit%5D=2500&$query");
    return [map { $_->{employeeId} } @{ $data->{data} }], $data;
}

{
    my @pick = @$all_ids[3, 10, 200];
    my ($ids) = list_ids(join '&', map { "filter%5Bids%5D%5B%5D=$_" } @pick);
    is_deeply($ids, \@pick, 'filter[ids][]= repeated');
    ($ids) = list_ids('filter%5Bids%5D=' . join('%2C', @pick));
    is_deeply($ids, \@pick, 'filter[ids]=a,b,c');
    my ($none, $data) = list_ids('filter%5Bids%5D=999999');
    is($data->{meta}{total}, 0, 'unknown id: empty result');

    my ($inactive, $inactive_data) = list_ids('filter%5Bstatus%5D=inactive');
    my ($active) = list_ids('filter%5Bstatus%5D=active');
    is(@$inactive + @$active, $TOTAL, 'active + inactive = all');
    ok(!grep({ $_->{status} ne 'Inactive' } @{ $inactive_data->{data} }), 'filter[status]=inactive');
    my $ratio = @$inactive / $TOTAL;
    ok($ratio > 0.07 && $ratio < 0.13, sprintf('about 10%% inactive (%d)', scalar @$inactive));

    my (undef, $zo) = list_ids('filter%5BfirstName%5D=ZO');
    ok(grep({ $_->{firstName} eq 'Zoë' } @{ $zo->{data} }), 'filter[firstName] is a case-insensitive substring');
    ok(!grep({ $_->{firstName} !~ /zo/i } @{ $zo->{data} }), '... and only matches');
    my (undef, $mul) = list_ids('filter%5BlastName%5D=' . uri_escape('MÜL'));
    ok(@{ $mul->{data} } && !grep({ $_->{lastName} ne 'Müller' } @{ $mul->{data} }), 'filter[lastName] with unicode');
    my (undef, $both) = list_ids('filter%5BlastName%5D=' . uri_escape('Müller') . '&filter%5BfirstName%5D=zo');
    ok(!grep({ $_->{firstName} !~ /zo/i || $_->{lastName} ne 'Müller' } @{ $both->{data} }), 'filters AND together');
}

my ($meta_r, $meta_lists) = get_json('/v1/meta/lists');
my %list = map { ($_->{alias} // '') => $_ } @$meta_lists;
my %option_ids;
for my $alias (qw(department division location jobTitle employmentHistoryStatus)) {
    $option_ids{$alias} = { map { ($_->{id} => $_) } @{ $list{$alias}{options} } };
}

my ($full_ids, $full) = list_ids('fields=workEmail,homeEmail,middleName,workPhone,mobilePhone,birthDate,hireDate,'
    . 'terminationDate,divisionName,divisionId,departmentName,departmentId,locationName,locationId,'
    . 'jobTitleId,employmentStatusName,reportsToName,reportsToId,employeeNumber,displayName,'
    . 'originalHireDate,employmentType,customShirtSize,customDietaryRestrictions,noSuchField');
my @employees = @{ $full->{data} };
{
    my $raw = get('/v1/employees?page%5Blimit%5D=2500&fields=departmentId,locationId,jobTitleId,reportsToId')->{content};
    is(json_kinds($raw, $_), 'string', "$_ values are JSON strings") for qw(employeeId departmentId locationId jobTitleId);
    is(json_kinds($raw, 'reportsToId'), 'null,string', 'reportsToId is a string or null');
    is(json_kinds($meta_r->{content}, $_), 'number', "/meta/lists $_ values are JSON integers") for qw(id fieldId);
}
my %by_id = map { ($_->{employeeId} => $_) } @employees;
{
    my $e = $by_id{4};
    for my $field (qw(workEmail hireDate departmentId locationId customShirtSize customDietaryRestrictions
                      reportsToId reportsToName employmentStatusName employmentType)) {
        ok(exists $e->{$field}, "fields=: $field is present");
    }
    ok(!exists $e->{noSuchField}, 'unknown field names are ignored');
    is($e->{reportsToId}, '6', 'employee 4 reports to 6');
    is($e->{reportsToName}, 'Jennifer Caldwell', 'reportsToName is First Last');
    is($by_id{6}{reportsToId}, undef, 'the CEO reports to nobody');

    my @bad_dept = grep { !$option_ids{department}{ $_->{departmentId} } } @employees;
    is(scalar @bad_dept, 0, 'every departmentId is a /meta/lists department option');
    my @bad_loc = grep { !$option_ids{location}{ $_->{locationId} } } @employees;
    is(scalar @bad_loc, 0, 'every locationId is a /meta/lists location option');
    my @bad_title = grep { !$option_ids{jobTitle}{ $_->{jobTitleId} } } @employees;
    is(scalar @bad_title, 0, 'every jobTitleId is a /meta/lists job title option');
    ok(!grep({ $_->{departmentId} !~ /^\d+$/ } @employees), 'departmentId is a digit string');

    my @managers = grep { defined $_->{reportsToId} } @employees;
    ok(!grep({ !$by_id{ $_->{reportsToId} } } @managers), 'every reportsToId is an employee');
    is(scalar(grep { !defined $_->{reportsToId} } @employees), 2, 'two top managers');

    my %status = map { ($_->{employmentStatusName} // 'null') => 1 } @employees;
    ok($status{$_}, "employment status $_ occurs")
        for qw(Full-Time Part-Time Contractor Intern Terminated Furloughed);
    ok(!grep({ ($_->{status} eq 'Inactive') != (($_->{employmentStatusName} // '') eq 'Terminated') } @employees),
       'Inactive exactly when Terminated');

    my @terminated = grep { $_->{status} eq 'Inactive' } @employees;
    ok((grep { ($_->{terminationDate} // '') =~ /^\d{4}-\d\d-\d\d$/ && $_->{terminationDate} ne '0000-00-00' } @terminated)
       >= @terminated - 3, 'terminated employees have a termination date (but for 3)');
    for my $field (qw(hireDate terminationDate)) {
        ok((grep { defined $_->{$field} && $_->{$field} eq '' } @employees), "$field is sometimes \"\"");
        ok((grep { defined $_->{$field} && $_->{$field} eq '0000-00-00' } @employees), "$field is sometimes 0000-00-00");
        ok((grep { !defined $_->{$field} } @employees), "$field is sometimes null");
    }
    ok((grep { ($_->{customShirtSize} // 'x') eq '' } @employees), 'some empty customShirtSize');
    ok((grep { ($_->{customShirtSize} // '') =~ /^(XS|S|M|L|XL|XXL)$/ } @employees), 'shirt sizes');
    ok((grep { ($_->{customDietaryRestrictions} // 'x') eq '' } @employees), 'some empty customDietaryRestrictions');
    ok((grep { $_->{firstName} eq 'Zoë' } @employees) && (grep { $_->{firstName} eq 'José' } @employees),
       'unicode names');
    ok((grep { @{ $_->{_restrictedFields} } } @employees), 'some records have _restrictedFields');
    ok(!grep({ @{ $_->{_restrictedFields} } && defined $_->{photoUrl} } @employees), 'restricted fields are null');
}

# -- directory (A4.1) ---------------------------------------------------------

{
    my ($r, $dir) = get_json('/v1/employees/directory');
    is($r->{status}, 200, 'directory: 200');
    is(ref $dir->{fields}, 'ARRAY', 'directory has fields');
    my @ids = map { $_->{id} } @{ $dir->{employees} };
    my @active = grep { $_->{status} eq 'Active' } @employees;
    ok(!grep({ $by_id{$_}{status} ne 'Active' } @ids), 'directory: only Active employees');
    cmp_ok(scalar @ids, '>', 280, 'directory: not paginated');
    is(scalar @ids, @active - 3, 'directory: three future hires are hidden (onlyCurrent)');
    my (undef, $all_dir) = get_json('/v1/employees/directory?onlyCurrent=false');
    is(scalar @{ $all_dir->{employees} }, scalar @active, 'onlyCurrent=false shows future hires');
    my ($charlotte) = grep { $_->{id} eq '4' } @{ $dir->{employees} };
    is($charlotte->{supervisor}, 'Jennifer Caldwell', 'directory supervisor is "First Last"');
    is($charlotte->{canUploadPhoto}, 1, 'canUploadPhoto is an integer');
    ok(!exists $charlotte->{hireDate}, 'no hireDate in the directory');
}

# -- GET /v1/employees/{id} (A4.3) --------------------------------------------

{
    my ($r, $e) = get_json('/v1/employees/0');
    is_deeply($e, { id => '4', firstName => 'Charlotte', lastName => 'Abbott' },
              'id 0 = the key owner; default fields firstName,lastName');
    ($r, $e) = get_json('/v1/employees/4?fields=firstName,supervisor,supervisorId,supervisorEId,'
        . 'employmentHistoryStatus,status,department,jobTitle,hireDate,terminationDate,payRate,customShirtSize,4521,nope');
    is($e->{id}, '4', 'id is always present');
    is($e->{supervisor}, 'Caldwell, Jennifer', 'supervisor is "Last, First"');
    is($e->{supervisorEId}, '6', 'supervisorEId is the manager employee id');
    is($e->{supervisorId}, '2', 'supervisorId is the manager employee number');
    is($e->{employmentHistoryStatus}, 'Full-Time', 'employmentHistoryStatus');
    is($e->{status}, 'Active', 'status');
    like($e->{payRate}, qr/^\d+\.\d\d [A-Z]{3}$/, 'payRate "65000.00 USD" style');
    is($e->{4521}, $e->{customShirtSize}, 'numeric field id resolves to the custom field');
    ok(!exists $e->{nope}, 'unknown field omitted');

    $r = get('/v1/employees/999999');
    is($r->{status}, 404, 'unknown employee: 404');
    is($r->{content}, '', '404 body is empty');
    ok(error_header($r), '404 carries the error header');

    my ($term) = grep { $_->{status} eq 'Inactive' } @employees;
    ($r, $e) = get_json("/v1/employees/$term->{employeeId}?fields=status,employmentHistoryStatus");
    is_deeply([$e->{status}, $e->{employmentHistoryStatus}], ['Inactive', 'Terminated'], 'terminated employee');
}

# -- fields by name and the 400-field limit (A4.3, A4.5) ------------------------

{
    my @custom = map { "customField$_" } 5001 .. 5500;
    my ($r, $e) = get_json('/v1/employees/4?fields=firstName,customField5001,customField5500,5017,'
                           . 'customField5028');
    is($e->{customField5001}, '5001-4', 'a generated custom field by name: "<number>-<id>"');
    is($e->{customField5500}, '5500-4', 'the last one');
    is($e->{5017}, '5017-4', 'by its numeric field id');
    ok(exists $e->{customField5028} && !defined $e->{customField5028},
       'null when number + id is a multiple of 17');
    ok((grep { ($_->{alias} // '') eq 'customField5250' && $_->{id} == 5250 }
        @{ (get_json('/v1/meta/fields'))[1] }), '/meta/fields lists them');

    my $at = sub { my ($n) = @_; join ',', 'firstName', @custom[0 .. $n - 2] };
    ($r, $e) = get_json('/v1/employees/4?fields=' . $at->(400));
    is($r->{status}, 200, 'GET /v1/employees/{id} with 400 fields: 200');
    is(scalar(keys %$e), 401, 'every one of them, and the id')
        or diag scalar keys %$e;
    $r = get('/v1/employees/4?fields=' . $at->(401));
    is($r->{status}, 400, 'with 401 fields: 400');
    is($r->{content}, '', '... empty body');
    is(error_header($r), 'Too many fields requested (max 400).', '... the message in the header');
    $r = get('/v1/employees/4?fields=' . join(',', ('nope') x 401));
    is($r->{status}, 400, 'unknown names count too');

    my ($lr, $list) = get_json('/v1/employees?page%5Blimit%5D=3&fields=' . join(',', @custom[0 .. 399]));
    is($lr->{status}, 200, 'GET /v1/employees with 400 fields: 200');
    is($list->{data}[0]{customField5400}, '5400-4', 'serves generated custom fields');
    is(scalar(grep { /^customField/ } keys %{ $list->{data}[1] }), 400, 'all 400 of them');
    ($lr, $list) = get_json('/v1/employees?page%5Blimit%5D=3&fields=' . join(',', @custom[0 .. 400]));
    is($lr->{status}, 400, 'with 401 fields: 400');
    is($list->{error}{code}, 'BadRequest', '... BadRequest, this endpoint\'s error style');
    like($list->{error}{message}, qr/400 fields/, '... saying why');

    my $report = sub {
        my ($names) = @_;
        return $http->request('POST', $sb->url . '/v1/reports/custom?format=json', {
            headers => { Authorization => auth("$KEY:x"), 'Content-Type' => 'application/json' },
            content => encode_json({ title => 't', filters => { employeeIds => [4] },
                                     fields => $names }),
        });
    };
    $r = $report->([@custom[0 .. 399]]);
    is($r->{status}, 200, 'custom report with 400 fields: 200');
    is(decode_json($r->{content})->{employees}[0]{customField5400}, '5400-4', '... with their values');
    $r = $report->([@custom[0 .. 400]]);
    is($r->{status}, 400, 'custom report with 401 fields: 400');
    ok(error_header($r), '... with the error header');
}

# -- metadata (A4.8) ----------------------------------------------------------

{
    my $dept = $list{department};
    like($dept->{id}, qr/^\d+$/, 'list has a top-level id');
    is(JSON::PP->new->canonical->encode([$dept->{fieldId}]), '[4]', 'fieldId is a JSON integer');
    like($dept->{manageable}, qr/^(yes|no)$/, 'flags are yes/no');
    my @archived = grep { $_->{archived} eq 'yes' } map { @{ $_->{options} } } @$meta_lists;
    ok(@archived, 'some options are archived');
    ok(!grep({ !defined $_->{archivedDate} } @archived), 'archived options have an archivedDate');
    my $opt = $dept->{options}[1];
    is(JSON::PP->new->canonical->encode([$opt->{id}]), "[$opt->{id}]", 'option ids are JSON integers');
    ok(exists $opt->{createdDate} && exists $opt->{archivedDate}, 'option createdDate/archivedDate');
    ok($list{$_}, "list $_ present") for qw(department division location jobTitle employmentHistoryStatus);

    my (undef, $fields) = get_json('/v1/meta/fields');
    my ($shirt) = grep { ($_->{alias} // '') eq 'customShirtSize' } @$fields;
    like($shirt->{id}, qr/^\d+$/, 'custom field customShirtSize has an int id');
    ok((grep { $_->{id} eq '4340.4' } @$fields), 'a dotted subfield id');
    ok((grep { ($_->{alias} // '') eq 'customDietaryRestrictions' } @$fields), 'customDietaryRestrictions');

    my (undef, $tables) = get_json('/v1/meta/tables');
    is_deeply([sort map { $_->{alias} } @$tables], [qw(compensation employmentStatus jobInfo)], '/meta/tables');
}

# -- time off (A4.9) ----------------------------------------------------------

{
    my ($types_r, $types) = get_json('/v1/meta/time_off/types');
    is(json_kinds($types_r->{content}, 'id'), 'string', 'time-off type ids are JSON strings');
    my %units = map { ($_->{units} => 1) } @{ $types->{timeOffTypes} };
    is_deeply([sort keys %units], ['days', 'hours'], 'units hours and days');
    ok(@{ $types->{defaultHours} }, 'defaultHours');

    my $r = get('/v1/time_off/requests');
    is($r->{status}, 400, 'requests without start/end: 400');
    ok(error_header($r), '... with the error header');
    is(get('/v1/time_off/requests?start=2025-01-01')->{status}, 400, 'without end: 400');
    is(get('/v1/time_off/requests?end=2025-01-01')->{status}, 400, 'without start: 400');
    is(get('/v1/time_off/requests?start=2025-02-30&end=2025-03-01')->{status}, 400, 'invalid date: 400');

    my ($all_r, $all) = get_json('/v1/time_off/requests?start=2025-01-01&end=2026-12-31');
    cmp_ok(scalar @$all, '>=', 600, scalar(@$all) . ' requests in 2025-2026');
    my %status = map { ($_->{status}{status} => 1) } @$all;
    is_deeply([sort keys %status], [sort qw(approved denied superceded requested canceled)], 'every status');
    my %unit = map { ($_->{amount}{unit} => 1) } @$all;
    is_deeply([sort keys %unit], ['days', 'hours'], 'both units');
    my %type = map { ($_->{type}{id} => 1) } @$all;
    cmp_ok(scalar keys %type, '>=', 4, 'several types');
    my $one = $all->[0];
    like($one->{id}, qr/^\d+$/, 'request id');
    is(json_kinds($all_r->{content}, $_), 'string', "request $_ values are JSON strings")
        for qw(id employeeId lastChangedByUserId);
    is(json_kinds($all_r->{content}, 'amount'), 'object,string', 'amount is {unit, amount: "string"}');
    ok(!grep({ grep { !/^\d+(\.\d+)?$/ } values %{ $_->{dates} } } @$all), 'dates map values are number strings');
    is(ref $one->{notes}, 'HASH', 'notes is an object');
    ok($by_id{ $one->{employeeId} }, 'employeeId is an employee');

    # Overlap: a request is in [start, end] when its end >= start and its start <= end.
    my ($from, $to) = ('2025-06-10', '2025-06-12');
    my (undef, $window) = get_json("/v1/time_off/requests?start=$from&end=$to");
    my @expect = map { $_->{id} } grep { $_->{end} ge $from && $_->{start} le $to } @$all;
    cmp_ok(scalar @expect, '>', 0, 'window has requests');
    is_deeply([map { $_->{id} } @$window], \@expect, 'overlap semantics');
    my ($long) = grep { $_->{start} lt $_->{end} } @$all;
    my (undef, $tail) = get_json("/v1/time_off/requests?start=$long->{end}&end=$long->{end}");
    ok((grep { $_->{id} eq $long->{id} } @$tail), 'a request overlapping only by its last day is included');

    my (undef, $denied) = get_json('/v1/time_off/requests?start=2025-01-01&end=2026-12-31&status=denied,canceled');
    is_deeply([map { $_->{id} } @$denied],
              [map { $_->{id} } grep { $_->{status}{status} =~ /^(denied|canceled)$/ } @$all], 'status filter');
    my (undef, $typed) = get_json('/v1/time_off/requests?start=2025-01-01&end=2026-12-31&type=77,80');
    is_deeply([map { $_->{id} } @$typed], [map { $_->{id} } grep { $_->{type}{id} =~ /^(77|80)$/ } @$all],
              'type filter');
    my $emp = $one->{employeeId};
    my (undef, $mine) = get_json("/v1/time_off/requests?start=2025-01-01&end=2026-12-31&employeeId=$emp");
    is_deeply([map { $_->{id} } @$mine], [map { $_->{id} } grep { $_->{employeeId} eq $emp } @$all],
              'employeeId filter');

    my (undef, $balances) = get_json('/v1/employees/4/time_off/calculator?end=2026-05-29');
    ok(@$balances, 'calculator answers');
    ok(!grep({ $_->{balance} !~ /^-?\d+\.\d\d$/ || $_->{end} ne '2026-05-29' } @$balances),
       'balances are strings with 2 decimals');
    is(get('/v1/employees/999999/time_off/calculator')->{status}, 404, 'calculator: unknown employee 404');
    my (undef, $policies) = get_json('/v1/meta/time_off/policies');
    ok(!grep({ $_->{type} !~ /^(accruing|discretionary|manual)$/ } @$policies), 'policies');
}

# -- tables, company, benefits ------------------------------------------------

{
    my (undef, $rows) = get_json('/v1/employees/4/tables/jobInfo');
    ok(@$rows && !grep({ $_->{employeeId} ne '4' } @$rows), 'jobInfo rows of employee 4');
    my (undef, $comp) = get_json('/v1/employees/4/tables/compensation');
    is($comp->[-1]{rate}, '79500.00 EUR', 'compensation rate as text, as recorded traffic has money');
    my (undef, $all_comp) = get_json('/v1/employees/all/tables/compensation');
    my @objects = grep { ref $_->{rate} eq 'HASH' } @$all_comp;
    ok(@objects && @objects < @$all_comp, 'other rows have the spec\'s {value, currency}');
    like($objects[0]{rate}{value}, qr/^\d+\.\d\d$/, 'a rate value');
    like($objects[0]{rate}{currency}, qr/^[A-Z]{3}$/, 'a rate currency');
    ok(!grep({ !ref $_->{rate} && $_->{rate} !~ /^\d+\.\d\d [A-Z]{3}$/ } @$all_comp),
       'every text rate is "<amount> <currency>"');
    my (undef, $all_status) = get_json('/v1/employees/all/tables/employmentStatus');
    cmp_ok(scalar @$all_status, '>=', $TOTAL, 'all-employees table form');
    is(get('/v1/employees/4/tables/nope')->{status}, 404, 'unknown table: 404');
    is(get('/v1/employees/999999/tables/jobInfo')->{status}, 404, 'unknown employee: 404');

    my (undef, $company) = get_json('/v1/company_information');
    ok($company->{legalName} && $company->{address}{city}, 'company information');

    # /v1/meta/company: OAuth only in the spec's security list
    my $r = get('/api/gateway.php/acme/v1/meta/company');
    is($r->{status}, 403, 'meta/company with an API key: 403');
    like(error_header($r), qr/OAuth access token/, 'which the error header explains');
    is($r->{content}, '', 'with an empty body');
    my $code = decode_json($http->post($sb->url . '/_sandbox/oauth/code', {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"scope": "company:info"}' })->{content})->{code};
    my $tok = decode_json($http->post_form($sb->url . '/token.php?request=token', {
        grant_type => 'authorization_code', code => $code,
        redirect_uri => 'http://127.0.0.1/callback', client_id => 'sandbox-bamboohr-client',
        client_secret => 'sandbox-bamboohr-secret' })->{content})->{access_token};
    my ($m, $meta) = get_json('/api/gateway.php/acme/v1/meta/company', auth => "Bearer $tok");
    is($m->{status}, 200, 'meta/company with an access token: 200');
    is(json_kinds($m->{content}, 'id'), 'number', 'the company id is a number');
    is_deeply($meta, { id => 48213, name => 'Sandbox Efficient Office', domain => 'acme',
                       baseApiUrl => $sb->url . '/api/gateway.php/acme' },
              'id, name, domain (from the path) and baseApiUrl');
    (undef, $meta) = get_json('/api/v1/meta/company', auth => "Bearer $tok");
    is($meta->{domain}, 'sandbox', 'without a domain in the path: --company-domain');
    like(get('/v1/meta/company', auth => "Bearer $tok", accept => undef)->{content},
         qr{^<\?xml.*<id>48213</id>}s, 'XML without Accept: application/json');
    is(get('/v1/meta/company', auth => 'Bearer nope')->{status}, 401, 'a bad token: 401');

    my $lenient = HRIS::Sandbox->start('bamboohr', args => ['--meta-company-api-key']);
    my $res = $http->get($lenient->url . '/v1/meta/company', { headers => {
        Authorization => auth("$KEY:x"), Accept => 'application/json' } });
    is($res->{status}, 200, '--meta-company-api-key: an API key may read meta/company');
    $lenient->stop;
    my (undef, $benefits) = get_json('/v1/benefit/company_benefit');
    ok(@{ $benefits->{companyBenefits} }, 'company benefits');
    my (undef, $enrolled) = get_json('/v1/benefit/employee_benefit?employeeId=4');
    is($enrolled->{employeeBenefits}[0]{employeeId}, 4, 'employee benefits');
}

# -- fault switches -----------------------------------------------------------

$sb->reset;
{
    $sb->fault({ fault => '429', retry_after => '7' });
    my $r = get('/v1/employees/4');
    is($r->{status}, 429, '429 fault');
    is($r->{headers}{'retry-after'}, '7', '... with Retry-After');
    is(get('/v1/employees/4')->{status}, 200, 'count defaults to 1');

    $sb->fault({ fault => '429' });
    $r = get('/v1/employees/4');
    is($r->{status}, 429, '429 without retry_after');
    ok(!exists $r->{headers}{'retry-after'}, '... has no Retry-After');

    $sb->fault({ fault => '503', retry_after => 'Wed, 21 Oct 2026 07:28:00 GMT' });
    $r = get('/v1/employees/4');
    is($r->{status}, 503, '503 fault');
    is($r->{headers}{'retry-after'}, 'Wed, 21 Oct 2026 07:28:00 GMT', 'HTTP-date Retry-After');
    $sb->fault({ fault => '503' });
    $r = get('/v1/employees/4');
    ok($r->{status} == 503 && !exists $r->{headers}{'retry-after'}, '503 without Retry-After');

    for my $status (500, 502, 504) {
        $sb->fault({ fault => "$status" });
        is(get('/v1/employees/4')->{status}, $status, "$status fault");
    }

    $sb->fault({ fault => 'slow', delay_ms => 600 });
    my $t0 = time;
    $r = get('/v1/employees/4');
    my $elapsed = time - $t0;
    is($r->{status}, 200, 'slow answers normally');
    cmp_ok($elapsed, '>=', 0.55, sprintf('... after the delay (%.2fs)', $elapsed));

    $sb->fault({ fault => 'truncated' });
    my ($data, $error) = raw_get('/v1/employees/directory');
    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    like($head, qr{^HTTP/1\.1 200}, 'truncated: 200');
    like($head, qr{Content-Type: application/json}i, 'truncated: JSON content type');
    my ($length) = $head =~ /Content-Length: (\d+)/i;
    cmp_ok(length($body), '<', $length, "truncated: fewer bytes (@{[length $body]}) than Content-Length ($length)");
    cmp_ok(length($body), '>', 0, 'truncated: some bytes arrive');

    $sb->fault({ fault => 'truncated_json' });
    $r = get('/v1/employees/directory');
    is($r->{status}, 200, 'truncated_json: 200');
    is(length($r->{content}), $r->{headers}{'content-length'}, 'truncated_json: Content-Length is right');
    ok(!eval { decode_json($r->{content}); 1 }, 'truncated_json: body is not valid JSON');

    $sb->fault({ fault => 'html' });
    $r = get('/v1/employees/4');
    is($r->{status}, 200, 'html: 200');
    like($r->{headers}{'content-type'}, qr{^text/html}, 'html: text/html');
    like($r->{content}, qr/<html/i, 'html: an HTML page');

    $sb->fault({ fault => 'html500' });
    $r = get('/v1/employees/4');
    is($r->{status}, 500, 'html500: 500');
    like($r->{content}, qr/<html/i, 'html500: an HTML page');

    $sb->fault({ fault => 'reset' });
    ($data, $error) = raw_get('/v1/employees/4');
    is($data, '', 'reset: no answer');
    like($error // '', qr/reset/i, 'reset: connection reset by peer');

    $sb->fault({ fault => '503', count => 2 });
    is_deeply([map { get('/v1/employees/4')->{status} } 1 .. 3], [503, 503, 200], 'count 2');

    $sb->fault({ fault => '502', count => -1 });
    is_deeply([map { get('/v1/employees/4')->{status} } 1 .. 4], [502, 502, 502, 502], 'count -1 lasts');
    is(scalar @{ $sb->faults }, 1, 'the fault stays queued');
    $sb->clear_faults;
    is(get('/v1/employees/4')->{status}, 200, 'clear_faults ends it');

    $sb->fault({ fault => '429', path => '/directory' });
    is(get('/v1/employees/4')->{status}, 200, 'path: other paths are untouched');
    is(get('/api/gateway.php/acme/v1/employees/directory')->{status}, 429, 'path: matching path faulted');
    is(get('/v1/employees/directory')->{status}, 200, 'path fault used up');

    $sb->fault([{ fault => '500', path => 'time_off' }, { fault => '504' }]);
    is(get('/v1/employees/4')->{status}, 504, 'first matching fault in queue order is taken');
    is(get('/v1/time_off/requests?start=2025-01-01&end=2025-01-02')->{status}, 500, 'path matched on query-less path');

    my $bad = $http->post($sb->url . '/_sandbox/faults', { content => '{"fault":"nope"}' });
    is($bad->{status}, 400, 'unknown fault kind: 400');
    $bad = $http->post($sb->url . '/_sandbox/faults', { content => '{"fault":"429","count":0}' });
    is($bad->{status}, 400, 'count 0: 400');

    $sb->fault({ fault => '429', path => '/v1/employees/4' });
    is(get('/v1/employees/4', auth => undef)->{status}, 429, 'faults come before authentication');
}

# -- statistics ---------------------------------------------------------------

{
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears stats');
    is(scalar @{ $sb->faults }, 0, 'reset clears faults');
    $sb->fault({ fault => '503' });
    get('/v1/employees?page%5Blimit%5D=5') for 1 .. 3;
    get('/v1/employees/directory');
    get('/v1/employees/4', auth => undef);
    my $stats = $sb->stats;
    is($stats->{requests}, 5, 'every provider request is counted (faulted and 401 too)');
    is($stats->{by_path}{'/v1/employees'}, 3, 'by_path keyed without the query');
    is($stats->{by_path}{'/v1/employees/directory'}, 1, 'directory counted');
    is($stats->{faults_served}, 1, 'faults_served');
    ok(!grep({ m{^/_sandbox} } keys %{ $stats->{by_path} }), 'control requests are not counted');
}

# -- keep-alive ---------------------------------------------------------------

{
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sb->port, Proto => 'tcp')
        or die "connect: $!";
    my $request = "GET /v1/employees/4 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
                . 'Authorization: ' . auth("$KEY:x") . "\r\n\r\n";
    my @answers;
    for (1, 2) {
        print {$sock} $request;
        push @answers, read_response($sock);
    }
    like($answers[$_], qr{^HTTP/1\.1 200 .*Content-Length: \d+.*Charlotte}s, "keep-alive answer @{[$_ + 1]}")
        for 0, 1;
    close $sock;
}

# -- webhooks (A4.10; fleet-writes-webhooks.md §3) ---------------------------

{
    use Digest::SHA qw(hmac_sha256_hex);

    # Its own process: retries 1000 times faster than BambooHR's minutes.
    my $hsb = HRIS::Sandbox->start('bamboohr', args => ['--webhook-time-scale', '0.001']);
    my $call = sub {
        my ($box, $method, $path, $body) = @_;
        my $response = $http->request($method, $box->url . $path, {
            headers => { Authorization => auth("$KEY:x"), Accept => 'application/json',
                         'Content-Type' => 'application/json' },
            defined $body ? (content => encode_json($body)) : () });
        return ($response, eval { decode_json($response->{content}) });
    };
    my $control = sub {
        my ($box, $method, $path, $body) = @_;
        my $response = $http->request($method, $box->url . $path, {
            headers => { 'Content-Type' => 'application/json' },
            defined $body ? (content => encode_json($body)) : () });
        return ($response, eval { decode_json($response->{content}) });
    };
    my $deliveries = sub { ($control->($_[0], 'GET', '/_sandbox/webhooks/deliveries'))[1]{deliveries} };
    # The signature as BambooHR's PHP sample computes it, written here
    # independently of the sandbox: hex HMAC-SHA256(key, body . timestamp).
    my $verified = sub {
        my ($got, $key) = @_;
        my $stamp = $got->{headers}{'x-bamboohr-timestamp'} // '';
        return $stamp =~ /^\d+$/ && abs($stamp - time) < 60
            && ($got->{headers}{'x-bamboohr-signature'} // '') eq hmac_sha256_hex($got->{body} . $stamp, $key);
    };

    my $rx = HRIS::Sandbox->receiver(statuses => [200]);
    my %hook = (name => 'gateway', url => $rx->url, format => 'json',
                events => ['employee.created', 'employee.updated', 'employee.deleted'],
                monitorFields => ['firstName', 'lastName', 'jobTitle']);

    # Registration refused like the real API: https only (loopback http is
    # the sandbox's allowance for tests), format required, known events.
    for my $case (['http to a public host' => { url => 'http://example.com/hook' }],
                  ['no url' => { url => undef }],
                  ['no format' => { format => undef }],
                  ['form-encoded' => { format => 'form-encoded' }],
                  ['no events' => { events => undef }],
                  ['unknown event' => { events => ['employee.hired'] }],
                  ['unknown monitor field' => { monitorFields => ['shoeSize'] }],
                  ['no name' => { name => '' }]) {
        my %body = (%hook, %{ $case->[1] });
        delete $body{$_} for grep { !defined $body{$_} } keys %body;
        my ($response) = $call->($hsb, 'POST', '/api/v1/webhooks', \%body);
        is($response->{status}, 400, "webhook refused: $case->[0]");
        ok(error_header($response), "... with X-BambooHR-Error-Message");
    }

    my ($created, $hook) = $call->($hsb, 'POST', '/api/v1/webhooks', \%hook);
    is($created->{status}, 201, 'POST /api/v1/webhooks: 201');
    like($hook->{privateKey}, qr/^[0-9a-f]{32}$/, 'the answer carries the privateKey');
    like($hook->{id}, qr/^\d+$/, 'id is a string of digits');
    like($hook->{created}, qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'created is "YYYY-MM-DD HH:MM:SS"');
    is_deeply([@$hook{qw(name url format lastSent)}], ['gateway', $rx->url, 'json', undef], 'fields echoed');
    is_deeply($hook->{events}, $hook{events}, 'events echoed');
    my $key = $hook->{privateKey};

    my ($list, $listed) = $call->($hsb, 'GET', '/api/v1/webhooks');
    is_deeply([sort keys %{ $listed->{webhooks}[0] }], [qw(created id lastSent name url)],
              'GET /v1/webhooks lists id, name, created, lastSent, url');
    is_deeply(($call->($hsb, 'GET', '/api/gateway.php/acme/v1/webhooks'))[1], $listed,
              'the webhooks answer under every path shape (gateway.php too)');
    my ($one, $shown) = $call->($hsb, 'GET', "/v1/webhooks/$hook->{id}");
    is($shown->{url}, $rx->url, 'GET /v1/webhooks/{id}');
    unlike($list->{content} . $one->{content}, qr/privateKey|\Q$key\E/, 'the key is shown once: never listed or read back');
    is(($call->($hsb, 'GET', '/v1/webhooks/999'))[0]{status}, 404, 'unknown webhook: 404');

    # A new employee fires created, then updated; the answer does not wait
    # for the receiver (it answers after 2 s here).
    my $slow = HRIS::Sandbox->receiver(statuses => [200], delay => 2);
    my (undef, $slow_hook) = $call->($hsb, 'POST', '/v1/webhooks', { %hook, url => $slow->url });
    my $t0 = time;
    my ($new, $emp) = $call->($hsb, 'POST', '/v1/employees',
                              { firstName => 'Wanda', lastName => 'Hook', workPhone => '555' });
    is($new->{status}, 201, 'employee created');
    cmp_ok(time - $t0, '<', 1.5, 'the write is answered before the slow receiver answers');
    my $got = $rx->wait_for(2, 10);
    is(scalar @$got, 2, 'created and updated delivered');
    my @events = map { decode_json($_->{body}) } @$got;
    is_deeply([map { $_->{type} } @events], ['employee.created', 'employee.updated'], 'created, then updated');
    is_deeply($events[0]{data}, { companyId => '48213', employeeId => $emp->{id} }, 'created: companyId and employeeId');
    is_deeply([sort @{ $events[1]{data}{changedFields} }], ['firstName', 'lastName'],
              'updated: changedFields limited to monitorFields (workPhone left out)');
    like($_->{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/, 'timestamp ...+0000') for @events;
    ok($verified->($_, $key), 'X-BambooHR-Signature verifies (Digest::SHA over body . timestamp)') for @$got;
    is($got->[0]{method}, 'POST', 'delivered with POST');
    like($got->[0]{headers}{'content-type'}, qr{^application/json}, 'JSON body');
    ok(!$verified->({ %{ $got->[0] }, body => $got->[0]{body} . ' ' }, $key), 'a changed body does not verify');
    ok(!$verified->($got->[0], "x$key"), 'another key does not verify');
    $slow->wait_for(2, 10);
    $call->($hsb, 'DELETE', "/v1/webhooks/$slow_hook->{id}");

    # An update: only real changes of monitored fields.
    my (undef, $before) = $call->($hsb, 'GET', "/v1/employees/$emp->{id}?fields=jobTitle");
    $call->($hsb, 'POST', "/v1/employees/$emp->{id}", { workPhone => '556' });
    $call->($hsb, 'POST', "/v1/employees/$emp->{id}", { firstName => 'Wanda' });
    $call->($hsb, 'POST', "/v1/employees/$emp->{id}", { jobTitle => 'Hook Tester', workPhone => '557' });
    $got = $rx->wait_for(3, 10);
    is(scalar @$got, 3, 'an unmonitored field and an unchanged value send nothing');
    is_deeply(decode_json($got->[2]{body})->{data},
              { companyId => '48213', employeeId => $emp->{id}, changedFields => ['jobTitle'] },
              'update: employee.updated with the changed monitored field');
    my ($put) = $call->($hsb, 'PUT', "/v1/employees/$emp->{id}/time_off/request",
                        { status => 'requested', start => '2027-01-04', end => '2027-01-04', timeOffTypeId => '78' });
    is($put->{status}, 201, 'a time-off request is created ...');
    sleep 0.5;
    is(scalar @{ $rx->received }, 3, '... and BambooHR sends no time-off event');
    my (undef, $after) = $call->($hsb, 'GET', "/v1/webhooks/$hook->{id}");
    like($after->{lastSent}, qr/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/, 'lastSent set after a delivery');

    # The control switch fires an event without a write.
    my ($fire, $fired) = $control->($hsb, 'POST', '/_sandbox/webhooks/fire',
                                   { event => 'employee.deleted', id => $emp->{id} });
    is($fire->{status}, 202, 'fire: 202');
    $got = $rx->wait_for(4, 10);
    is(decode_json($got->[3]{body})->{type}, 'employee.deleted', 'fired employee.deleted delivered');
    ok($verified->($got->[3], $key), '... signed');
    is(($control->($hsb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.hired', id => 4 }))[0]{status},
       400, 'fire: unknown event 400');
    is(($control->($hsb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.updated', id => 99999 }))[0]{status},
       404, 'fire: unknown employee 404');
    $call->($hsb, 'DELETE', "/v1/webhooks/$hook->{id}");

    # Retries: a 5xx is tried again, a 4xx is not.
    my $flaky = HRIS::Sandbox->receiver(statuses => [500, 503, 200]);
    my (undef, $flaky_hook) = $call->($hsb, 'POST', '/v1/webhooks', { %hook, url => $flaky->url });
    $control->($hsb, 'DELETE', '/_sandbox/webhooks/deliveries');
    $control->($hsb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.updated', id => 4, changedFields => ['firstName'] });
    $got = $flaky->wait_for(3, 10);
    is(scalar @$got, 3, 'a 500 and a 503 are retried until the 200');
    is($got->[0]{body}, $got->[2]{body}, 'the retry carries the same body');
    ok($verified->($_, $flaky_hook->{privateKey}), 'every attempt is signed') for @$got;
    my @log = grep { $_->{url} eq $flaky->url } @{ $deliveries->($hsb) };
    is_deeply([map { [$_->{attempt}, $_->{status}, $_->{retry_in}] } @log],
              [[1, 500, 0.3], [2, 503, 0.6], [3, 200, undef]],
              'deliveries: attempts, statuses and BambooHR\'s 5 and 10 minute waits (scaled)');

    my $refusing = HRIS::Sandbox->receiver(statuses => [404]);
    my (undef, $refusing_hook) = $call->($hsb, 'POST', '/v1/webhooks', { %hook, url => $refusing->url });
    $call->($hsb, 'DELETE', "/v1/webhooks/$flaky_hook->{id}");
    $control->($hsb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.created', id => 4 });
    $refusing->wait_for(1, 10);
    sleep 1;
    is(scalar @{ $refusing->received }, 1, 'a 4xx is not retried');
    @log = grep { $_->{url} eq $refusing->url } @{ $deliveries->($hsb) };
    is_deeply([map { [$_->{attempt}, $_->{status}, $_->{retry_in}] } @log], [[1, 404, undef]], 'deliveries: one attempt, no retry');

    # Five retries at most, 5, 10, 20, 40, 80 minutes apart (scaled).
    my $down = HRIS::Sandbox->receiver(statuses => [500]);
    $call->($hsb, 'DELETE', "/v1/webhooks/$refusing_hook->{id}");
    my $fast = HRIS::Sandbox->start('bamboohr', args => ['--webhook-time-scale', '0.0002']);
    $call->($fast, 'POST', '/v1/webhooks', { %hook, url => $down->url });
    $control->($fast, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.created', id => 4 });
    $down->wait_for(6, 15);
    # the sandbox logs an attempt once its answer came
    wait_until(sub { @{ $deliveries->($fast) } >= 6 }, 10);
    sleep 0.5;    # time for a seventh attempt, were there one
    @log = @{ $deliveries->($fast) };
    is_deeply([map { $_->{retry_in} } @log], [0.06, 0.12, 0.24, 0.48, 0.96, undef],
              'a failing receiver: 6 attempts in all, 5, 10, 20, 40, 80 minutes apart (scaled)');
    is(scalar @{ $down->received }, 6, '... and no seventh');
    $fast->stop;
    my (undef, $down_hook) = $call->($hsb, 'POST', '/v1/webhooks', { %hook, url => $down->url });

    # Deleted: no more events; a reset forgets the registrations.
    my ($deleted) = $call->($hsb, 'DELETE', "/v1/webhooks/$down_hook->{id}");
    is($deleted->{status}, 200, 'DELETE /v1/webhooks/{id}: 200');
    is(($call->($hsb, 'GET', "/v1/webhooks/$down_hook->{id}"))[0]{status}, 404, '... then 404');
    is((($control->($hsb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.created', id => 4 }))[1]{queued}),
       0, 'no registration, nothing queued');
    $call->($hsb, 'POST', '/v1/webhooks', \%hook);
    $hsb->reset;
    is_deeply(($call->($hsb, 'GET', '/v1/webhooks'))[1], { webhooks => [] }, 'reset forgets registrations');

    # Without the scale switch the waits are BambooHR's real minutes.
    my $real = HRIS::Sandbox->receiver(statuses => [502]);
    $call->($sb, 'POST', '/v1/webhooks', { %hook, url => $real->url });
    $control->($sb, 'POST', '/_sandbox/webhooks/fire', { event => 'employee.created', id => 4 });
    $real->wait_for(1, 10);
    wait_until(sub { @{ $deliveries->($sb) } }, 10);
    is($deliveries->($sb)->[0]{retry_in}, 300, 'unscaled: the first retry waits 5 minutes');
    $sb->reset;

    # The URL switches.
    my $strict = HRIS::Sandbox->start('bamboohr', args => ['--webhooks-https-only']);
    is(($call->($strict, 'POST', '/v1/webhooks', \%hook))[0]{status}, 400, '--webhooks-https-only: loopback http refused too');
    is(($call->($strict, 'POST', '/v1/webhooks', { %hook, url => 'https://127.0.0.1:9/hook' }))[0]{status}, 201,
       '... https accepted');
    my $open = HRIS::Sandbox->start('bamboohr', args => ['--webhooks-allow-http']);
    is(($call->($open, 'POST', '/v1/webhooks', { %hook, url => 'http://example.com/hook' }))[0]{status}, 201,
       '--webhooks-allow-http: any http URL');
}

# -- determinism --------------------------------------------------------------

{
    my $twin = HRIS::Sandbox->start('bamboohr');
    for my $path ('/v1/employees/directory', '/v1/time_off/requests?start=2025-01-01&end=2026-12-31',
                  '/v1/employees/all/tables/compensation', '/v1/meta/lists') {
        my $theirs = $http->get($twin->url . $path,
                                { headers => { Accept => 'application/json', Authorization => auth("$KEY:x") } });
        is($theirs->{content}, get($path)->{content}, "byte-identical in a second process: $path");
    }
    my $pid = $twin->pid;
    $twin->stop;
    ok(!kill(0, $pid), 'stop() ends the process');
}

done_testing();
