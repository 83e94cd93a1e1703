#!/usr/bin/perl
# Deeply nested provider values: what the gateway reads (up to 2048 levels)
# it also writes back, inside a mapped field or in remote_data; an answer
# nested deeper is a clean 502 in the error envelope, never nginx's HTML.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);
# the sandbox's "deep" fault puts sandboxDeep into every record: map it
$accounts->{accounts}[0]{overrides} = {
    'resources.employees.fields.custom_fields' => { object => { deep => '/sandboxDeep' } },
};
my $ng = HRIS::Nginx->start(accounts => $accounts);

my $LIST = '/api/gateway.php/acme/v1/employees';
my $JSON = JSON::PP->new->max_depth(100_000);

# levels of nested arrays and objects, as the sandbox builds them
sub depth {
    my ($v) = @_;
    my $n = 0;
    while (ref $v) {
        $v = ref $v eq 'ARRAY' ? $v->[0] : $v->{d};
        $n++;
    }
    return $n;
}

sub deep_get {
    my ($size, $what, %q) = @_;
    $sb->fault({ fault => 'deep', size => $size, count => 1, path => $LIST });
    my $res = $ng->unified($what, %q);
    $res->{json} //= eval { $JSON->decode($res->{body}) };
    return $res;
}

for my $remote (qw(false true)) {
    my $res = deep_get(100, 'employees', limit => 2, remote_data => $remote);
    is($res->{status}, 200, "a value nested 100 deep, remote_data=$remote: 200")
        or diag substr($res->{body}, 0, 300);
    like($res->{headers}{'content-type'} // '', qr/json/, 'JSON');
    is(depth($res->{json}{result}[1]{custom_fields}{deep}), 100,
       'the mapped field holds all 100 levels');
    is(depth($res->{json}{result}[1]{remote_data}{sandboxDeep}), 100, 'so does remote_data')
        if $remote eq 'true';
}

{
    my $res = deep_get(100, 'employees/4', remote_data => 'false');
    is($res->{status}, 200, 'a get with a value nested 100 deep: 200');
    is(depth($res->{json}{result}{custom_fields}{deep}), 100, 'all of it');

    # as deep as the reader takes: the answer's own levels and 2040 more
    $res = deep_get(2040, 'employees', limit => 1, remote_data => 'false');
    is($res->{status}, 200, 'nested 2040 deep inside a record: 200');
    is(depth($res->{json}{result}[0]{custom_fields}{deep}), 2040, 'written back whole');
}

for my $size (2100, 3000) {
    my $res = deep_get($size, 'employees', limit => 2);
    is($res->{status}, 502, "nested $size deep: 502");
    like($res->{headers}{'content-type'} // '', qr/json/, 'in the JSON envelope');
    is($res->{json}{statusCode}, 502, 'statusCode 502');
    like($res->{json}{message} // '', qr/answered with JSON nested deeper than 2048 levels/,
         'the message says how deep is too deep');
    is($res->{json}{details}{max_depth}, 2048, 'details.max_depth');
}

my $after = $ng->unified('employees', limit => 2);
is($after->{status}, 200, 'nginx keeps serving');
is($after->{json}{result_count}, 2, 'with its records');

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
done_testing;
