#!/usr/bin/perl
# "object" expressions of a list's records, written from compact objects
# (src/ngx_http_hris_map.h): while a record is mapped for the answer, an
# object is an array of its values behind its expression's mark, and the
# writer puts the keys back. Everything that reads a mapped value must
# treat it as the object it stands for: these fields are made to catch a
# compact object taken for an array (spliced into a list, written as
# [...]), for a null or a string, or written with its keys out of order
# or unescaped: objects in objects, in "array", in "each", under "first",
# with "required" keys missing, under "type", "enum", "regex" and
# "default", an empty object, keys that need escapes.
#
# A tiny provider (HeavenHR's table: a token, then /employees) answers a
# fixed body; an account's overrides give custom_fields those shapes.

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
my $pair = { object => { n => '/n', v => '/v' }, required => ['n'] };
my $accounts = HRIS::Nginx::accounts_for(heavenhr => $sb);
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] },
    id => 'acme-heavenhr-objects',
    overrides => {
        'resources.employees.fields.custom_fields' => { object => {
            a_nested   => { object => { inner => { object => { x => '/a/x', y => '/a/y' } },
                                        name  => '/firstName' } },
            b_array    => { array => [ { object => { k => { const => 'one' } } },
                                       { object => { k => '/missing' }, required => ['k'] },
                                       { each => '/items', map => $pair },
                                       { object => { k => { const => 'two' } } } ] },
            c_each     => { each => '/items', map => $pair },
            d_first    => { first => [ { object => { k => '/missing' }, required => ['k'] },
                                       { object => { k => '/firstName' } } ] },
            e_required => { object => { k => '/missing', j => '/firstName' },
                            required => ['k'] },
            f_type     => { object => { k => '/firstName' }, type => 'string' },
            g_enum     => { object => { k => '/firstName' }, enum => { x => 'y' } },
            h_enumdflt => { object => { k => '/firstName' }, enum => { x => 'y' },
                            enum_default => 'other' },
            i_regex    => { object => { k => '/firstName' }, regex => '(.*)' },
            j_default  => { first => [ { object => { k => '/missing' }, required => ['k'] } ],
                            default => 'none' },
            k_empty    => { object => {} },
            "l_q\"uo\\te\x01" => { object => { "k\"\n" => '/firstName' } },
        } },
    },
};
my $ng = HRIS::Nginx->start(accounts => $accounts);

HRIS::Nginx::write_file($body_file, JSON::PP->new->canonical->encode({ data => [
    { id => '1', firstName => 'Ann', a => { x => 1, y => [2, { z => 3 }] },
      items => [ { n => 'p', v => 1 }, { v => 2 }, { n => 'q', v => { w => [] } } ] },
    { id => '2', firstName => 'Bob', items => 'not a list' },
] }));

my $ann = {
    a_nested   => { inner => { x => 1, y => [2, { z => 3 }] }, name => 'Ann' },
    b_array    => [ { k => 'one' }, { n => 'p', v => 1 }, { n => 'q', v => { w => [] } },
                    { k => 'two' } ],
    c_each     => [ { n => 'p', v => 1 }, { n => 'q', v => { w => [] } } ],
    d_first    => { k => 'Ann' },
    e_required => undef,
    f_type     => undef,
    g_enum     => { k => 'Ann' },
    h_enumdflt => 'other',
    i_regex    => undef,
    j_default  => 'none',
    k_empty    => {},
    "l_q\"uo\\te\x01" => { "k\"\n" => 'Ann' },
};
my $bob = { %$ann,
    a_nested => { inner => { x => undef, y => undef }, name => 'Bob' },
    b_array  => [ { k => 'one' }, { k => 'two' } ],
    c_each   => [],
    d_first  => { k => 'Bob' },
    g_enum   => { k => 'Bob' },
    "l_q\"uo\\te\x01" => { "k\"\n" => 'Bob' },
};

for my $rd (qw(true false)) {
    my $res = $ng->unified('employees', account => 'acme-heavenhr-objects', remote_data => $rd);
    is($res->{status}, 200, "remote_data=$rd: the list is answered") or diag $res->{body};
    my @r = @{ $res->{json}{result} // [] };
    is(scalar @r, 2, 'two records');
    is_deeply($r[0]{custom_fields}, $ann, 'objects in every place, as objects')
        or diag explain $r[0]{custom_fields};
    is_deeply($r[1]{custom_fields}, $bob, 'and where paths find nothing')
        or diag explain $r[1]{custom_fields};
    is_deeply($r[0]{groups}, [], "the table's own array of objects (no department)");
}

# the bytes: keys in the table's order (the accounts file's, sorted), escaped
my $res = $ng->unified('employees', account => 'acme-heavenhr-objects', remote_data => 'false');
like($res->{body}, qr/"custom_fields":\{"a_nested":\{"inner":\{"x":1,"y":\[2,\{"z":3\}\]\},"name":"Ann"\},"b_array":\[\{"k":"one"\},/,
     'nested objects written with their keys in order');
like($res->{body}, qr/"k_empty":\{\},"l_q\\"uo\\\\te\\u0001":\{"k\\"\\n":"Ann"\}\}/,
     'an empty object; keys escaped as JSON wants');

# the table's own objects on the default account: groups of the list
HRIS::Nginx::write_file($body_file, '{"data":[{"id":"3","departmentId":7,"departmentName":"Ops"},'
                                    . '{"id":"4","departmentName":"Nil"}]}');
$res = $ng->unified('employees', account => 'acme-heavenhr', remote_data => 'false');
is_deeply([ map { $_->{groups} } @{ $res->{json}{result} // [] } ],
          [ [ { id => '7', name => 'Ops', type => 'department' } ], [] ],
          'groups: an object with its required id, and none without');

unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts');
$ng->stop;
done_testing();
