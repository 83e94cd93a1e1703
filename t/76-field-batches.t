#!/usr/bin/perl
# Field batches (mappings/README.md, "field_batches"): BambooHR returns only
# the fields a call names and takes at most 400 of them. An account whose
# overrides add enough custom fields to pass that limit still gets every
# field of every employee, list and get: the gateway splits the field list
# into calls of at most 400 and merges their answers per employee. A batch
# that fails, or answers that disagree, end in a clean error, never in a
# half-merged record.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $dir = tempdir(CLEANUP => 1);
my $PATH = '/api/gateway.php/acme/v1/employees';

# The table's own field list, and 450 of the sandbox's generated custom
# fields: 470 names, two calls (400 + 70) per upstream page.
my $table = decode_json(do {
    local $/;
    open my $fh, '<', HRIS::Nginx::root() . '/mappings/bamboohr.json' or die $!;
    <$fh>;
});
my $base_fields = $table->{resources}{employees}{list}{query}{fields};
my @custom = map { "customField$_" } 5001 .. 5450;
my $fields = join ',', $base_fields, @custom;
my $count = () = $fields =~ /[^,]+/g;
is($count, 470, '470 fields asked for');
is($table->{resources}{employees}{list}{field_batches}{max}, 400, 'the table says: 400 a call');

sub expected {
    my ($alias, $id) = @_;
    my ($n) = $alias =~ /(\d+)$/;
    return ($n + $id) % 17 == 0 ? undef : "$n-$id";
}

my %many = (
    'resources.employees.list.query.fields' => $fields,
    'resources.employees.get.query.fields' => $fields,
    'resources.employees.fields.custom_fields' => {
        object => { shirt => '/customShirtSize', map { ($_ => "/$_") } @custom },
    },
);

my $accounts = HRIS::Nginx::accounts($sb);
my $plain = $accounts->{accounts}[0];
sub account {
    my ($id, %overrides) = @_;
    push @{ $accounts->{accounts} }, { %$plain, id => $id, overrides => { %many, %overrides } };
}
account('acme-many');
# merge_on names a field only the first call returns: the answers disagree
account('acme-badmerge', 'resources.employees.list.field_batches.merge_on' => '/workEmail');
# without field_batches the 470 names go in one call
account('acme-unbatched', 'resources.employees.list.field_batches' => undef);

# the run-time account's body (450 overrides) is larger than nginx keeps in
# memory by default
my $ng = HRIS::Nginx->start(accounts => $accounts,
                            server => 'client_body_buffer_size 128k; location /admin/ { hris_admin; }');

sub calls {
    my $by = $sb->stats->{by_path};
    return $by->{$PATH} // 0;
}

# Every custom field of a unified record, compared with what the sandbox
# holds; returns the number of wrong ones.
sub wrong_customs {
    my ($rec) = @_;
    my $cf = $rec->{custom_fields} or return scalar @custom;
    my $bad = 0;
    for my $alias (@custom) {
        my $want = expected($alias, $rec->{id});
        my $got = $cf->{$alias};
        $bad++ unless exists $cf->{$alias} && (defined $want ? (defined $got && $got eq $want)
                                                             : !defined $got);
    }
    return $bad;
}

# -- list ----------------------------------------------------------------------

