#!/usr/bin/perl
# The bytes of unified lists and gets, for every provider's sandbox: the
# records are written from arrays of values with keys compiled from the
# schema (src/ngx_http_hris_record.h), not from jansson objects, and must
# come out as before: every record's keys in mappings/schema.json's order
# (remote_data last), and the whole answer exactly the compact JSON of
# what it holds, as jansson's writer put it (strings escaped as the
# module's writer does, reals with 17 significant digits). remote_data's
# bytes are the provider's own; with it, the records hold what they hold
# without it. The byte checks run in Python, whose JSON reader keeps the
# keys' order.
#
# HRIS_BASE_MODULE=/path/to/another/ngx_http_hris_module.so also compares
# every answer byte for byte with that module's, loaded in a second
# gateway on the same sandboxes (how this change was checked against the
# module before it).

use strict;
use warnings;

use Test::More;
use JSON::PP;
use File::Temp qw(tempfile);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my @PROVIDERS = qw(bamboohr personio peoplehr heavenhr clayhr);
my $ROOT = HRIS::Nginx::root();
my $SCHEMA = "$ROOT/mappings/schema.json";

plan skip_all => 'python3 is needed for the byte checks'
    unless system('python3 -c "import json" 2>/dev/null') == 0;

# Reads an answer on stdin; argv: schema, resource, "list"/"get",
# remote_data 0/1. Prints what differs, or nothing.
my $CHECK = <<'PY';
import json, sys

schema, resource, mode, remote = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == '1'
fields = list(json.load(open(schema))['resources'][resource]['fields'])
raw = sys.stdin.buffer.read()
doc = json.loads(raw)

def string(s):
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"': out.append('\\"')
        elif c == '\\': out.append('\\\\')
        elif c in '\b\f\n\r\t':
            out.append({'\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t'}[c])
        elif o < 0x20: out.append('\\u%04x' % o)
        else: out.append(c)
    out.append('"')
    return ''.join(out)

def real(d):
    s = '%.17g' % d
    return s if any(c in s for c in '.eEn') else s + '.0'

def dump(v):
    if v is None: return 'null'
    if v is True: return 'true'
    if v is False: return 'false'
    if isinstance(v, int): return str(v)
    if isinstance(v, float): return real(v)
    if isinstance(v, str): return string(v)
    if isinstance(v, list): return '[' + ','.join(dump(x) for x in v) + ']'
    return '{' + ','.join(string(k) + ':' + dump(x) for k, x in v.items()) + '}'

problems = []
want = ['result', 'next_cursor', 'result_count'] if mode == 'list' else ['result']
if list(doc) != want:
    problems.append('envelope keys %s' % list(doc))
records = doc['result'] if mode == 'list' else [doc['result']]
order = fields + (['remote_data'] if remote else [])
for i, rec in enumerate(records):
    if list(rec) != order:
        problems.append('record %d: keys %s, not the schema order %s' % (i, list(rec), order))
        break
if not remote and dump(doc).encode('utf-8') != raw:
    a, b = dump(doc).encode('utf-8'), raw
    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    problems.append('not the compact JSON of itself at byte %d: %r / %r' % (i, b[i:i + 60], a[i:i + 60]))
sys.stdout.write(''.join(p + '\n' for p in problems))
PY

my ($fh, $checker) = tempfile('hris-bytes-XXXXXX', SUFFIX => '.py', TMPDIR => 1, UNLINK => 1);
print $fh $CHECK;
close $fh;

sub check_bytes {
    my ($body, $resource, $mode, $remote) = @_;
    my ($in, $file) = tempfile('hris-answer-XXXXXX', TMPDIR => 1, UNLINK => 1);
    binmode $in;
    print $in $body;
    close $in;
    my $out = `python3 $checker $SCHEMA $resource $mode $remote < $file 2>&1`;
    return $? == 0 ? $out : "checker failed: $out";
}

