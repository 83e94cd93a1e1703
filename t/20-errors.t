#!/usr/bin/perl
# Client-side errors of the unified API (CONTRACT.md §6): each answer has the
# right status and the JSON envelope, says what to fix, carries no
# credential, costs no upstream call, and leaves nginx serving.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use MIME::Base64;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $PROVIDER_KEY = '0123456789abcdef0123456789abcdef01234567';
my @SECRETS = ($PROVIDER_KEY, encode_base64("$PROVIDER_KEY:x", ''),
               $HRIS::Nginx::KEY, $HRIS::Nginx::OTHER_KEY);

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));

my $ACME = 'integrated_account_id=acme-bamboohr';

# An error answer: status, envelope, message, no secret, no upstream call.
sub error_is {
    my ($res, $status, $message, $name, %o) = @_;
    my $before = $o{upstream_before};
    subtest $name => sub {
        is($res->{status}, $status, "status $status");
        like($res->{headers}{'content-type'} // '', qr{^application/json}, 'JSON');
        my $j = $res->{json};
        ok(ref $j eq 'HASH', 'body is a JSON object') or return diag($res->{body});
        is_deeply([sort keys %$j], [qw(details error message statusCode)],
                  'envelope keys');
        is($j->{statusCode}, $status, 'statusCode matches the status');
        ok(!ref $j->{error} && length $j->{error}, "error: $j->{error}");
        is(ref $j->{details}, 'HASH', 'details is an object');
        like($j->{message}, $message, 'message says what to fix');
        is_deeply($j->{details}, $o{details}, 'details') if $o{details};
        for my $s (@SECRETS) {
            ok(index($res->{body}, $s) < 0, 'no credential in the body')
                or diag("leaks $s");
        }
        if (defined $before) {
            is($sb->stats->{requests}, $before, 'refused before any upstream call');
        }
    };
}

sub requests { $sb->stats->{requests} }

# -- authentication ------------------------------------------------------------

{
    my $n = requests();
    my $res = $ng->get("/unified/hris/employees?$ACME", key => undef);
    error_is($res, 401, qr/missing API key.*Authorization: Bearer/, 'missing key: 401',
             upstream_before => $n);
    is($res->{headers}{'www-authenticate'}, 'Bearer', 'missing key: WWW-Authenticate');

    $res = $ng->get("/unified/hris/employees?$ACME", key => 'sk_test_nobody');
    error_is($res, 401, qr/unknown API key/, 'unknown key: 401', upstream_before => $n);
    is($res->{headers}{'www-authenticate'}, 'Bearer', 'unknown key: WWW-Authenticate');
    unlike($res->{body}, qr/sk_test_nobody/, 'the key sent is not echoed');

    # A key that is a prefix of a real one, or the real one in another scheme
    $res = $ng->get("/unified/hris/employees?$ACME",
                    key => substr($HRIS::Nginx::KEY, 0, -1));
    error_is($res, 401, qr/unknown API key/, 'a truncated key: 401', upstream_before => $n);
    $res = $ng->get("/unified/hris/employees?$ACME", key => undef,
                    headers => { Authorization => "Basic $HRIS::Nginx::KEY" });
    is($res->{status}, 401, 'the key outside "Bearer": 401');
}

{
    # globex's key is stored as key_sha256 in the accounts file
    my $res = $ng->unified('employees', account => 'globex-bamboohr',
                           key => $HRIS::Nginx::OTHER_KEY, limit => 2);
    is($res->{status}, 200, 'a key stored as key_sha256 works');
    is($res->{json}{result_count}, 2, 'key_sha256: records');
    $res = $ng->unified('employees', account => 'globex-bamboohr',
                        key => HRIS::Nginx::sha256_hex($HRIS::Nginx::OTHER_KEY));
    is($res->{status}, 401, 'the stored hash itself is not a key');
}

# -- account -------------------------------------------------------------------

{
    my $n = requests();
    error_is($ng->get('/unified/hris/employees'), 400,
             qr/missing query parameter "integrated_account_id"/,
             'missing integrated_account_id: 400', upstream_before => $n);
    error_is($ng->get('/unified/hris/employees?integrated_account_id='), 400,
             qr/"integrated_account_id"/, 'empty integrated_account_id: 400',
             upstream_before => $n);

    my $unknown = $ng->get('/unified/hris/employees?integrated_account_id=nobody-bamboohr');
    error_is($unknown, 404, qr/no integrated account "nobody-bamboohr"/,
             'unknown account: 404', upstream_before => $n,
             details => { integrated_account_id => 'nobody-bamboohr' });

    # tenant isolation: globex-bamboohr exists, but not for acme's key
    my $other = $ng->get('/unified/hris/employees?integrated_account_id=globex-bamboohr');
    error_is($other, 404, qr/no integrated account "globex-bamboohr"/,
             "another tenant's account: 404", upstream_before => $n,
             details => { integrated_account_id => 'globex-bamboohr' });
    (my $m1 = $unknown->{json}{message}) =~ s/nobody-bamboohr/ID/g;
    (my $m2 = $other->{json}{message}) =~ s/globex-bamboohr/ID/g;
    is($m2, $m1, "another tenant's account reads exactly like an unknown one");

    my $res = $ng->get('/unified/hris/employees?integrated_account_id=acme-bamboohr',
                       key => $HRIS::Nginx::OTHER_KEY);
    is($res->{status}, 404, 'and the other way round (globex key, acme account)');
}

# -- paths, resources, methods ---------------------------------------------------

{
    my $n = requests();
    error_is($ng->get("/unified/hris/payslips?$ACME"), 404,
             qr/unknown resource "payslips"/, 'unknown resource: 404',
             upstream_before => $n, details => { resource => 'payslips' });
    error_is($ng->get("/unified/hris/payslips/1?$ACME"), 404,
             qr/unknown resource "payslips"/, 'get of an unknown resource: 404',
             upstream_before => $n);
    error_is($ng->get("/unified/nothing-here?$ACME"), 404,
             qr{unknown path "/unified/nothing-here"}, 'unknown path: 404',
             upstream_before => $n);
    error_is($ng->get("/unified/hris/employees/4/extra?$ACME"), 404,
             qr/unknown path/, 'too deep a path: 404', upstream_before => $n);

    error_is($ng->request('POST', "/unified/hris/employees/4?$ACME", body => '{}'), 405,
             qr{POST is not allowed on /unified/hris/employees/4},
             'POST on a record: 405', upstream_before => $n);
    error_is($ng->request('PATCH', "/unified/hris/employees?$ACME", body => '{}'), 405,
             qr{PATCH is not allowed on /unified/hris/employees},
             'PATCH on a collection: 405', upstream_before => $n);
    error_is($ng->request('DELETE', "/unified/hris/employees?$ACME"), 405,
             qr{DELETE is not allowed}, 'DELETE on a collection: 405', upstream_before => $n);
    error_is($ng->request('PUT', "/unified/hris/employees/4?$ACME", body => '{}'), 405,
             qr/PUT is not allowed/, 'PUT: 405', upstream_before => $n);
    error_is($ng->request('OPTIONS', "/unified/hris/employees?$ACME"), 405,
             qr/OPTIONS is not allowed/, 'OPTIONS: 405', upstream_before => $n);
}

# Resources and operations in the schema that a table does not map: 501
# naming the provider and the resource. The repository's table may map
# everything, so a copy that maps only the employee list is used.
{
    my $dir = tempdir('hris-mappings-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $root = HRIS::Nginx::root();
    copy("$root/mappings/schema.json", "$dir/schema.json") or die $!;
    my $table = decode_json(do {
        local $/;
        open my $fh, '<', "$root/mappings/bamboohr.json" or die $!;
        <$fh>;
    });
    my $emp = $table->{resources}{employees};
    $table->{resources} = { employees => { list => $emp->{list}, fields => $emp->{fields} } };
    HRIS::Nginx::write_file("$dir/bamboohr.json", encode_json($table));
    my $small = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb), mappings => $dir);

    my $n = requests();
    is($small->unified('employees', limit => 1)->{status}, 200, 'the small table lists employees');
    $n = requests();
    error_is($small->get("/unified/hris/benefits?$ACME"), 501,
             qr/listing benefits is not supported for provider bamboohr/,
             'GET of a resource in the schema, not mapped: 501', upstream_before => $n,
             details => { provider => 'bamboohr', resource => 'benefits' });
    error_is($small->get("/unified/hris/benefits/1?$ACME"), 501,
             qr/reading one record of benefits is not supported for provider bamboohr/,
             'GET of a record of it: 501', upstream_before => $n,
             details => { provider => 'bamboohr', resource => 'benefits' });
    error_is($small->get("/unified/hris/employees/4?$ACME"), 501,
             qr/reading one record of employees is not supported for provider bamboohr/,
             'a resource with a list but no get: 501', upstream_before => $n);

    for my $case (['POST', 'employees', 'create'], ['PATCH', 'employees/4', 'update'],
                  ['DELETE', 'employees/4', 'delete']) {
        my ($method, $path, $op) = @$case;
        my $res = $small->request($method, "/unified/hris/$path?$ACME",
                                  $method eq 'DELETE' ? () : (body => '{"first_name":"X"}',
                                  headers => { 'Content-Type' => 'application/json' }));
        error_is($res, 501, qr/\Q$op\E of employees is not supported for provider bamboohr/,
                 "$method $path (writes not mapped): 501", upstream_before => $n,
                 details => { provider => 'bamboohr', resource => 'employees',
                              operation => $op });
    }
    $small->stop;
    unlike($small->error_log, qr/exited on signal|\[(alert|crit|emerg)\]/, 'no crash, no alert');
}

