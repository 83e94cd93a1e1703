#!/usr/bin/perl
# Mapping overrides: the table, then the environment's overrides file, then
# an account's own overrides, each replacing whole keys. Custom fields are
# the use case: provider fields outside the unified schema.

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

sub write_json {
    my ($name, $data) = @_;
    HRIS::Nginx::write_file("$dir/$name", JSON::PP->new->encode($data));
    return "$dir/$name";
}

# The environment adds a custom field for every BambooHR account; one
# account replaces custom_fields again and drops the avatar mapping.
my $env = write_json('overrides.json', {
    bamboohr => {
        'resources.employees.fields.custom_fields' => {
            object => { shirt => '/customShirtSize', diet => '/customDietaryRestrictions' },
        },
    },
});

my $accounts = HRIS::Nginx::accounts($sb);
push @{ $accounts->{accounts} }, {
    %{ $accounts->{accounts}[0] },
    id => 'acme-bamboohr-custom',
    overrides => {
        'resources.employees.fields.custom_fields' => { object => { size => '/customShirtSize' } },
        'resources.employees.fields.avatar' => undef,
        'resources.employees.list.query.fields' =>
            'workEmail,customShirtSize,departmentName,reportsToId',
    },
};

my $ng = HRIS::Nginx->start(accounts => $accounts,
                            http => "hris_mapping_overrides $env;",
                            server => 'location /admin/ { hris_admin; }');

my $base = $ng->unified('employees/4', remote_data => 'false');
is($base->{status}, 200, 'get with environment overrides');
is_deeply($base->{json}{result}{custom_fields}, { shirt => 'XXL', diet => 'Halal' },
          'environment override replaces custom_fields');
is($base->{json}{result}{avatar}, 'https://images.sandbox.invalid/photos/4-2-4.jpg',
   'other keys keep the table');

my $mine = $ng->unified('employees', account => 'acme-bamboohr-custom', limit => 1,
                        remote_data => 'false');
is($mine->{status}, 200, 'list with account overrides');
my $rec = $mine->{json}{result}[0];
is_deeply($rec->{custom_fields}, { size => 'XXL' }, 'account override wins over the environment');
is($rec->{avatar}, undef, 'an override of null removes the mapping: the field is null');
is($rec->{department}, 'Human Resources', 'the overridden query still asks for departments');
is($rec->{email}, 'charlotte.abbott@efficientoffice.example', 'and work e-mail');

# the same overrides on an account created at run time: compiled then
my %runtime = (%{ $accounts->{accounts}[-1] }, id => 'acme-bamboohr-runtime');
delete $runtime{tenant};
my $created = $ng->request('POST', '/admin/accounts', body => JSON::PP->new->encode(\%runtime));
is($created->{status}, 201, 'an account with overrides created at run time') or diag $created->{body};
my $rt = $ng->unified('employees', account => 'acme-bamboohr-runtime', limit => 1,
                      remote_data => 'false');
is_deeply($rt->{json}{result}[0]{custom_fields}, { size => 'XXL' }, 'its overrides apply');
is($rt->{json}{result}[0]{avatar}, undef, 'all of them');
$runtime{overrides} = { 'resources.employees.fields.email' => { path => 'noslash' } };
$runtime{id} = 'acme-bamboohr-broken';
my $bad = $ng->request('POST', '/admin/accounts', body => JSON::PP->new->encode(\%runtime));
is($bad->{status}, 400, 'a bad run-time override: 400');
like($bad->{json}{message} // '', qr/overrides.*email/, 'naming the key, as nginx -t would');
unlike($bad->{json}{message} // '', qr/accounts\.json|\/tmp\//, 'without the server\'s file path');

my ($all) = $ng->walk('employees', account => 'acme-bamboohr-custom', limit => 500);
is(scalar @$all, 330, 'the overridden account still walks every employee');
my ($other) = $ng->walk('employees', limit => 500);
is_deeply($other->[0]{custom_fields}, { shirt => 'XXL', diet => 'Halal' },
          'accounts without overrides are not touched by another account\'s');
$ng->stop;

# Mistakes in overrides fail nginx -t, naming the file and the key.
for my $case (
    [ 'unknown unified field in an environment override',
      { bamboohr => { 'resources.employees.fields.shoe_size' => '/x' } }, undef,
      qr/overrides\.json.*shoe_size|shoe_size.*schema/ ],
    [ 'bad expression in an environment override',
      { bamboohr => { 'resources.employees.fields.custom_fields' => { tpye => 'x' } } }, undef,
      qr/unknown key "tpye"/ ],
    [ 'override path through a non-object',
      { bamboohr => { 'base_url.x' => 'y' } }, undef,
      qr/override "base_url\.x" does not name a key/ ],
    [ 'overrides for a provider without a table',
      { workday => { 'base_url' => 'https://x' } }, undef,
      qr/no mapping table .*workday\.json/ ],
    [ 'bad expression in an account override',
      {}, { 'resources.employees.fields.email' => { path => 'noslash' } },
      qr/account "acme-bamboohr" overrides.*email/ ],
) {
    my ($name, $envov, $accov, $re) = @$case;
    my $f = write_json('bad-overrides.json', $envov);
    my $acc = HRIS::Nginx::accounts($sb);
    $acc->{accounts}[0]{overrides} = $accov if $accov;
    my $t = HRIS::Nginx->prepare(accounts => $acc, http => "hris_mapping_overrides $f;");
    my ($rc, $out) = $t->test_config;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, $re, "$name: the message names it");
}

done_testing;