$sb->reset;
my $page = $ng->unified('employees', account => 'acme-many', limit => 50);
is($page->{status}, 200, 'list with 470 fields: 200') or diag $page->{body};
my @recs = @{ $page->{json}{result} // [] };
is(scalar @recs, 50, 'a full page');
is(calls(), 2, 'two upstream calls for the page: 400 fields, then 70');
is(scalar(grep { wrong_customs($_) } @recs), 0,
   'every record carries all 450 custom fields, each its own employee\'s value');
is(scalar(keys %{ $recs[0]{custom_fields} }), 451, 'and the shirt size: 451 custom fields');
is($recs[0]{custom_fields}{shirt}, 'XXL', 'a field of the first call');
is($recs[0]{custom_fields}{customField5450}, '5450-4', 'a field of the second call');
ok(grep({ !defined $_->{custom_fields}{customField5001} } @recs)
   && grep({ defined $_->{custom_fields}{customField5001} } @recs),
   'nulls stay null, values stay values');
my $rd = $recs[0]{remote_data};
ok(exists $rd->{workEmail} && exists $rd->{customField5001} && exists $rd->{customField5450},
   'remote_data is the merged record: fields of both calls');
is($rd->{employeeId}, '4', 'remote_data keeps the record\'s id');
is(scalar(grep { /^customField/ } keys %$rd), 450, 'remote_data has every custom field once');

# the rest of the record is what the plain table gives
$sb->reset;
my $ref = $ng->unified('employees', limit => 50);
is(calls(), 1, 'the plain table: one call a page');
my @same = grep {
    my ($a, $b) = ($recs[$_], $ref->{json}{result}[$_]);
    delete local $a->{custom_fields}; delete local $b->{custom_fields};
    delete local $a->{remote_data}; delete local $b->{remote_data};
    JSON::PP->new->canonical->encode($a) eq JSON::PP->new->canonical->encode($b);
} 0 .. 49;
is(scalar @same, 50, 'every other unified field equals the plain table\'s');

# every page, every employee, exactly once
$sb->reset;
my ($all, $pages) = $ng->walk('employees', account => 'acme-many', limit => 100,
                              remote_data => 'false');
is(scalar @$all, 330, 'walking every page: 330 employees');
my %seen = map { ($_->{id} => 1) } @$all;
is(scalar keys %seen, 330, 'each once');
is($pages, 4, 'in four pages');
is(calls(), 8, 'two upstream calls per page');
is(scalar(grep { wrong_customs($_) } @$all), 0, 'all 450 custom fields right on every record');

# -- get -------------------------------------------------------------------------

$sb->reset;
my $one = $ng->unified('employees/15', account => 'acme-many');
is($one->{status}, 200, 'get with 470 fields: 200') or diag $one->{body};
is($one->{json}{result}{id}, '15', 'the employee asked for');
is(wrong_customs($one->{json}{result}), 0, 'with all 450 custom fields');
is($one->{json}{result}{first_name}, 'José', 'and the fields of the table');
is(calls(), 2, 'two upstream calls');

$sb->reset;
my $none = $ng->unified('employees/999999', account => 'acme-many');
is($none->{status}, 404, 'get of an unknown employee: 404');
is(calls(), 1, 'the first call found nothing: no second one');

# -- a fan-out over the employee list: the parent list is batched too -------------

$sb->reset;
my $bal = $ng->unified('timeoff_balances', account => 'acme-many', limit => 20,
                       remote_data => 'false');
is($bal->{status}, 200, 'timeoff_balances over the 470-field employee list: 200')
    or diag $bal->{body};
is(calls(), 2, 'the parent list: one page, two calls');
my $bal_ref = $ng->unified('timeoff_balances', limit => 20, remote_data => 'false');
is_deeply($bal->{json}{result}, $bal_ref->{json}{result}, 'the same balances as the plain table');

# -- the provider refuses more than 400 in one call -------------------------------

$sb->reset;
my $refused = $ng->unified('employees', account => 'acme-unbatched', limit => 5);
is($refused->{status}, 422, 'without field_batches the provider refuses 470 fields: 422')
    or diag $refused->{body};
like($refused->{json}{message} // '', qr/400 fields/, 'with the provider\'s message');

# -- a batch that fails -------------------------------------------------------------

# the second call is the only one naming customField5450
for my $fault ([html => 502], [truncated_json => 502], ['500' => 502]) {
    my ($kind, $status) = @$fault;
    $sb->reset;
    $sb->fault({ fault => $kind, path => 'customField5450', count => -1 });
    for my $what ('employees', 'employees/15') {
        my $res = $ng->unified($what, account => 'acme-many');
        is($res->{status}, $status, "$what, second call answers $kind: $status");
        is(ref $res->{json}, 'HASH', '... a JSON error envelope');
        ok(!exists $res->{json}{result}, '... with no record, half-merged or not');
        is($res->{json}{statusCode}, $status, '... statusCode');
    }
    $sb->clear_faults;
}

# the first call fails: no second call
$sb->reset;
$sb->fault({ fault => 'html', path => 'customField5001', count => -1 });
my $first = $ng->unified('employees', account => 'acme-many', limit => 10);
is($first->{status}, 502, 'first call fails: 502');
is(calls(), 1, 'and the second call is not made');
$sb->clear_faults;

# -- answers that disagree -----------------------------------------------------------

$sb->reset;
my $bad = $ng->unified('employees', account => 'acme-badmerge', limit => 10);
is($bad->{status}, 502, 'answers that cannot be matched: 502') or diag $bad->{body};
like($bad->{json}{message} // '', qr/answer 2 has a record without a merge_on value/,
     'the message says how they disagree');
like($bad->{json}{message} // '', qr/field_batches of the bamboohr mapping table/,
     'and names the table');
unlike($bad->{json}{message} // '', qr{accounts\.json|/tmp/}, 'not the server\'s files');
is($bad->{json}{details}{field_batches}, 2, 'details: the number of calls');
ok(!exists $bad->{json}{result}, 'no record is sent');

# -- an account created at run time: its overrides are compiled then ---------------

my %runtime = (%$plain, id => 'acme-runtime', overrides => \%many);
delete $runtime{tenant};
my $created = $ng->request('POST', '/admin/accounts', body => encode_json(\%runtime));
is($created->{status}, 201, 'a run-time account with 470 fields') or diag $created->{body};
$sb->reset;
my $rt = $ng->unified('employees', account => 'acme-runtime', limit => 20, remote_data => 'false');
is($rt->{status}, 200, 'its list: 200');
is(calls(), 2, 'two calls');
is(scalar(grep { wrong_customs($_) } @{ $rt->{json}{result} }), 0, 'every custom field right');
$runtime{id} = 'acme-runtime-bad';
$runtime{overrides} = { %many, 'resources.employees.list.field_batches.max' => 0 };
my $rejected = $ng->request('POST', '/admin/accounts', body => encode_json(\%runtime));
is($rejected->{status}, 400, 'a bad field_batches override at run time: 400');
like($rejected->{json}{message} // '', qr/field_batches/,
     'naming the key (tenants may not change how calls are made)');

# the account without overrides is untouched
$sb->reset;
my $again = $ng->unified('employees', limit => 5);
is($again->{status}, 200, 'the plain account still works');
is(calls(), 1, 'with one call');

$ng->stop;
done_testing;
