#!/usr/bin/perl
# The connect flow (README.md, "Connecting accounts"): an API key makes a
# link for an end user (POST /admin/connect_links); the link either sends
# the browser to the provider's OAuth2 authorize page (BambooHR sandbox,
# with the tenant's oauth_app) and takes it back at /connect/callback,
# where the code is exchanged and the account stored, or shows a form
# asking for an API key (ClayHR sandbox). Checked:
#  - link creation and its refusals (401, 400s, 409);
#  - the redirect to the authorize URL (client_id, redirect_uri, scope with
#    offline_access, state) with the hris_connect cookie;
#  - the callback: connected, the account works through /unified, the admin
#    API shows it (credential names only), one authorization_code exchange;
#  - tampered state, no or another cookie, tampered or garbled link tokens:
#    400 (a short HTML page; the JSON envelope when JSON is asked for) and
#    no account; the provider's error and a used code: back to the
#    redirect_uri with status=error;
#  - the form: its fields, a missing one (400), connected (303), working;
#  - re-connecting an account whose grant was revoked (needs_reauth -> ok);
#  - accounts made by the flow survive a restart; hris_connect_url;
#  - a link completes once: opened as often as wanted, usable again after
#    a refused form or a failed exchange, refused (410) once it connected
#    its account, also after a restart; of simultaneous completions on
#    two workers, one wins;
#  - no answer carries a token or a secret.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);
use Time::Local qw(timegm);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $J = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);
chmod 0777, $dir;    # the state file is written by the workers (user nobody)

my $CLIENT_ID     = 'sandbox-bamboohr-client';
my $CLIENT_SECRET = 'sandbox-bamboohr-secret';
my $CLAY_KEY      = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $CLAY_USER     = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $REDIRECT      = 'http://app.example/done';
my $LOCATIONS     = 'location /admin/ { hris_admin; } location /connect/ { hris_connect; }';

my $bb = HRIS::Sandbox->start('bamboohr');
my $cl = HRIS::Sandbox->start('clayhr');
my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);

sub control {
    my ($sb, $path, $body) = @_;
    my $res = $http->request($body ? 'POST' : 'GET', $sb->url . $path,
        { headers => { 'Content-Type' => 'application/json' },
          $body ? (content => $J->encode($body)) : () });
    die "$path: $res->{status} $res->{content}" unless $res->{success};
    return $J->decode($res->{content} || '{}');
}