{
    my $res = $ng->unified('employees/999999');
    error_is($res, 404, qr/no employees record with id "999999" in integrated account "acme-bamboohr"/,
             'unknown record: 404', details => { resource => 'employees', id => '999999' });
    $res = $ng->unified('groups/424242');
    error_is($res, 404, qr/no groups record with id "424242"/,
             'unknown record of a from_list get: 404');
}

# -- query parameters ------------------------------------------------------------

{
    my $n = requests();
    for my $limit ('0', 'abc', '-5', '', '1.5') {
        error_is($ng->get("/unified/hris/employees?$ACME&limit=$limit"), 400,
                 qr/limit must be a whole number from 1 to 500/, "limit=$limit: 400",
                 upstream_before => $n);
    }
    error_is($ng->get("/unified/hris/employees?$ACME&remote_data=maybe"), 400,
             qr/remote_data must be "true" or "false"/, 'remote_data=maybe: 400',
             upstream_before => $n);
    error_is($ng->get("/unified/hris/employees?$ACME&colour=red"), 400,
             qr/unknown query parameter "colour"/, 'unknown query parameter: 400',
             upstream_before => $n, details => { parameter => 'colour' });
    error_is($ng->get("/unified/hris/employees?$ACME&start_date=2020-01-01"), 400,
             qr/unknown query parameter "start_date" for a list of employees/,
             "another resource's filter: 400", upstream_before => $n);
    # several bad parameters: one answer, about the first
    error_is($ng->get("/unified/hris/employees?$ACME&colour=red&size=xl"), 400,
             qr/unknown query parameter "colour"/, 'two unknown parameters: one 400',
             upstream_before => $n, details => { parameter => 'colour' });
    error_is($ng->get("/unified/hris/employees?$ACME&colour=red&limit=0&cursor=x"), 400,
             qr/unknown query parameter "colour"/, 'three bad parameters: one 400',
             upstream_before => $n);
    error_is($ng->get("/unified/hris/timeoff_requests?$ACME&start_date=x&end_date=y"), 400,
             qr/"start_date" must match/, 'two bad filters: one 400', upstream_before => $n);
    error_is($ng->get("/unified/hris/employees/4?$ACME&limit=3"), 400,
             qr/unknown query parameter "limit" for a get of employees/,
             'limit on a get: 400', upstream_before => $n);
    error_is($ng->get("/unified/hris/timeoff_requests?$ACME&start_date=yesterday"), 400,
             qr/query parameter "start_date" must match/, 'filter pattern violation: 400',
             upstream_before => $n, details => { parameter => 'start_date' });
    error_is($ng->get("/unified/hris/timeoff_requests?$ACME&employee_id=4%20OR%201"), 400,
             qr/query parameter "employee_id" must match/, 'employee_id pattern: 400',
             upstream_before => $n);
}

