#!/usr/bin/perl
# Hardening: upstream TLS is verified by default (hris_ssl_trusted_certificate
# names the CAs, hris_ssl_verify off is an explicit choice), a provider's
# redirect is never followed (least of all to another host), and context
# values that go into URLs must match the table's pattern.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $dir = tempdir(CLEANUP => 1);
my @kids;
END { local $?; kill "TERM", @kids if @kids; waitpid($_, 0) for @kids; }

# A provider over TLS with a self-signed certificate for 127.0.0.1.
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
       '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
       '-keyout', "$dir/key.pem", '-out', "$dir/cert.pem") == 0
    or BAIL_OUT('openssl req failed');

my $tls_port = HRIS::Nginx::free_port();
HRIS::Nginx::write_file("$dir/tls.py", <<"PY");
import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"data":[{"employeeId":"1","firstName":"Tls","lastName":"Only"}],"meta":{"page":{"nextCursor":null}}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", $tls_port), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain("$dir/cert.pem", "$dir/key.pem")
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
push @kids, spawn('/usr/bin/python3', "$dir/tls.py");

# A provider that redirects every call to another host (port).
my $trap = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 16, ReuseAddr => 1) or die $!;
my $trap_port = $trap->sockport;
my $redir = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1) or die $!;
my $redir_port = $redir->sockport;
push @kids, fork_server($redir, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:$trap_port/v1/employees\r\n"
                                . "Content-Length: 0\r\nConnection: close\r\n\r\n");
wait_port($tls_port);

sub spawn {
    my $pid = fork // die;
    if ($pid == 0) { open STDERR, '>', '/dev/null'; exec @_; exit 127 }
    return $pid;
}

sub fork_server {
    my ($sock, $answer) = @_;
    my $pid = fork // die;
    if ($pid == 0) {
        while (my $c = $sock->accept) {
            local $/ = "\r\n\r\n";
            <$c>;
            print $c $answer;
            close $c;
        }
        POSIX::_exit(0);
    }
    return $pid;
}

sub wait_port {
    my ($port) = @_;
    for (1 .. 100) {
        return if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        select undef, undef, undef, 0.05;
    }
    die "port $port never opened";
}

sub account {
    my ($base) = @_;
    my $sb = bless { port => 1 }, 'HRIS::Sandbox';
    my $acc = HRIS::Nginx::accounts($sb);
    $acc->{accounts}[0]{base_url} = $base;
    return $acc;
}

# TLS: verified by default
{
    my $ng = HRIS::Nginx->start(accounts => account("https://127.0.0.1:$tls_port"));
    my $res = $ng->unified('employees');
    is($res->{status}, 503, 'a provider whose certificate does not verify is not called');
    like($res->{json}{message}, qr/could not be reached.*certificate|SSL/i,
         'the message says it is the certificate');
    is($res->{json}{details}{attempts}, 1, 'a refused certificate is not retried');
    $ng->stop;
}
{
    my $ng = HRIS::Nginx->start(accounts => account("https://127.0.0.1:$tls_port"),
                                http => "hris_ssl_trusted_certificate $dir/cert.pem;");
    my $res = $ng->unified('employees');
    is($res->{status}, 200, 'with its CA in hris_ssl_trusted_certificate it is')
        or diag $res->{body};
    is($res->{json}{result}[0]{first_name}, 'Tls', 'and answers over TLS');
    $ng->stop;
}
{
    my $ng = HRIS::Nginx->start(accounts => account("https://127.0.0.1:$tls_port"),
                                http => 'hris_ssl_verify off;');
    is($ng->unified('employees')->{status}, 200, 'hris_ssl_verify off is an explicit choice');
    $ng->stop;
}

# the CA file is read when nginx reads its configuration: a bad one fails -t
for my $c ([ "$dir/none.pem", qr/cannot open hris_ssl_trusted_certificate/ ],
           [ "$dir/tls.py", qr/holds no PEM certificate/ ]) {
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => account('https://127.0.0.1:1'),
                         http => "hris_ssl_trusted_certificate $c->[0];")->test_config;
    isnt($rc, 0, "CA file $c->[0]: nginx -t fails");
    like($out, $c->[1], 'and says why');
}

# redirects are answered, not followed
{
    my $ng = HRIS::Nginx->start(accounts => account("http://127.0.0.1:$redir_port"));
    my $res = $ng->unified('employees');
    is($res->{status}, 502, 'a redirect from the provider is a 502');
    like($res->{json}{message}, qr/unexpected status 302/, 'that says so');
    $trap->blocking(0);
    ok(!$trap->accept, 'the host it pointed at was never called');
    my $px = $ng->get('/proxy/v1/employees?integrated_account_id=acme-bamboohr');
    is($px->{status}, 302, 'the proxy API passes the redirect back as it is');
    ok(!$trap->accept, 'without following it either');
    $ng->stop;
}

# context values are checked against the table's pattern: no value can
# steer a call to another host
for my $evil ('evil.example/x', 'acme@evil.example', 'a.b', 'acme#', '') {
    my $acc = account('http://127.0.0.1:1');
    delete $acc->{accounts}[0]{base_url};          # the table's URL uses the subdomain
    $acc->{accounts}[0]{context}{subdomain} = $evil;
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc)->test_config;
    isnt($rc, 0, "subdomain \"$evil\" fails nginx -t");
    like($out, qr/context\.subdomain .* does not match|context\.subdomain is required/,
         "\"$evil\": names the context key");
}

done_testing;