my %sb = map { $_ => HRIS::Sandbox->start($_) } @PROVIDERS;
my $accounts = HRIS::Nginx::accounts_for(%sb);
my $ng = HRIS::Nginx->start(accounts => $accounts);

my $base;
if ($ENV{HRIS_BASE_MODULE}) {
    local $ENV{HRIS_MODULE} = $ENV{HRIS_BASE_MODULE};
    $base = HRIS::Nginx->start(accounts => $accounts);
}

my $json = JSON::PP->new->canonical;

for my $p (@PROVIDERS) {
    my $account = "acme-$p";

    my $full = $ng->unified('employees', account => $account, limit => 100);
    my $bare = $ng->unified('employees', account => $account, limit => 100,
                            remote_data => 'false');
    is($full->{status}, 200, "$p: employees") or diag $full->{body};
    is($bare->{status}, 200, "$p: employees, remote_data=false") or diag $bare->{body};
    next unless $full->{status} == 200 && $bare->{status} == 200;

    my $n = scalar @{ $bare->{json}{result} };
    ok($n > 1, "$p: a page of $n employees");

    is(check_bytes($bare->{body}, 'employees', 'list', 0), '',
       "$p: the page without remote_data is its compact JSON, keys in the schema's order");
    is(check_bytes($full->{body}, 'employees', 'list', 1), '',
       "$p: with remote_data, last in each record");

    # remote_data adds itself and nothing else
    my @stripped = map { my %r = %$_; delete $r{remote_data}; \%r } @{ $full->{json}{result} };
    is($json->encode(\@stripped), $json->encode($bare->{json}{result}),
       "$p: the records with remote_data hold the same values");
    is(scalar(grep { ref $_->{remote_data} eq 'HASH' } @{ $full->{json}{result} }), $n,
       "$p: every record has its provider's record");

    # a get: the record alone (some providers' gets read more fields)
    my $id = $bare->{json}{result}[0]{id};
    my $one = $ng->unified("employees/$id", account => $account, remote_data => 'false');
    is($one->{status}, 200, "$p: get employee $id") or diag $one->{body};
    if ($one->{status} == 200) {
        is(check_bytes($one->{body}, 'employees', 'get', 0), '',
           "$p: the get is its compact JSON, keys in the schema's order");
    }
    my $oner = $ng->unified("employees/$id", account => $account);
    is(check_bytes($oner->{body}, 'employees', 'get', 1), '',
       "$p: the get with remote_data, last");

    next unless $base;

    # every resource: the same bytes (or the same error) as the base's
    my @lists = map { [ $_, limit => 50 ], [ $_, limit => 50, remote_data => 'false' ] }
                grep { $_ ne 'employees' } sort keys %{ $json->decode(do {
                    local (@ARGV, $/) = $SCHEMA; <> })->{resources} };

    # (employees first: a sandbox's rate limit may end the walk)
    for my $q ([ 'employees', limit => 100 ],
               [ 'employees', limit => 100, remote_data => 'false' ],
               [ 'employees', limit => 7 ],
               [ "employees/$id" ],
               [ "employees/$id", remote_data => 'false' ],
               @lists)
    {
        my ($what, %q) = @$q;
        my $a = $ng->unified($what, account => $account, %q);
        my $b = $base->unified($what, account => $account, %q);
        my $name = "$p: $what " . join('&', map { "$_=$q{$_}" } sort keys %q);
        # a next_cursor is sealed with a per-gateway key: compared apart
        s/"next_cursor":"[^"]*"/"next_cursor":"..."/ for $a->{body}, $b->{body};
        is($a->{status}, $b->{status}, "$name: the base module's status");
        ok($a->{body} eq $b->{body}, "$name: the base module's bytes ("
           . length($a->{body}) . ')')
            or diag "this: " . substr($a->{body}, 0, 300) . "\nbase: " . substr($b->{body}, 0, 300);
    }
}

done_testing();