# -- cursors -------------------------------------------------------------------

my $CURSOR_MSG = qr/invalid cursor: pass the next_cursor of the previous page verbatim/;

{
    my $page = $ng->unified('employees', limit => 3);
    my $cursor = $page->{json}{next_cursor};
    ok(defined $cursor && length $cursor, 'page 1 has a next_cursor');
    like($cursor, qr/^[A-Za-z0-9_.-]+$/, 'the cursor is URL-safe');
    is($ng->unified('employees', limit => 3, cursor => $cursor)->{status}, 200,
       'the cursor as issued works');

    my $n = requests();
    my $alphabet = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';

    # Every single-character change, including the last one whose spare
    # bits base64 decoders ignore, must be refused.
    my @bad;
    for my $i (0 .. length($cursor) - 1) {
        my $c = substr($cursor, $i, 1);
        my $v = index($alphabet, $c);
        my $t = $cursor;
        substr($t, $i, 1) = $v < 0 ? 'A' : substr($alphabet, $v ^ 1, 1);
        my $res = $ng->unified('employees', limit => 3, cursor => $t);
        push @bad, "$i:$res->{status}" if $res->{status} != 400;
    }
    is_deeply(\@bad, [], 'every one-character change of the cursor is a 400');

    my $flip = $cursor;
    substr($flip, 5, 1) = substr($flip, 5, 1) eq 'x' ? 'y' : 'x';
    error_is($ng->unified('employees', limit => 3, cursor => $flip), 400, $CURSOR_MSG,
             'tampered cursor: 400', upstream_before => $n);
    error_is($ng->unified('employees', limit => 3, cursor => substr($cursor, 0, -4)), 400,
             $CURSOR_MSG, 'truncated cursor: 400', upstream_before => $n);
    error_is($ng->unified('employees', limit => 3, cursor => "$cursor="), 400,
             $CURSOR_MSG, 'cursor with padding appended: 400', upstream_before => $n);
    error_is($ng->unified('employees', limit => 3, cursor => "${cursor}AA"), 400,
             $CURSOR_MSG, 'cursor with characters appended: 400', upstream_before => $n);
    for my $garbage ('garbage', '.', 'e30.', '..', 'e30.AAAA', 'x' x 5000, "\x{e9}t\x{e9}") {
        my $res = $ng->unified('employees', cursor => $garbage);
        is($res->{status}, 400, 'garbage cursor ' . substr($garbage, 0, 12) . ': 400');
    }
    # A forged state with a made-up MAC
    my $forged = encode_base64('{"o":100}', '');
    $forged =~ tr{+/=}{-_}d;
    error_is($ng->unified('employees', cursor => "$forged." . ('A' x 43)), 400,
             $CURSOR_MSG, 'forged cursor: 400', upstream_before => $n);

    # Issued for another resource
    error_is($ng->unified('groups', limit => 3, cursor => $cursor), 400, $CURSOR_MSG,
             "an employees cursor on groups: 400", upstream_before => $n);
}

