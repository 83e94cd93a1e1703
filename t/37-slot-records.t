#!/usr/bin/perl
# The records of a list answer read as slot records (src/ngx_http_hris_
# parse.h): each object of the records array kept as its members in the
# body's order, the keys the mapping's paths begin with found by slot
# number, the jansson object filled only when something needs the whole
# record. A wrong slot reader would map another value than jansson's tree
# holds, or write remote_data in another order; these records are made to
# catch that: duplicate keys (the last value, at the first key's place),
# keys that differ only in case or are prefixes of one another, missing
# keys, elements that are not objects, paths below a slot, "each" with
# "$parent", and "" (the whole record, which fills the object).
#
# A tiny provider (HeavenHR's table: a token, then /employees) answers a
# fixed body per test; an account's overrides add fields that read the
# records in those ways (their own compile: their own slot keys).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $dir = tempdir(CLEANUP => 1);
my $body_file = "$dir/body.json";
my $sb = HRIS::Sandbox->fixed_body($body_file);
my $accounts = HRIS::Nginx::accounts_for(heavenhr => $sb);
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] },
    id => 'acme-heavenhr-deep',
    overrides => {
        'resources.employees.fields.custom_fields' => { object => {
            deep   => '/a/b/1',
            deeper => '/a/c/d',
            tags   => { each => '/tags', map => { template => '{{/n}}:{{$parent/id}}' } },
            whole  => '',
            Case   => '/FirstName',
        } },
    },
};
my $ng = HRIS::Nginx->start(accounts => $accounts);

sub answer_with { HRIS::Nginx::write_file($body_file, $_[0]) }

sub employees {
    my (%q) = @_;
    my $account = delete $q{account} // 'acme-heavenhr';
    my $res = $ng->unified('employees', account => $account, %q);
    is($res->{status}, 200, "the list is answered ($account)") or diag $res->{body};
    return $res;
}

# remote_data as the answer's bytes (keys in their order)
sub remote_bytes {
    my ($body, $i) = @_;
    my @r = $body =~ /"remote_data":(\{(?:[^{}]|\{[^{}]*\})*\})/g;
    return $r[$i];
}

# duplicate keys: mapped and unmapped, the last value at the first place
answer_with('{"data":[{"id":"1","firstName":"a","lastName":"L","firstName":"b"},'
            . '{"id":"2","zz":1,"firstName":"c","zz":{"q":2}},'
            . '{"id":"3","firstName":"d","lastName":"M"}]}');
for my $rd (qw(true false)) {
    my $res = employees(remote_data => $rd);
    my @r = @{ $res->{json}{result} // [] };
    is_deeply([ map { $_->{first_name} } @r ], [qw(b c d)],
              "remote_data=$rd: a duplicate mapped key maps its last value");
    is_deeply([ map { $_->{display_name} } @r ], ['b L', 'c', 'd M'],
              'and templates read the same values');
    next if $rd eq 'false';
    is(remote_bytes($res->{body}, 0), '{"id":"1","firstName":"b","lastName":"L"}',
       'remote_data of a record with a duplicate mapped key: first place, last value');
    is(remote_bytes($res->{body}, 1), '{"id":"2","zz":{"q":2},"firstName":"c"}',
       'and with a duplicate unmapped key');
    is(remote_bytes($res->{body}, 2), '{"id":"3","firstName":"d","lastName":"M"}',
       'a record without duplicates: its own bytes');
}

# keys that differ only in case, or are prefixes of the mapped ones; a
# mapped key missing; an escaped key
answer_with('{"data":[{"FirstName":"X","firstNam":"Y","id":"4","firstNameX":"W",'
            . '"firstName":"Z","lastname":"no","last":"no"},'
            . '{"id":"5"},{"\u0069d":"6","first\u004eame":"E"}]}');
{
    my $res = employees(remote_data => 'false');
    my @r = @{ $res->{json}{result} // [] };
    is_deeply([ map { $_->{id} } @r ], [qw(4 5 6)], 'ids, one of them an escaped key');
    is_deeply([ map { $_->{first_name} } @r ], ['Z', undef, 'E'],
              'first_name: the exact key only; missing is null');
    is_deeply([ map { $_->{last_name} } @r ], [undef, undef, undef],
              'last_name: "lastname" and "last" are other keys');
}

# elements of the records array that are not objects: as before (the
# module maps what the paths find in them: nothing)
answer_with('{"data":["str",null,[{"id":"7"}],{"id":"8","firstName":"F"},7,{}]}');
{
    my $res = employees(remote_data => 'true');
    my @r = @{ $res->{json}{result} // [] };
    is(scalar @r, 6, 'every element is a record');
    is_deeply([ map { $_->{id} } @r ], [undef, undef, undef, '8', undef, undef],
              'only the object with an id has one');
    is_deeply([ map { $_->{remote_data} } @r ],
              ['str', undef, [{ id => '7' }], { id => '8', firstName => 'F' }, 7, {}],
              'remote_data is each element as sent');
}

# paths below a slot, "each" with "$parent", the whole record ("")
my $deep = '{"data":[{"id":"9","firstName":"G","a":{"b":[0,{"x":1}],"c":{"d":"D"}},'
         . '"tags":[{"n":"t1"},{"n":"t2"}],"FirstName":"case"},'
         . '{"id":"10","a":{"a":{"b":"no"}},"a":{"b":"str"},"tags":{"n":"not a list"}}]}';
answer_with($deep);
for my $rd (qw(true false)) {
    my $res = employees(account => 'acme-heavenhr-deep', remote_data => $rd);
    my @r = @{ $res->{json}{result} // [] };
    my $src = JSON::PP->new->decode($deep)->{data};
    is_deeply($r[0]{custom_fields}, { deep => { x => 1 }, deeper => 'D',
                                      tags => ['t1:9', 't2:9'], whole => $src->[0],
                                      Case => 'case' },
              "remote_data=$rd: nested paths, each with \$parent, the whole record");
    is_deeply($r[1]{custom_fields}, { deep => undef, deeper => undef, tags => [],
                                      whole => { id => '10', a => { b => 'str' },
                                                 tags => { n => 'not a list' } },
                                      Case => undef },
              'and where they find nothing (a duplicate "a": its last value)');
    is($r[0]{first_name}, 'G', 'the table\'s own fields beside the overrides');
    next if $rd eq 'false';
    is_deeply($r[0]{remote_data}, $src->[0], 'remote_data of a filled record');
    like($res->{body}, qr/"remote_data":\{"id":"10","a":\{"b":"str"\},"tags"/,
         'a record with a duplicate key: first place, last value');
}

# many records, pages of them: the slots of one are not another's
{
    my @recs = map { { id => "$_", firstName => "f$_", ($_ % 3 ? (lastName => "l$_") : ()),
                       ($_ % 5 ? () : (firstName_ => 'x')) } } 1 .. 150;
    answer_with(JSON::PP->new->canonical->encode({ data => \@recs }));
    my $res = employees(remote_data => 'true', limit => 150);
    my @r = @{ $res->{json}{result} // [] };
    is(scalar @r, 150, '150 records');
    is_deeply([ map { $_->{first_name} } @r ], [ map { "f$_" } 1 .. 150 ], 'each its own first_name');
    is_deeply([ map { $_->{last_name} } @r ], [ map { $_ % 3 ? "l$_" : undef } 1 .. 150 ],
              'and last_name, null where missing');
    is_deeply([ map { $_->{remote_data} } @r ], \@recs, 'remote_data of each');
}

$ng->stop;
done_testing();
