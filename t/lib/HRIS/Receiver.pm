package HRIS::Receiver;

# A webhook receiver for the tests: an HTTP server in a forked process
# that records each request (method, path, headers, body, time) and
# answers what it is told, in order:
#
#   my $rx = HRIS::Receiver->start;          # or start(port => N)
#   $rx->plan('500', '503 3', '410', 'hang', '200');
#       # the next answers: a status, a status with Retry-After seconds,
#       # or no answer at all (the connection is held for 60 s); after
#       # the plan, 200
#   $rx->plan_for('/a', '500');              # answers for one path only
#   my @req = $rx->requests;                 # [{method, path, headers,
#                                            #   body, time}, ...]
#   $rx->wait_for(3, 20);                    # until 3 requests, or 20 s
#   $rx->stop; $rx->start;                   # down and up, same port

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use HRIS::Sandbox;

sub start {
    my ($class, %o) = @_;
    my $self = ref $class ? $class : bless {
        port => $o{port} // HRIS::Sandbox::free_port(),
        dir  => tempdir('hris-rx-XXXXXX', TMPDIR => 1, CLEANUP => 1),
    }, $class;
    my $listen = IO::Socket::INET->new(
        LocalAddr => "127.0.0.1:$self->{port}", Listen => 64, ReuseAddr => 1,
    ) or die "receiver: listen on $self->{port}: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);          # stop() ends the connections' processes too
        $SIG{CHLD} = 'IGNORE';
        while (my $c = $listen->accept) {
            my $kid = fork;
            if (defined $kid && $kid == 0) {
                close $listen;
                $self->serve($c);
                POSIX::_exit(0);
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    close $listen;
    $self->{pid} = $pid;
    $self->{owner} = $$;
    return $self;
}

sub port { $_[0]->{port} }
sub url  { "http://127.0.0.1:$_[0]->{port}" }

sub plan { my ($self, @answers) = @_; $self->plan_for('*', @answers) }

sub plan_for {
    my ($self, $path, @answers) = @_;
    open my $lock, '>>', "$self->{dir}/lock" or die $!;
    flock $lock, 2;
    open my $fh, '>>', "$self->{dir}/plan" or die $!;
    print $fh map { "$path $_\n" } @answers;
    close $fh;
    close $lock;
}

# the next answer of the plan (under a lock: connections are concurrent)
sub next_answer {
    my ($self, $path) = @_;
    local $/ = "\n";
    open my $lock, '>>', "$self->{dir}/lock" or return '200';
    flock $lock, 2;
    my @lines;
    if (open my $fh, '<', "$self->{dir}/plan") { @lines = <$fh>; close $fh; }
    my $a;
    for my $i (0 .. $#lines) {
        my ($p, $rest) = split ' ', $lines[$i], 2;
        next unless $p eq '*' || $p eq $path;
        $a = $rest;
        splice @lines, $i, 1;
        last;
    }
    open my $out, '>', "$self->{dir}/plan" or return '200';
    print $out @lines;
    close $out;
    close $lock;
    chomp $a if defined $a;
    return $a // '200';
}

sub serve {
    my ($self, $c) = @_;
    local $/ = "\r\n";
    my $line = <$c> // return;
    my ($method, $path) = split ' ', $line;
    my %h;
    while (defined(my $l = <$c>)) {
        $l =~ s/\r\n\z//;
        last if $l eq '';
        my ($k, $v) = split /:\s*/, $l, 2;
        $h{lc $k} = $v;
    }
    my $body = '';
    my $len = $h{'content-length'} // 0;
    while (length($body) < $len) {
        my $n = read($c, my $buf, $len - length $body) or last;
        $body .= $buf;
    }
    my $answer = $self->next_answer($path);
    {
        open my $lock, '>>', "$self->{dir}/lock" or die;
        flock $lock, 2;
        open my $fh, '>>', "$self->{dir}/requests" or die;
        print $fh JSON::PP->new->canonical->encode({
            method => $method, path => $path, headers => \%h, body => $body,
            time => time, answer => $answer }), "\n";
        close $fh;
        close $lock;
    }
    if ($answer eq 'hang') {
        sleep 60;
        return;
    }
    my ($status, $ra) = split ' ', $answer;
    print $c "HTTP/1.1 $status X\r\nContent-Length: 2\r\nConnection: close\r\n"
           . (defined $ra ? "Retry-After: $ra\r\n" : '') . "\r\nok";
    close $c;
}

sub requests {
    my ($self) = @_;
    local $/ = "\n";
    open my $fh, '<', "$self->{dir}/requests" or return ();
    return map { JSON::PP->new->decode($_) } <$fh>;
}

sub wait_for {
    my ($self, $n, $timeout) = @_;
    my $deadline = time + ($timeout // 20);
    while (time < $deadline) {
        my @r = $self->requests;
        return @r if @r >= $n;
        sleep 0.1;
    }
    return $self->requests;
}

sub stop {
    my ($self) = @_;
    return if defined $self->{owner} && $self->{owner} != $$;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', -$pid;
    kill 'TERM', $pid;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop }

1;
