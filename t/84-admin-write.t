#!/usr/bin/perl
# The account administration API, write side (README.md, "Administration API"):
#  - POST /admin/accounts creates an account of the key's tenant (201),
#    refusing what is wrong with a 400 that names it (bad JSON, not an
#    object, no id or provider, an unknown provider, a context key missing
#    or not matching the table's pattern, credentials matching no auth way,
#    another tenant) and an id taken by any tenant with a 409;
#  - PATCH replaces top-level keys and merges context and credentials key
#    by key (null removes), on file and run-time accounts; id and tenant do
#    not change; another tenant's account is a 404 said like a missing one;
#  - DELETE removes run-time accounts and tombstones file ones: the admin,
#    unified and proxy APIs then answer 404;
#  - other methods are a 405, no key a 401;
#  - a created account works at once through /unified, a PATCH of its key
#    takes effect at once, on both workers;
#  - every change survives a restart and a reload (the state file), sealed
#    with hris_secrets_key;
#  - no answer ever carries a secret that was sent.

use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes ();
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $J = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;    # the state file is written by the workers (user nobody)
my $state = "$dir/state.json";

my $CLAY_KEY   = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $CLAY_USER  = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $BAMBOO_KEY = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};
my $WRONG_KEY  = 'clayhr-wrong-key-7d41c09e55';
my $GLOBEX_KEY = 'globex-clay-secret-3e8a61';
my @SECRETS = ($CLAY_KEY, $BAMBOO_KEY, $WRONG_KEY, $GLOBEX_KEY,
               'bamboo-client-secret-51b0f7', 'bamboo-refresh-token-9c2d44',
               'orphan-secret-value-0a7f3b', 'sealed-clay-key-6be2d08f');

my $bb = HRIS::Sandbox->start('bamboohr');
my $cl = HRIS::Sandbox->start('clayhr');

my $acc = HRIS::Nginx::accounts_for(bamboohr => $bb, clayhr => $cl);
push @{ $acc->{accounts} }, {
    id => 'globex-clayhr', tenant => 'globex', provider => 'clayhr',
    context => { subdomain => 'globex', user_id => $CLAY_USER },
    credentials => { api_key => $GLOBEX_KEY }, base_url => $cl->url,
};

# A second listener with reuseport spreads connections over both workers;
# every request of this test goes to it, each on a new connection.
my $PORT2 = HRIS::Nginx::free_port();
my $ng = HRIS::Nginx->start(
    accounts => $acc, workers => 2,
    # run-time BambooHR accounts below use the sandbox's root, which no
    # account of the accounts file does (its ClayHR URL is allowed by the
    # file's accounts alone: t/86-tenant-boundary.t)
    http     => "hris_state_file $state;\n    hris_allowed_urls " . $bb->url . ';',
    server   => "listen 127.0.0.1:$PORT2 reuseport;\n"
              . '        location /admin/ { hris_admin; add_header X-Worker $pid always; }',
    location => 'add_header X-Worker $pid always;',
    log_level => 'debug');    # the log scan below covers everything nginx writes

my @SEEN;    # every answer's headers and body, searched for secrets at the end

