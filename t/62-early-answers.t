#!/usr/bin/perl
# Answers given before the request body is read (a bad key, an unknown
# account or link, a wrong path or method) discard that body. Otherwise
# nginx takes the unread body for the next request on the keep-alive
# connection: a request hidden in a body would be served (smuggling).
#
# Each case sends, on one raw keep-alive connection, a request whose body
# is a complete second request (GET /unified/openapi.json, which needs no
# key), and checks that exactly one answer comes back; then that the
# connection still serves a real next request.

use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(
    accounts => HRIS::Nginx::accounts($sb),
    server => 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }');

my $KEY = $HRIS::Nginx::KEY;
my $SMUGGLED = "GET /unified/openapi.json HTTP/1.1\r\nHost: gw\r\n\r\n";

# Every answer on the connection until it stays quiet for $quiet seconds:
# a list of status codes.
sub answers {
    my ($s, $quiet) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    while ($sel->can_read($quiet)) {
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    my @status;
    while ($buf =~ m{\G.*?HTTP/1\.1 (\d{3}) [^\r\n]*\r\n(.*?)\r\n\r\n}gs) {
        my ($status, $head) = ($1, $2);
        push @status, $status;
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        pos($buf) += $len if $len;
    }
    return @status;
}

sub connection {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port) or die "connect: $!";
    $s->autoflush(1);
    return $s;
}

# (method, path, key or undef, expected status, name, body style)
my @cases = (
    [ 'POST',  '/proxy/v1/employees?integrated_account_id=nobody', $KEY, 404,
      'proxy: unknown account' ],
    [ 'POST',  '/proxy/v1/employees?integrated_account_id=acme-bamboohr', undef, 401,
      'proxy: no key' ],
    [ 'POST',  '/proxy/v1/employees', $KEY, 400, 'proxy: no integrated_account_id' ],
    [ 'POST',  '/admin/accounts', undef, 401, 'admin: no key' ],
    [ 'POST',  '/admin/elsewhere', $KEY, 404, 'admin: unknown path' ],
    [ 'PUT',   '/admin/accounts/x', $KEY, 405, 'admin: wrong method' ],
    [ 'POST',  '/connect/not-a-link-token', undef, 400, 'connect: bad link token' ],
    [ 'POST',  '/connect/callback', undef, 405, 'connect: POST to the callback' ],
    [ 'PUT',   '/connect/x', undef, 405, 'connect: wrong method' ],
    [ 'PUT',   '/unified/hris/employees', $KEY, 405, 'unified: wrong method' ],
    [ 'POST',  '/unified/hris/employees?integrated_account_id=nobody', $KEY, 404,
      'unified: unknown account' ],
    [ 'POST',  '/admin/accounts', undef, 401, 'admin: no key, chunked body', 'chunked' ],
    [ 'POST',  '/proxy/x?integrated_account_id=nobody', $KEY, 404,
      'proxy: unknown account, body sent late', 'late' ],
);

for my $c (@cases) {
    my ($method, $path, $key, $want, $name, $style) = @$c;
    $style //= 'plain';
    subtest $name => sub {
        my $s = connection();
        my $head = "$method $path HTTP/1.1\r\nHost: gw\r\n"
                 . (defined $key ? "Authorization: Bearer $key\r\n" : '')
                 . "Content-Type: text/plain\r\n";
        if ($style eq 'chunked') {
            print $s $head . "Transfer-Encoding: chunked\r\n\r\n"
                   . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $SMUGGLED, $SMUGGLED);
        } elsif ($style eq 'late') {
            # the body comes after the answer: discarded while it arrives
            print $s $head . 'Content-Length: ' . (10 + length $SMUGGLED) . "\r\n\r\n";
            my @early = answers($s, 1);
            is_deeply(\@early, [$want], "answered $want before the body came");
            print $s "0123456789$SMUGGLED";
        } else {
            print $s $head . 'Content-Length: ' . length($SMUGGLED) . "\r\n\r\n$SMUGGLED";
        }
        my @got = answers($s, 0.5);
        @got = ($want, @got) if $style eq 'late';
        is_deeply(\@got, [$want], "one answer ($want): the request in the body was not served")
            or diag("answers: @got");

        # the connection is still good for a real next request
        print $s $SMUGGLED;
        is_deeply([answers($s, 0.5)], [200], 'the connection serves the next request');
        close $s;
    };
}

$ng->stop;
my $log = $ng->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert, no crash')
    or diag(join '', grep { /\[(alert|crit|emerg)\]/ } split /^/, $log);

done_testing;
