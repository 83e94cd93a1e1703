#!/usr/bin/perl
# A tenant cannot exhaust the shared zone for others with run-time
# accounts (README "Threat model"): its accounts created through the
# administration API or the connect flow are capped at
# hris_tenant_accounts, and at a quarter of hris_zone_size in bytes.
# Checked:
#  - the directive takes a number of at least 1 (nginx -t);
#  - without the cap one tenant filled a small zone and every tenant got
#    500; now it gets 409 naming hris_zone_size and another tenant still
#    creates;
#  - with hris_tenant_accounts 3: the fourth create gets 409 (the CONTRACT
#    section 6 envelope, the limit in details, nothing of another tenant),
#    the error log names the tenant and the directive; the accounts file's
#    accounts do not count, and a change of one passes; another tenant
#    still creates; a delete frees a slot, and deleted accounts
#    (tombstones) stop counting;
#  - creates at once on two workers: exactly one takes the last slot;
#  - the connect flow: no link for a new account at the cap (409), one
#    for an account of its own; a completion at the cap goes back to the
#    app with error=account_limit, and the link works once a slot is free;
#  - a reload keeps the count (and may lower the cap: changes of
#    accounts over it still pass); a restart counts the state file's;
#  - with hris_redis two gateways count the fleet's accounts; the last
#    slot asked for through both at once is given once, a burst through
#    both gets exactly the free slots, a connect completion is counted
#    for the fleet too; Redis down, each gateway's own count holds.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Digest::SHA ();
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Redis;

my $J = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);
my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;    # the state file is written by the workers (user nobody)

my $CLAY = $HRIS::Nginx::PROVIDER{clayhr};
my $OTHER = $HRIS::Nginx::OTHER_KEY;
my $REDIRECT = 'http://app.example/done';
my $Q = 'resources.employees.list.query.note';    # a tenant may set it
my $LOCATIONS = 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }';

my $cl = HRIS::Sandbox->start('clayhr');
my $acc = HRIS::Nginx::accounts_for(clayhr => $cl);

sub api {
    my ($ng, $method, $path, %o) = @_;
    my %h;
    my $key = exists $o{key} ? $o{key} : $HRIS::Nginx::KEY;
    $h{Authorization} = "Bearer $key" if defined $key;
    my $body = exists $o{json} ? $J->encode($o{json}) : undef;
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = $http->request($method, $ng->url . $path,
                             { headers => \%h, defined $body ? (content => $body) : () });
    my $json = eval { $J->decode($res->{content}) };
    return { status => $res->{status}, json => $json, body => $res->{content} // '',
             headers => $res->{headers} };
}

sub clay {
    my ($id, %o) = @_;
    return { id => $id, provider => 'clayhr', base_url => $cl->url,
             context => $CLAY->{context}, credentials => $CLAY->{credentials}, %o };
}

sub create { my ($ng, $id, %o) = @_; api($ng, 'POST', '/admin/accounts', json => clay($id), %o) }
sub remove { my ($ng, $id, %o) = @_; api($ng, 'DELETE', "/admin/accounts/$id", %o) }

# until $cond->() is true, at most $secs: a deadline, not a guess of speed
sub until_true {
    my ($cond, $secs) = @_;
    my $t0 = time;
    while (time - $t0 < $secs) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

# creates at once, released together: [gateway, id] each -> statuses
sub at_once {
    my (@reqs) = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    my @pids;
    for my $q (@reqs) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $go_w;
            close $out_r;
            sysread($go_r, my $x, 1);        # EOF when the parent lets go
            my $res = create(@$q);
            syswrite $out_w, "$q->[1] $res->{status}\n";
            POSIX::_exit(0);                 # no destructors: they would stop nginx
        }
        push @pids, $pid;
    }
    close $go_r;
    close $out_w;
    sleep 0.2;
    close $go_w;
    my %st = map { split ' ' } <$out_r>;
    waitpid($_, 0) for @pids;
    return \%st;
}

# -- the directive ---------------------------------------------------------------------------

