#!/usr/bin/perl
# The worker never blocks on a provider: with one worker process, a request
# whose provider is slow does not hold up others; clients that go away
# cancel their upstream calls cleanly; many requests run at once; a
# graceful quit lets requests in flight finish.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $tmp = tempdir('hris-async-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# The sandbox prints a traceback for every answer it cannot deliver (the
# point of this test): keep that out of the TAP output.
my $sb = do {
    open my $save, '>&', \*STDERR or die;
    open STDERR, '>', "$tmp/sandbox.err" or die;
    my $s = HRIS::Sandbox->start('bamboohr');
    open STDERR, '>&', $save or die;
    $s;
};

my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb), workers => 1,
                            location => 'hris_retry_backoff 10ms;');

my $ACME = 'integrated_account_id=acme-bamboohr';
my $TYPES = '/v1/meta/time_off/types';

# A request on its own connection, not waited for.
sub send_request {
    my ($ng, $path, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ng->port, Proto => 'tcp')
        or die "connect: $!";
    $s->autoflush(1);
    my $key = exists $o{key} ? $o{key} : $HRIS::Nginx::KEY;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . (defined $key ? "Authorization: Bearer $key\r\n" : '') . "\r\n";
    return { sock => $s, buf => '', path => $path };
}

# Reads every pending answer to its end (Connection: close); calls
# $on_done->($req) as each completes. Returns the requests in the order
# they completed.
sub wait_all {
    my ($reqs, $timeout, $on_done) = @_;
    my $sel = IO::Select->new(map { $_->{sock} } @$reqs);
    my %by = map { fileno($_->{sock}) => $_ } @$reqs;
    my @order;
    my $deadline = time + $timeout;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(0.5)) {
            my $req = $by{ fileno $s };
            my $n = sysread($s, $req->{buf}, 65536, length $req->{buf});
            next if $n;
            $sel->remove($s);
            close $s;
            parse($req);
            push @order, $req;
            $on_done->($req) if $on_done;
        }
    }
    return @order;
}