sub call {
    my ($method, $path, %o) = @_;
    my %h = %{ $o{headers} // {} };
    my $key = exists $o{key} ? $o{key} : $HRIS::Nginx::KEY;
    $h{Authorization} = "Bearer $key" if defined $key;
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    $h{'Content-Type'} //= 'application/json' if defined $body;
    my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0, max_redirect => 0);
    my $res = $http->request($method, "http://127.0.0.1:$PORT2$path",
                             { headers => \%h, defined $body ? (content => $body) : () });
    my %hd = %{ $res->{headers} // {} };
    push @SEEN, join("\n", (map { "$_: " . (ref $hd{$_} ? join(', ', @{ $hd{$_} }) : $hd{$_}) }
                            sort keys %hd), $res->{content} // '');
    my $json;
    if (($hd{'content-type'} // '') =~ /json/) {
        $json = eval { JSON::PP->new->decode($res->{content}) };
    }
    return { status => $res->{status}, headers => \%hd, body => $res->{content} // '',
             json => $json };
}

sub admin_get { call('GET', "/admin/accounts/$_[0]", @_[1 .. $#_]) }
sub create    { my ($body, %o) = @_; call('POST', '/admin/accounts', json => $body, %o) }
sub patch     { my ($id, $body, %o) = @_; call('PATCH', "/admin/accounts/$id", json => $body, %o) }
sub delete_   { my ($id, %o) = @_; call('DELETE', "/admin/accounts/$id", %o) }
sub employees { call('GET', "/unified/hris/employees?integrated_account_id=$_[0]&limit=5") }

sub ok_list {
    my ($res) = @_;
    return $res->{status} == 200 && ref $res->{json}{result} eq 'ARRAY'
        && @{ $res->{json}{result} } > 0;
}

# Make the request again and again on new connections until both workers
# have answered (at least 6 times, at most 40): every answer must pass.
sub everywhere {
    my ($name, $request, $check) = @_;
    my (%workers, $bad, $n);
    for my $i (1 .. 40) {
        my $res = $request->();
        $n++;
        $workers{ $res->{headers}{'x-worker'} // '-' }++;
        $bad //= $res unless $check->($res);
        last if $n >= 6 && keys %workers >= 2;
    }
    ok(!$bad, "$name (all $n answers)")
        or diag "got $bad->{status}: " . substr($bad->{body}, 0, 300);
    cmp_ok(scalar(grep { $_ ne '-' } keys %workers), '>=', 2, "$name: both workers answered");
}

sub status_is { my $want = shift; sub { $_[0]{status} == $want } }

sub msg_shape {
    (my $m = $_[0]{json}{message} // '') =~ s/"[^"]*"/X/;
    return $m;
}

sub read_state {
    open my $fh, '<', $_[0] or return '';
    local $/;
    return <$fh>;
}

my $res;

# -- keys and methods -----------------------------------------------------------------

my $clay2 = {
    id => 'acme-clay2', provider => 'clayhr', base_url => $cl->url,
    context => { subdomain => 'acme', user_id => $CLAY_USER },
    credentials => { api_key => $CLAY_KEY },
};

is(create($clay2, key => undef)->{status}, 401, 'POST without a key: 401');
is(create($clay2, key => 'nope')->{status}, 401, 'POST with an unknown key: 401');
is(patch('acme-clayhr', { base_url => 'http://127.0.0.1:9/' }, key => undef)->{status}, 401,
   'PATCH without a key: 401');
is(delete_('acme-clayhr', key => undef)->{status}, 401, 'DELETE without a key: 401');
is(admin_get('acme-clay2')->{status}, 404, 'nothing was created without a key');

for my $c (['PUT', '/admin/accounts'], ['PATCH', '/admin/accounts'], ['DELETE', '/admin/accounts'],
           ['OPTIONS', '/admin/accounts'], ['POST', '/admin/accounts/acme-clayhr'],
           ['PUT', '/admin/accounts/acme-clayhr'], ['OPTIONS', '/admin/accounts/acme-clayhr']) {
    my ($m, $p) = @$c;
    is(call($m, $p, $m =~ /^(PUT|PATCH|POST)$/ ? (json => $clay2) : ())->{status}, 405,
       "$m $p: 405");
}
$res = admin_get('acme-clayhr');
is($res->{status}, 200, 'the file account is still there after those');
is($res->{json}{result}{base_url}, $cl->url, 'unchanged');
is(admin_get('acme-clay2')->{status}, 404, 'and nothing was created by a PUT');

# no location serves hris_connect here: a link could not be opened
$res = call('POST', '/admin/connect_links',
            json => { integrated_account_id => 'acme-x', provider => 'clayhr',
                      redirect_uri => 'http://app.example/done' });
is($res->{status}, 501, 'a connect link without an hris_connect location: 501');
like($res->{json}{message} // '', qr/hris_connect/, 'saying what to add');

# -- create ---------------------------------------------------------------------------

$res = create($clay2);
is($res->{status}, 201, 'POST /admin/accounts: 201') or diag $res->{body};
my $d = $res->{json}{result} // {};
is($d->{id}, 'acme-clay2', 'result: id');
is($d->{tenant}, 'acme', 'result: the key\'s tenant');
is($d->{provider}, 'clayhr', 'result: provider');
is_deeply($d->{context}, { subdomain => 'acme', user_id => $CLAY_USER }, 'result: context with values');
is_deeply($d->{credentials}, ['api_key'], 'result: credentials by name only');
is($d->{base_url}, $cl->url, 'result: base_url');
is($d->{status}, 'ok', 'result: status ok');
is($d->{source}, 'runtime', 'result: source runtime');
unlike($res->{body}, qr/\Q$CLAY_KEY\E/, 'the key sent is not echoed');

everywhere('the new account is read by every worker', sub { admin_get('acme-clay2') },
           sub { $_[0]{status} == 200 && ($_[0]{json}{result}{source} // '') eq 'runtime' });
everywhere('and works at once through /unified on every worker', sub { employees('acme-clay2') },
           \&ok_list);

$res = call('GET', '/admin/accounts');
is_deeply([map { $_->{id} } @{ $res->{json}{result} // [] }],
          [qw(acme-bamboohr acme-clay2 acme-clayhr)], 'the list holds it, file and run-time accounts sorted by id');
is($res->{json}{result_count}, 3, 'result_count 3');
is(admin_get('acme-clayhr')->{json}{result}{source}, 'file', 'a file account says source file');
$res = call('GET', '/admin/accounts', key => $HRIS::Nginx::OTHER_KEY);
is_deeply([map { $_->{id} } @{ $res->{json}{result} // [] }], ['globex-clayhr'],
          'another tenant does not see it');
is(admin_get('acme-clay2', key => $HRIS::Nginx::OTHER_KEY)->{status}, 404,
   'nor read it');
is(call('GET', '/unified/hris/employees?integrated_account_id=acme-clay2&limit=5',
        key => $HRIS::Nginx::OTHER_KEY)->{status}, 404, 'nor use it');

# tenant given, equal to the key's; a BambooHR account
my $bamboo2 = {
    id => 'acme-bamboo2', tenant => 'acme', provider => 'bamboohr',
    context => { subdomain => 'acme' }, credentials => { api_key => $BAMBOO_KEY },
    base_url => $bb->url . '/api/gateway.php/acme',
};
$res = create($bamboo2);
is($res->{status}, 201, 'a body naming the key\'s own tenant: 201') or diag $res->{body};
is($res->{json}{result}{tenant}, 'acme', 'tenant acme');
ok(ok_list(employees('acme-bamboo2')), 'the BambooHR account works through /unified');

# another tenant creates its own
$res = create({ id => 'globex-bamboo2', provider => 'bamboohr', context => { subdomain => 'globex' },
                credentials => { api_key => $BAMBOO_KEY }, base_url => $bb->url },
              key => $HRIS::Nginx::OTHER_KEY);
is($res->{status}, 201, 'another tenant creates an account') or diag $res->{body};
is($res->{json}{result}{tenant}, 'globex', 'of its own tenant');
is(admin_get('globex-bamboo2')->{status}, 404, 'which acme does not see');

# -- what a POST refuses --------------------------------------------------------------

my @bad = (
    [ 'an empty body', '', qr/JSON|body/i ],
    [ 'invalid JSON', '{"id": "acme-bad", "provider": ', qr/JSON/i ],
    [ 'a JSON array', '[{"id": "acme-bad"}]', qr/object/i ],
    [ 'a JSON string', '"acme-bad"', qr/object/i ],
    [ 'no id', { provider => 'clayhr', context => $clay2->{context},
                 credentials => { api_key => $CLAY_KEY }, base_url => $cl->url }, qr/\bid\b/ ],
    [ 'no provider', { id => 'acme-bad', context => $clay2->{context},
                       credentials => { api_key => $CLAY_KEY }, base_url => $cl->url }, qr/provider/ ],
    [ 'an unknown provider', { id => 'acme-bad', provider => 'workday', context => {},
                               credentials => { api_key => $CLAY_KEY } }, qr/workday/ ],
    [ 'a missing context key', { id => 'acme-bad', provider => 'clayhr',
                                 context => { subdomain => 'acme' },
                                 credentials => { api_key => $CLAY_KEY }, base_url => $cl->url },
      qr/user_id/ ],
    [ 'a subdomain with a host and path in it (ClayHR)',
      { id => 'acme-bad', provider => 'clayhr',
        context => { subdomain => 'evil.example/x', user_id => $CLAY_USER },
        credentials => { api_key => $CLAY_KEY } }, qr/subdomain/ ],
    [ 'a subdomain with a host and path in it (BambooHR)',
      { id => 'acme-bad', provider => 'bamboohr', context => { subdomain => 'evil.example/x' },
        credentials => { api_key => $BAMBOO_KEY } }, qr/subdomain/ ],
    [ 'a user_id that is not digits', { id => 'acme-bad', provider => 'clayhr',
        context => { subdomain => 'acme', user_id => '12&x=1' },
        credentials => { api_key => $CLAY_KEY }, base_url => $cl->url }, qr/user_id/ ],
    [ 'credentials matching no auth way',
      { id => 'acme-bad', provider => 'bamboohr', context => { subdomain => 'acme' },
        credentials => { client_id => 'bamboo-client', client_secret => 'orphan-secret-value-0a7f3b' },
        base_url => $bb->url }, qr/credentials/ ],
    [ 'another tenant named', { %$clay2, id => 'acme-bad', tenant => 'globex' }, qr/tenant/ ],
);
for my $c (@bad) {
    my ($name, $body, $re) = @$c;
    my $r = ref $body ? create($body) : call('POST', '/admin/accounts', body => $body);
    is($r->{status}, 400, "$name: 400") or diag $r->{body};
    like($r->{json}{message} // '', $re, "$name: the message says what is wrong");
    is($r->{json}{statusCode}, 400, "$name: in the error envelope");
}
is(admin_get('acme-bad')->{status}, 404, 'none of them created an account');
is(admin_get('acme-bad', key => $HRIS::Nginx::OTHER_KEY)->{status}, 404,
   'not even for the tenant named');

# -- ids taken --------------------------------------------------------------------------

for my $c (['acme-clay2', 'a run-time account of the tenant'],
           ['acme-clayhr', 'a file account of the tenant'],
           ['globex-clayhr', 'another tenant\'s file account'],
           ['globex-bamboo2', 'another tenant\'s run-time account']) {
    my ($id, $name) = @$c;
    $res = create({ %$clay2, id => $id, credentials => { api_key => $WRONG_KEY } });
    is($res->{status}, 409, "the id of $name: 409") or diag $res->{body};
    like($res->{json}{message} // '', qr/\Q$id\E/, '... naming the id');
}
$res = admin_get('globex-clayhr', key => $HRIS::Nginx::OTHER_KEY);
is($res->{status}, 200, 'globex still has its account');
is_deeply($res->{json}{result}{context}, { subdomain => 'globex', user_id => $CLAY_USER },
          'unchanged');
is($res->{json}{result}{tenant}, 'globex', 'and it is still globex\'s');
ok(ok_list(employees('acme-clay2')), 'acme-clay2 still has its good key');
ok(ok_list(employees('acme-clayhr')), 'and so has acme-clayhr');

# -- PATCH ----------------------------------------------------------------------------

$res = patch('acme-clay2', { credentials => { api_key => $WRONG_KEY } });
is($res->{status}, 200, 'PATCH credentials: 200') or diag $res->{body};
is_deeply($res->{json}{result}{credentials}, ['api_key'], 'credentials by name');
is_deeply($res->{json}{result}{context}, { subdomain => 'acme', user_id => $CLAY_USER },
          'context untouched');
everywhere('a wrong key: the sandbox refuses it, /unified says 401 on every worker',
           sub { employees('acme-clay2') }, status_is(401));
$res = patch('acme-clay2', { credentials => { api_key => $CLAY_KEY } });
is($res->{status}, 200, 'PATCH the right key back: 200');
everywhere('and it works again on every worker', sub { employees('acme-clay2') }, \&ok_list);

$res = patch('acme-clay2', { context => { user_id => $CLAY_USER } });
is($res->{status}, 200, 'PATCH one context key');
is_deeply($res->{json}{result}{context}, { subdomain => 'acme', user_id => $CLAY_USER },
          'merged key by key: subdomain kept');

$res = patch('acme-clay2', { context => { subdomain => 'evil.example/x' } });
is($res->{status}, 400, 'PATCH a subdomain with a host in it: 400');
like($res->{json}{message} // '', qr/subdomain/, 'naming it');
$res = patch('acme-clay2', { context => { user_id => undef } });
is($res->{status}, 400, 'PATCH removing a context key the table needs: 400');
like($res->{json}{message} // '', qr/user_id/, 'naming it');
$res = admin_get('acme-clay2');
is_deeply($res->{json}{result}{context}, { subdomain => 'acme', user_id => $CLAY_USER },
          'a refused PATCH changes nothing');
ok(ok_list(employees('acme-clay2')), 'the account still works');

$res = patch('acme-bamboo2', { credentials => { api_key => undef, client_id => 'bamboo-client',
                                                client_secret => 'bamboo-client-secret-51b0f7',
                                                refresh_token => 'bamboo-refresh-token-9c2d44' } });
is($res->{status}, 200, 'PATCH: null removes a credential, others are added') or diag $res->{body};
is_deeply([sort @{ $res->{json}{result}{credentials} // [] }],
          [qw(client_id client_secret refresh_token)], 'credentials now the OAuth2 set');
$res = patch('acme-bamboo2', { credentials => { client_id => undef } });
is($res->{status}, 400, 'PATCH leaving credentials that match no auth way: 400');
$res = patch('acme-bamboo2', { base_url => $bb->url, credentials => {
    api_key => $BAMBOO_KEY, client_id => undef, client_secret => undef, refresh_token => undef } });
is($res->{status}, 200, 'PATCH back to an API key and a new base_url');
is_deeply($res->{json}{result}{credentials}, ['api_key'], 'api_key alone');
is($res->{json}{result}{base_url}, $bb->url, 'a top-level key is replaced');
is(admin_get('acme-bamboo2')->{json}{result}{base_url}, $bb->url, 'as a GET shows');
ok(ok_list(employees('acme-bamboo2')), 'and the account works there');

for my $c ([{ id => 'acme-renamed' }, 'id'], [{ tenant => 'globex' }, 'tenant']) {
    my ($body, $what) = @$c;
    $res = patch('acme-clay2', $body);
    is($res->{status}, 400, "PATCH changing the $what: 400");
    like($res->{json}{message} // '', qr/\b$what\b/, 'naming it');
}
is(admin_get('acme-renamed')->{status}, 404, 'no renamed account');
is(admin_get('acme-clay2')->{json}{result}{tenant}, 'acme', 'the account is acme\'s still');
is(call('PATCH', '/admin/accounts/acme-clay2', body => '{"credentials": ')->{status}, 400,
   'PATCH with invalid JSON: 400');
is(call('PATCH', '/admin/accounts/acme-clay2', body => '[1]')->{status}, 400,
   'PATCH with a JSON array: 400');

my $p_missing = patch('acme-nope', { base_url => $cl->url });
my $p_foreign = patch('globex-clayhr', { base_url => $cl->url, credentials => { api_key => $WRONG_KEY } });
is($p_missing->{status}, 404, 'PATCH of a missing account: 404');
is($p_foreign->{status}, 404, 'PATCH of another tenant\'s account: 404');
is(msg_shape($p_foreign), msg_shape($p_missing), 'said exactly alike');
is(admin_get('globex-clayhr', key => $HRIS::Nginx::OTHER_KEY)->{json}{result}{base_url}, $cl->url,
   'and globex\'s account is untouched');

# a file account
$res = patch('acme-clayhr', { credentials => { api_key => $WRONG_KEY } });
is($res->{status}, 200, 'PATCH of a file account: 200') or diag $res->{body};
# its definition now lives in the state file, over the accounts file's
is($res->{json}{result}{source}, 'runtime', 'a patched file account is a run-time one');
everywhere('the file account with a wrong key: 401 on every worker',
           sub { employees('acme-clayhr') }, status_is(401));

# -- DELETE ---------------------------------------------------------------------------

$res = delete_('acme-bamboohr');
is($res->{status}, 200, 'DELETE of a file account: 200') or diag $res->{body};
is_deeply($res->{json}, { result => { id => 'acme-bamboohr' } }, '{"result": {"id": ...}}');
everywhere('the deleted file account: admin 404 on every worker',
           sub { admin_get('acme-bamboohr') }, status_is(404));
everywhere('unified 404 on every worker', sub { employees('acme-bamboohr') }, status_is(404));
is(call('GET', '/proxy/v1/employees/directory?integrated_account_id=acme-bamboohr')->{status}, 404,
   'proxy 404');

$res = delete_('acme-clay2');
is($res->{status}, 200, 'DELETE of a run-time account: 200');
is_deeply($res->{json}, { result => { id => 'acme-clay2' } }, 'naming it');
everywhere('the deleted run-time account: unified 404 on every worker',
           sub { employees('acme-clay2') }, status_is(404));
is(admin_get('acme-clay2')->{status}, 404, 'admin 404');
is(call('GET', '/proxy/users?integrated_account_id=acme-clay2')->{status}, 404, 'proxy 404');
is(delete_('acme-clay2')->{status}, 404, 'DELETE again: 404');
is(patch('acme-clay2', { base_url => $cl->url })->{status}, 404, 'PATCH of a deleted account: 404');

my $d_missing = delete_('acme-nope');
my $d_foreign = delete_('globex-clayhr');
is($d_missing->{status}, 404, 'DELETE of a missing account: 404');
is($d_foreign->{status}, 404, 'DELETE of another tenant\'s account: 404');
is(msg_shape($d_foreign), msg_shape($d_missing), 'said exactly alike');
is(admin_get('globex-clayhr', key => $HRIS::Nginx::OTHER_KEY)->{status}, 200,
   'globex still has its account');

$res = call('GET', '/admin/accounts');
is_deeply([sort map { $_->{id} } @{ $res->{json}{result} // [] }], [qw(acme-bamboo2 acme-clayhr)],
          'the list no longer holds the deleted ones');

$res = create($clay2);
is($res->{status}, 201, 'the id of a deleted account may be taken again') or diag $res->{body};
ok(ok_list(employees('acme-clay2')), 'and the new account works');

# -- changes at the same moment, on both workers ----------------------------------------

# Each child sends one request at the same instant; a worker that loses the
# race for the shared accounts text must redo its change, not drop it.
sub at_once {
    my (@reqs) = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    my @pids;
    for my $req (@reqs) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $go_w;
            close $out_r;
            sysread($go_r, my $x, 1);
            my ($method, $path, $body) = @$req;
            my $res = HTTP::Tiny->new(timeout => 30, keep_alive => 0)->request(
                $method, "http://127.0.0.1:$PORT2$path",
                { headers => { Authorization => "Bearer $HRIS::Nginx::KEY",
                               'Content-Type' => 'application/json' },
                  defined $body ? (content => $J->encode($body)) : () });
            syswrite $out_w, "$res->{status} " . ($res->{headers}{'x-worker'} // '-') . "\n";
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    close $out_w;
    select(undef, undef, undef, 0.3);
    close $go_w;
    my @answers = map { [split ' '] } <$out_r>;
    waitpid($_, 0) for @pids;
    return @answers;
}

my @burst = map { sprintf 'acme-burst-%02d', $_ } 1 .. 24;
my @answers = at_once(map { [ 'POST', '/admin/accounts', { %$clay2, id => $_ } ] } @burst);
is(scalar(grep { $_->[0] == 201 } @answers), 24, '24 creates at once: 24 times 201');
my %workers = map { $_->[1] => 1 } @answers;
cmp_ok(scalar keys %workers, '>=', 2, 'answered by both workers');
$res = call('GET', '/admin/accounts');
is_deeply([grep { /burst/ } map { $_->{id} } @{ $res->{json}{result} // [] }], \@burst,
          'every one of them is there: none lost to another worker\'s change');
@answers = at_once(map { [ 'DELETE', "/admin/accounts/$_" ] } @burst);
is(scalar(grep { $_->[0] == 200 } @answers), 24, '24 deletes at once: 24 times 200');
$res = call('GET', '/admin/accounts');
is(scalar(grep { /burst/ } map { $_->{id} } @{ $res->{json}{result} // [] }), 0,
   'and all of them are gone');
sleep 1;
unlike(read_state($state), qr/acme-burst/,
       'the state file holds the last snapshot, not one that a slower write had');
like(do { local (@ARGV, $/) = "$state.lock"; <> } // '', qr/^\d+\n$/,
     'its lock file numbers it');

# -- a restart --------------------------------------------------------------------------

sleep 1;
my $text = read_state($state);
my $st = eval { $J->decode($text) } // {};
ok(exists $st->{accounts}, 'the state file holds "accounts"');
like($J->encode($st->{accounts} // {}), qr/acme-clay2/, 'with the run-time account');

$ng->stop;
$ng->start;
$res = admin_get('acme-clay2');
is($res->{status}, 200, 'after a restart: the created account is there');
is($res->{json}{result}{source}, 'runtime', 'as a run-time account');
everywhere('and works on every worker', sub { employees('acme-clay2') }, \&ok_list);
is(admin_get('acme-bamboo2')->{json}{result}{base_url}, $bb->url, 'a PATCH survived the restart');
ok(ok_list(employees('acme-bamboo2')), 'that account works');
everywhere('the deleted file account stays deleted', sub { employees('acme-bamboohr') },
           status_is(404));
is(admin_get('acme-bamboohr')->{status}, 404, 'admin 404 too');
everywhere('the PATCHed file account keeps its PATCHed (wrong) key',
           sub { employees('acme-clayhr') }, status_is(401));
is(admin_get('globex-bamboo2', key => $HRIS::Nginx::OTHER_KEY)->{json}{result}{tenant}, 'globex',
   'globex\'s run-time account is still globex\'s');

$res = patch('acme-clayhr', { credentials => { api_key => $CLAY_KEY } });
is($res->{status}, 200, 'PATCH the file account\'s key back');
everywhere('it works again', sub { employees('acme-clayhr') }, \&ok_list);
$res = delete_('acme-bamboo2');
is($res->{status}, 200, 'DELETE a run-time account before a reload');

# -- a reload -------------------------------------------------------------------------

$ng->reload;
everywhere('after a reload: the created account works', sub { employees('acme-clay2') }, \&ok_list);
everywhere('the file account keeps its PATCHed key', sub { employees('acme-clayhr') }, \&ok_list);
everywhere('the deleted file account stays deleted', sub { employees('acme-bamboohr') },
           status_is(404));
everywhere('the account deleted before the reload stays deleted', sub { employees('acme-bamboo2') },
           status_is(404));
$res = create({ %$clay2, id => 'acme-clay3' });
is($res->{status}, 201, 'a create after the reload') or diag $res->{body};
everywhere('works on every new worker', sub { employees('acme-clay3') }, \&ok_list);

$res = call('GET', '/admin/accounts');
is_deeply([sort map { $_->{id} } @{ $res->{json}{result} // [] }],
          [qw(acme-clay2 acme-clay3 acme-clayhr)], 'the list after it all');
$ng->stop;
unlike($ng->error_log, qr/\[(alert|emerg|crit)\]/, 'no alerts in the error log');
unlike($ng->error_log, qr/\Q$CLAY_KEY\E|\Q$WRONG_KEY\E|bamboo-client-secret/,
       'no secret in the error log');

# -- with hris_secrets_key: nothing in clear in the state file --------------------------

SKIP: {
    my $seal = HRIS::Nginx::root() . '/build/hris-seal';
    skip 'build/hris-seal is not built', 10 unless -x $seal;
    my $key = "$dir/hris.key";
    system("$seal --new-key > $key") == 0 or die;
    my $sealed_state = "$dir/sealed-state.json";
    my $ng2 = HRIS::Nginx->start(
        accounts => $acc, workers => 2,
        http     => "hris_state_file $sealed_state; hris_secrets_key $key;",
        server   => "listen 127.0.0.1:$PORT2 reuseport;\n"
                  . '        location /admin/ { hris_admin; add_header X-Worker $pid always; }',
        location => 'add_header X-Worker $pid always;');
    # the second listener answers too before the test goes on (slow under ASan)
    for (1 .. 100) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT2", Timeout => 1);
        Time::HiRes::sleep(0.1);
    }
    my $sealed_key = 'sealed-clay-key-6be2d08f';
    $res = create({ %$clay2, id => 'acme-sealed', credentials => { api_key => $sealed_key } });
    is($res->{status}, 201, 'create with a secrets key set') or diag $res->{body};
    is(patch('acme-sealed', { credentials => { api_key => $CLAY_KEY } })->{status}, 200,
       'and PATCH its key');
    ok(ok_list(employees('acme-sealed')), 'it works');
    # a credential sent as a JSON number is a credential all the same
    my $pin = 918273645546;
    $res = create({ %$clay2, id => 'acme-sealed-pin',
                    credentials => { api_key => $CLAY_KEY, pin => $pin } });
    is($res->{status}, 201, 'create with a number as a credential') or diag $res->{body};
    ok(ok_list(employees('acme-sealed-pin')), 'it works');
    $ng2->stop;
    my $t = read_state($sealed_state);
    unlike($t, qr/\Q$pin\E/, 'the number is sealed too, not kept in clear');
    like($t, qr/acme-sealed/, 'the state file holds the account');
    like($t, qr/sealed:v1:/, 'with a sealed credential');
    unlike($t, qr/\Q$CLAY_KEY\E|\Q$sealed_key\E/, 'and no credential in clear');
    $ng2->start;
    ok(ok_list(employees('acme-sealed')), 'after a restart it opens and works');
    $ng2->stop;
}

# -- no secret in any answer ------------------------------------------------------------

my $all = join "\n", @SEEN;
my $root_dir = HRIS::Nginx::root();
unlike($all, qr{\Q$root_dir\E|/tmp/}, 'no server path (accounts file, mappings directory) in any answer');
cmp_ok(scalar @SEEN, '>', 100, 'answers collected: ' . scalar @SEEN);
for my $secret (@SECRETS) {
    unlike($all, qr/\Q$secret\E/, "no answer carries $secret");
}

done_testing;
