#!/usr/bin/perl
# A huge provider answer is read at most about 256 KB per transfer and turn
# of the event loop (src/ngx_http_hris_upstream.c): beyond that the write
# callback pauses the transfer (CURL_WRITEFUNC_PAUSE) and a posted event
# resumes it on the loop's next turn. curl 7.88 otherwise reads up to
# 100 times its buffer (128 KB, CURLOPT_BUFFERSIZE) in one call while the
# socket has data (bench/README.md, "Huge answers: stall and memory").
#
# Checked, from the debug log: a 15 MB answer is paused and every pause
# resumed; the page read through pauses holds the body's first records
# (the same as a 500-record body's page); clients going away at moments
# spread over the paused transfer, and nginx -s quit during it, leave
# nginx serving (the page answered whole) with no alert. Run it under ASan
# too (a resume of a freed call would show there).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $PROVIDER_KEY = '7c9e6679-7425-40de-944b-e07fc1f90ae7';

# the sandbox's own list answer, grown to about 15 MB, as static files
my $sb = HRIS::Sandbox->start('peoplehr');
my $raw = HTTP::Tiny->new(timeout => 30)->post($sb->url . '/Employee', {
    headers => { 'Content-Type' => 'application/json' },
    content => encode_json({ APIKey => $PROVIDER_KEY, Action => 'GetAllEmployeeDetail',
                             IncludeLeavers => 'true' }) });
is($raw->{status}, 200, 'the sandbox answers its employee list');
$sb->stop;

