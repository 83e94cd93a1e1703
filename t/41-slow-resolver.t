#!/usr/bin/perl
# A call that ends while its provider's name is being resolved (a connect
# timeout, a client that goes away) does not block the worker. libcurl's
# threaded resolver would join its getaddrinfo() thread when the transfer
# is removed: with a slow DNS server, every other request of the worker
# waited for the lookup (CURLOPT_QUICK_EXIT lets the thread go).
#
# A slow DNS server is simulated with an LD_PRELOADed getaddrinfo() that
# takes 4 s for one host name, slow.hris.test, built here with cc.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $SLOW = 4;
my $tmp = tempdir('hris-dns-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $tmp;    # the workers (user nobody) map the library

HRIS::Nginx::write_file("$tmp/slowdns.c", <<"C");
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>

typedef int (*gai_pt)(const char *, const char *, const struct addrinfo *,
                      struct addrinfo **);

int
getaddrinfo(const char *node, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
    gai_pt  real = (gai_pt) dlsym(RTLD_NEXT, "getaddrinfo");

    if (node != NULL && strcmp(node, "slow.hris.test") == 0) {
        sleep($SLOW);
        node = "127.0.0.1";
    }

    return real(node, service, hints, res);
}
C
system('cc', '-shared', '-fPIC', '-o', "$tmp/slowdns.so", "$tmp/slowdns.c", '-ldl') == 0
    or plan skip_all => 'cannot build the LD_PRELOAD library with cc';
chmod 0755, "$tmp/slowdns.so";

my $sb = HRIS::Sandbox->start('bamboohr');
my $accounts = HRIS::Nginx::accounts($sb);
push @{ $accounts->{accounts} },
    { id => 'acme-slowdns', tenant => 'acme', provider => 'bamboohr',
      context => { subdomain => 'acme' },
      credentials => { api_key => '0123456789abcdef0123456789abcdef01234567' },
      base_url => 'http://slow.hris.test:' . $sb->port . '/api/gateway.php/acme' };

my $ng = HRIS::Nginx->start(accounts => $accounts, workers => 1,
    env => { LD_PRELOAD => "$tmp/slowdns.so" },
    location => 'hris_connect_timeout 500ms; hris_retries 0;');

# A request on its own connection, not waited for.
sub send_request {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port) or die "connect: $!";
    $s->autoflush(1);
    print $s "GET $path HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
           . "Authorization: Bearer $HRIS::Nginx::KEY\r\n\r\n";
    return { sock => $s, buf => '', sent => time };
}

# Reads the answer to its end: (status, seconds since it was sent).
sub answer {
    my ($req, $timeout) = @_;
    my $sel = IO::Select->new($req->{sock});
    my $deadline = time + $timeout;
    while (time < $deadline && $sel->can_read($deadline - time)) {
        last unless sysread($req->{sock}, $req->{buf}, 65536, length $req->{buf});
    }
    my ($status) = $req->{buf} =~ m{^HTTP/1\.1 (\d{3})};
    return ($status // 0, time - $req->{sent});
}

my $OTHER = '/unified/hris/employees?integrated_account_id=acme-bamboohr&limit=2';
my $SLOWDNS = '/unified/hris/employees?integrated_account_id=acme-slowdns';

is((answer(send_request($OTHER), 10))[0], 200, 'the ordinary account answers');

subtest 'a connect timeout during name resolution' => sub {
    my $a = send_request($SLOWDNS);
    sleep 0.9;    # A's connect timeout (500 ms) is over: its call ended
    my $b = send_request($OTHER);
    my ($sb_, $tb) = answer($b, 10);
    my ($sa, $ta) = answer($a, 10);
    is($sa, 504, "the call in name resolution: 504 from hris_connect_timeout");
    cmp_ok($ta, '<', 2, sprintf('A answered in %.2f s, not after the %d s lookup', $ta, $SLOW));
    is($sb_, 200, 'B, on the same worker: 200');
    cmp_ok($tb, '<', 1.5, sprintf('B answered in %.2f s: the worker was not blocked', $tb));
};

subtest 'a client that goes away during name resolution' => sub {
    my $a = send_request($SLOWDNS);
    sleep 0.2;
    close $a->{sock};    # its call is cancelled while the lookup runs
    sleep 0.1;
    my $b = send_request($OTHER);
    my ($status, $took) = answer($b, 10);
    is($status, 200, 'B, on the same worker: 200');
    cmp_ok($took, '<', 1.5, sprintf('B answered in %.2f s: the worker was not blocked', $took));
};

sleep $SLOW;    # the lookups end by themselves
is((answer(send_request($OTHER), 10))[0], 200, 'nginx serves on after the lookups ended');

$ng->stop;
ok(!$ng->{stop_timed_out}, 'graceful quit');
my $log = $ng->error_log;
unlike($log, qr/\[(alert|crit|emerg)\]|exited on signal/, 'no alert, no crash')
    or diag(join '', grep { /\[(alert|crit|emerg)\]|signal/ } split /^/, $log);

done_testing;