sub code_exchanges { $bb->stats->{by_path}{'/token.php#authorization_code'} // 0 }

my $acc = HRIS::Nginx::accounts_for(bamboohr => $bb, clayhr => $cl);
push @{ $acc->{accounts} }, {
    id => 'globex-taken', tenant => 'globex', provider => 'clayhr',
    context => { subdomain => 'globex', user_id => $CLAY_USER },
    credentials => { api_key => 'globex-clay-secret-3e8a61' }, base_url => $cl->url,
};
$acc->{oauth_apps} = [ {
    tenant => 'acme', provider => 'bamboohr',
    client_id => $CLIENT_ID, client_secret => $CLIENT_SECRET,
    authorize_url => $bb->url . '/authorize.php?request=authorize',
    token_url => $bb->url . '/token.php?request=token',
    base_url => $bb->url,
} ];

# at debug level: the log scan below then covers everything nginx can log
my $ng = HRIS::Nginx->start(accounts => $acc, http => "hris_state_file $dir/state.json;",
                            server => $LOCATIONS, log_level => 'debug');

my @SEEN;    # every answer of the gateway: headers and body

sub record {
    my ($res) = @_;
    my %hd = %{ $res->{headers} // {} };
    push @SEEN, join("\n", (map { "$_: " . (ref $hd{$_} ? join(', ', @{ $hd{$_} }) : $hd{$_}) }
                            sort keys %hd), $res->{content} // '');
    my $json;
    $json = eval { JSON::PP->new->decode($res->{content}) } if ($hd{'content-type'} // '') =~ /json/;
    return { status => $res->{status}, headers => \%hd, body => $res->{content} // '',
             json => $json, location => $hd{location} };
}

# A browser request (no API key, no redirects followed) to a full URL.
sub browse {
    my ($method, $url, %o) = @_;
    my %h = %{ $o{headers} // {} };
    $h{Cookie} = $o{cookie} if defined $o{cookie};
    return { status => 0, headers => {}, body => "no URL to $method", json => undef,
             location => undef } unless ($url // '') =~ m{^https?://};
    my $res = $http->request($method, $url,
                             { headers => \%h, defined $o{body} ? (content => $o{body}) : () });
    return record($res);
}

# An API request to the gateway.
sub api {
    my ($method, $path, %o) = @_;
    my %h;
    my $key = exists $o{key} ? $o{key} : $HRIS::Nginx::KEY;
    $h{Authorization} = "Bearer $key" if defined $key;
    my $body = exists $o{json} ? $J->encode($o{json}) : $o{body};
    $h{'Content-Type'} = 'application/json' if defined $body;
    return record($http->request($method, $ng->url . $path,
                                 { headers => \%h, defined $body ? (content => $body) : () }));
}

sub new_link { my ($body, %o) = @_; api('POST', '/admin/connect_links', json => $body, %o) }
sub admin_get { api('GET', "/admin/accounts/$_[0]", @_[1 .. $#_]) }
sub employees { api('GET', "/unified/hris/employees?integrated_account_id=$_[0]&limit=5") }

# how many times the events module told an event of an account (CONTRACT
# section 8; for now it logs each at "info")
sub told {
    my ($type, $id) = @_;
    return scalar(() = $ng->error_log =~ /hris event \Q$type\E for tenant "acme", account "\Q$id\E"/g);
}

sub ok_list {
    my ($res) = @_;
    return $res->{status} == 200 && ref $res->{json}{result} eq 'ARRAY'
        && @{ $res->{json}{result} } > 0;
}

sub uri_unescape {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# (the URL without its query, {name => value}); a repeated name -> an array
sub split_url {
    my ($url) = @_;
    my ($base, $query) = split /\?/, $url // '', 2;
    my %q;
    for my $pair (split /&/, $query // '') {
        my ($k, $v) = split /=/, $pair, 2;
        $k = uri_unescape($k);
        $v = uri_unescape($v // '');
        $q{$k} = exists $q{$k} ? [ (ref $q{$k} ? @{ $q{$k} } : $q{$k}), $v ] : $v;
    }
    return ($base, \%q);
}

sub query_string {
    my (%q) = @_;
    return join '&', map { "$_=" . HRIS::Nginx::uri_escape($q{$_} // '') } sort keys %q;
}

# One character in the middle changed for another of the same kind.
sub tamper {
    my ($s) = @_;
    my $i = int(length($s) / 2);
    $i++ while $i < length($s) && substr($s, $i, 1) !~ /[A-Za-z0-9]/;
    $i = 0 if $i >= length $s;
    my $c = substr($s, $i, 1);
    my $n = $c =~ /[0-8]/ ? $c + 1 : $c eq '9' ? '0'
          : $c =~ /[a-e]/ ? chr(ord($c) + 1) : $c =~ /[A-E]/ ? chr(ord($c) + 1)
          : $c =~ /[a-z]/ ? 'a' : 'A';
    substr($s, $i, 1) = $n;
    return $s;
}

# A short page for people (no JSON was asked for): HTML, a title and a
# heading, the strict policy of the connect pages.
sub human_page {
    my ($res) = @_;
    like($res->{headers}{'content-type'} // '', qr{^text/html}, '... a page for people (text/html)');
    like($res->{body}, qr{<title>[^<]+</title>.*<h1>[^<]+</h1>}s, '... with a title and a heading');
    like($res->{headers}{'content-security-policy'} // '', qr/default-src 'none'/,
         '... under a strict Content-Security-Policy');
}

sub cookies {
    my ($res) = @_;
    my $sc = $res->{headers}{'set-cookie'};
    return ref $sc ? @$sc : defined $sc ? ($sc) : ();
}

sub rfc3339 {
    my ($s) = @_;
    $s =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/ or return undef;
    my $t = timegm($6, $5, $4, $3, $2 - 1, $1);
    if ($7 ne 'Z') {
        my ($sign, $h, $m) = $7 =~ /([+-])(\d\d):(\d\d)/;
        $t -= ($sign eq '+' ? 1 : -1) * ($h * 3600 + $m * 60);
    }
    return $t;
}

# GET a link: {res, authorize (URL without query), q (its query), state, cookie}
sub begin {
    my ($url) = @_;
    my $res = browse('GET', $url);
    my ($authorize, $q) = split_url($res->{location});
    my ($cookie) = map { /^(hris_connect=[^;]*)/ ? $1 : () } cookies($res);
    return { res => $res, authorize => $authorize, q => $q, state => $q->{state},
             cookie => $cookie };
}

# Through the sandbox's authorize page: the callback URL it sends back to.
sub authorize {
    my ($flow) = @_;
    return (0, undef) unless ($flow->{res}{location} // '') =~ m{^https?://};
    my $res = $http->get($flow->{res}{location});
    return ($res->{status}, $res->{headers}{location});
}

sub callback {
    my ($q, %o) = @_;
    return browse('GET', $ng->url . '/connect/callback?' . query_string(%$q), %o);
}

# A whole OAuth2 flow for a link: (callback answer, code)
sub connect_oauth {
    my ($url) = @_;
    my $flow = begin($url);
    my ($st, $cb) = authorize($flow);
    my (undef, $q) = split_url($cb);
    return (browse('GET', $cb, cookie => $flow->{cookie}), $q->{code});
}

# A BambooHR link for acme-new (fields replaced by %o; key => the API key)
sub bamboo_link {
    my (%o) = @_;
    my @key = exists $o{key} ? (key => delete $o{key}) : ();
    return new_link({ integrated_account_id => 'acme-new', provider => 'bamboohr',
                      redirect_uri => $REDIRECT, context => { subdomain => 'acme' }, %o }, @key);
}

my ($res, $flow);

# -- link creation: what is refused --------------------------------------------------------

is(bamboo_link(key => undef)->{status}, 401, 'no API key: 401');
is(bamboo_link(key => 'sk_test_nope')->{status}, 401, 'an unknown API key: 401');

my @refused = (
    [ 'an unknown provider', { provider => 'workday' }, 400, qr/workday/ ],
    [ 'redirect_uri javascript:x', { redirect_uri => 'javascript:x' }, 400, qr/redirect_uri/ ],
    [ 'a relative redirect_uri', { redirect_uri => '/done' }, 400, qr/redirect_uri/ ],
    [ 'an ftp redirect_uri', { redirect_uri => 'ftp://app.example/done' }, 400, qr/redirect_uri/ ],
    [ 'oauth2 without the subdomain the table needs', { context => {} }, 400, qr/subdomain/ ],
    [ 'oauth2 without the subdomain, method named', { context => {}, method => 'oauth2' }, 400,
      qr/subdomain/ ],
    [ 'an id of tenant globex', { integrated_account_id => 'globex-taken' }, 409, qr/globex-taken/ ],
    [ 'expires_in below 60', { expires_in => 59 }, 400, qr/expires_in/ ],
    [ 'expires_in above 604800', { expires_in => 604801 }, 400, qr/expires_in/ ],
    [ 'an unknown method', { method => 'saml' }, 400, qr/method/ ],
    [ 'no integrated_account_id', { integrated_account_id => undef }, 400, qr/integrated_account_id/ ],
    [ 'no redirect_uri', { redirect_uri => undef }, 400, qr/redirect_uri/ ],
);
for my $c (@refused) {
    my ($name, $change, $status, $re) = @$c;
    my %body = (integrated_account_id => 'acme-new', provider => 'bamboohr',
                redirect_uri => $REDIRECT, context => { subdomain => 'acme' });
    for my $k (keys %$change) {
        if (defined $change->{$k}) { $body{$k} = $change->{$k} } else { delete $body{$k} }
    }
    $res = new_link(\%body);
    is($res->{status}, $status, "link with $name: $status") or diag $res->{body};
    like($res->{json}{message} // '', $re, '... the message says what');
}
$res = api('POST', '/admin/connect_links', body => '{"provider": ');
is($res->{status}, 400, 'link with invalid JSON: 400');
$res = new_link({ integrated_account_id => 'globex-new', provider => 'bamboohr', method => 'oauth2',
                  redirect_uri => $REDIRECT, context => { subdomain => 'globex' } },
                key => $HRIS::Nginx::OTHER_KEY);
is($res->{status}, 400, 'oauth2 for a tenant with no oauth_app for the provider: 400');
$res = new_link({ integrated_account_id => 'globex-new', provider => 'bamboohr',
                  redirect_uri => $REDIRECT, context => { subdomain => 'globex' } },
                key => $HRIS::Nginx::OTHER_KEY);
is($res->{status}, 201, 'the same without a method: 201') or diag $res->{body};
is($res->{json}{result}{method}, 'form', 'the method is then form');
$res = new_link({ integrated_account_id => 'acme-clay-x', provider => 'clayhr',
                  redirect_uri => $REDIRECT });
is($res->{status}, 201, 'a ClayHR link') or diag $res->{body};
is($res->{json}{result}{method}, 'form', 'is a form (no connect.oauth2 in its table)');
$res = bamboo_link(expires_in => 60);
is($res->{status}, 201, 'expires_in 60: 201');
my $exp = rfc3339($res->{json}{result}{expires_at} // '');
ok(defined $exp && abs($exp - (time + 60)) <= 30, 'expires_at is RFC 3339, 60 s from now')
    or diag $res->{json}{result}{expires_at};
is(admin_get('acme-new')->{status}, 404, 'no link made an account');
is(admin_get('globex-new', key => $HRIS::Nginx::OTHER_KEY)->{status}, 404, 'not for globex either');

# -- the OAuth2 link -----------------------------------------------------------------------

$res = bamboo_link();
is($res->{status}, 201, 'POST /admin/connect_links: 201') or diag $res->{body};
my $link = $res->{json}{result} // {};
my $connect = $ng->url . '/connect/';
like($link->{url} // '', qr/^\Q$connect\E[^\/?#]+$/, 'url: the connect URL and a token');
is($link->{method}, 'oauth2', 'method oauth2 (the tenant has an oauth_app)');
$exp = rfc3339($link->{expires_at} // '');
ok(defined $exp && abs($exp - (time + 3600)) <= 30, 'expires_at: RFC 3339, an hour from now')
    or diag $link->{expires_at};
my ($token) = ($link->{url} // '') =~ m{/connect/([^/?#]+)$};
$token //= 'missing';

$flow = begin($link->{url});
is($flow->{res}{status}, 302, 'GET the link: 302') or diag $flow->{res}{body};
is($flow->{authorize}, $bb->url . '/authorize.php', 'to the sandbox\'s authorize URL');
is($flow->{q}{request}, 'authorize', 'keeping its own query (request=authorize)');
is($flow->{q}{response_type}, 'code', 'response_type=code');
is($flow->{q}{client_id}, $CLIENT_ID, 'client_id of the oauth_app');
is($flow->{q}{redirect_uri}, $ng->url . '/connect/callback', 'redirect_uri: <connect url>callback');
like($flow->{q}{redirect_uri} // '', qr{/connect/callback$}, '(ending in /connect/callback)');
ok(grep({ $_ eq 'offline_access' } split ' ', $flow->{q}{scope} // ''), 'scope holds offline_access')
    or diag $flow->{q}{scope};
ok(length($flow->{state} // '') >= 16, 'a state');
unlike($flow->{res}{location} // '', qr/\Q$CLIENT_SECRET\E/, 'no client secret in the URL');
my ($set) = grep { /^hris_connect=/ } cookies($flow->{res});
ok($set, 'Set-Cookie: hris_connect=...') or diag explain [cookies($flow->{res})];
like($set // '', qr/^hris_connect=[^;]{16,}/, 'with a nonce');
like($set // '', qr/;\s*HttpOnly/i, 'HttpOnly');
like($set // '', qr/;\s*SameSite=Lax/i, 'SameSite=Lax');
like($set // '', qr{;\s*Path=/connect/?(;|$)}i, 'Path=the connect location');
is(admin_get('acme-new')->{status}, 404, 'following the link makes no account yet');

my ($st, $cb) = authorize($flow);
is($st, 302, 'the sandbox\'s authorize page sends the browser back');
my ($cb_base, $cb_q) = split_url($cb);
is($cb_base, $ng->url . '/connect/callback', 'to the callback');
ok($cb_q->{code}, 'with a code') or diag $cb;
is($cb_q->{state} // 'none', $flow->{state} // 'missing', 'and the state');
my $code = $cb_q->{code} // 'none';

# the callback refuses what is not its own browser's, and stores nothing
my @bad_callbacks = (
    [ 'a tampered state', { code => $code, state => tamper($flow->{state} // 'x') }, $flow->{cookie} ],
    [ 'no state', { code => $code }, $flow->{cookie} ],
    [ 'an empty state', { code => $code, state => '' }, $flow->{cookie} ],
    [ 'no cookie', { code => $code, state => $flow->{state} }, undef ],
    [ 'a tampered cookie', { code => $code, state => $flow->{state} },
      'hris_connect=' . tamper(($flow->{cookie} // 'hris_connect=x') =~ s/^hris_connect=//r) ],
    [ 'the provider\'s error with a tampered state',
      { error => 'access_denied', state => tamper($flow->{state} // 'x') }, $flow->{cookie} ],
);
my $other = begin(bamboo_link()->{json}{result}{url} // $connect . 'x');
ok($other->{cookie} && $other->{cookie} ne ($flow->{cookie} // ''), 'another link\'s visit, another nonce');
push @bad_callbacks, [ 'another visit\'s cookie', { code => $code, state => $flow->{state} },
                       $other->{cookie} ];
for my $c (@bad_callbacks) {
    my ($name, $q, $cookie) = @$c;
    $res = callback($q, cookie => $cookie);
    is($res->{status}, 400, "callback with $name: 400") or diag "$res->{status} $res->{body}";
    human_page($res);
    ok(!defined $res->{location}, '... no redirect');
    $res = callback($q, cookie => $cookie, headers => { Accept => 'application/json' });
    is($res->{json}{statusCode}, 400, '... asked for JSON: the JSON error envelope');
}
is(admin_get('acme-new')->{status}, 404, 'no account was made by any of them');
is(code_exchanges(), 0, 'and no code was exchanged');

$res = browse('GET', $cb, cookie => $flow->{cookie});
is($res->{status}, 302, 'the callback with the cookie: 302') or diag $res->{body};
my ($back, $bq) = split_url($res->{location});
is($back, $REDIRECT, 'to the redirect_uri');
is_deeply($bq, { integrated_account_id => 'acme-new', status => 'connected' },
          'with integrated_account_id and status=connected');
is(code_exchanges(), 1, 'one authorization_code exchange at the sandbox');
is(told('integrated_account.created', 'acme-new'), 1, 'integrated_account.created told');

$res = employees('acme-new');
ok(ok_list($res), 'the connected account works through /unified') or diag $res->{body};
$res = admin_get('acme-new');
is($res->{status}, 200, 'the admin API shows it');
my $d = $res->{json}{result} // {};
is($d->{status}, 'ok', 'status ok');
is($d->{tenant}, 'acme', 'of the link creator\'s tenant');
is($d->{provider}, 'bamboohr', 'provider');
is($d->{source}, 'runtime', 'a run-time account');
is_deeply($d->{context}, { subdomain => 'acme' }, 'the context of the link');
is($d->{base_url}, $bb->url, 'the oauth_app\'s base_url');
is_deeply([sort @{ $d->{credentials} // [] }],
          [qw(access_token client_id client_secret expires_at refresh_token)],
          'the credentials, by name');
is(admin_get('acme-new', key => $HRIS::Nginx::OTHER_KEY)->{status}, 404, 'globex does not see it');
is(code_exchanges(), 1, 'still one exchange');

# -- link tokens ------------------------------------------------------------------------------

for my $c (['a tampered link token', $connect . tamper($token)],
           ['a garbled link token', $connect . 'not-a-token!'],
           ['a short link token', $connect . 'x'],
           ['a token cut short', $connect . substr($token, 0, int(length($token) / 2))]) {
    my ($name, $url) = @$c;
    $res = browse('GET', $url);
    is($res->{status}, 400, "$name: 400") or diag "$res->{status} $res->{body}";
    human_page($res);
    ok(!grep({ /^hris_connect=/ } cookies($res)), '... no cookie');
    $res = browse('GET', $url, headers => { Accept => 'application/json, */*;q=0.1' });
    is($res->{json}{statusCode}, 400, '... asked for JSON: the JSON error envelope');
}
$res = browse('POST', $connect . tamper($token), body => "api_key=$CLAY_KEY",
              headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
is($res->{status}, 400, 'a form POST to a tampered token: 400');

# -- the provider says no; a code used twice ---------------------------------------------------

$res = bamboo_link(integrated_account_id => 'acme-denied');
$flow = begin($res->{json}{result}{url} // $connect . 'x');
$res = callback({ error => 'access_denied', error_description => 'The user denied access',
                  state => $flow->{state} }, cookie => $flow->{cookie});
is($res->{status}, 302, 'the provider\'s error: 302') or diag $res->{body};
($back, $bq) = split_url($res->{location});
is($back, $REDIRECT, 'to the redirect_uri');
is($bq->{integrated_account_id}, 'acme-denied', 'integrated_account_id');
is($bq->{status}, 'error', 'status=error');
is($bq->{error}, 'access_denied', 'error=access_denied');
is(code_exchanges(), 1, 'nothing exchanged');

$res = bamboo_link(integrated_account_id => 'acme-reuse', redirect_uri => "$REDIRECT?from=hris");
my ($first, $reuse_code) = connect_oauth($res->{json}{result}{url} // $connect . 'x');
is($first->{status}, 302, 'a second account connected');
like($first->{location} // '', qr/^\Q$REDIRECT\E\?from=hris&/,
     'a redirect_uri with a query gets the parameters after an &');
($back, $bq) = split_url($first->{location});
is_deeply($bq, { from => 'hris', integrated_account_id => 'acme-reuse', status => 'connected' },
          'its own query kept');
is(code_exchanges(), 2, 'two exchanges');

$res = bamboo_link(integrated_account_id => 'acme-reuse', redirect_uri => "$REDIRECT?from=hris");
$flow = begin($res->{json}{result}{url} // $connect . 'x');
$res = callback({ code => $reuse_code, state => $flow->{state} }, cookie => $flow->{cookie});
is($res->{status}, 302, 'a used code: 302') or diag $res->{body};
($back, $bq) = split_url($res->{location});
is($back, $REDIRECT, 'to the redirect_uri');
is($bq->{integrated_account_id}, 'acme-reuse', 'integrated_account_id');
is($bq->{status}, 'error', 'status=error');
is($bq->{error}, 'invalid_grant', 'error=invalid_grant (the sandbox refused the exchange)');
is(code_exchanges(), 3, 'the exchange was tried once');

# -- the API-key form (ClayHR) ----------------------------------------------------------------

$res = new_link({ integrated_account_id => 'acme-clay-form', provider => 'clayhr', method => 'form',
                  redirect_uri => $REDIRECT, base_url => $cl->url });
is($res->{status}, 201, 'a form link') or diag $res->{body};
is($res->{json}{result}{method}, 'form', 'method form');
my $form_url = $res->{json}{result}{url} // $connect . 'x';
$res = browse('GET', $form_url);
is($res->{status}, 200, 'GET the form link: 200') or diag $res->{body};
like($res->{headers}{'content-type'} // '', qr{^text/html}, 'text/html');
like($res->{body}, qr/<form\b[^>]*\bmethod=["']?post\b/i, 'a <form method="post">');
for my $field (qw(api_key subdomain user_id)) {
    like($res->{body}, qr/<input\b[^>]*\bname=["']?\Q$field\E["'\s>\/]/i, "an input named $field");
}
unlike($res->{body}, qr/\bname=["']?client_(id|secret)\b/i, 'none for credentials ClayHR has not');

my $form_post = sub {
    my ($url, %f) = @_;
    return browse('POST', $url, body => query_string(%f),
                  headers => { 'Content-Type' => 'application/x-www-form-urlencoded' });
};
$res = $form_post->($form_url, api_key => $CLAY_KEY, subdomain => 'acme');
is($res->{status}, 400, 'the form without user_id: 400') or diag $res->{body};
$res = $form_post->($form_url, api_key => $CLAY_KEY, subdomain => 'evil.example/x',
                    user_id => $CLAY_USER);
isnt($res->{status}, 303, 'a subdomain with a host and path in it is not connected');
is(admin_get('acme-clay-form')->{status}, 404, 'no account made by either');

$res = $form_post->($form_url, api_key => $CLAY_KEY, subdomain => 'acme', user_id => $CLAY_USER);
is($res->{status}, 303, 'the filled form: 303') or diag $res->{body};
($back, $bq) = split_url($res->{location});
is($back, $REDIRECT, 'to the redirect_uri');
is_deeply($bq, { integrated_account_id => 'acme-clay-form', status => 'connected' },
          'status=connected');
$res = employees('acme-clay-form');
ok(ok_list($res), 'the account works through /unified') or diag $res->{body};
$d = admin_get('acme-clay-form')->{json}{result} // {};
is_deeply($d->{credentials}, ['api_key'], 'admin: credentials api_key (by name)');
is_deeply($d->{context}, { subdomain => 'acme', user_id => $CLAY_USER }, 'admin: the context typed in');
is($d->{base_url}, $cl->url, 'admin: the link\'s base_url');
is($d->{tenant}, 'acme', 'admin: the link creator\'s tenant');
is($d->{status}, 'ok', 'admin: status ok');
is(told('integrated_account.created', 'acme-clay-form'), 1, 'a form connect: created told');

# context given in the link: the form asks only for the key
$res = new_link({ integrated_account_id => 'acme-clay-form2', provider => 'clayhr', method => 'form',
                  redirect_uri => $REDIRECT, base_url => $cl->url,
                  context => { subdomain => 'acme', user_id => $CLAY_USER } });
is($res->{status}, 201, 'a form link with the context given');
$form_url = $res->{json}{result}{url} // $connect . 'x';
$res = browse('GET', $form_url);
is($res->{status}, 200, 'its form');
like($res->{body}, qr/<input\b[^>]*\bname=["']?api_key["'\s>\/]/i, 'asks for api_key');
unlike($res->{body}, qr/\bname=["']?(subdomain|user_id)\b/i, 'not for the context given');
$res = $form_post->($form_url);
is($res->{status}, 400, 'posted empty: 400');
$res = $form_post->($form_url, api_key => $CLAY_KEY);
is($res->{status}, 303, 'the key alone: 303') or diag $res->{body};
ok(ok_list(employees('acme-clay-form2')), 'and that account works');

# -- re-connecting an account whose grant was revoked ----------------------------------------

control($bb, '/_sandbox/oauth/revoke', { all => JSON::PP::true });
control($bb, '/_sandbox/oauth/expire', { all => JSON::PP::true });
$res = employees('acme-new');
is($res->{status}, 401, 'a revoked grant: /unified 401');
is($res->{json}{details}{needs_reauth}, JSON::PP::true, 'needs_reauth');
is(admin_get('acme-new')->{json}{result}{status}, 'needs_reauth', 'the admin API says so');

$res = bamboo_link();
is($res->{status}, 201, 'a new link for the same id (same tenant)') or diag $res->{body};
my $before = code_exchanges();
($res) = connect_oauth($res->{json}{result}{url} // $connect . 'x');
is($res->{status}, 302, 'connected again');
(undef, $bq) = split_url($res->{location});
is($bq->{status}, 'connected', 'status=connected');
is(code_exchanges(), $before + 1, 'one more exchange');
is(admin_get('acme-new')->{json}{result}{status}, 'ok', 'status ok again');
ok(ok_list(employees('acme-new')), '/unified 200 again');
is(told('integrated_account.needs_reauth', 'acme-new'), 1, 'the revoked grant: needs_reauth told');
is(told('integrated_account.reactivated', 'acme-new'), 1, 'connected again: reactivated told');
is(told('integrated_account.created', 'acme-new'), 1, 'not created a second time');

# -- no secret in any answer ------------------------------------------------------------------

my $grants = control($bb, '/_sandbox/oauth/grants');
my @tokens = ((map { $_->{access_token} } @{ $grants->{access_tokens} // [] }),
              (map { $_->{refresh_token} } @{ $grants->{refresh_tokens} // [] }));
cmp_ok(scalar @tokens, '>=', 6, 'the sandbox gave tokens: ' . scalar @tokens);
push @SEEN, map { $_->{body} } admin_get('acme-new'), admin_get('acme-reuse'),
                                api('GET', '/admin/accounts');
my $all = join "\n", @SEEN;
my $root_dir = HRIS::Nginx::root();
unlike($all, qr{\Q$root_dir\E|/tmp/}, 'no server path (accounts file, mappings directory) in any answer');
my $leaks = grep { $all =~ /\Q$_\E/ } grep { defined && length } @tokens;
is($leaks, 0, 'no access or refresh token in any answer of the gateway');
unlike($all, qr/bhr-(at|rt)-/, '(nothing that looks like one of the sandbox\'s tokens)');
for my $secret ($CLIENT_SECRET, $CLAY_KEY, 'globex-clay-secret-3e8a61') {
    unlike($all, qr/\Q$secret\E/, "no $secret in any answer");
}
my $log = $ng->error_log;
cmp_ok(length $log, '>', 10000, 'the debug log was written');
is(scalar(grep { $log =~ /\Q$_\E/ } grep { defined && length } @tokens), 0,
   'no token in the error log');
unlike($log, qr/\Q$CLIENT_SECRET\E|\Q$CLAY_KEY\E/, 'no secret in the error log');

# -- a restart -----------------------------------------------------------------------------------

sleep 1;
$ng->stop;
$ng->start;
$res = admin_get('acme-new');
is($res->{status}, 200, 'after a restart the connected account is there');
is($res->{json}{result}{status}, 'ok', 'status ok');
ok(ok_list(employees('acme-new')), 'it works');
ok(ok_list(employees('acme-clay-form')), 'so does the form-connected one');
$ng->stop;

# -- hris_connect_url ----------------------------------------------------------------------------

SKIP: {
    my $ng2 = eval {
        HRIS::Nginx->start(accounts => $acc, server => $LOCATIONS,
                           http => "hris_state_file $dir/state2.json; "
                                 . "hris_connect_url https://hris.example/connect/;");
    };
    ok($ng2, 'nginx starts with hris_connect_url in http{}') or diag $@;
    skip 'no nginx with hris_connect_url', 6 unless $ng2;
    my $r = $http->request('POST', $ng2->url . '/admin/connect_links', {
        headers => { Authorization => "Bearer $HRIS::Nginx::KEY", 'Content-Type' => 'application/json' },
        content => $J->encode({ integrated_account_id => 'acme-far', provider => 'bamboohr',
                                redirect_uri => $REDIRECT, context => { subdomain => 'acme' } }) });
    is($r->{status}, 201, 'hris_connect_url: a link') or diag $r->{content};
    my $u = eval { $J->decode($r->{content})->{result}{url} } // '';
    like($u, qr{^https://hris\.example/connect/[^/?#]+$}, 'its url is on the configured connect URL');
    (my $t) = $u =~ m{/connect/([^/?#]+)$};
    my $f = begin($ng2->url . '/connect/' . ($t // 'x'));
    is($f->{res}{status}, 302, 'the link, reached locally: 302');
    is($f->{q}{redirect_uri}, 'https://hris.example/connect/callback',
       'redirect_uri: the configured connect URL + callback');
    my ($sc) = grep { /^hris_connect=/ } cookies($f->{res});
    like($sc // '', qr/;\s*Path=\/connect\/(;|$)/i, 'the cookie\'s path: the public one');
    like($sc // '', qr/;\s*Secure(;|$)/i, 'Secure: the public URL is https');
    $ng2->stop;
}

# -- a link completes once -------------------------------------------------------------------

{
    my $main = $ng;
    my $port2 = HRIS::Nginx::free_port();
    my $state3 = "$dir/state3.json";
    # two workers (the second listener spreads connections over both), and
    # a cursor secret: links stay valid across a restart
    $ng = HRIS::Nginx->start(accounts => $acc, workers => 2,
        http => "hris_state_file $state3; hris_cursor_secret link-test-secret-5f0e7c2a91;",
        server => "$LOCATIONS listen 127.0.0.1:$port2 reuseport; add_header X-Worker \$pid always;");

    my $form_link = sub {
        my ($id) = @_;
        my $r = new_link({ integrated_account_id => $id, provider => 'clayhr', method => 'form',
                           redirect_uri => $REDIRECT, base_url => $cl->url,
                           context => { subdomain => 'acme', user_id => $CLAY_USER } });
        return $r->{json}{result}{url} // $connect . 'x';
    };
    my $gone = sub {
        my ($res, $what) = @_;
        is($res->{status}, 410, "$what: 410") or diag "$res->{status} $res->{body}";
        human_page($res);
        like($res->{body}, qr/link was used already.*ask for a new link/,
             '... that says the link was used');
        ok(!defined $res->{location}, '... no redirect');
    };
    $res = new_link({ integrated_account_id => 'acme-once-json', provider => 'clayhr',
                      method => 'form', redirect_uri => $REDIRECT, base_url => $cl->url,
                      context => { subdomain => 'acme', user_id => $CLAY_USER } });
    my $json_link = $res->{json}{result}{url} // $connect . 'x';
    is($form_post->($json_link, api_key => $CLAY_KEY)->{status}, 303, 'a link connects');
    $res = browse('GET', $json_link, headers => { Accept => 'application/json' });
    is($res->{status}, 410, 'opened again asking for JSON: 410');
    is($res->{json}{statusCode}, 410, '... the JSON error envelope');
    like($res->{json}{message} // '', qr/link was used already.*ask for a new link/,
         '... that says the link was used');

    # the form: a refused post leaves the link usable; a completed one not
    my $url = $form_link->('acme-once-form');
    $res = $form_post->($url);
    is($res->{status}, 400, 'a form link posted without its key: 400');
    is(browse('GET', $url)->{status}, 200, 'the link still shows its form');
    $res = $form_post->($url, api_key => $CLAY_KEY);
    is($res->{status}, 303, 'then completed: 303') or diag $res->{body};
    $gone->($form_post->($url, api_key => 'clayhr-another-key-9d0b'), 'posted again');
    is(api('GET', '/admin/accounts/acme-once-form')->{status}, 200, 'the account stays');
    ok(ok_list(employees('acme-once-form')), 'with the first key: it works');
    $gone->(browse('GET', $url), 'the used link opened again');

    # OAuth2: opened three times; a denial and a failed exchange leave the
    # link usable; once connected, the last visit's callback is refused
    my $oauth_url = bamboo_link(integrated_account_id => 'acme-once-oauth')->{json}{result}{url}
                    // $connect . 'x';
    my @flows = map { begin($oauth_url) } 1 .. 4;
    is(join(' ', map { $_->{res}{status} } @flows), '302 302 302 302', 'the link opened four times');
    $res = callback({ error => 'access_denied', state => $flows[0]{state} },
                    cookie => $flows[0]{cookie});
    (undef, $bq) = split_url($res->{location});
    is($bq->{error}, 'access_denied', 'the first visit: the user said no');
    my (undef, $cb1) = authorize($flows[1]);
    $bb->fault({ fault => '500', path => '/token.php' });
    $res = browse('GET', $cb1, cookie => $flows[1]{cookie});
    (undef, $bq) = split_url($res->{location});
    is($bq->{status}, 'error', 'the second: the code exchange failed');
    my $exchanges = code_exchanges();
    my (undef, $cb2) = authorize($flows[2]);
    $res = browse('GET', $cb2, cookie => $flows[2]{cookie});
    (undef, $bq) = split_url($res->{location});
    is($bq->{status}, 'connected', 'the third connects the account') or diag $res->{body};
    is(code_exchanges(), $exchanges + 1, '(one exchange)');
    my (undef, $cb3) = authorize($flows[3]);
    $gone->(browse('GET', $cb3, cookie => $flows[3]{cookie}), 'the fourth visit\'s callback');
    is(code_exchanges(), $exchanges + 1, 'its code was not exchanged');
    $gone->(browse('GET', $oauth_url), 'the connected OAuth2 link opened again');
    my $grants = control($bb, '/_sandbox/oauth/grants');
    push @tokens, (map { $_->{access_token} } @{ $grants->{access_tokens} // [] }),
                  (map { $_->{refresh_token} } @{ $grants->{refresh_tokens} // [] });

    # a restart does not make a used link valid again
    sleep 1;
    $ng->stop;
    $ng->start;
    $gone->($form_post->($url, api_key => $CLAY_KEY), 'after a restart the used form link');
    $gone->(browse('GET', $oauth_url), 'and the used OAuth2 link');
    my $fresh = $form_link->('acme-once-fresh');
    is(browse('GET', $fresh)->{status}, 200, 'a new link works');

    # two completions at once, on two workers: one wins
    my @answers;
    {
        pipe(my $go_r, my $go_w) or die "pipe: $!";
        pipe(my $out_r, my $out_w) or die "pipe: $!";
        my @pids;
        for my $n (1 .. 6) {
            my $pid = fork // die "fork: $!";
            if ($pid == 0) {
                close $go_w;
                close $out_r;
                sysread($go_r, my $x, 1);
                (my $u = $fresh) =~ s{^http://127\.0\.0\.1:\d+}{http://127.0.0.1:$port2};
                my $r = HTTP::Tiny->new(timeout => 30, keep_alive => 0, max_redirect => 0)->request(
                    'POST', $u, { headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
                                  content => "api_key=$CLAY_KEY" });
                syswrite $out_w, "$r->{status} " . ($r->{headers}{'x-worker'} // '-') . "\n";
                POSIX::_exit(0);
            }
            push @pids, $pid;
        }
        close $go_r;
        close $out_w;
        sleep 0.2;
        close $go_w;
        @answers = map { [split ' '] } <$out_r>;
        waitpid($_, 0) for @pids;
    }
    my %by;
    $by{ $_->[0] }++ for @answers;
    is_deeply(\%by, { 303 => 1, 410 => 5 }, 'six posts of one link at once: one 303, five 410')
        or diag explain \@answers;
    my %workers = map { $_->[1] => 1 } @answers;
    note('answered by ' . scalar(keys %workers) . ' worker(s)');
    ok(ok_list(employees('acme-once-fresh')), 'the account it connected works');

    $ng->stop;
    unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');
    my $log = $ng->error_log;
    is(scalar(grep { $log =~ /\Q$_\E/ } grep { defined && length } @tokens), 0,
       'no token in the error log');
    $ng = $main;
}

# -- an expired link (slow: HRIS_SLOW=1) ------------------------------------------------------------

SKIP: {
    skip 'a link expiring takes a minute: set HRIS_SLOW=1', 3 unless $ENV{HRIS_SLOW};
    $ng->start;
    $res = bamboo_link(integrated_account_id => 'acme-late', expires_in => 60);
    is($res->{status}, 201, 'a link for 60 s');
    sleep 62;
    $res = browse('GET', $res->{json}{result}{url} // $connect . 'x');
    is($res->{status}, 400, 'a minute later: 400');
    like($res->{body}, qr{<h1>This link has expired</h1>.*ask for a new link}s,
         'a page saying it expired');
    $ng->stop;
}

done_testing;