for my $c (['0', qr/"hris_tenant_accounts" must be at least 1/],
           ['-3', qr/"hris_tenant_accounts" directive invalid number/],
           ['many', qr/"hris_tenant_accounts" directive invalid number/]) {
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $acc,
        http => "hris_tenant_accounts $c->[0];")->test_config;
    isnt($rc, 0, "hris_tenant_accounts $c->[0]: nginx -t fails");
    like($out, $c->[1], '... saying why') or diag $out;
}

# -- one tenant fills a small zone: not for the others ------------------------------------

{
    my $ng = HRIS::Nginx->start(accounts => $acc, server => $LOCATIONS,
                                http => 'hris_zone_size 64k;');
    my ($n, $res) = (0);
    while ($n < 400) {
        # accounts of about 1 KB, as the README counts them
        $res = api($ng, 'POST', '/admin/accounts',
                   json => clay("acme-fill-$n", overrides => { $Q => 'x' x 700 }));
        last if $res->{status} != 201;
        $n++;
    }
    cmp_ok($n, '>', 3, "tenant acme created $n accounts in a 64k zone");
    is($res->{status}, 409, 'then its next create gets 409, not the zone\'s 500')
        or diag $res->{body};
    is($res->{json}{details}{limit}, 'hris_zone_size', 'details.limit: hris_zone_size');
    like($res->{json}{message} // '', qr/a quarter of "hris_zone_size".*delete accounts/,
         'the message names the share and what to do');
    like($ng->error_log,
         qr/\[error\].*tenant "acme" refused: the tenant's run-time accounts take its quarter of "hris_zone_size"/,
         'the error log names the tenant and the directive');

    $res = create($ng, 'globex-after-fill', key => $OTHER);
    is($res->{status}, 201, 'tenant globex still creates an account') or diag $res->{body};
    is(api($ng, 'GET', '/admin/accounts/globex-after-fill', key => $OTHER)->{status}, 200,
       'and reads it');

    # a change that makes an account bigger is held to the share; one that
    # does not passes
    $res = api($ng, 'PATCH', '/admin/accounts/acme-fill-0',
               json => { overrides => { $Q => 'x' x 4000 } });
    is($res->{status}, 409, 'acme: a PATCH that makes an account bigger: 409')
        or diag $res->{body};
    $res = api($ng, 'PATCH', '/admin/accounts/acme-fill-0',
               json => { overrides => { $Q => 'y' x 700 } });
    is($res->{status}, 200, 'a PATCH that does not: 200') or diag $res->{body};

    is(remove($ng, 'acme-fill-1')->{status}, 200, 'acme deletes one');
    is(create($ng, 'acme-fill-again')->{status}, 201, 'and creates one again');
    $ng->stop;
    unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
}

# -- hris_tenant_accounts ------------------------------------------------------------------

my $state = "$dir/state.json";
my $ng = HRIS::Nginx->start(accounts => $acc, server => $LOCATIONS, workers => 2,
                            http => "hris_tenant_accounts 3; hris_state_file $state;");

my @st = map { create($ng, "acme-$_")->{status} } 1 .. 3;
is("@st", '201 201 201', 'hris_tenant_accounts 3: acme creates 3 (its file account aside)');

my $res = create($ng, 'acme-4');
is($res->{status}, 409, 'the fourth: 409') or diag $res->{body};
is($res->{json}{statusCode}, 409, 'the envelope: statusCode');
is($res->{json}{error}, 'Conflict', 'error: Conflict');
is_deeply($res->{json}{details}, { limit => 'hris_tenant_accounts', max_accounts => 3 },
          'details: the limit and its value');
like($res->{json}{message} // '',
     qr/tenant is at its limit of 3 integrated accounts created at run time: delete one .*"hris_tenant_accounts"/,
     'the message says what to do') or diag $res->{body};
unlike($res->{body}, qr/globex/, 'nothing of another tenant in it');
like($ng->error_log,
     qr/\[error\].*integrated account "acme-4" of tenant "acme" refused: the tenant is at its limit of 3 run-time accounts, "hris_tenant_accounts"/,
     'the error log names the tenant and the directive');
is(api($ng, 'GET', '/admin/accounts/acme-4')->{status}, 404, 'no account acme-4');

$res = api($ng, 'PATCH', '/admin/accounts/acme-clayhr', json => { context => { note => 'x' } });
is($res->{status}, 200, 'at the cap, its accounts file account still changes')
    or diag $res->{body};
