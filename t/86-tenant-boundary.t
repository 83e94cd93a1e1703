#!/usr/bin/perl
# The tenant boundary (README.md, "Threat model"; CONTRACT.md §3, "URLs a
# tenant may use"). A tenant holds a gateway API key; nothing it sends is
# trusted:
#  - SSRF: an account's base_url or token_url from the administration API
#    (create, PATCH) or a connect link must be the provider's own host (the
#    table's base_url/token_url for the account's context, its
#    "allowed_urls"), a URL of the accounts file, or under a prefix of
#    hris_allowed_urls. URLs are compared parsed: userinfo, backslashes,
#    percent-encoded or other spellings of hosts, IPv6 literals, ports,
#    schemes and path boundaries do not slip through. Refused: 400 naming
#    the field and hris_allowed_urls, nothing stored. A run-time account
#    whose URL the operator stops allowing gets a 403 at call time, and a
#    connect link whose token URL is no longer allowed a 400 at the
#    callback: no upstream call either way. A tenant's "overrides" may not
#    change where or how the gateway calls.
#  - Header injection: a control character in a context or credential
#    value is refused when the account is stored (admin API, PATCH,
#    connect link context, connect form: 400 naming the key, nothing
#    stored; nginx -t for the accounts file), and a value that gets in
#    another way (a sealed credential, a provider's token) never reaches
#    the provider as a header.
#  - hris_allowed_urls prefixes and table context keys are checked by
#    nginx -t.

use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $J = JSON::PP->new->canonical;
my $root = HRIS::Nginx::root();
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);

my $CLAY_KEY  = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $CLAY_USER = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $INJECTED  = "abc\r\nX-Injected: yes";
my $REDIRECT  = 'http://app.example/done';

my $seal = "$root/build/hris-seal";
my $keyfile = "$dir/hris.key";
system("$seal --new-key > $keyfile") == 0 or BAIL_OUT('run make: no build/hris-seal');

my $cl  = HRIS::Sandbox->start('clayhr');     # the accounts file's ClayHR
my $cl2 = HRIS::Sandbox->start('clayhr');     # allowed by hris_allowed_urls only
my $pe  = HRIS::Sandbox->start('personio');
my $bb  = HRIS::Sandbox->start('bamboohr');
my $bb2 = HRIS::Sandbox->start('bamboohr');   # a token URL hris_allowed_urls allows
my ($CP, $CP2) = ($cl->port, $cl2->port);

my $acc = HRIS::Nginx::accounts_for(clayhr => $cl, personio => $pe);
# an operator's account with overrides a tenant could not send itself
push @{ $acc->{accounts} }, {
    id => 'acme-clay-operator', tenant => 'acme', provider => 'clayhr',
    context => { subdomain => 'acme', user_id => $CLAY_USER },
    credentials => { api_key => $CLAY_KEY }, base_url => $cl->url,
    overrides => { 'headers.X-Operator' => 'yes' },
};
$acc->{oauth_apps} = [ {
    tenant => 'acme', provider => 'bamboohr',
    client_id => 'sandbox-bamboohr-client', client_secret => 'sandbox-bamboohr-secret',
    authorize_url => $bb2->url . '/authorize.php?request=authorize',
    token_url => $bb->url . '/token.php?request=token', base_url => $bb->url,
} ];

my $ALLOWED = "hris_allowed_urls " . $cl2->url . "/rm/api " . $bb2->url . ";";
# links and states must open after the reload below: a fixed cursor key
my $SECRETS = "hris_secrets_key $keyfile;\n    hris_cursor_secret boundary-test-secret;";
my $ng = HRIS::Nginx->start(accounts => $acc, http => "$ALLOWED\n    $SECRETS",
    server => 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }');

sub api {
    my ($method, $path, %o) = @_;
    my %h = (Authorization => "Bearer $HRIS::Nginx::KEY");
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = $http->request($method, $ng->url . $path,
                             { headers => \%h, defined $body ? (content => $body) : () });
    my $json = eval { $J->decode($res->{content}) };
    return { status => $res->{status}, json => $json, body => $res->{content} // '',
             headers => $res->{headers} };
}

sub admin_get { api('GET', "/admin/accounts/$_[0]") }
sub employees { api('GET', "/unified/hris/employees?integrated_account_id=$_[0]&limit=3") }

