#!/usr/bin/perl
# GET /unified/openapi.json publishes every unified resource, the list and
# error envelopes and the parameters, without a key or an account.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));

my $res = $ng->get('/unified/openapi.json', key => undef);
is($res->{status}, 200, 'served without an API key');
like($res->{headers}{'content-type'}, qr{application/json}, 'as JSON');
my $doc = $res->{json};
ok($doc, 'parses');
like($doc->{openapi}, qr/^3\./, 'OpenAPI 3');

my $schema = JSON::PP->new->decode(do {
    local $/;
    open my $fh, '<', HRIS::Nginx::root() . '/mappings/schema.json' or die $!;
    <$fh>;
});

for my $r (sort keys %{ $schema->{resources} }) {
    ok($doc->{paths}{"/hris/$r"}{get}, "list $r");
    ok($doc->{paths}{"/hris/$r/{id}"}{get}, "get $r");
    my $props = $doc->{components}{schemas}{$r}{properties};
    is_deeply([sort grep { $_ ne 'remote_data' } keys %$props],
              [sort keys %{ $schema->{resources}{$r}{fields} }], "$r schema fields");
    ok($props->{remote_data}, "$r has remote_data");
}

my $list = $doc->{paths}{'/hris/employees'}{get};
my $env = $list->{responses}{200}{content}{'application/json'}{schema};
is_deeply([sort @{ $env->{required} }], [qw(next_cursor result result_count)],
          'list envelope');
is($env->{properties}{result}{items}{'$ref'}, '#/components/schemas/employees',
   'list items are employees');
my @params = map { $_->{'$ref'} // $_->{name} } @{ $list->{parameters} };
for my $p (qw(integrated_account_id limit cursor remote_data)) {
    ok((grep { /\b$p$/ } @params), "list takes $p");
}
is_deeply([sort @{ $doc->{components}{schemas}{Error}{required} }],
          [qw(error message statusCode)], 'error envelope');
is($doc->{components}{parameters}{limit}{schema}{maximum}, 500, 'limit max');
is($doc->{components}{schemas}{employees}{properties}{start_date}{format}, 'date',
   'dates are typed');

is_deeply($doc->{components}{schemas}{employees}{properties}{employment_status}{'x-enum-values'},
          [qw(active inactive terminated on_leave pending)],
          'the employment status vocabulary is published');
ok($doc->{components}{schemas}{timeoff_requests}{properties}{status}{'x-enum-values'},
   'time-off statuses too');

is($ng->request('POST', '/unified/openapi.json', key => undef)->{status}, 405,
   'read with GET only');

$ng->stop;
done_testing;
