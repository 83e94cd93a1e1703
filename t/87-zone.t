#!/usr/bin/perl
# The shared memory zone (src/ngx_http_hris_shm.c) and what it keeps:
#  - a rate window costs the same whatever the account's limit: a tenant's
#    accounts with rate_limit.calls 10000 do not take the zone from
#    another tenant's OAuth refresh and admin writes;
#  - a deleted account's state goes with it; idle windows make room;
#  - a really full zone is an error that names hris_zone_size, in the
#    answer and in the error log;
#  - a rotated refresh token is kept even when the access token that came
#    with it cannot be (longer than the zone keeps);
#  - the state file keeps the rotation of an account not used since the
#    last start, and a write that failed is done again by itself;
#  - credentials a provider refused are not sent again for
#    hris_credentials_cooldown (the client gets 401 credentials_rejected
#    at once) unless they change;
#  - a reload keeps the zone; one onto a zone of another layout (another
#    build of the module) is refused, asking for a restart, and the
#    restart keeps the state file's content.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::OAuth;

my $J = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30);
my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;    # the state file is written by the workers (user nobody)

my $ADMIN = 'location /admin/ { hris_admin; }';
my $PEOPLE_KEY = $HRIS::Nginx::PROVIDER{peoplehr}{credentials}{api_key};
my $BAMBOO_KEY = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};

sub control { HRIS::OAuth::control(@_) }
sub grant   { HRIS::OAuth::grant(@_) }

sub oauth_account {
    my ($sb, $tok, %o) = @_;
    return {
        id => $o{id} // 'globex-oauth', tenant => $o{tenant} // 'globex', provider => 'bamboohr',
        context => { subdomain => 'globex' }, base_url => $sb->url,
        token_url => $sb->url . '/token.php?request=token',
        credentials => HRIS::OAuth::credentials($tok, %o),
    };
}

sub refreshes { HRIS::OAuth::refreshes(@_) }

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

sub people_account {
    my ($sb, $id, %o) = @_;
    return { id => $id, provider => 'peoplehr', base_url => $sb->url,
             credentials => { api_key => $PEOPLE_KEY }, %o };
}

sub read_state {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return eval { $J->decode(<$fh>) };
}

my $people = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);
my $bamboo = HRIS::Sandbox->start('bamboohr');

# -- rate windows of calls 10000 do not exhaust the zone ------------------------------------

{
    my $tok = grant($bamboo);
    my $acc = HRIS::Nginx::accounts_for(peoplehr => $people);
    push @{ $acc->{accounts} }, oauth_account($bamboo, $tok);
    my $ng = HRIS::Nginx->start(accounts => $acc, server => $ADMIN,
                                http => "hris_zone_size 64k; hris_state_file $dir/a.json;");

    my @created = map {
        api($ng, 'POST', '/admin/accounts',
            json => people_account($people, "acme-big-$_",
                                   rate_limit => { calls => 10000, per => '60s' }))->{status}
    } 1 .. 12;
    is("@created", join(' ', (201) x 12), 'tenant acme: 12 accounts with rate_limit.calls 10000');

    my @used = map {
        $ng->unified('employees', account => "acme-big-$_", limit => 1)->{status}
    } 1 .. 12;
    is("@used", join(' ', (200) x 12), 'each one called: 12 rate windows in a 64k zone')
        or diag $ng->error_log;

    control($bamboo, '/_sandbox/oauth/expire', { all => JSON::PP::true });
    my $before = refreshes($bamboo);
    my $res = $ng->unified('employees', account => 'globex-oauth', limit => 1,
                           key => $HRIS::Nginx::OTHER_KEY);
    is($res->{status}, 200, 'tenant globex: its OAuth account refreshes its token')
        or diag $res->{body};
    is(refreshes($bamboo), $before + 1, '(one refresh)');

    $res = api($ng, 'POST', '/admin/accounts', key => $HRIS::Nginx::OTHER_KEY,
               json => people_account($people, 'globex-people'));
    is($res->{status}, 201, 'and an admin write of globex works') or diag $res->{body};
    $res = $ng->unified('employees', account => 'globex-people', limit => 1,
                        key => $HRIS::Nginx::OTHER_KEY);
    is($res->{status}, 200, 'the account it wrote answers');
    $ng->stop;
    unlike($ng->error_log, qr/hris_zone_size|\[(alert|crit|emerg)\]/, 'no zone error, no alert');
}

# -- delete, idle, full ---------------------------------------------------------------------

