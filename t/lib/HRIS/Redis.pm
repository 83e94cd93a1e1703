package HRIS::Redis;

# A private redis-server for a test: a free port on 127.0.0.1 (and a unix
# socket if asked), a temporary directory, no persistence. Never the
# system's Redis.
#
#   my $rd = HRIS::Redis->start;               # or (password => 'pw', unix => 1,
#                                              #     args => [more redis-server args])
#   $rd->url;                                  # redis://127.0.0.1:PORT
#   $rd->socket;                               # the unix socket's path
#   $rd->cli('GET', 'k');                      # a reply: string, number,
#                                              # undef (nil), [array];
#                                              # an error reply dies
#   $rd->cli({ db => 2 }, 'GET', 'k');         # in another database
#   $rd->stop;  $rd->restart;                  # the same port again, empty
#   $rd->log;                                  # redis-server's log

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use HRIS::Sandbox;

our $SERVER = $ENV{HRIS_REDIS_SERVER} || '/usr/bin/redis-server';

my %LIVE;       # pid => the process that started it
my %REAPED;     # pids END stopped: their objects' DESTROY has nothing to do

sub start {
    my ($class, %opts) = @_;
    my $self = bless { opts => \%opts }, $class;
    $self->{dir} = tempdir('hris-redis-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{HRIS_KEEP});
    chmod 0755, $self->{dir};                  # nginx's workers reach the socket
    $self->{port} = $opts{port} // HRIS::Sandbox::free_port();
    $self->{socket} = "$self->{dir}/redis.sock" if $opts{unix};
    $self->run;
    return $self;
}

sub run {
    my ($self) = @_;
    my $o = $self->{opts};
    die "HRIS::Redis: $SERVER is missing: run 'make deps' (Debian package redis-server)\n"
        unless -x $SERVER;
    my @args = ('--port', $self->{port}, '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'no', '--dir', $self->{dir}, '--daemonize', 'no',
                '--logfile', "$self->{dir}/redis.log", '--protected-mode', 'no');
    push @args, '--requirepass', $o->{password} if defined $o->{password};
    push @args, '--unixsocket', $self->{socket}, '--unixsocketperm', '777' if $self->{socket};
    push @args, @{ $o->{args} // [] };
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/stdout.log";
        open STDERR, '>&', \*STDOUT;
        exec $SERVER, @args;
        exit 127;
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    $LIVE{$pid} = $$;

    my $deadline = time + 10;
    while (time < $deadline) {
        my $ok = eval { $self->cli('PING') eq 'PONG' };
        return $self if $ok;
        die "redis-server exited:\n" . $self->log if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    die "redis-server did not answer on $self->{port}:\n" . $self->log;
}

sub port   { $_[0]->{port} }
sub socket { $_[0]->{socket} }
sub dir    { $_[0]->{dir} }
sub url    { 'redis://127.0.0.1:' . $_[0]->{port} }

sub log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/redis.log" or return '';
    local $/;
    return <$fh>;
}

sub stop {
    my ($self) = @_;
    local ($?, $!, $@);        # never change the test's exit status
    return if defined $self->{owner} && $self->{owner} != $$;
    my $pid = delete $self->{pid} or return;
    return if delete $REAPED{$pid};
    delete $LIVE{$pid};
    kill 'TERM', $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# stopped, then started on the same port and socket: empty (no persistence)
sub restart {
    my ($self) = @_;
    $self->stop;
    $self->run;
    return $self;
}

# One command on a connection of its own: cli([{ db => N, password => P },] CMD, ARGS...)
sub cli {
    my ($self, @cmd) = @_;
    my $o = ref $cmd[0] eq 'HASH' ? shift @cmd : {};
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}", Timeout => 5)
        or die "HRIS::Redis: cannot connect to $self->{port}: $!\n";
    my $password = exists $o->{password} ? $o->{password} : $self->{opts}{password};
    my @pre;
    push @pre, ['AUTH', $password] if defined $password;
    push @pre, ['SELECT', $o->{db}] if $o->{db};
    for my $c (@pre, \@cmd) {
        print $s encode(@$c);
    }
    my @replies = map { read_reply($s) } 0 .. $#pre + 1;
    close $s;
    for my $r (@replies) {
        die "redis: $r->{error}\n" if ref $r eq 'HASH';
    }
    return $replies[-1];
}

sub encode {
    my (@args) = @_;
    return join '', '*' . scalar(@args) . "\r\n",
                map { '$' . length($_) . "\r\n$_\r\n" } @args;
}

sub read_line {
    my ($s) = @_;
    local $/ = "\r\n";
    my $line = <$s>;
    die "HRIS::Redis: connection closed\n" unless defined $line;
    $line =~ s/\r\n\z//;
    return $line;
}

sub read_reply {
    my ($s) = @_;
    my $line = read_line($s);
    my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $type eq '+';
    return { error => $rest } if $type eq '-';
    return 0 + $rest if $type eq ':';
    if ($type eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($s, $buf, $rest + 2 - length($buf), length $buf);
            die "HRIS::Redis: connection closed\n" unless $n;
        }
        return substr($buf, 0, $rest);
    }
    if ($type eq '*') {
        return undef if $rest < 0;
        return [ map { read_reply($s) } 1 .. $rest ];
    }
    die "HRIS::Redis: not RESP: $line\n";
}

sub DESTROY { $_[0]->stop }

END {
    local $?;
    for my $pid (keys %LIVE) {
        next unless $LIVE{$pid} == $$;
        kill 'TERM', $pid;
        waitpid($pid, 0);
        $REAPED{$pid} = 1;
    }
}

1;
