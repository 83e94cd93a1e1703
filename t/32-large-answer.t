#!/usr/bin/perl
# A unified answer larger than one socket write reaches a slow client whole:
# nginx's writer sends the rest as the client reads (ngx_http_hris_unified.h,
# NGX_HTTP_HRIS_PENDING). A reader that goes away mid-answer leaves no alert
# and nginx keeps serving.

use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $sb = HRIS::Sandbox->start('bamboohr');
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));

# every employee record of the list gets 25 KB more: about 8 MB in the
# answer's remote_data
$sb->fault({ fault => 'pad', size => 25_000, count => -1, path => '/v1/employees?' });

my $PATH = '/unified/hris/employees?integrated_account_id=acme-bamboohr&limit=500';

# A client with a small receive buffer: nginx cannot hand it the answer in
# one write, whatever loopback's buffers.
sub slow_client {
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "SO_RCVBUF: $!";
    $s->connect(Socket::pack_sockaddr_in($ng->port, Socket::inet_aton('127.0.0.1')))
        or die "connect: $!";
    $s->autoflush(1);
    print $s "GET $PATH HTTP/1.1\r\nHost: localhost\r\n"
           . "Authorization: Bearer $HRIS::Nginx::KEY\r\nConnection: close\r\n\r\n";
    return $s;
}

# Reads for up to $secs (slowly: $chunk bytes, then a pause), or to EOF;
# with $until, only until that many bytes arrived.
sub read_for {
    my ($s, $secs, $chunk, $pause, $buf, $until) = @_;
    my $sel = IO::Select->new($s);
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 0 if $until && length $$buf >= $until;
        next unless $sel->can_read(0.2);
        my $n = sysread($s, $$buf, $chunk, length $$buf);
        return 1 if !$n;                       # EOF (or an error)
        sleep $pause if $pause;
    }
    return 0;
}

{
    my $s = slow_client();
    my $body = '';
    read_for($s, 60, 1024, 0, \$body, 1);        # the answer starts
    read_for($s, 3, 1024, 0.05, \$body);
    my $early = length $body;
    ok($early < 2_000_000, "the slow reader took only part of it at first ($early bytes)");

    my $eof = read_for($s, 60, 1 << 20, 0, \$body);
    close $s;
    ok($eof, 'then the answer ends: the connection is closed after it');

    my ($head, $json) = split /\r\n\r\n/, $body, 2;
    like($head // '', qr{^HTTP/1\.1 200 }, 'status 200');
    my ($len) = ($head // '') =~ /^Content-Length:\s*(\d+)/mi;
    ok($len && $len > 8_000_000, "a multi-megabyte answer (${\($len // 0)} bytes)");
    is(length($json // ''), $len, 'every byte of it arrived');
    my $page = eval { JSON::PP->new->decode($json) };
    ok($page, 'it parses as JSON') or diag $@;
    is($page->{result_count}, 330, 'with every record');
    is(scalar @{ $page->{result} // [] }, 330, 'in the result');
    is(length($page->{result}[-1]{remote_data}{sandboxPadding} // ''), 25_000,
       'down to the last record\'s remote_data');
}

# A reader that stops and goes away mid-answer.
{
    my $s = slow_client();
    my $body = '';
    read_for($s, 60, 1024, 0.05, \$body, 16384);
    ok(length $body >= 16384, 'the aborting reader got the start of the answer');
    close $s;
    sleep 1;

    my $res = $ng->unified('employees', limit => 3, remote_data => 'false');
    is($res->{status}, 200, 'nginx keeps serving after a reader went away');
    is($res->{json}{result_count}, 3, 'with its records');

    # a few more at once, each read slowly to the end
    my @c = map { slow_client() } 1 .. 3;
    my @bodies = ('') x 3;
    read_for($c[$_], 60, 1 << 20, 0, \$bodies[$_]) for 0 .. 2;
    close $_ for @c;
    my @ok = grep { /\r\n\r\n\{"result":/ && /"result_count":330\}\z/ } @bodies;
    is(scalar @ok, 3, 'three slow readers at once each get the whole answer');
}

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');
done_testing;