my $n = 0;
sub clay_account {
    my (%o) = @_;
    return { id => 'acme-t' . ++$n, provider => 'clayhr',
             context => { subdomain => 'acme', user_id => $CLAY_USER },
             credentials => { api_key => $CLAY_KEY }, %o };
}

# A create that must be refused: 400 naming $field, nothing stored.
sub refused {
    my ($name, $body, $field) = @_;
    my $res = api('POST', '/admin/accounts', json => $body);
    subtest "refused: $name" => sub {
        is($res->{status}, 400, 'status 400') or diag $res->{body};
        like($res->{json}{message} // '', qr/\Q$field\E/, "names $field");
        is(admin_get($body->{id})->{status}, 404, 'nothing stored');
    };
    return $res;
}

sub created {
    my ($name, $body) = @_;
    my $res = api('POST', '/admin/accounts', json => $body);
    is($res->{status}, 201, "allowed: $name") or diag $res->{body};
    return $res;
}

sub requests_seen { $_[0]->stats->{requests} }

sub injected {
    my ($sb) = @_;
    return grep { grep { lc($_->[0]) eq 'x-injected' || $_->[1] =~ /[\r\n]/ } @{ $_->{headers} } }
           @{ $sb->requests };
}

# -- SSRF through the administration API ----------------------------------------------------

my $res = refused('base_url on the gateway\'s own port',
                  clay_account(base_url => $ng->url . '/'), 'base_url');
like($res->{json}{message} // '', qr/hris_allowed_urls/, '... and says how the operator allows one');
refused('base_url at the cloud metadata address',
        clay_account(base_url => 'http://169.254.169.254/latest/meta-data'), 'base_url');

# URLs that look like an allowed one (the file's http://127.0.0.1:$CP) but reach elsewhere
my @lookalikes = (
    [ 'the allowed host:port as a label', "http://127.0.0.1:$CP.evil.example/" ],
    [ 'the allowed authority as userinfo', "http://127.0.0.1:$CP\@169.254.169.254/" ],
    [ 'userinfo on the allowed host', "http://user:pass\@127.0.0.1:$CP/" ],
    [ 'a backslash', "http://127.0.0.1:$CP\\\@169.254.169.254/" ],
    [ 'a percent-encoded host', "http://%31%32%37.0.0.1:$CP/" ],
    [ 'an IPv6 loopback', "http://[::1]:$CP/" ],
    [ 'an IPv4-mapped IPv6 address', "http://[::ffff:127.0.0.1]:$CP/" ],
    [ 'a host with a final dot', "http://127.0.0.1.:$CP/" ],
    [ 'a hex IPv4 address', "http://0x7f.0.0.1:$CP/" ],
    [ 'a decimal IPv4 address', "http://2130706433:$CP/" ],
    [ 'another port', 'http://127.0.0.1:' . ($CP == 65535 ? $CP - 1 : $CP + 1) . '/' ],
    [ 'another scheme', "https://127.0.0.1:$CP/" ],
    [ 'no port (80)', 'http://127.0.0.1/' ],
    [ 'a second port', "http://127.0.0.1:$CP:80/" ],
    [ 'a fragment', "http://127.0.0.1:$CP#\@169.254.169.254/" ],
    [ 'a dot segment', "http://127.0.0.1:$CP/a/../b" ],
    [ 'a line break', "http://127.0.0.1:$CP/\r\nX-Injected: yes" ],
    [ 'an empty host', "http:///127.0.0.1:$CP/" ],
    [ 'ftp', "ftp://127.0.0.1:$CP/" ],
    [ 'localhost for 127.0.0.1', "http://localhost:$CP/" ],
);
for my $c (@lookalikes) {
    refused($c->[0], clay_account(base_url => $c->[1]), 'base_url');
}

# the accounts file's base URL is allowed to tenants (and the account works)
$res = created('the accounts file\'s ClayHR URL', clay_account(id => 'acme-file-url', base_url => $cl->url));
is(employees('acme-file-url')->{status}, 200, '... and it works');
created('the same with a trailing /', clay_account(base_url => "http://127.0.0.1:$CP/"));
created('a path below it', clay_account(base_url => $cl->url . '/rm/api'));

# hris_allowed_urls: a prefix with a path, compared at a "/" boundary
created('under the hris_allowed_urls prefix', clay_account(id => 'acme-prefix', base_url => $cl2->url . '/rm/api'));
is(employees('acme-prefix')->{status}, 200, '... and it works');
created('below it', clay_account(base_url => $cl2->url . '/rm/api/'));
refused('the prefix\'s path as a part of a segment', clay_account(base_url => $cl2->url . '/rm/apix'),
        'base_url');
refused('above the prefix\'s path', clay_account(base_url => $cl2->url . '/rm'), 'base_url');

# the table's own hosts, for the account's context (subdomain acme)
created('no base_url: the table\'s', clay_account());
created('the table\'s base URL', clay_account(base_url => 'https://acme.clayhr.net/rm/api'));
created('the table\'s host, in capitals, another path', clay_account(base_url => 'https://ACME.clayhr.net/x'));
created('a host of the table\'s allowed_urls', clay_account(base_url => 'https://acme.clayhr.com/rm/api'));
refused('outside the allowed_urls prefix', clay_account(base_url => 'https://acme.clayhr.com/x'), 'base_url');
refused('the table\'s host for another subdomain', clay_account(base_url => 'https://globex.clayhr.net/rm/api'),
        'base_url');
refused('the table\'s host on another port', clay_account(base_url => 'https://acme.clayhr.net:8443/rm/api'),
        'base_url');
refused('the table\'s host over http', clay_account(base_url => 'http://acme.clayhr.net/rm/api'), 'base_url');
refused('the table\'s host as a label', clay_account(base_url => 'https://acme.clayhr.net.evil.example/'),
        'base_url');

# token_url: Personio's exchange would go there with the client secret
my %personio = (provider => 'personio', base_url => $pe->url,
                credentials => $HRIS::Nginx::PROVIDER{personio}{credentials});
refused('a token_url at the metadata address',
        { %personio, id => 'acme-pe1', token_url => 'http://169.254.169.254/v1/auth' }, 'token_url');
created('a token URL derived from an allowed base URL', { %personio, id => 'acme-pe2' });
is(employees('acme-pe2')->{status}, 200, '... and it works');

# PATCH: the same check; the account keeps what it had
$res = api('PATCH', '/admin/accounts/acme-clayhr', json => { base_url => 'http://169.254.169.254/' });
is($res->{status}, 400, 'PATCH to the metadata address: 400');
like($res->{json}{message} // '', qr/base_url.*hris_allowed_urls/, '... naming base_url');
is(admin_get('acme-clayhr')->{json}{result}{base_url}, $cl->url, '... the account unchanged');
$res = api('PATCH', '/admin/accounts/acme-t1', json => { base_url => $cl2->url });
is($res->{status}, 404, 'PATCH of a refused (never stored) account: 404');

# overrides: field mappings and query parameters only
my @overrides = (
    [ 'the table\'s base_url', { base_url => 'http://169.254.169.254' } ],
    [ 'a path', { 'resources.employees.list.path' => '@169.254.169.254/' } ],
    [ 'a header', { 'headers.X-Evil' => 'yes' } ],
    [ 'the auth', { 'auth.headers.x-api-key' => '{{credentials.api_key}}' } ],
    [ 'a whole operation', { 'resources.employees.list' => { path => '/x' } } ],
    [ 'a query parameter with a line break', { 'resources.employees.list.query.x' => "a\r\nb" } ],
    [ 'a query parameter with a fragment', { 'resources.employees.list.query.x' => 'a#b' } ],
);
for my $c (@overrides) {
    refused("overrides: $c->[0]", clay_account(base_url => $cl->url, overrides => $c->[1]), 'overrides');
}
created('overrides of a field mapping and a query parameter',
        clay_account(base_url => $cl->url, overrides => {
            'resources.employees.fields.custom_fields' => { object => { first => '/firstName' } },
            'resources.employees.list.query.x' => 'y' }));
$res = api('PATCH', '/admin/accounts/acme-clay-operator', json => { credentials => { api_key => $CLAY_KEY } });
is($res->{status}, 200, 'PATCH of a file account keeps the operator\'s overrides') or diag $res->{body};
$res = api('PATCH', '/admin/accounts/acme-clay-operator',
           json => { overrides => { 'headers.X-Operator' => 'yes', 'headers.X-Evil' => 'yes' } });
is($res->{status}, 400, '... but cannot add one of its own');

# connect links: base_url and token_url are checked when the link is made
my %link = (integrated_account_id => 'acme-linked', provider => 'clayhr', method => 'form',
            redirect_uri => $REDIRECT);
$res = api('POST', '/admin/connect_links', json => { %link, base_url => 'http://169.254.169.254/' });
is($res->{status}, 400, 'a link with base_url at the metadata address: 400');
like($res->{json}{message} // '', qr/"base_url".*hris_allowed_urls/, '... naming base_url');
$res = api('POST', '/admin/connect_links', json => { %link, provider => 'personio', base_url => $pe->url,
                                                     token_url => "http://127.0.0.1:$CP\@169.254.169.254/" });
is($res->{status}, 400, 'a link with a lookalike token_url: 400');
like($res->{json}{message} // '', qr/"token_url"/, '... naming token_url');
$res = api('POST', '/admin/connect_links', json => { %link, base_url => $cl->url });
is($res->{status}, 201, 'a link with the accounts file\'s URL: 201') or diag $res->{body};

# -- header injection: refused when stored ---------------------------------------------------

my $before = requests_seen($cl);
$res = refused('a credential with CR LF', clay_account(base_url => $cl->url, credentials => { api_key => $INJECTED }),
               'credentials.api_key');
unlike($res->{body}, qr/X-Injected/, '... the value is not echoed');
refused('a context value ending in LF (a pattern\'s "$" lets it through)',
        clay_account(base_url => $cl->url, context => { subdomain => 'acme', user_id => "$CLAY_USER\n" }),
        'context.user_id');
refused('an undeclared context key with CR LF',
        clay_account(base_url => $cl->url, context => { subdomain => 'acme', user_id => $CLAY_USER,
                                                         note => $INJECTED }),
        'context.note');
$res = api('PATCH', '/admin/accounts/acme-file-url', json => { credentials => { api_key => $INJECTED } });
is($res->{status}, 400, 'PATCH of a credential with CR LF: 400');
like($res->{json}{message} // '', qr/credentials\.api_key/, '... naming it');
is(employees('acme-file-url')->{status}, 200, '... the account still works with its old key');
is(scalar injected($cl), 0, 'the provider never saw an injected header');

$res = api('POST', '/admin/connect_links',
           json => { %link, base_url => $cl->url, context => { subdomain => 'acme', user_id => "$CLAY_USER\n" } });
is($res->{status}, 400, 'a link whose context value ends in LF: 400');
like($res->{json}{message} // '', qr/context\.user_id/, '... naming the key');

# the connect form: "%0D%0A" typed in (or sent) is refused, nothing stored
$res = api('POST', '/admin/connect_links', json => { %link, integrated_account_id => 'acme-form',
                                                     base_url => $cl->url });
my $form = $res->{json}{result}{url} // $ng->url . '/connect/x';
$res = $http->request('POST', $form, {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "api_key=abc%0D%0AX-Injected:%20yes&subdomain=acme&user_id=$CLAY_USER" });
is($res->{status}, 400, 'the form with CR LF in the key: 400') or diag $res->{content};
like($res->{content} // '', qr/api_key/, '... naming the field');
is(admin_get('acme-form')->{status}, 404, '... nothing stored');
$res = $http->request('POST', $form, {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "api_key=$CLAY_KEY&subdomain=acme&user_id=$CLAY_USER%0A" });
is($res->{status}, 400, 'the form with a LF after the user id: 400');
like($res->{content} // '', qr/user_id/, '... naming the field');

# optional context keys (Personio's app_id, partner_id) are not asked for by the form
$res = api('POST', '/admin/connect_links', json => { %link, integrated_account_id => 'acme-pe-form',
                                                     provider => 'personio', base_url => $pe->url });
$form = $res->{json}{result}{url} // $ng->url . '/connect/x';
$res = $http->get($form);
like($res->{content} // '', qr/name="client_secret"/, 'a Personio form asks for the client secret');
unlike($res->{content} // '', qr/name="(app_id|partner_id)"/, '... not for its optional context');
my $pc = $HRIS::Nginx::PROVIDER{personio}{credentials};
$res = $http->request('POST', $form, {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
    content => "client_id=$pc->{client_id}&client_secret=$pc->{client_secret}" });
is($res->{status}, 303, '... and connects without it') or diag $res->{content};
is(employees('acme-pe-form')->{status}, 200, '... the account works');

# -- header injection: a provider's token ----------------------------------------------------

$pe->reset;
$pe->fault({ fault => 'json', path => '/auth', body => {
    success => JSON::PP::true, data => { token => "papi-x\r\nX-Injected: yes", expires_in => 86400 } } });
$res = employees('acme-personio');
is($res->{status}, 502, 'a token answer whose token holds CR LF: 502') or diag $res->{body};
like($res->{json}{message} // '', qr/token/, '... saying the token is unusable');
my @paths = map { $_->{target} } @{ $pe->requests };
is_deeply([ grep { !m{/auth} } @paths ], [], '... and no call was made with it');
is(scalar injected($pe), 0, 'the provider never saw an injected header');
is(employees('acme-personio')->{status}, 200, 'the next token is good: the account works');

# -- the operator stops allowing a URL ---------------------------------------------------------

# an OAuth2 link whose token URL hris_allowed_urls allows: it connects
sub connect_oauth {
    my ($id) = @_;
    my $r = api('POST', '/admin/connect_links', json => {
        integrated_account_id => $id, provider => 'bamboohr', redirect_uri => $REDIRECT,
        context => { subdomain => 'acme' }, token_url => $bb2->url . '/token.php?request=token' });
    my $link = $r->{json}{result}{url} // return ($r, undef);
    $r = $http->get($link);
    my ($cookie) = map { /^(hris_connect=[^;]*)/ ? $1 : () }
                   (ref $r->{headers}{'set-cookie'} ? @{ $r->{headers}{'set-cookie'} }
                                                    : ($r->{headers}{'set-cookie'} // ()));
    $r = $http->get($r->{headers}{location} // return ($r, undef));    # the provider's page
    my $cb = $r->{headers}{location} // return ($r, undef);
    return ($http->get($cb, { headers => { Cookie => $cookie // '' } }), $cb, $cookie);
}

my ($cbres) = connect_oauth('acme-oauth');
is($cbres->{status}, 302, 'an OAuth2 link with an allowed token_url connects') or diag $cbres->{content};
like($cbres->{headers}{location} // '', qr/status=connected/, '... status=connected');
is(admin_get('acme-oauth')->{json}{result}{token_url}, $bb2->url . '/token.php?request=token',
   '... with that token_url');

# the next one is made, opened and authorized; then the configuration changes
my $r = api('POST', '/admin/connect_links', json => {
    integrated_account_id => 'acme-oauth2', provider => 'bamboohr', redirect_uri => $REDIRECT,
    context => { subdomain => 'acme' }, token_url => $bb2->url . '/token.php?request=token' });
$r = $http->get($r->{json}{result}{url} // $ng->url . '/connect/x');
my ($cookie) = map { /^(hris_connect=[^;]*)/ ? $1 : () }
               (ref $r->{headers}{'set-cookie'} ? @{ $r->{headers}{'set-cookie'} }
                                                : ($r->{headers}{'set-cookie'} // ()));
$r = $http->get($r->{headers}{location} // $ng->url . '/connect/x');
my $callback = $r->{headers}{location} // $ng->url . '/connect/callback';

my $cl2_before = requests_seen($cl2);
$ng->reload(http => $SECRETS);
$res = employees('acme-prefix');
is($res->{status}, 403, 'no longer allowed: a call of the run-time account is a 403') or diag $res->{body};
is($res->{json}{details}{field}, 'base_url', '... details.field base_url');
like($res->{json}{message} // '', qr/hris_allowed_urls/, '... saying how to allow it');
is(requests_seen($cl2), $cl2_before, '... and no call was made');
$res = api('GET', '/proxy/users?integrated_account_id=acme-prefix');
is($res->{status}, 403, '... the proxy API too');
is(requests_seen($cl2), $cl2_before, '... no call either');
is(admin_get('acme-prefix')->{status}, 200, 'the account is still there for its tenant to fix');
$res = api('PATCH', '/admin/accounts/acme-prefix', json => { base_url => $cl->url });
is($res->{status}, 200, '... a PATCH to an allowed URL');
is(employees('acme-prefix')->{status}, 200, '... and it works again');
is(employees('acme-file-url')->{status}, 200, 'accounts on the accounts file\'s URLs keep working');

my $bb2_before = requests_seen($bb2);
$res = $http->get($callback, { headers => { Cookie => $cookie // '' } });
is($res->{status}, 400, 'the callback of a link whose token URL is no longer allowed: 400');
like($res->{content} // '', qr/token URL/, '... saying so');
is(requests_seen($bb2), $bb2_before, '... and the code was not sent there');
is(admin_get('acme-oauth2')->{status}, 404, '... no account');
$ng->stop;

# -- a sealed credential with CR LF: opened at call time, never sent ---------------------------

my $sealed = `$seal $keyfile '$INJECTED'`;
chomp $sealed;
like($sealed, qr/^sealed:v1:/, 'a credential with CR LF, sealed');
my $acc2 = HRIS::Nginx::accounts_for(clayhr => $cl);
$acc2->{accounts}[0]{credentials}{api_key} = $sealed;
$ng = HRIS::Nginx->start(accounts => $acc2, http => $SECRETS);
$before = requests_seen($cl);
$res = employees('acme-clayhr');
isnt($res->{status}, 200, 'its call fails') or diag $res->{body};
is(requests_seen($cl), $before, '... before anything is sent to the provider');
is(scalar injected($cl), 0, 'the provider never saw an injected header');
like($ng->error_log, qr/control character/, 'the error log says why');
unlike($ng->error_log, qr/X-Injected/, '... without the value');
$ng->stop;

# -- nginx -t ----------------------------------------------------------------------------------

sub config_fails {
    my ($name, $what, %o) = @_;
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => HRIS::Nginx::accounts_for(clayhr => $cl), %o)
                                ->test_config;
    isnt($rc, 0, "nginx -t fails: $name");
    like($out, $what, '... saying what is wrong');
}

sub config_ok {
    my ($name, %o) = @_;
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => HRIS::Nginx::accounts_for(clayhr => $cl), %o)
                                ->test_config;
    is($rc, 0, "nginx -t passes: $name") or diag $out;
}

for my $bad ('http://user@127.0.0.1', 'ftp://127.0.0.1', 'http://127.0.0.1/?q=1', 'http://127.0.0.1:0',
             'http://127.0.0.1:99999', 'http://[::1%25eth0]/', 'http://h/%2e%2e', '127.0.0.1:8080',
             'http://h/a/../b') {
    config_fails("hris_allowed_urls $bad", qr/is not a URL prefix/, http => "hris_allowed_urls \"$bad\";");
}
config_ok('hris_allowed_urls with hosts, ports, paths, IPv6',
          http => 'hris_allowed_urls https://hr.example.com http://10.0.0.7:8080/hris/ http://[::1]:9000;');

my $acc3 = HRIS::Nginx::accounts_for(clayhr => $cl);
$acc3->{accounts}[0]{credentials}{api_key} = $INJECTED;
config_fails('an accounts file credential with CR LF', qr/account "acme-clayhr": credentials\.api_key holds a control character/,
             accounts => $acc3);

# tables: every context key a template uses is declared, and has a pattern
my $maps = tempdir(CLEANUP => 1);
copy("$root/mappings/$_", "$maps/$_") or die "$_: $!" for qw(schema.json clayhr.json);
my $table = decode_json(do { local (@ARGV, $/) = "$maps/clayhr.json"; <> });
sub table_with {
    my ($edit) = @_;
    my $t = decode_json(encode_json($table));
    $edit->($t);
    HRIS::Nginx::write_file("$maps/clayhr.json", encode_json($t));
}
table_with(sub { $_[0]{headers}{'X-Tenant'} = '{{context.tenant_name}}' });
config_fails('a template using an undeclared context key', qr/headers\.X-Tenant: uses \{\{context\.tenant_name\}\}/,
             accounts => HRIS::Nginx::accounts_for(clayhr => $cl), mappings => $maps);
table_with(sub { $_[0]{headers}{'X-Tenant'} = '{{context.tenant_name}}';
                 $_[0]{context}{tenant_name} = { required => JSON::PP::false } });
config_ok('declared without a pattern: a safe default', mappings => $maps);
my $acc4 = HRIS::Nginx::accounts_for(clayhr => $cl);
$acc4->{accounts}[0]{context}{tenant_name} = 'a b/c';
config_fails('a value the default pattern refuses', qr/context\.tenant_name "a b\/c" does not match/,
             accounts => $acc4, mappings => $maps);
table_with(sub { $_[0]{allowed_urls} = 'https://x' });
config_fails('allowed_urls not an array', qr/allowed_urls: must be an array/,
             accounts => HRIS::Nginx::accounts_for(clayhr => $cl), mappings => $maps);

done_testing();
