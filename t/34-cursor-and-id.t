#!/usr/bin/perl
# A provider's long cursor is carried whole in next_cursor (bounded only by
# the request line it comes back in: large_client_header_buffers), and the
# {id} of a unified get is percent-decoded once, as the URI is.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $bamboo = HRIS::Sandbox->start('bamboohr');
my $heaven = HRIS::Sandbox->start('heavenhr');
my $ng = HRIS::Nginx->start(
    accounts => HRIS::Nginx::accounts_for(bamboohr => $bamboo, heavenhr => $heaven),
    server   => 'large_client_header_buffers 4 32k;');

my $LIST = '/api/gateway.php/acme/v1/employees';

# -- 14a: long provider cursors -------------------------------------------------
{
    # every cursor of the employee list is 6000 bytes longer
    $bamboo->fault({ fault => 'long_cursor', size => 6000, count => -1, path => "$LIST?" });
    my ($records, $pages, $responses) = eval {
        $ng->walk('employees', limit => 100, remote_data => 'false');
    };
    is($@, '', 'a list with 6 KB provider cursors: every page answered');
    is($pages, 4, 'every page read');
    is(scalar @{ $records // [] }, 330, 'with every record');
    my %ids = map { $_->{id} => 1 } @{ $records // [] };
    is(scalar keys %ids, 330, 'each once');
    my $len = length($responses->[0]{json}{next_cursor} // '');
    ok($len > 8000, "its next_cursor is $len bytes, more than the 4096 once allowed");
    $bamboo->clear_faults;

    # one that could not come back in a request line is said so at once
    $bamboo->fault({ fault => 'long_cursor', size => 30000, count => -1, path => "$LIST?" });
    my $res = $ng->unified('employees', limit => 100, remote_data => 'false');
    is($res->{status}, 502, 'a cursor longer than a request line may be: 502');
    like($res->{json}{message} // '',
         qr/next_cursor of \d+ bytes, too long to come back in a request line of at most 32768 bytes: raise nginx's large_client_header_buffers/,
         'naming large_client_header_buffers and its size');
    is($res->{json}{details}{large_client_header_buffers}, 32768, 'details say the size');
    $bamboo->clear_faults;

    # a long cursor that is not one of ours is still refused
    $res = $ng->unified('employees', cursor => ('A' x 20000) . '.' . ('A' x 43));
    is($res->{status}, 400, 'a long forged cursor: 400');
    like($res->{json}{message} // '', qr/invalid cursor/, 'as an invalid cursor');
}

# -- 14b: the id is decoded once --------------------------------------------------
{
    my $res = $ng->unified('employees/%2541', account => 'acme-heavenhr');
    is($res->{status}, 404, 'employees/%2541: 404 from the provider');
    is($res->{json}{details}{id}, '%41', 'the id is "%41", decoded once');
    my $by = $heaven->stats->{by_path};
    ok($by->{'/employees/%2541'}, 'the provider was asked for "%41" (sent as %2541)')
        or diag explain $by;
    ok(!$by->{'/employees/A'}, 'not for "A"');

    $res = $ng->unified('employees/a%20b%25', account => 'acme-heavenhr');
    is($res->{json}{details}{id}, 'a b%', 'spaces and a lone % survive');
    ok($heaven->stats->{by_path}{'/employees/a%20b%25'}, 'and reach the provider escaped');

    # an encoded id that is a real one
    $res = $ng->unified('employees/%34', remote_data => 'false');
    is($res->{status}, 200, 'employees/%34 is employee 4');
    is($res->{json}{result}{id}, '4', 'its record');

    $res = $ng->unified('employees/4%2F5');
    is($res->{status}, 404, 'an id with an encoded "/": 404 unknown path');
    like($res->{json}{message} // '', qr/expected hris\/\{resource\}\/\{id\}/, 'saying so');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
done_testing;
