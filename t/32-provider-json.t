#!/usr/bin/perl
# Unusual but valid JSON from a provider, through the unified API: a key
# that appears twice in an object. The last value wins (as jansson's
# json_loadb() has it), and the value it replaced must not come back: its
# bytes were recorded for remote_data, so if that record outlived the
# object, a later object at the same address would be written out as the
# replaced one's bytes (the record turned into {"firstName":"INJECTED"...}).
#
# A tiny provider (HeavenHR's table: a token, then /employees) answers a
# fixed body per test.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $dir = tempdir(CLEANUP => 1);
# The body /employees answers is read from a file on every request, so a
# test changes it without restarting anything.
my $body_file = "$dir/body.json";
my $sb = HRIS::Sandbox->fixed_body($body_file);
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(heavenhr => $sb));

sub answer_with {
    my ($body) = @_;
    HRIS::Nginx::write_file($body_file, $body);
}

sub employees {
    my $res = $ng->unified('employees', account => 'acme-heavenhr', @_);
    is($res->{status}, 200, 'the list is answered') or diag $res->{body};
    return $res;
}

# the body of the report, verbatim
answer_with('{"data":[{"id":"1","firstName":"real"}],'
            . '"x":{"firstName":"INJECTED","id":"999"},"x":{"k":1}}');

for my $n (1 .. 3) {
    my $res = employees();
    my $rec = $res->{json}{result}[0] // {};
    is(scalar @{ $res->{json}{result} // [] }, 1, "request $n: one record");
    is($rec->{id}, '1', 'its id is the provider\'s');
    is($rec->{first_name}, 'real', 'first_name is "real"');
    is_deeply($rec->{remote_data}, { id => '1', firstName => 'real' },
              'remote_data is the provider record');
    unlike($res->{body}, qr/INJECTED|999/, 'the replaced value appears nowhere');
}

# duplicates inside the record: the last one wins, in the mapped fields and
# in remote_data, which is written from the tree rather than as the
# record's bytes (a reader keeping the first value would read those as
# another record than the one mapped)
answer_with('{"data":[{"id":"2","firstName":{"a":{"b":1}},"firstName":"last",'
            . '"lastName":"L"}]}');
{
    my $res = employees();
    my $rec = $res->{json}{result}[0] // {};
    is($rec->{first_name}, 'last', 'a duplicate key in a record: the last value wins');
    is_deeply($rec->{remote_data}, { id => '2', firstName => 'last', lastName => 'L' },
              'remote_data holds what was mapped');
    my $n = () = $res->{body} =~ /"firstName"/g;
    is($n, 1, 'and names firstName once');
}

# many replaced objects, nested: none of their bytes reach the answer
{
    my $junk = join ',', map { qq("x":{"firstName":"INJECTED$_","in":{"id":"9$_"}}) } 1 .. 50;
    answer_with('{"data":[{"id":"3","firstName":"real3","lastName":"R"},'
                . '{"id":"4","firstName":"real4","lastName":"S"}],' . $junk . ',"x":null}');
    for my $n (1 .. 3) {
        my $res = employees(remote_data => 'true');
        is_deeply([ map { $_->{first_name} } @{ $res->{json}{result} // [] } ], [qw(real3 real4)],
                  "request $n: 50 replaced objects, the records stay themselves");
        unlike($res->{body}, qr/INJECTED/, 'no replaced object in the answer');
    }
}

# strings that need escapes, written by the module's own JSON writer
# (remote_data=false: every string is written, none copied): each escape
# as json_dumps() writes it, in short strings and in strings longer than
# a sixth of the writer's 32 KB buffers (written in runs, not in one
# pass), and across buffers' ends (the lengths vary)
{
    my $odd = qq(q"b\\s/\x01\x1f\x7f\b\f\n\r\t\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80);
    my %esc = ('"' => '\\"', '\\' => '\\\\', "\b" => '\\b', "\f" => '\\f',
               "\n" => '\\n', "\r" => '\\r', "\t" => '\\t');
    my $written = sub {
        join '', map { $esc{$_} // (ord($_) < 0x20 ? sprintf('\\u%04x', ord $_) : $_) }
                 split //, $_[0];
    };
    my $bytes = JSON::PP->new->ascii(0)->latin1(1);    # the bytes as they are
    my @names = map { $odd . ('x' x ($_ * 37 % 301)) . $odd } 0 .. 97;
    push @names, ($odd x 700) . 'end', 'z' . ($odd x 1500);
    answer_with($bytes->encode({ data => [ map { { id => "$_", firstName => $names[$_],
                                                   lastName => 'L' } } 0 .. $#names ] }));
    my $res = employees(remote_data => 'false', limit => 100);
    my @got = map { $_->{first_name} } @{ $res->{json}{result} // [] };
    is(scalar @got, scalar @names, 'every record of escaped strings is there');
    is_deeply(\@got, \@names, 'each string reads back as the provider sent it');
    my $misses = grep { index($res->{body}, '"' . $written->($_) . '"') < 0 } @names;
    is($misses, 0, 'each is escaped as json_dumps() escapes it');
}

$ng->stop;
done_testing();