is(create($ng, 'acme-4')->{status}, 409, '(and does not count: still 3)');
$res = api($ng, 'PATCH', '/admin/accounts/acme-2', json => { context => { note => 'y' } });
is($res->{status}, 200, 'a PATCH of a run-time account at the cap: 200') or diag $res->{body};

@st = map { create($ng, "globex-$_", key => $OTHER)->{status} } 1 .. 3;
is("@st", '201 201 201', 'tenant globex creates its own 3');

is(remove($ng, 'acme-1')->{status}, 200, 'acme deletes one');
is(create($ng, 'acme-4')->{status}, 201, 'and creates another');
is(create($ng, 'acme-5')->{status}, 409, 'the next one: 409 again');

# deleted accounts stay as tombstones a while: they must not count
for my $round (1 .. 3) {
    my @del = map { remove($ng, $_)->{status} } qw(acme-2 acme-3 acme-4);
    my @new = map { create($ng, $_)->{status} } qw(acme-2 acme-3 acme-4);
    is("@del @new", '200 200 200 201 201 201', "round $round: 3 deleted, 3 created");
}
is(create($ng, 'acme-5')->{status}, 409, 'still at 3');

# the count is the zone's: two workers creating the last slot at once
is(remove($ng, 'acme-4')->{status}, 200, 'one slot free');
my $st = at_once(map { [$ng, "acme-race-$_"] } 1 .. 6);
is(scalar(grep { $_ == 201 } values %$st), 1, 'six creates at once on two workers: one 201')
    or diag explain $st;