{
    # Issued for another account: globex walks its page 1, then its cursor
    # is presented for acme's account (both keys are valid).
    my $globex = $ng->unified('employees', account => 'globex-bamboohr',
                              key => $HRIS::Nginx::OTHER_KEY, limit => 3);
    is($globex->{status}, 200, 'globex page 1');
    my $cursor = $globex->{json}{next_cursor};
    ok($cursor, 'globex cursor');
    is($ng->unified('employees', account => 'globex-bamboohr', key => $HRIS::Nginx::OTHER_KEY,
                    limit => 3, cursor => $cursor)->{status},
       200, 'the globex cursor works for globex');
    my $n = requests();
    error_is($ng->unified('employees', limit => 3, cursor => $cursor), 400, $CURSOR_MSG,
             "another account's cursor: 400", upstream_before => $n);
}

{
    # Issued for other filters: the filter set is bound into the cursor
    my %f = (start_date => '2025-01-01', end_date => '2026-12-31', limit => 5);
    my $page = $ng->unified('timeoff_requests', %f);
    is($page->{status}, 200, 'timeoff_requests page 1');
    my $cursor = $page->{json}{next_cursor};
    ok($cursor, 'timeoff_requests cursor');
    is($ng->unified('timeoff_requests', %f, cursor => $cursor)->{status}, 200,
       'with the same filters it works');
    my $n = requests();
    error_is($ng->unified('timeoff_requests', %f, start_date => '2025-02-01',
                          cursor => $cursor),
             400, $CURSOR_MSG, 'cursor reused with another start_date: 400',
             upstream_before => $n);
    error_is($ng->unified('timeoff_requests', %f, employee_id => '4', cursor => $cursor),
             400, $CURSOR_MSG, 'cursor reused with an added filter: 400',
             upstream_before => $n);
    my %fewer = %f;
    delete $fewer{end_date};
    is($ng->unified('timeoff_requests', %fewer, cursor => $cursor)->{status}, 400,
       'cursor reused without a filter that was sent: 400');
}

# -- nginx kept serving --------------------------------------------------------

{
    my $res = $ng->unified('employees', limit => 5);
    is($res->{status}, 200, 'a good request after all the errors succeeds');
    is($res->{json}{result_count}, 5, 'with its records');
    $ng->stop;
    my $log = $ng->error_log;
    unlike($log, qr/exited on signal/, 'no worker crashed');
    unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alerts in the error log');
    unlike($log, qr/header already sent/, 'no answer was sent twice');
    for my $s (@SECRETS) {
        ok(index($log, $s) < 0, 'no credential in the error log');
    }
}

done_testing;
