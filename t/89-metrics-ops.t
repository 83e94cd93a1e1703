#!/usr/bin/perl
# /metrics beyond requests (issue 12): the account label an operator turns
# on (hris_metrics_account_label), the state stores' errors and Redis
# commands, and the event and webhook families, present at zero before
# anything counts them.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $json = JSON::PP->new->canonical;
my $sb = HRIS::Sandbox->start('bamboohr');
my $ACC = HRIS::Nginx::accounts($sb);
my $LOCATIONS = 'location /admin/ { hris_admin; } location = /metrics { hris_metrics; }';

# the samples of the text format: [name, {labels}, value]
sub samples {
    my ($text) = @_;
    my @s;
    for (split /\n/, $text // '') {
        next if /^#/ || !/^([a-z_]+)(?:\{(.*)\})? (\S+)$/;
        my ($name, $labels, $value) = ($1, $2 // '', $3);
        my %l = $labels =~ /([a-z_]+)="((?:[^"\\]|\\.)*)"/g;
        push @s, [ $name, \%l, $value ];
    }
    return \@s;
}

sub value {
    my ($s, $name, %want) = @_;
    my ($sum, $n) = (0, 0);
    S: for (@$s) {
        next unless $_->[0] eq $name;
        for my $k (keys %want) { next S unless ($_->[1]{$k} // "\0") eq $want{$k} }
        $sum += $_->[2];
        $n++;
    }
    return wantarray ? ($sum, $n) : $sum;
}

# scrapes until $cond holds (the other worker flushes once a second)
sub scrape_until {
    my ($ng, $cond) = @_;
    my $s;
    my $deadline = time + 15;
    while (time < $deadline) {
        $s = samples($ng->get('/metrics', key => undef)->{body});
        last if $cond->($s);
        sleep 0.3;
    }
    return $s;
}

# ---------------------------------------------------------------------------
# Off by default: no account label anywhere; the new families at zero

my $ng = HRIS::Nginx->start(accounts => $ACC, server => $LOCATIONS, workers => 2);

is($ng->unified('employees', limit => 1)->{status}, 200, 'a unified request');
my $s = scrape_until($ng, sub { value($_[0], 'hris_requests_total') >= 1 });

is(scalar(grep { exists $_->[1]{account} } @$s), 0, 'no account label by default');
is(scalar(grep { $_->[0] eq 'hris_account_requests_total' } @$s), 0,
   'nor hris_account_requests_total');

for my $store (qw(file redis)) {
    is_deeply([ value($s, 'hris_state_errors_total', store => $store) ], [0, 1],
              "hris_state_errors_total{store=\"$store\"} 0");
}
for my $r (qw(ok error unreachable)) {
    is_deeply([ value($s, 'hris_redis_commands_total', result => $r) ], [0, 1],
              "hris_redis_commands_total{result=\"$r\"} 0");
}
for my $t (qw(integrated_account.created integrated_account.deleted
              integrated_account.needs_reauth integrated_account.reactivated
              record.created record.updated record.deleted)) {
    is_deeply([ value($s, 'hris_events_total', type => $t) ], [0, 1], "hris_events_total{type=\"$t\"} 0");
}
is((value($s, 'hris_events_total', type => 'other'))[1], 0, 'type="other" only once counted');
for my $r (qw(2xx 4xx 5xx 410 no_answer)) {
    is_deeply([ value($s, 'hris_webhook_deliveries_total', result => $r) ], [0, 1],
              "hris_webhook_deliveries_total{result=\"$r\"} 0");
}
for my $c (qw(2xx 4xx 5xx)) {
    is_deeply([ value($s, 'hris_webhooks_received_total', status => $c) ], [0, 1],
              "hris_webhooks_received_total{status=\"$c\"} 0");
}
$ng->stop;

# ---------------------------------------------------------------------------
# hris_metrics_account_label on: accounts the requests resolved, by class;
# the state file that cannot be written is counted

my $state_top = tempdir('hris-state-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0711, $state_top;
my $state_dir = "$state_top/gone";
mkdir $state_dir or die "$state_dir: $!";
chmod 0777, $state_dir;     # the workers' user writes there
my $na = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb), server => $LOCATIONS,
                            workers => 2,
                            http => "hris_metrics_account_label on; "
                                  . "hris_state_file $state_dir/state.json;");

is($na->unified('employees', limit => 1)->{status}, 200, 'acme-bamboohr: 200') for 1 .. 3;
is($na->unified('no_such_resource')->{status}, 404, 'acme-bamboohr: 404');
is($na->unified('employees', account => "acct-random-$_")->{status}, 404,
   'an account id no one has: 404') for 1 .. 5;

my $res = $na->request('POST', '/admin/accounts',
    headers => { 'Content-Type' => 'application/json' },
    body => $json->encode({ id => 'acme-runtime', provider => 'bamboohr',
                            context => { subdomain => 'acme' },
                            credentials => { api_key => '0123456789abcdef0123456789abcdef01234567' },
                            base_url => $sb->url . '/api/gateway.php/acme' }));
is($res->{status}, 201, 'a run-time account created') or diag $res->{body};
is($na->unified('employees', account => 'acme-runtime', limit => 1)->{status}, 200,
   'acme-runtime: 200') for 1 .. 2;

$s = scrape_until($na, sub { value($_[0], 'hris_account_requests_total') >= 6 });
is(value($s, 'hris_account_requests_total', account => 'acme-bamboohr', status => '2xx'), 3,
   'acme-bamboohr 2xx: 3');
is(value($s, 'hris_account_requests_total', account => 'acme-bamboohr', status => '4xx'), 1,
   'acme-bamboohr 4xx: 1');
is(value($s, 'hris_account_requests_total', account => 'acme-runtime', status => '2xx'), 2,
   'a run-time account: 2xx 2');
is(scalar(grep { ($_->[1]{account} // '') =~ /random/ } @$s), 0,
   'the ids no account has are no label');
is(value($s, 'hris_account_requests_total'), 6, '6 requests of accounts, in all');
is(value($s, 'hris_state_errors_total', store => 'file'), 0, 'the state file written so far');

# the state file's directory goes: the next change cannot be written
remove_tree($state_dir);
$res = $na->request('DELETE', '/admin/accounts/acme-runtime');
is($res->{status}, 200, 'the run-time account deleted') or diag $res->{body};

$s = scrape_until($na, sub { value($_[0], 'hris_state_errors_total', store => 'file') >= 1 });
ok(value($s, 'hris_state_errors_total', store => 'file') >= 1,
   'the state file that could not be written: hris_state_errors_total{store="file"}')
    or diag $na->error_log;
is(value($s, 'hris_account_requests_total', account => '', status => '2xx'), 2,
   'the deleted account\'s requests: account=""');
is(value($s, 'hris_account_requests_total', account => 'acme-runtime'), 0, 'its id no more');
$na->stop;

# ---------------------------------------------------------------------------
# Redis: commands answered, then the connection lost

my $rd = HRIS::Redis->start;
my $nr = HRIS::Nginx->start(accounts => $ACC, server => $LOCATIONS,
                            http => 'hris_redis ' . $rd->url . ';');
my $ok;
for (1 .. 50) {
    $ok = $nr->unified('employees', limit => 1)->{status} == 200 and last;
    sleep 0.2;
}
ok($ok, 'a gateway with Redis answers');
$s = scrape_until($nr, sub { value($_[0], 'hris_redis_commands_total', result => 'ok') >= 1 });
ok(value($s, 'hris_redis_commands_total', result => 'ok') >= 1, 'Redis commands counted ok');
is(value($s, 'hris_state_errors_total', store => 'redis'), 0, 'no Redis error yet');

$rd->stop;
$nr->unified('employees', limit => 1) for 1 .. 2;
$s = scrape_until($nr, sub { value($_[0], 'hris_state_errors_total', store => 'redis') >= 1 });
ok(value($s, 'hris_state_errors_total', store => 'redis') >= 1,
   'Redis gone: hris_state_errors_total{store="redis"}') or diag $nr->error_log;
$nr->stop;

done_testing;
