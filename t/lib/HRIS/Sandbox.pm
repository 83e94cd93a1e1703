package HRIS::Sandbox;

# Start and drive a sandbox provider (sandbox/<provider>.py) from a test.
#
#   my $sb = HRIS::Sandbox->start('bamboohr', api_keys => [...], args => [...]);
#   $sb->url;                       # http://127.0.0.1:PORT
#   $sb->fault({ fault => '429', retry_after => '3', path => '/directory' });
#   $sb->stats->{requests};
#   $sb->clear_faults; $sb->reset; $sb->stop;
#
# The child gets a pipe as stdin and runs with --watch-stdin: whatever way
# the test process ends (die, signal, even SIGKILL), the kernel closes the
# pipe and the sandbox exits. stop() is also called from DESTROY and END.
#
# Options of start():
#   api_keys => [KEY, ...]   passed as repeated --api-key
#   args     => [ARG, ...]   further command-line arguments
#   port     => N            use this port instead of a free one
#   verbose  => 1            pass --verbose (request log on stderr)
#   timeout  => S            seconds to wait for `listening on` (default 10)
#   python   => PATH         interpreter (default /usr/bin/python3, $HRIS_SANDBOX_PYTHON)

use strict;
use warnings;

use File::Spec;
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my %LIVE;    # child pid => pid of the process that started it (END safety net)

sub repo_root {
    # This file is <repo>/t/lib/HRIS/Sandbox.pm.
    my ($volume, $dir) = File::Spec->splitpath(File::Spec->rel2abs(__FILE__));
    my @dirs = File::Spec->splitdir($dir);
    pop @dirs while @dirs && $dirs[-1] eq '';
    splice @dirs, -3;
    return File::Spec->catpath($volume, File::Spec->catdir(@dirs), '');
}

# A port nothing listens on. Never one this process was given before:
# the kernel may hand the same port to two calls in a row (the first one
# not bound yet), and a gateway then listened twice on it (CI saw nginx
# refuse "a duplicate listen").
my %GIVEN;

sub free_port {
    for (1 .. 100) {
        my $sock = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1, ReuseAddr => 1,
        ) or die "HRIS::Sandbox: cannot find a free port: $!\n";
        my $port = $sock->sockport;
        close $sock;
        return $port unless $GIVEN{$port}++;
    }
    die "HRIS::Sandbox: no port that was not given before\n";
}

sub start {
    my ($class, $provider, %opts) = @_;
    my $script = File::Spec->catfile(repo_root(), 'sandbox', "$provider.py");
    die "HRIS::Sandbox: no sandbox provider '$provider' ($script)\n" unless -f $script;
    my $python = $opts{python} || $ENV{HRIS_SANDBOX_PYTHON}
        || (-x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3');
    my @args = @{ $opts{args} || [] };
    push @args, map { ('--api-key', $_) } @{ $opts{api_keys} || [] };
    push @args, '--verbose' if $opts{verbose};

    # A free port can be taken by someone else before the child binds it:
    # try a few times.
    my $error;
    for my $attempt (1 .. 3) {
        my $port = $opts{port} || free_port();
        my $self = eval {
            $class->_spawn($provider, $python, $script, $port, \@args, $opts{timeout} || 10);
        };
        return $self if $self;
        $error = $@;
        last if $opts{port};
    }
    die "HRIS::Sandbox: $provider did not start: $error";
}

sub _spawn {
    my ($class, $provider, $python, $script, $port, $args, $timeout) = @_;
    pipe(my $out_read, my $out_write) or die "pipe: $!\n";
    pipe(my $in_read, my $in_write) or die "pipe: $!\n";
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        close $out_read;
        close $in_write;
        open(STDOUT, '>&', $out_write) or POSIX::_exit(127);
        open(STDIN, '<&', $in_read) or POSIX::_exit(127);
        exec($python, $script, '--port', $port, '--watch-stdin', @$args) or POSIX::_exit(127);
    }
    close $out_write;
    close $in_read;
    # stdin is kept open for the child's lifetime: its EOF means "we died".
    my $self = bless {
        provider => $provider, pid => $pid, port => $port, owner => $$,
        stdout => $out_read, stdin => $in_write,
    }, $class;
    $LIVE{$pid} = $$;

    my $line = $self->_wait_listening($timeout);
    unless (defined $line) {
        my $why = $self->{exited} ? "exited with status $self->{exited}"
                                  : "no 'listening on' line in ${timeout}s";
        $self->stop;
        die "$why\n";
    }
    ($self->{port}) = $line =~ m{:(\d+)\s*$};
    $self->{http} = HTTP::Tiny->new(timeout => 10, keep_alive => 0);
    return $self;
}