{
    my $acc = HRIS::Nginx::accounts_for(peoplehr => $people);
    for my $i (1 .. 60) {
        push @{ $acc->{accounts} }, { %{ people_account($people, "acme-hour-$i",
                                         rate_limit => { calls => 10000, per => '1h' }) },
                                      tenant => 'acme' };
        push @{ $acc->{accounts} }, { %{ people_account($people, "acme-brief-$i",
                                         rate_limit => { calls => 10000, per => '200ms' }) },
                                      tenant => 'acme' };
    }
    my $ng = HRIS::Nginx->start(accounts => $acc, server => $ADMIN,
                                http => 'hris_zone_size 32k;');

    # a deleted account's window goes with it
    my $one = people_account($people, 'acme-once', rate_limit => { calls => 1, per => '1h' });
    is(api($ng, 'POST', '/admin/accounts', json => $one)->{status}, 201, 'an account of 1 call an hour');
    is($ng->unified('employees', account => 'acme-once', limit => 1)->{status}, 200, 'its call');
    my $res = $ng->unified('employees', account => 'acme-once', limit => 1);
    is($res->{status}, 429, 'the next one waits an hour: 429');
    is(api($ng, 'DELETE', '/admin/accounts/acme-once')->{status}, 200, 'DELETE');
    is(api($ng, 'POST', '/admin/accounts', json => $one)->{status}, 201, 'created again');
    $res = $ng->unified('employees', account => 'acme-once', limit => 1);
    is($res->{status}, 200, 'a new account: the deleted one\'s window went with it')
        or diag $res->{body};

    # windows whose calls have left them make room, oldest first
    my @status;
    for my $i (1 .. 60) {
        push @status, $ng->unified('employees', account => "acme-brief-$i", limit => 1)->{status};
        sleep 0.25 unless $i % 10;
    }
    is(scalar(grep { $_ == 200 } @status), 60,
       '60 accounts with windows of 200 ms in a 32k zone: all answered') or diag "@status";

    # windows of an hour must stay: the zone fills up
    my $full;
    for my $i (1 .. 60) {
        $res = $ng->unified('employees', account => "acme-hour-$i", limit => 1);
        next if $res->{status} == 200;
        $full = $res;
        last;
    }
    ok($full, 'windows of an hour fill a 32k zone');
    is($full && $full->{status}, 500, 'the zone full: 500');
    like($full && $full->{json}{message} // '', qr/shared memory zone is full.*"hris_zone_size"/,
         'the message names hris_zone_size') or diag $full && $full->{body};
    like($ng->error_log, qr/\[error\].*shared memory zone.*hris_zone_size/,
         'the error log says so too');
    $ng->stop;
    unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
}

# -- an access token the zone cannot keep: its refresh token is kept --------------------------