is(scalar(grep { $_ == 409 } values %$st), 5, 'five 409');
my ($won) = grep { $st->{$_} == 201 } keys %$st;
is(remove($ng, $won // 'none')->{status}, 200, 'the winner deleted');
is(create($ng, 'acme-4')->{status}, 201, 'acme-4 back: 3 again');

# -- the connect flow ---------------------------------------------------------------------

sub link_for {
    my ($id) = @_;
    return api($ng, 'POST', '/admin/connect_links',
               json => { integrated_account_id => $id, provider => 'clayhr',
                         method => 'form', redirect_uri => $REDIRECT, base_url => $cl->url,
                         context => $CLAY->{context} });
}

$res = link_for('acme-form');
is($res->{status}, 409, 'at the cap, a connect link for a new account: 409')
    or diag $res->{body};
is($res->{json}{details}{limit}, 'hris_tenant_accounts', '(the same error)');
like($ng->error_log,
     qr/\[error\].*no connect link for account "acme-form" of tenant "acme": .*"hris_tenant_accounts"/,
     'the error log names the tenant and the directive');
$res = link_for('acme-3');
is($res->{status}, 201, 'one that connects an account of its own again: 201') or diag $res->{body};

# a link made while there was room, completed when there is none
is(remove($ng, 'acme-2')->{status}, 200, 'a slot freed');
$res = link_for('acme-form');
is($res->{status}, 201, 'a connect link for a new account') or diag $res->{body};
my $link = $res->{json}{result}{url} // 'http://127.0.0.1:1/none';
is(create($ng, 'acme-2')->{status}, 201, 'the slot taken through the API meanwhile');

my $post = sub {
    my $r = $http->request('POST', $link,
        { headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
          content => 'api_key=' . HRIS::Nginx::uri_escape($CLAY->{credentials}{api_key}) });
    return { status => $r->{status}, location => $r->{headers}{location} // '' };
};
my $back = $post->();
like($back->{status}, qr/^30[23]$/, 'its form posted at the cap: back to the app');
like($back->{location}, qr/^\Q$REDIRECT\E\?.*status=error/, 'status=error');
like($back->{location}, qr/[?&]error=account_limit\b/, 'error=account_limit');
is(api($ng, 'GET', '/admin/accounts/acme-form')->{status}, 404, 'no account made');
like($ng->error_log, qr/"acme-form" of tenant "acme" refused: .*"hris_tenant_accounts"/,
     'the error log says why');

is(remove($ng, 'acme-2')->{status}, 200, 'a slot freed');
$back = $post->();
like($back->{location}, qr/status=connected/, 'the same link connects now')
    or diag $back->{location};
is(api($ng, 'GET', '/admin/accounts/acme-form')->{status}, 200, 'its account is there');
is(create($ng, 'acme-2')->{status}, 409, 'and counts: 3 again');

# -- reload and restart -------------------------------------------------------------------

$ng->reload(http => "hris_tenant_accounts 2; hris_state_file $state;");
ok(until_true(sub {
       (create($ng, 'acme-2')->{json}{details}{max_accounts} // 0) == 2 }, 10),
   'a reload to hris_tenant_accounts 2: creates are refused with the new cap');
$res = api($ng, 'PATCH', '/admin/accounts/acme-3', json => { context => { note => 'z' } });
is($res->{status}, 200, 'over the lowered cap, a change of an account still passes')
    or diag $res->{body};
is(remove($ng, 'acme-3')->{status}, 200, 'a delete (2 left)');
is(create($ng, 'acme-3')->{status}, 409, 'the zone kept the count: 2 of 2, 409');

$ng->reload(http => "hris_tenant_accounts 3; hris_state_file $state;");
ok(until_true(sub { create($ng, 'acme-3')->{status} == 201 }, 10),
   'back to 3: one more');
is(create($ng, 'acme-6')->{status}, 409, 'and no more');

ok(until_true(sub {
       my $s = eval { local (@ARGV, $/) = ($state); $J->decode(<>) };
       $s && $s->{accounts} && $s->{accounts}{'acme-3'} }, 10),
   'the state file has the accounts');
$ng->stop;
$ng->start;
is(create($ng, 'acme-6')->{status}, 409, 'after a restart the state file\'s accounts count');
is(create($ng, 'globex-4', key => $OTHER)->{status}, 409, 'globex\'s 3 count too');
is(remove($ng, 'globex-1', key => $OTHER)->{status}, 200, 'globex deletes one');
is(create($ng, 'globex-4', key => $OTHER)->{status}, 201, 'and creates one');
$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

# -- a fleet (hris_redis): the gateways count the fleet's accounts --------------------------

{
    my $rd = HRIS::Redis->start;
    my @gw = map {
        HRIS::Nginx->start(accounts => $acc, workers => 2, server => $LOCATIONS,
                           http => 'hris_tenant_accounts 3; hris_redis ' . $rd->url . ';')
    } 1 .. 2;
    my ($A, $B) = @gw;
    my $seen = sub {
        my ($g, $id, $want) = @_;
        until_true(sub { api($g, 'GET', "/admin/accounts/$id")->{status} == $want }, 10);
    };

    is(create($A, 'acme-f1')->{status}, 201, 'gateway A: acme creates one');
    is(create($A, 'acme-f2')->{status}, 201, 'and another');
    ok($seen->($B, 'acme-f2', 200), 'gateway B has them');
    is(create($B, 'acme-f3')->{status}, 201, 'B: the third');
    $res = create($B, 'acme-f4');
    is($res->{status}, 409, 'B: the fourth, 409 (A\'s two count at B)') or diag $res->{body};
    ok($seen->($A, 'acme-f3', 200), 'A has B\'s account');
    is(create($A, 'acme-f4')->{status}, 409, 'A: 409 too (B\'s counts at A)');
    is(create($A, 'globex-f1', key => $OTHER)->{status}, 201, 'globex creates at A');

    is(remove($B, 'acme-f1')->{status}, 200, 'B deletes one of A\'s');
    ok($seen->($A, 'acme-f1', 404), 'A sees the delete');
    is(create($A, 'acme-f4')->{status}, 201, 'A: a slot is free');
    # B must have had it before its 404 below means the delete reached it
    ok($seen->($B, 'acme-f4', 200), 'B has it');

    # the last slot through both at once: the fleet's count in Redis
    # gives it once
    is(remove($A, 'acme-f4')->{status}, 200, 'the slot freed again');
    ok($seen->($B, 'acme-f4', 404), 'B sees it');
    my $st = at_once(map { ([$A, "acme-fa$_"], [$B, "acme-fb$_"]) } 1 .. 3);
    is(scalar(grep { $_ == 201 } values %$st), 1, 'six creates through A and B at once: one 201')
        or diag explain $st;
    is(scalar(grep { $_ == 409 } values %$st), 5, 'five 409') or diag explain $st;
    my ($win) = grep { $st->{$_} == 201 } keys %$st;
    ok($seen->($A, $win // 'none', 200) && $seen->($B, $win // 'none', 200),
       'the winner reaches both');
    like($A->error_log . $B->error_log,
         qr/\[error\].*of tenant "acme" refused: the tenant is at its limit for the fleet, "hris_tenant_accounts"/,
         'the error log says the fleet\'s limit refused it');

    # a burst of creates of a tenant with room for two, through both at once
    is(remove($B, $win // 'none')->{status}, 200, 'the winner deleted');
    is(remove($A, 'acme-f3')->{status}, 200, 'and another: two free');
    ok($seen->($A, $win // 'none', 404) && $seen->($B, 'acme-f3', 404), 'both see it');
    $st = at_once(map { ([$A, "acme-ga$_"], [$B, "acme-gb$_"]) } 1 .. 4);
    is(scalar(grep { $_ == 201 } values %$st), 2, 'eight creates at once: two 201')
        or diag explain $st;
    for my $id (grep { $st->{$_} == 201 } sort keys %$st) {
        ok($seen->($A, $id, 200) && $seen->($B, $id, 200), "$id reaches both");
    }

    # the connect flow counts for the fleet too
    ok(until_true(sub { create($B, 'acme-f9')->{status} == 409 }, 5), 'B: at the cap');
    is(remove($A, 'acme-f2')->{status}, 200, 'a slot freed through A');
    ok($seen->($B, 'acme-f2', 404), 'B sees it');
    $res = api($B, 'POST', '/admin/connect_links',
               json => { integrated_account_id => 'acme-fform', provider => 'clayhr',
                         method => 'form', redirect_uri => $REDIRECT, base_url => $cl->url,
                         context => $CLAY->{context} });
    is($res->{status}, 201, 'a connect link through B') or diag $res->{body};
    my $link = $res->{json}{result}{url} // 'http://127.0.0.1:1/none';
    is(create($A, 'acme-f2')->{status}, 201, 'the slot taken through A meanwhile');
    my $r = $http->request('POST', $link,
        { headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
          content => 'api_key=' . HRIS::Nginx::uri_escape($CLAY->{credentials}{api_key}) });
    like($r->{headers}{location} // '', qr/[?&]error=account_limit\b/,
         'its completion through B at once: error=account_limit') or diag $r->{content};

    # Redis forgot the count (emptied, or accounts from before it was kept):
    # changes of existing accounts pass, the zones still cap creates
    $rd->cli('DEL', 'hris:{accounts}:owners', 'hris:{accounts}:tenants');
    my ($one) = grep { $st->{$_} == 201 } keys %$st;
    $res = api($B, 'PATCH', '/admin/accounts/' . ($one // 'none'),
               json => { context => { note => 'x' } });
    is($res->{status}, 200, 'count forgotten: a change of an account at the cap passes')
        or diag $res->{body};
    ok($seen->($B, 'acme-f2', 200), 'B has all of acme\'s accounts');
    is(create($B, 'acme-f7')->{status}, 409, 'B\'s zone still refuses a create');
    # (the refused create's claim is given back after its answer)
    my $n = sub { $rd->cli('HGET', 'hris:{accounts}:tenants',
                           substr(Digest::SHA::sha256_hex('acme'), 0, 16) . ':n') // 0 };
    ok(until_true(sub { $n->() == 1 }, 5),
       'the changed account is counted again, the refused one not') or diag $n->();

    # Redis down: each gateway's own count holds
    $rd->stop;
    is(remove($A, 'acme-f2')->{status}, 200, 'Redis down: a delete at A');
    is(create($A, 'acme-f2')->{status}, 201, 'a create at A, counted by A alone');
    is(create($A, 'acme-f8')->{status}, 409, 'A\'s own count still caps');
    like($A->error_log, qr/could not count the tenant's run-time accounts for the fleet: this gateway's count holds alone/,
         'the error log says the fleet\'s count was not used');
    $_->stop for @gw;
    unlike($_->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert') for @gw;
}

done_testing;