my $files = tempdir('hris-pause-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{HRIS_KEEP});
chmod 0755, $files;
my $answer = decode_json($raw->{content});
my @records = @{ $answer->{Result} };
for my $f ([big => [ (@records) x 14 ]], [page => [ ((@records) x 14)[0 .. 499] ]]) {
    open my $fh, '>', "$files/$f->[0].json" or die "$f->[0]: $!";
    print $fh encode_json({ %$answer, Result => $f->[1] });
    close $fh;
    chmod 0644, "$files/$f->[0].json";
}
my $big_size = -s "$files/big.json";
ok($big_size > 14_000_000, "a huge provider body ($big_size bytes)");

my $up_port = HRIS::Nginx::free_port();
my $UP = <<"CONF";
    server {
        listen 127.0.0.1:$up_port;
        sendfile on;
        access_log $files/up.log;
        location ~ ^/(big|page)/Employee\$ {
            types { } default_type application/json;
            alias $files/\$1.json;
            error_page 405 =200 \$uri;
        }
    }
CONF

sub gateway {
    my (%o) = @_;
    return HRIS::Nginx->start(
        log_level => 'debug',
        accounts => {
            api_keys => [{ key => $HRIS::Nginx::KEY, tenant => 'acme' }],
            accounts => [ map {
                { id => $_, tenant => 'acme', provider => 'peoplehr',
                  credentials => { api_key => $PROVIDER_KEY },
                  base_url => "http://127.0.0.1:$up_port/$_" }
            } qw(big page) ],
        },
        server => 'location = /ping { return 204; }',
        %o);
}

my $ng = gateway(http => $UP);
my $BIG = '/unified/hris/employees?integrated_account_id=big&limit=500';
my $PAGE = '/unified/hris/employees?integrated_account_id=page&limit=500';

sub send_get {
    my ($port, $path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or die "connect: $!";
    $s->autoflush(1);
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n"
           . "Authorization: Bearer $HRIS::Nginx::KEY\r\nConnection: close\r\n\r\n";
    return $s;
}

sub read_all {
    my ($s) = @_;
    my ($text, $sel, $t0) = ('', IO::Select->new($s), time);
    while (time - $t0 < 60 && $sel->can_read(60)) {
        sysread($s, $text, 1 << 20, length $text) or last;
    }
    close $s;
    return $text;
}

sub count {
    my ($gw, $re) = @_;
    return scalar(() = $gw->error_log =~ /$re/g);
}

my $PAUSED = qr/hris: upstream transfer paused, (\d+) bytes/;
my $RESUMED = qr/hris: upstream transfer resumed/;

# --- pauses, and the page read through them -------------------------------------

# Whether one transfer reads over 256 KB in a turn depends on how much the
# socket holds when it is read: on a loopback upstream it does within a
# few huge answers (bench/stall saw 1.6 MB reads); up to five tries.
my ($text, $paused);
for my $try (1 .. 5) {
    $text = read_all(send_get($ng->port, $BIG));
    last if ($paused = count($ng, $PAUSED));
}
like($text, qr{^HTTP/1\.1 200 .*"result_count":500\}\z}s, 'the huge list is answered whole');
ok($paused > 0, "its transfer was paused ($paused times)");
is(count($ng, $RESUMED), $paused, 'and resumed as often');
my @bytes = $ng->error_log =~ /$PAUSED/g;
ok(!grep({ $_ < 256 * 1024 || $_ > 512 * 1024 } @bytes),
   'each pause after 256 KB (and one piece) read in its turn');

my ($big_json) = $text =~ /\r\n\r\n(.*)\z/s;
my ($page_json) = read_all(send_get($ng->port, $PAGE)) =~ /\r\n\r\n(.*)\z/s;
my ($b, $p) = (decode_json($big_json), decode_json($page_json));
is(scalar @{ $b->{result} }, 500, 'the page read through pauses has 500 records');
is_deeply([ map { $_->{id} } @{ $b->{result} } ], [ map { $_->{id} } @{ $p->{result} } ],
          'the records of a 500-record body, in order');
is_deeply($b->{result}, $p->{result}, 'with the same fields');

# --- hris_max_response_size crossed through pauses -----------------------------

# A huge answer over the limit is refused as too large, wherever the limit
# falls against the pauses: in a turn's reading, or in the piece a pause
# kept and curl_easy_pause() gives again (curl 7.88 returns that error
# without ending the transfer or watching its socket again: the resume
# ends the call itself, else it would wait for hris_timeout). Limits at
# and just past 256 KB steps, where kept pieces begin; which of them
# lands in a kept piece depends on how curl's reads fall.
for my $limit (map { my $k = $_; map { $k * 262144 + $_ } 1, 12289 } 1 .. 3) {
    my $gw = gateway(location => "hris_max_response_size $limit; hris_timeout 120s;");
    my $text = read_all(send_get($gw->port, $BIG));
    like($text, qr{^HTTP/1\.1 502 .*larger than hris_max_response_size \($limit bytes\)}s,
         "limit $limit: the huge answer is refused as too large");
    $gw->stop;
    unlike($gw->error_log, qr/\[(alert|crit|emerg)\]/, "limit $limit: no alert");
}

# --- clients going away during the paused transfer ------------------------------

# nginx learns that a client left when it writes the answer; until then
# the transfer goes on, paused and resumed, and its call is freed with the
# request. Clients at moments spread over the transfer.
for my $ms (map { $_ * 10 } 0 .. 9) {
    my $s = send_get($ng->port, $BIG);
    sleep $ms / 1000;
    close $s;
}
{
    my $t0 = time;
    my $r;
    do {
        sleep 0.2;
        $r = HTTP::Tiny->new(timeout => 60)->get($ng->url . '/ping');
    } while ($r->{status} != 204 && time - $t0 < 60);
    is($r->{status}, 204, 'clients gone: nginx answers the next request');
    like(read_all(send_get($ng->port, $BIG)), qr{^HTTP/1\.1 200 .*"result_count":500\}\z}s,
         'and the huge list whole again');
}

# --- nginx -s quit while the transfer is paused ---------------------------------

# A gateway of its own, reading the first one's upstream, told to quit
# once its transfer paused: the transfer's timer keeps the worker in its
# loop, the posted resume runs, the page is answered whole.
for my $n (1 .. 2) {
    my $gw = gateway();
    my $s = send_get($gw->port, $BIG);
    my $t0 = time;
    sleep 0.001 while !count($gw, $PAUSED) && time - $t0 < 60;
    kill 'QUIT', $gw->{pid};
    my $text = read_all($s);
    my $paused = count($gw, $PAUSED);
  SKIP: {
        skip 'the transfer was never paused (no read over 256 KB)', 2 unless $paused;
        like($text, qr{^HTTP/1\.1 200 .*"result_count":500\}\z}s,
             "quit while paused ($n): the page is answered whole");
        is(count($gw, $RESUMED), $paused, "quit while paused ($n): every pause resumed");
    }
    $gw->stop;
    ok(!$gw->{stop_timed_out}, "quit while paused ($n): the worker exits");
    unlike($gw->error_log, qr/\[(alert|crit|emerg)\]/, "quit while paused ($n): no alert");
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts, no worker exited on a signal');
done_testing;