{
    my $big = HRIS::Sandbox->start('bamboohr', args => ['--access-token-bytes', '5000']);
    my $tok = grant($big);
    my $state = "$dir/big.json";
    my $ng = HRIS::Nginx->start(
        accounts => { api_keys => [ { key => $HRIS::Nginx::KEY, tenant => 'acme' } ],
                      accounts => [ oauth_account($big, $tok, id => 'acme-big', tenant => 'acme',
                                                  expires_at => time - 10) ] },
        http => "hris_state_file $state;");
    my $res = $ng->unified('employees', account => 'acme-big', limit => 1);
    is($res->{status}, 502, 'a 5000-byte access token: 502') or diag $res->{body};
    like($res->{json}{message} // '', qr/access token is \d+ bytes long, more than the 4096/,
         'saying how long it is');
    is(refreshes($big), 1, 'after one refresh');
    sleep 0.5;
    my $rotated = (read_state($state) // {})->{tokens}{'acme-big'}{refresh_token};
    my $grants = control($big, '/_sandbox/oauth/grants');
    my ($active) = map { $_->{refresh_token} }
                   grep { $_->{state} eq 'active' } @{ $grants->{refresh_tokens} };
    ok($rotated && $rotated ne $tok->{refresh_token}, 'the state file has the rotated refresh token');
    is($rotated, $active, '... the one the provider holds valid');
    $res = $ng->unified('employees', account => 'acme-big', limit => 1);
    is($res->{status}, 502, 'the next call refreshes with it: 502 again, not needs_reauth')
        or diag $res->{body};
    ok(!($res->{json}{details} // {})->{needs_reauth}, 'the account does not need re-authorization');
    is(refreshes($big), 2, 'a second refresh');
    $grants = control($big, '/_sandbox/oauth/grants');
    is(scalar(grep { $_->{state} eq 'active' } @{ $grants->{refresh_tokens} }), 1,
       'the provider has one active refresh token, none refused');
    $ng->stop;
    my $log = $ng->error_log;
    my @tokens = ((map { $_->{access_token} } @{ $grants->{access_tokens} }),
                  (map { $_->{refresh_token} } @{ $grants->{refresh_tokens} }));
    is(scalar(grep { index($log, substr($_, 0, 40)) >= 0 } @tokens), 0, 'no token in the error log');
    $big->stop;
}

# -- the state file keeps what the zone has not touched since the start ------------------------

{
    my $sb = HRIS::Sandbox->start('bamboohr');
    my $tok = grant($sb);
    my $state = "$dir/keep.json";
    my %start = (server => $ADMIN, http => "hris_state_file $state;");
    my $acc = HRIS::Nginx::accounts_for(peoplehr => $people);
    push @{ $acc->{accounts} }, oauth_account($sb, $tok, id => 'acme-oauth', tenant => 'acme');

    my $ng = HRIS::Nginx->start(accounts => $acc, %start);
    control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
    is($ng->unified('employees', account => 'acme-oauth', limit => 1)->{status}, 200,
       'an OAuth account refreshed (the refresh token rotated)');
    $ng->stop;

    $ng->start;
    is(api($ng, 'POST', '/admin/accounts', json => people_account($people, 'acme-later'))->{status},
       201, 'after a restart, another change writes the state file');
    sleep 0.5;
    my $st = read_state($state) // {};
    ok($st->{tokens}{'acme-oauth'}{refresh_token}, 'which still has the unused account\'s rotation');
    ok($st->{accounts}{'acme-later'}, 'and the change');
    $ng->stop;

    $ng->start;
    control($sb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
    my $res = $ng->unified('employees', account => 'acme-oauth', limit => 1);
    is($res->{status}, 200, 'another restart: the rotated refresh token still works')
        or diag $res->{body};
    $ng->stop;
}

# -- a write of the state file that fails is done again ------------------------------------------

{
    my $sub = "$dir/locked";
    mkdir $sub;
    chmod 0555, $sub;
    my $state = "$sub/state.json";
    my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(peoplehr => $people),
                                server => $ADMIN, http => "hris_state_file $state;");
    is(api($ng, 'POST', '/admin/accounts', json => people_account($people, 'acme-saved'))->{status},
       201, 'a change while the state file\'s directory is not writable');
    sleep 0.5;
    ok(!-e $state, 'the state file could not be written');
    like($ng->error_log, qr/\[error\].*hris: .*\Q$sub\E.*failed.*\(13: Permission denied\)/,
         'the error log says so at level error, with the file and errno');
    chmod 0777, $sub;
    my $deadline = time + 8;
    sleep 0.2 while !-e $state && time < $deadline;
    my $st = read_state($state) // {};
    ok($st->{accounts}{'acme-saved'}, 'the directory writable again: the state is written without '
                                      . 'another change');
    $ng->stop;
    unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
}

# -- refused credentials are not sent again for a while ------------------------------------------

{
    my $sb = HRIS::Sandbox->start('bamboohr');
    my $acc = HRIS::Nginx::accounts($sb, api_key => 'wrong-bamboo-key-0c9f1e');
    my $ng = HRIS::Nginx->start(accounts => $acc, server => $ADMIN,
                                http => 'hris_credentials_cooldown 3s;');
    my $calls = sub { $sb->stats->{requests} };
    my $res = $ng->unified('employees');
    is($res->{status}, 401, 'a wrong API key: 401');
    is($calls->(), 1, 'from the provider');
    my @again = map { $ng->unified('employees') } 1 .. 5;
    is(join(' ', map { $_->{status} } @again), '401 401 401 401 401', 'five retries: 401');
    is($calls->(), 1, 'none of them reached the provider');
    $res = $again[-1];
    is($res->{json}{details}{credentials_rejected}, JSON::PP::true, 'details.credentials_rejected');
    is($res->{json}{details}{upstream_status}, 401, 'details.upstream_status: the provider\'s');
    is($res->{json}{details}{provider}, 'bamboohr', 'details.provider');
    my $ra = $res->{json}{details}{retry_after};
    ok(defined $ra && $ra >= 1 && $ra <= 3, "details.retry_after ($ra)");
    like($res->{json}{message} // '',
         qr/provider refused the integrated account's credentials.*not send them again before \d{4}-\d\d-\d\dT[\d:]+Z \(hris_credentials_cooldown\)/,
         'the message says the provider refused them and when they are tried again');
    unlike($res->{body}, qr/wrong-bamboo-key/, 'the key is not in it');
    $res = $ng->get('/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr');
    is($res->{status}, 401, 'the proxy too: 401');
    is($calls->(), 1, 'without calling the provider');

    sleep 3.2;
    $res = $ng->unified('employees');
    is($calls->(), 2, 'after the cool-down the key is tried again');
    is($res->{status}, 401, '(and refused again)');
    ok(!$res->{json}{details}{credentials_rejected}, 'that answer is the provider\'s own');
    is($ng->unified('employees')->{status}, 401, 'then the cool-down starts over');
    is($calls->(), 2, 'without a call');

    $res = api($ng, 'PATCH', '/admin/accounts/acme-bamboohr',
               json => { credentials => { api_key => $BAMBOO_KEY } });
    is($res->{status}, 200, 'the credentials changed through the admin API') or diag $res->{body};
    $res = $ng->unified('employees');
    is($res->{status}, 200, 'at once the new key is used: 200') or diag $res->{body};
    is($calls->(), 3, 'one call');
    $ng->stop;
    unlike($ng->error_log, qr/wrong-bamboo-key/, 'the key is not in the error log');

    # the default: a minute; a refused token exchange counts too
    my $hh = HRIS::Sandbox->start('heavenhr');
    my $hacc = HRIS::Nginx::accounts_for(heavenhr => $hh);
    $hacc->{accounts}[0]{credentials}{client_secret} = 'not-the-secret-77';
    $ng = HRIS::Nginx->start(accounts => $hacc);
    $res = $ng->unified('employees', account => 'acme-heavenhr');
    is($res->{status}, 401, 'a wrong client secret: 401');
    $res = $ng->unified('employees', account => 'acme-heavenhr');
    is($res->{status}, 401, 'again: 401');
    is($res->{json}{details}{credentials_rejected}, JSON::PP::true, 'credentials_rejected');
    $ra = $res->{json}{details}{retry_after};
    ok(defined $ra && $ra > 50 && $ra <= 60, "by default for a minute ($ra)");
    is($hh->stats->{requests}, 1, 'one token request in all');
    $ng->stop;
}

# -- reloads -------------------------------------------------------------------------------------

{
    my $state = "$dir/reload.json";
    my $acc = HRIS::Nginx::accounts_for(peoplehr => $people,
        extra => { 'acme-peoplehr' => { rate_limit => { calls => 1, per => '1h' } } });
    my $ng = HRIS::Nginx->start(accounts => $acc, server => $ADMIN,
                                http => "hris_state_file $state;");
    is($ng->unified('employees', account => 'acme-peoplehr', limit => 1)->{status}, 200,
       'the one call of the hour');
    $ng->reload;
    my $res = $ng->unified('employees', account => 'acme-peoplehr', limit => 1);
    is($res->{status}, 429, 'a reload keeps the zone (the window is full still)');
    is(api($ng, 'POST', '/admin/accounts', json => people_account($people, 'acme-kept'))->{status},
       201, 'an account created');

    # a zone of another layout, as a build that changed it would find:
    # the layout number in the live zone's header is changed (root only)
    SKIP: {
        skip 'changing the live zone needs root', 5 if $> != 0;
        ok(zone_layout($ng->{pid}, 4 => 1), 'the zone\'s header now says layout 1');
        $ng->reload;
        like($ng->error_log,
             qr/\[emerg\].*zone "hris" was laid out by another build of the module \(layout 1, this one reads 4\): restart nginx/,
             'a reload onto it is refused, saying to restart');
        $res = $ng->unified('employees', account => 'acme-kept', limit => 1);
        is($res->{status}, 200, 'nginx goes on serving with its configuration');
        $ng->stop;
        $ng->start;
        $res = $ng->unified('employees', account => 'acme-kept', limit => 1);
        is($res->{status}, 200, 'a restart starts a new zone, the state file\'s accounts in it')
            or diag $res->{body};
        is($ng->unified('employees', account => 'acme-peoplehr', limit => 1)->{status}, 200,
           '(and new rate windows)');
    }
    $ng->stop;
    unlike($ng->error_log, qr/\[(alert|crit)\]|exited on signal/, 'no alert, no crash');
}

# Rewrites the layout number after the zone's magic ("hris") in the
# shared mappings of an nginx process: (pid, from => to) -> found.
sub zone_layout {
    no warnings 'portable';
    my ($pid, $from, $to) = @_;
    open my $maps, '<', "/proc/$pid/maps" or return 0;
    open my $mem, '+<:raw', "/proc/$pid/mem" or return 0;
    my $want = pack('VV', 0x73697268, $from);
    for my $line (<$maps>) {
        my ($lo, $hi, $perm) = $line =~ /^([0-9a-f]+)-([0-9a-f]+) (\S+)/ or next;
        next unless $perm eq 'rw-s';
        my ($start, $len) = (hex $lo, hex($hi) - hex($lo));
        next if $len > 16 * 1024 * 1024;
        sysseek($mem, $start, 0) or next;
        sysread($mem, my $bytes, $len) == $len or next;
        my $at = index($bytes, $want);
        next if $at < 0;
        sysseek($mem, $start + $at + 4, 0) or return 0;
        return syswrite($mem, pack('V', $to)) == 4;
    }
    return 0;
}

done_testing;