sub parse {
    my ($req) = @_;
    my ($head, $body) = split /\r\n\r\n/, $req->{buf}, 2;
    ($req->{status}) = ($head // '') =~ m{^HTTP/1\.[01] (\d{3})};
    $req->{status} //= 0;
    $req->{body} = $body;
    $req->{json} = eval { JSON::PP->new->decode($body // '') };
}

sub upstream_hits {
    my ($substr) = @_;
    my $by = $sb->stats->{by_path};
    my $n = 0;
    $n += $by->{$_} for grep { index($_, $substr) >= 0 } keys %$by;
    return $n;
}

sub wait_upstream {
    my ($substr, $want) = @_;
    my $deadline = time + 10;
    sleep 0.01 while upstream_hits($substr) < $want && time < $deadline;
    return upstream_hits($substr) >= $want;
}

# -- (a) one slow provider call does not hold up the worker ---------------------

subtest 'a slow upstream call does not block the worker' => sub {
    $sb->reset;
    $sb->fault({ fault => 'slow', delay_ms => 3000, path => $TYPES });
    my $a = send_request($ng, "/unified/hris/timeoff_types?$ACME");
    ok(wait_upstream($TYPES, 1), 'request A is at the (slow) provider');
    my $b = send_request($ng, "/unified/hris/employees?$ACME&limit=5");
    my $a_done_when_b_done;
    my @order = wait_all([$a, $b], 20, sub {
        $a_done_when_b_done = defined $a->{status} if $_[0] == $b;
    });
    is(scalar @order, 2, 'both answered');
    is($b->{status}, 200, 'B: 200');
    is($b->{json} && $b->{json}{result_count}, 5, 'B: its records');
    is($a->{status}, 200, 'A: 200 once the provider answered');
    ok($a->{json} && @{ $a->{json}{result} }, 'A: its records');
    ok($order[0] == $b, 'B completed before A');
    ok(!$a_done_when_b_done, 'A was still in flight when B completed');
};

# -- (c) many requests at once ----------------------------------------------------

subtest '50 concurrent requests' => sub {
    $sb->reset;
    my ($all) = $ng->walk('employees', limit => 100, remote_data => 'false');
    my @ids = map { $_->{id} } @$all;
    # every upstream call is held 800 ms: they can only overlap, not queue
    $sb->reset;
    $sb->fault({ fault => 'slow', delay_ms => 800, count => -1, path => '/v1/' });
    my @reqs = map {
        my $req = send_request($ng, "/unified/hris/employees?$ACME&remote_data=false&limit=$_");
        $req->{limit} = $_;
        $req;
    } 1 .. 50;
    my $seen_at_first;
    my @done = wait_all(\@reqs, 30, sub { $seen_at_first //= $sb->stats->{requests} });
    is(scalar @done, 50, 'all 50 answered');
    my @bad = grep {
        $_->{status} != 200 || !$_->{json} || $_->{json}{result_count} != $_->{limit}
        || join(',', map { $_->{id} } @{ $_->{json}{result} })
           ne join(',', @ids[0 .. $_->{limit} - 1])
    } @reqs;
    is(scalar @bad, 0, 'each is 200 with exactly its first `limit` employees')
        or diag(join "\n", map { "limit $_->{limit}: $_->{status}" } @bad[0 .. 4]);
    is($seen_at_first, 50, 'all 50 upstream calls were out before the first answer came back');
    $sb->clear_faults;
};

# -- (b) clients that go away -----------------------------------------------------

subtest 'client aborts' => sub {
    $sb->reset;
    $sb->fault([
        { fault => 'slow', delay_ms => 600, count => -1, path => $TYPES },
        # a 503 with Retry-After: the call then waits on a retry timer
        { fault => '503', retry_after => '1', count => -1, path => '/v1/meta/lists' },
        { fault => 'slow', delay_ms => 600, count => -1, path => '/v1/employees/directory' },
    ]);
    my %kind = (
        0 => "/unified/hris/timeoff_types?$ACME",            # upstream call in flight
        1 => "/unified/hris/groups?$ACME",                   # waiting to retry
        2 => "/proxy/v1/employees/directory?$ACME",          # proxy call in flight
    );
    my %count;
    for my $i (0 .. 19) {
        my $k = $i % 3;
        my $req = send_request($ng, $kind{$k});
        $count{$k}++;
        sleep 0.2;
        close $req->{sock};
    }
    # long enough for any retry that should not happen (Retry-After 1)
    sleep 1.3;
    is(upstream_hits('/v1/meta/lists'), $count{1},
       'an aborted request waiting to retry never calls out again');
    is(upstream_hits($TYPES), $count{0}, 'one upstream call per aborted request');
    $sb->clear_faults;

    my $res = $ng->unified('employees', limit => 3);
    is($res->{status}, 200, 'nginx still serves after 20 aborts');
    is($ng->unified('groups')->{status}, 200, 'and the endpoints that were aborted');
    my @closed = $ng->error_log =~ /client prematurely closed connection/g;
    is(scalar @closed, 20, 'every abort was noticed while the call was pending');
};

$ng->stop;
ok(!$ng->{stop_timed_out}, 'graceful quit completed');
my $log = $ng->error_log;
unlike($log, qr/exited on signal/, 'the worker never crashed');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert, crit or emerg in the error log')
    or diag(join '', grep { /\[(alert|crit|emerg)\]/ } split /^/, $log);
unlike($log, qr/open socket .* left in connection/, 'no connection leaked');

# -- (d) a graceful quit waits for requests in flight --------------------------------

subtest 'graceful quit with requests in flight' => sub {
    my $ng2 = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));
    $sb->reset;
    $sb->fault([
        { fault => 'slow', delay_ms => 1500, path => $TYPES },
        { fault => '503', retry_after => '1', path => '/v1/meta/lists' },
    ]);
    my $a = send_request($ng2, "/unified/hris/timeoff_types?$ACME");
    my $b = send_request($ng2, "/unified/hris/groups?$ACME");
    ok(wait_upstream($TYPES, 1) && wait_upstream('/v1/meta/lists', 1),
       'both requests are at the provider');
    $ng2->stop;    # SIGQUIT, then waits for the master to exit
    ok(!$ng2->{stop_timed_out}, 'nginx quit by itself');
    wait_all([$a, $b], 10);
    is($a->{status}, 200, 'the slow request in flight was answered');
    ok($a->{json} && @{ $a->{json}{result} }, 'with its records');
    is($b->{status}, 200, 'the request waiting to retry was retried and answered');
    is(upstream_hits('/v1/meta/lists'), 2, '(after its retry)');
    my $log2 = $ng2->error_log;
    unlike($log2, qr/\[(alert|crit|emerg)\]/, 'no alerts')
        or diag(join '', grep { /\[(alert|crit|emerg)\]/ } split /^/, $log2);
    unlike($log2, qr/left in connection/, 'no connection left open');
};

done_testing;