# Read the child's stdout until `listening on http://HOST:PORT`.
sub _wait_listening {
    my ($self, $timeout) = @_;
    my $fh = $self->{stdout};
    my $deadline = time + $timeout;
    my $buffer = '';
    while (time < $deadline) {
        return $1 if $buffer =~ m{^(listening on http://\S+)\s*$}m;
        my $bits = '';
        vec($bits, fileno($fh), 1) = 1;
        if (select(my $ready = $bits, undef, undef, 0.1) > 0) {
            my $n = sysread($fh, $buffer, 4096, length $buffer);
            next if $n;
            sleep 0.05;            # EOF: the child is exiting; don't spin
        }
        if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
            $self->{exited} = $? || 'unknown';
            delete $LIVE{ $self->{pid} };
            $self->{pid} = undef;
            return undef;
        }
    }
    return undef;
}

sub port { $_[0]->{port} }
sub pid  { $_[0]->{pid} }
sub url  { 'http://127.0.0.1:' . $_[0]->{port} }

# -- control API --------------------------------------------------------------

sub _control {
    my ($self, $method, $path, $data) = @_;
    my %options = (headers => { 'Content-Type' => 'application/json' });
    $options{content} = encode_json($data) if defined $data;
    my $response = $self->{http}->request($method, $self->url . $path, \%options);
    die "HRIS::Sandbox: $method $path failed: $response->{status} $response->{content}\n"
        unless $response->{success};
    return decode_json($response->{content});
}

# fault(\%spec) or fault([\%spec, ...]); returns the decoded answer.
sub fault        { my ($self, $spec) = @_; $self->_control('POST', '/_sandbox/faults', $spec) }
sub faults       { $_[0]->_control('GET', '/_sandbox/faults')->{faults} }
sub clear_faults { $_[0]->_control('DELETE', '/_sandbox/faults') }
sub stats        { $_[0]->_control('GET', '/_sandbox/stats') }
sub requests     { $_[0]->_control('GET', '/_sandbox/requests')->{requests} }
sub reset        { $_[0]->_control('POST', '/_sandbox/reset') }

# -- shutdown -----------------------------------------------------------------

sub stop {
    my ($self) = @_;
    local ($?, $!, $@);        # never change the test's exit status
    my $pid = $self->{pid} or return;
    return unless $self->{owner} == $$;     # a forked child must not kill it
    _terminate($pid);
    close $self->{stdin} if $self->{stdin};
    close $self->{stdout} if $self->{stdout};
    delete $LIVE{$pid};
    $self->{pid} = undef;
    return;
}

sub _terminate {
    my ($pid) = @_;
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid || !kill(0, $pid);
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop }

# -- a provider of one fixed body ----------------------------------------------
#
#   my $sb = HRIS::Sandbox->fixed_body("$dir/body.json");
#
# Answers a token request (any path starting with /oauth2/token: HeavenHR's
# table) with a bearer token, and any other GET with the bytes of the file,
# read afresh each time: a test changes the answer without restarting
# anything. Stops like a sandbox (stop, or when the object goes).
sub fixed_body {
    my ($class, $file) = @_;
    my $dir = File::Temp::tempdir('hris-fixed-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port = free_port();
    open my $fh, '>', "$dir/provider.py" or die "provider.py: $!";
    print $fh <<"PY";
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/oauth2/token"):
            body = b'{"access_token":"t0k3n","token_type":"bearer","expires_in":3600}'
        else:
            with open("$file", "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", $port), H).serve_forever()
PY
    close $fh;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec('/usr/bin/python3', "$dir/provider.py") or POSIX::_exit(127);
    }
    $LIVE{$pid} = $$;
    my $self = bless { provider => 'fixed', pid => $pid, port => $port, owner => $$ }, $class;
    my $deadline = time + 10;
    until (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")) {
        die "HRIS::Sandbox: the fixed-body provider did not listen on $port\n"
            if time > $deadline || waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    return $self;
}

# -- a webhook receiver for tests ---------------------------------------------
#
#   my $rx = HRIS::Sandbox->receiver(statuses => [500, 200], delay => 0);
#   $rx->url;                  # http://127.0.0.1:PORT/hook
#   $rx->wait_for(2, 10);      # until 2 requests arrived (or 10 s passed)
#   $rx->received;             # [{method, path, headers => {lc name => value}, body}, ...]
#
# A forked child answers every request with the next of `statuses` (the
# last one repeats) after `delay` seconds, and appends it as one JSON line
# to a temporary file the parent reads. It exits with its parent.

sub receiver {
    my ($class, %opts) = @_;
    return HRIS::Sandbox::Receiver->start(%opts);
}

package HRIS::Sandbox::Receiver;

use File::Temp qw(tempfile);
use JSON::PP;
use Time::HiRes qw(time sleep);

sub start {
    my ($class, %opts) = @_;
    require HTTP::Daemon;
    require HTTP::Response;
    my @statuses = @{ $opts{statuses} || [200] };
    my $daemon = HTTP::Daemon->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   ReuseAddr => 1, Timeout => 0.2)
        or die "HRIS::Sandbox::Receiver: cannot listen: $!\n";
    my (undef, $file) = tempfile('hris-receiver-XXXXXX', TMPDIR => 1, UNLINK => 1);
    my $parent = $$;
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if ($pid == 0) {
        while (getppid() == $parent) {
            my $conn = $daemon->accept or next;
            $conn->timeout(5);
            while (my $request = $conn->get_request) {
                my %headers = map { (lc $_ => scalar $request->header($_)) }
                    $request->header_field_names;
                open(my $out, '>>', $file) or POSIX::_exit(1);
                print {$out} JSON::PP->new->utf8->canonical->encode({
                    method => $request->method, path => $request->uri->as_string,
                    headers => \%headers, body => $request->content,
                }), "\n";
                close $out;
                sleep $opts{delay} if $opts{delay};
                my $status = @statuses > 1 ? shift @statuses : $statuses[0];
                $conn->send_response(HTTP::Response->new($status, undef,
                    ['Content-Type' => 'text/plain', 'Content-Length' => 2], 'ok'));
            }
            $conn->close;
        }
        POSIX::_exit(0);
    }
    my $port = $daemon->sockport;
    close $daemon;
    return bless { pid => $pid, owner => $$, file => $file, port => $port }, $class;
}

sub url { 'http://127.0.0.1:' . $_[0]->{port} . '/hook' }

sub received {
    my ($self) = @_;
    open(my $in, '<', $self->{file}) or return [];
    my @got = map { decode_json($_) } grep { /\S/ } <$in>;
    close $in;
    return \@got;
}

# Wait until at least $count requests arrived; returns them.
sub wait_for {
    my ($self, $count, $seconds) = @_;
    my $deadline = time + ($seconds || 10);
    while (time < $deadline) {
        my $got = $self->received;
        return $got if @$got >= $count;
        sleep 0.05;
    }
    return $self->received;
}

sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    return unless $self->{owner} == $$;
    HRIS::Sandbox::_terminate($pid);
    $self->{pid} = undef;
}

sub DESTROY { local ($?, $!, $@); $_[0]->stop }

package HRIS::Sandbox;

END {
    local $?;
    for my $pid (keys %LIVE) {
        _terminate($pid) if $LIVE{$pid} == $$;
    }
    %LIVE = ();
}

1;
