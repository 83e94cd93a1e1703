#!/usr/bin/perl
# The BambooHR sandbox's OAuth 2.0 authorization code flow
# (shared/reference/providers-bamboohr-personio.md A2.2, A8): /authorize.php,
# /token.php (code and refresh grants, rotation, errors), bearer tokens on the
# data endpoints, and the /_sandbox/oauth/... control endpoints.

use strict;
use warnings;
use utf8;

use Test::More;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use HRIS::Sandbox;

binmode Test::More->builder->$_, ':encoding(UTF-8)' for qw(output failure_output todo_output);

my $CLIENT = 'sandbox-bamboohr-client';
my $SECRET = 'sandbox-bamboohr-secret';
my $CB = 'http://127.0.0.1:1/callback';
my $sb = HRIS::Sandbox->start('bamboohr');
# Redirects must be seen, not followed.
my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 1, max_redirect => 0);

# -- helpers ------------------------------------------------------------------

sub uri_escape {
    my ($text) = @_;
    utf8::encode($text);
    $text =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $text;
}

sub uri_unescape {
    my ($text) = @_;
    $text =~ tr/+/ /;
    $text =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    utf8::decode($text);
    return $text;
}

# Query parameters of a URL (or Location header) as a hash.
sub query_of {
    my ($url) = @_;
    my ($query) = ($url // '') =~ /\?([^#]*)/ or return {};
    return { map { my ($k, $v) = split /=/, $_, 2; (uri_unescape($k) => uri_unescape($v // '')) }
             split /&/, $query };
}

sub qs { my (%p) = @_; join '&', map { uri_escape($_) . '=' . uri_escape($p{$_}) } sort keys %p }

# GET /authorize.php with the usual parameters; %p overrides (undef drops one).
sub authorize {
    my ($box, %p) = @_;
    my $prefix = delete $p{prefix} // '';
    my %params = (request => 'authorize', response_type => 'code', client_id => $CLIENT,
                  redirect_uri => $CB, scope => 'employee offline_access', state => 'st-1');
    @params{ keys %p } = values %p;
    delete $params{$_} for grep { !defined $params{$_} } keys %params;
    return $http->get($box->url . "$prefix/authorize.php?" . qs(%params));
}

# A code from /authorize.php (the browser way).
sub code_for {
    my ($box, %p) = @_;
    my $r = authorize($box, %p);
    die "authorize failed: $r->{status} $r->{content}" unless $r->{status} == 302;
    return query_of($r->{headers}{location})->{code};
}

# POST /token.php. Options: json => 1 (JSON body), path => token path,
# auth => Authorization header; the rest are the parameters.
sub token {
    my ($box, %p) = @_;
    my $path = delete $p{path} // '/token.php?request=token';
    my $json = delete $p{json};
    my $auth = delete $p{auth};
    my %headers = (Accept => 'application/json');
    $headers{Authorization} = $auth if defined $auth;
    my $content;
    if ($json) {
        $headers{'Content-Type'} = 'application/json';
        $content = encode_json(\%p);
    } else {
        $headers{'Content-Type'} = 'application/x-www-form-urlencoded';
        $content = qs(%p);
    }
    my $r = $http->request('POST', $box->url . $path, { headers => \%headers, content => $content });
    return ($r, eval { decode_json($r->{content}) });
}

sub exchange {
    my ($box, $code, %p) = @_;
    return token($box, grant_type => 'authorization_code', code => $code, redirect_uri => $CB,
                 client_id => $CLIENT, client_secret => $SECRET, %p);
}

sub refresh {
    my ($box, $refresh_token, %p) = @_;
    return token($box, grant_type => 'refresh_token', refresh_token => $refresh_token,
                 client_id => $CLIENT, client_secret => $SECRET, %p);
}

# Tokens of a fresh code exchange ($scope defaults to employee + offline_access).
sub tokens {
    my ($box, $scope) = @_;
    my (undef, $data) = exchange($box, code_for($box, scope => $scope // 'employee offline_access'));
    return $data;
}

sub api {
    my ($box, $path, $auth) = @_;
    return $http->get($box->url . $path,
                      { headers => { Accept => 'application/json', Authorization => $auth } });
}

sub control {
    my ($box, $method, $path, $data) = @_;
    my $r = $http->request($method, $box->url . $path, {
        headers => { 'Content-Type' => 'application/json' },
        defined $data ? (content => encode_json($data)) : () });
    return ($r, eval { decode_json($r->{content}) });
}

sub grants { (control($_[0], 'GET', '/_sandbox/oauth/grants'))[1] }

sub state_of {
    my ($box, $kind, $token) = @_;
    my $key = $kind eq 'access_tokens' ? 'access_token' : 'refresh_token';
    my ($entry) = grep { $_->{$key} eq $token } @{ grants($box)->{$kind} };
    return $entry ? $entry->{state} : 'missing';
}

sub is_oauth_error {
    my ($r, $data, $status, $error, $name) = @_;
    is($r->{status}, $status, "$name: $status");
    is($data && $data->{error}, $error, "$name: error $error");
    ok($data && length($data->{error_description} // ''), "$name: error_description present");
}

# -- authorize: the redirect ---------------------------------------------------

{
    my $r = authorize($sb, state => 'a b+c/ü&=?');
    is($r->{status}, 302, 'authorize: 302 at once (no login page in a sandbox)');
    my $location = $r->{headers}{location};
    like($location, qr{^\Q$CB\E\?code=}, 'Location is redirect_uri?code=...');
    my $q = query_of($location);
    like($q->{code}, qr/^[A-Za-z0-9_-]{20,}$/, 'one-time code present');
    is($q->{state}, 'a b+c/ü&=?', 'state comes back unchanged');
    is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');

    for my $prefix ('/api', '/api/gateway.php/acme') {
        $r = authorize($sb, prefix => $prefix, state => 'p');
        is($r->{status}, 302, "authorize under $prefix");
        ok(query_of($r->{headers}{location})->{code}, "code issued under $prefix");
    }

    $r = authorize($sb, redirect_uri => 'https://app.example/cb?tenant=7', state => undef);
    my $loc = $r->{headers}{location};
    like($loc, qr{^https://app\.example/cb\?tenant=7&code=}, 'a query in redirect_uri is kept');
    ok(!exists query_of($loc)->{state}, 'no state asked, none returned');

    $r = $http->get($sb->url . '/authorize.php?request=authorize&response_type=code'
                    . "&client_id=$CLIENT&redirect_uri=" . uri_escape($CB)
                    . '&scope=employee+time_off+offline_access&state=s');
    is($r->{status}, 302, "scope with '+' separators");
    my $code = query_of($r->{headers}{location})->{code};
    my (undef, $data) = exchange($sb, $code);
    is($data->{scope}, 'employee time_off offline_access', 'granted scope, space separated');

    $r = authorize($sb, scope => undef);
    is($r->{status}, 302, 'no scope at all is accepted (the vendor SDK example sends none)');
    (undef, $data) = exchange($sb, query_of($r->{headers}{location})->{code});
    is($data->{scope}, '', 'empty granted scope');
    ok(!exists $data->{refresh_token}, 'and no refresh token');
}

# -- authorize: errors -------------------------------------------------------

{
    for my $case ([unknown => { client_id => 'nobody' }], [missing => { client_id => undef }]) {
        my $r = authorize($sb, %{ $case->[1] });
        is($r->{status}, 400, "$case->[0] client_id: 400 page");
        ok(!$r->{headers}{location}, "$case->[0] client_id: no redirect");
        like($r->{headers}{'content-type'}, qr{^text/html}, "$case->[0] client_id: an HTML page");
        like($r->{content}, qr/client_id/, "$case->[0] client_id: the page says why");
    }
    my $r = authorize($sb, redirect_uri => undef);
    is($r->{status}, 400, 'missing redirect_uri: 400 page');
    $r = authorize($sb, redirect_uri => 'not-a-uri');
    is($r->{status}, 400, 'relative redirect_uri: 400 page');
    $r = authorize($sb, redirect_uri => 'https://app.example/cb#frag');
    is($r->{status}, 400, 'redirect_uri with a fragment: 400 page');

    my @errors = (
        [{ response_type => undef }, 'invalid_request', 'missing response_type'],
        [{ response_type => 'token' }, 'unauthorized_client', 'response_type=token'],
        [{ response_type => 'id_token' }, 'unsupported_response_type', 'response_type=id_token'],
        [{ scope => 'employee bogus_scope' }, 'invalid_scope', 'unknown scope'],
        [{ scope => 'employee,offline_access' }, 'invalid_scope', 'comma-separated scopes'],
        [{ request => undef }, 'invalid_request', 'missing request=authorize'],
    );
    for my $case (@errors) {
        my ($params, $error, $name) = @$case;
        $r = authorize($sb, %$params, state => 'keep me');
        is($r->{status}, 302, "$name: redirected back");
        my $q = query_of($r->{headers}{location});
        like($r->{headers}{location}, qr{^\Q$CB\E\?}, "$name: to the redirect_uri");
        is($q->{error}, $error, "$name: error=$error");
        ok(length $q->{error_description}, "$name: error_description");
        is($q->{state}, 'keep me', "$name: state echoed");
        ok(!exists $q->{code}, "$name: no code");
    }
    $r = $http->get($sb->url . '/authorize.php?request=authorize&response_type=code&response_type=code'
                    . "&client_id=$CLIENT&redirect_uri=" . uri_escape($CB));
    is(query_of($r->{headers}{location})->{error}, 'invalid_request', 'a repeated parameter: invalid_request');
    $r = $http->request('POST', $sb->url . '/authorize.php');
    is($r->{status}, 405, 'POST /authorize.php: 405');

    $r = authorize($sb, scope => 'employee:name.write time_off.write openid public.integration');
    is($r->{status}, 302, 'spec scopes with sub-scopes and .write');
    ok(query_of($r->{headers}{location})->{code}, 'are accepted');
}

# -- registered clients and redirect_uri matching ------------------------------

{
    my $box = HRIS::Sandbox->start('bamboohr', args => [
        '--oauth-client', 'app-one:s1:https://one.example/cb',
        '--oauth-client', 'app-two:s2:*']);
    my $r = authorize($box, client_id => 'app-one', redirect_uri => 'https://one.example/cb');
    is($r->{status}, 302, 'registered redirect_uri matches exactly: 302');
    my $code = query_of($r->{headers}{location})->{code};
    for my $uri ('https://one.example/cb/', 'https://one.example/cb?x=1', 'http://one.example/cb',
                 'https://ONE.example/cb') {
        $r = authorize($box, client_id => 'app-one', redirect_uri => $uri);
        is($r->{status}, 400, "redirect_uri $uri is not the registered one: 400 page");
        ok(!$r->{headers}{location}, "... and no redirect to $uri");
    }
    $r = authorize($box, client_id => 'app-two', redirect_uri => 'https://anything.example/x');
    is($r->{status}, 302, 'second client with *: any redirect_uri');
    $r = authorize($box, client_id => $CLIENT);
    is($r->{status}, 400, 'explicit --oauth-client replaces the default client');

    my ($resp, $data) = token($box, grant_type => 'authorization_code', code => $code,
                              redirect_uri => 'https://one.example/cb', client_id => 'app-two',
                              client_secret => 's2');
    is_oauth_error($resp, $data, 400, 'invalid_grant', "another client's code");
    ($resp, $data) = token($box, grant_type => 'authorization_code', code => $code,
                           redirect_uri => 'https://one.example/cb', client_id => 'app-one',
                           client_secret => 's1');
    is($resp->{status}, 200, 'the right client gets its tokens');
    $box->stop;
}

# -- token: authorization_code grant ------------------------------------------

{
    my $code = code_for($sb, scope => 'employee offline_access');
    my ($r, $data) = exchange($sb, $code);
    is($r->{status}, 200, 'code exchange: 200');
    like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON answer');
    is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
    like($data->{access_token}, qr/\S{20,}/, 'access_token');
    is($data->{expires_in}, 3600, 'expires_in 3600 by default');
    is($data->{token_type}, 'Bearer', 'token_type Bearer');
    is($data->{scope}, 'employee offline_access', 'scope');
    like($data->{refresh_token}, qr/\S{20,}/, 'offline_access: refresh_token');
    ok(!exists $data->{id_token}, 'no openid: no id_token');
    is($data->{companyDomain}, 'sandbox', 'companyDomain');
    ok($data->{expires_in} =~ /^\d+$/ && $r->{content} =~ /"expires_in":3600\b/, 'expires_in is a JSON number');

    ($r, my $again) = exchange($sb, $code);
    is_oauth_error($r, $again, 400, 'invalid_grant', 'the same code twice');
    is(api($sb, '/v1/employees/4', "Bearer $data->{access_token}")->{status}, 401,
       'a replayed code revokes the access token it gave (RFC 6749 4.1.2)');
    is(state_of($sb, 'refresh_tokens', $data->{refresh_token}), 'revoked', '... and its refresh token');

    ($r, $data) = exchange($sb, code_for($sb, scope => 'employee'));
    is($r->{status}, 200, 'exchange without offline_access: 200');
    ok(!exists $data->{refresh_token}, 'without offline_access: no refresh_token');

    ($r, $data) = exchange($sb, code_for($sb, scope => 'openid employee offline_access'));
    like($data->{id_token}, qr/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, 'openid: id_token (JWT-shaped)');
    ok($data->{refresh_token}, 'and a refresh_token');

    ($r, $data) = exchange($sb, 'no-such-code');
    is_oauth_error($r, $data, 400, 'invalid_grant', 'unknown code');
    $code = code_for($sb);
    ($r, $data) = exchange($sb, $code, redirect_uri => 'http://127.0.0.1:1/other');
    is_oauth_error($r, $data, 400, 'invalid_grant', 'redirect_uri differs from the authorize call');
    ($r, $data) = exchange($sb, $code);
    is($r->{status}, 200, 'a failed attempt does not use the code up');
    ($r, $data) = token($sb, grant_type => 'authorization_code', code => code_for($sb),
                        client_id => $CLIENT, client_secret => $SECRET);
    is_oauth_error($r, $data, 400, 'invalid_request', 'missing redirect_uri');
    ($r, $data) = token($sb, grant_type => 'authorization_code', redirect_uri => $CB,
                        client_id => $CLIENT, client_secret => $SECRET);
    is_oauth_error($r, $data, 400, 'invalid_request', 'missing code');

    # Path shapes of the token endpoint.
    for my $path ('/api/token.php?request=token', '/api/gateway.php/acme/token.php?request=token') {
        ($r, $data) = exchange($sb, code_for($sb), path => $path);
        is($r->{status}, 200, "token endpoint at $path");
    }
}

# -- token: bodies, request=token, methods ---------------------------------------

{
    my ($r, $data) = exchange($sb, code_for($sb), json => 1);
    is($r->{status}, 200, 'JSON body: 200');
    ok($data->{refresh_token}, 'JSON body: tokens');
    ($r, $data) = refresh($sb, $data->{refresh_token}, json => 1);
    is($r->{status}, 200, 'JSON body on a refresh: 200');

    ($r, $data) = exchange($sb, code_for($sb), path => '/token.php', request => 'token');
    is($r->{status}, 200, 'request=token in the body instead of the query (vendor SDK example)');
    ($r, $data) = exchange($sb, code_for($sb), path => '/token.php');
    is_oauth_error($r, $data, 400, 'invalid_request', 'no request=token anywhere');

    $r = $http->request('POST', $sb->url . '/token.php?request=token', {
        headers => { 'Content-Type' => 'application/json' }, content => '{"grant_type":' });
    is_oauth_error($r, eval { decode_json($r->{content}) }, 400, 'invalid_request', 'broken JSON');
    $r = $http->request('POST', $sb->url . '/token.php?request=token', {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => "grant_type=authorization_code&grant_type=refresh_token&client_id=$CLIENT&client_secret=$SECRET" });
    is_oauth_error($r, eval { decode_json($r->{content}) }, 400, 'invalid_request', 'a repeated form parameter');
    $r = $http->get($sb->url . '/token.php?request=token');
    is($r->{status}, 405, 'GET /token.php: 405');
    is($r->{headers}{allow}, 'POST', 'Allow: POST');
}

# -- token: client authentication and grant types --------------------------------

{
    my $code = code_for($sb);
    my ($r, $data) = exchange($sb, $code, client_secret => 'wrong');
    is_oauth_error($r, $data, 401, 'invalid_client', 'wrong client_secret');
    ($r, $data) = exchange($sb, $code, client_id => 'nobody');
    is_oauth_error($r, $data, 401, 'invalid_client', 'unknown client_id');
    ($r, $data) = token($sb, grant_type => 'authorization_code', code => $code, redirect_uri => $CB,
                        client_id => $CLIENT);
    is_oauth_error($r, $data, 401, 'invalid_client', 'missing client_secret');
    ($r, $data) = token($sb, grant_type => 'authorization_code', code => $code, redirect_uri => $CB,
                        auth => 'Basic ' . encode_base64("$CLIENT:wrong", ''));
    is_oauth_error($r, $data, 401, 'invalid_client', 'wrong Basic client credentials');
    like($r->{headers}{'www-authenticate'} // '', qr/^Basic/, 'WWW-Authenticate when Basic was used');
    ($r, $data) = token($sb, grant_type => 'authorization_code', code => $code, redirect_uri => $CB,
                        auth => 'Basic ' . encode_base64("$CLIENT:$SECRET", ''));
    is($r->{status}, 200, 'client credentials in a Basic header work too (RFC 6749 2.3.1)');

    for my $grant ('client_credentials', 'password', 'implicit') {
        ($r, $data) = token($sb, grant_type => $grant, client_id => $CLIENT, client_secret => $SECRET);
        is_oauth_error($r, $data, 400, 'unsupported_grant_type', "grant_type=$grant");
    }
    ($r, $data) = token($sb, client_id => $CLIENT, client_secret => $SECRET);
    is_oauth_error($r, $data, 400, 'invalid_request', 'missing grant_type');
}

# -- token: refresh_token grant, rotation ----------------------------------------

{
    my $first = tokens($sb);
    my ($r, $second) = refresh($sb, $first->{refresh_token});
    is($r->{status}, 200, 'refresh: 200');
    is($second->{token_type}, 'Bearer', 'refresh: same answer shape (token_type)');
    is($second->{expires_in}, 3600, 'refresh: expires_in');
    is($second->{scope}, 'employee offline_access', 'refresh: scope');
    is($second->{companyDomain}, 'sandbox', 'refresh: companyDomain');
    isnt($second->{access_token}, $first->{access_token}, 'refresh: a new access token');
    ok($second->{refresh_token}, 'refresh: a new refresh token (rotation)');
    isnt($second->{refresh_token}, $first->{refresh_token}, '... different from the old one');
    is(state_of($sb, 'refresh_tokens', $first->{refresh_token}), 'rotated', 'old refresh token: rotated');

    my $data;
    ($r, $data) = refresh($sb, $first->{refresh_token});
    is_oauth_error($r, $data, 400, 'invalid_grant', 'the old refresh token after rotation');
    ($r, my $third) = refresh($sb, $second->{refresh_token});
    is($r->{status}, 200, 'the new refresh token works');
    is(api($sb, '/v1/employees/4', "Bearer $first->{access_token}")->{status}, 200,
       'access tokens of a rotated refresh token stay valid until they expire');

    ($r, $data) = refresh($sb, $third->{refresh_token}, scope => 'employee');
    is($r->{status}, 200, 'refresh with a narrower scope: 200');
    is($data->{scope}, 'employee', 'narrowed access token scope');
    ($r, my $wide) = refresh($sb, $data->{refresh_token});
    is($wide->{scope}, 'employee offline_access', 'the rotated refresh token keeps the original scope');
    ($r, $data) = refresh($sb, $wide->{refresh_token}, scope => 'employee time_off');
    is_oauth_error($r, $data, 400, 'invalid_scope', 'refresh asking for more scope');

    ($r, $data) = refresh($sb, 'bhr-rt-unknown');
    is_oauth_error($r, $data, 400, 'invalid_grant', 'unknown refresh token');
    ($r, $data) = refresh($sb, $wide->{refresh_token}, client_secret => 'nope');
    is_oauth_error($r, $data, 401, 'invalid_client', 'refresh with a wrong client_secret');
    ($r, $data) = token($sb, grant_type => 'refresh_token', client_id => $CLIENT, client_secret => $SECRET);
    is_oauth_error($r, $data, 400, 'invalid_request', 'refresh without refresh_token');

    my $openid = tokens($sb, 'openid employee offline_access');
    ($r, $data) = refresh($sb, $openid->{refresh_token});
    ok($data->{id_token}, 'refresh of an openid grant: id_token again');
}

# -- revoke ---------------------------------------------------------------------

{
    my $one = tokens($sb);
    my $two = tokens($sb);
    my ($r, $data) = control($sb, 'POST', '/_sandbox/oauth/revoke', { refresh_token => $one->{refresh_token} });
    is($r->{status}, 200, 'revoke one: 200');
    is($data->{revoked}, 1, 'revoke one: count');
    ($r, $data) = refresh($sb, $one->{refresh_token});
    is_oauth_error($r, $data, 400, 'invalid_grant', 'refresh after revoke');
    like($data->{error_description}, qr/revoked/, 'description says revoked');
    ($r, $data) = refresh($sb, $two->{refresh_token});
    is($r->{status}, 200, 'other refresh tokens are untouched');
    my $current = $data->{refresh_token};

    ($r, $data) = control($sb, 'POST', '/_sandbox/oauth/revoke', { all => JSON::PP::true });
    ok($data->{revoked} >= 1, 'revoke all: count');
    ($r, $data) = refresh($sb, $current);
    is_oauth_error($r, $data, 400, 'invalid_grant', 'refresh after revoke all');
    is(api($sb, '/v1/employees/4', "Bearer $two->{access_token}")->{status}, 200,
       'revoking refresh tokens leaves access tokens alone');

    ($r, $data) = control($sb, 'POST', '/_sandbox/oauth/revoke', { access_token => $two->{access_token} });
    is($data->{revoked}, 1, 'revoke an access token');
    my $denied = api($sb, '/v1/employees/4', "Bearer $two->{access_token}");
    is($denied->{status}, 401, 'revoked access token: 401');
    like($denied->{headers}{'x-bamboohr-error-message'}, qr/revoked/, '... saying revoked');

    ($r) = control($sb, 'POST', '/_sandbox/oauth/revoke', {});
    is($r->{status}, 400, 'revoke without a target: 400');
    ($r) = control($sb, 'POST', '/_sandbox/oauth/revoke', [1]);
    is($r->{status}, 400, 'revoke with a non-object body: 400');
}

# -- bearer tokens on the data endpoints --------------------------------------------

{
    my $t = tokens($sb);
    my $bearer = "Bearer $t->{access_token}";
    for my $path ('/v1/employees?page%5Blimit%5D=2', '/api/v1/employees?page%5Blimit%5D=2',
                  '/api/gateway.php/acme/v1/employees?page%5Blimit%5D=2') {
        my $r = api($sb, $path, $bearer);
        is($r->{status}, 200, "bearer accepted on $path");
        is(scalar @{ decode_json($r->{content})->{data} }, 2, "... with data ($path)");
    }
    is(api($sb, '/v1/employees/directory', $bearer)->{status}, 200, 'bearer on the directory');

    my $r = api($sb, '/v1/employees/4', 'Bearer not-a-token');
    is($r->{status}, 401, 'unknown bearer: 401');
    is($r->{content}, '', 'unknown bearer: empty body');
    is($r->{headers}{'x-bamboohr-error-message'}, 'Invalid access token.', 'unknown bearer: error header');

    my (undef, $data) = control($sb, 'POST', '/_sandbox/oauth/expire', { access_token => $t->{access_token} });
    is($data->{expired}, 1, 'expire one access token');
    $r = api($sb, '/v1/employees?page%5Blimit%5D=2', $bearer);
    is($r->{status}, 401, 'expired bearer: 401');
    is($r->{content}, '', 'expired bearer: empty body');
    like($r->{headers}{'x-bamboohr-error-message'}, qr/expired/, 'expired bearer: error header says expired');
    is(state_of($sb, 'access_tokens', $t->{access_token}), 'expired', 'grants listing: expired');

    my ($resp, $fresh) = refresh($sb, $t->{refresh_token});
    is(api($sb, '/v1/employees/4', "Bearer $fresh->{access_token}")->{status}, 200,
       'after a refresh the new access token works');

    my @live = (tokens($sb)->{access_token}, tokens($sb)->{access_token});
    (undef, $data) = control($sb, 'POST', '/_sandbox/oauth/expire', { all => JSON::PP::true });
    ok($data->{expired} >= 3, 'expire all: count');
    is(api($sb, '/v1/employees/4', "Bearer $_")->{status}, 401, 'expire all: every access token is dead')
        for @live, $fresh->{access_token};
    ($resp, $data) = refresh($sb, $fresh->{refresh_token});
    is($resp->{status}, 200, 'expire all leaves refresh tokens usable');
    ($resp) = control($sb, 'POST', '/_sandbox/oauth/expire', {});
    is($resp->{status}, 400, 'expire without a target: 400');

    is(api($sb, '/v1/employees/4', 'Basic ' . encode_base64('0123456789abcdef0123456789abcdef01234567:x', ''))->{status},
       200, 'Basic API keys still work');
}

# -- control: code minting, grants listing, reset -----------------------------------

{
    my ($r, $data) = control($sb, 'POST', '/_sandbox/oauth/code',
                             { client_id => $CLIENT, redirect_uri => $CB, scope => 'employee offline_access' });
    is($r->{status}, 200, 'POST /_sandbox/oauth/code: 200');
    ok($data->{code}, 'a code without a browser');
    is($data->{expires_in}, 600, 'with its lifetime');
    my ($resp, $tok) = exchange($sb, $data->{code});
    is($resp->{status}, 200, 'a minted code exchanges like a browser one');
    ok($tok->{refresh_token}, 'minted with offline_access: refresh token');

    ($r, $data) = control($sb, 'POST', '/_sandbox/oauth/code', { scope => ['employee'] });
    is($r->{status}, 200, 'code: every field optional, scope may be an array');
    is($data->{client_id}, $CLIENT, 'default client');
    is($data->{redirect_uri}, 'http://127.0.0.1/callback', 'default redirect_uri for a * client');
    is($data->{scope}, 'employee', 'scope');
    ($resp, $tok) = token($sb, grant_type => 'authorization_code', code => $data->{code},
                          redirect_uri => 'http://127.0.0.1/callback', client_id => $CLIENT,
                          client_secret => $SECRET);
    ok(!exists $tok->{refresh_token}, 'minted without offline_access: no refresh token');

    ($r) = control($sb, 'POST', '/_sandbox/oauth/code', { client_id => 'nobody' });
    is($r->{status}, 400, 'code for an unknown client: 400');
    ($r) = control($sb, 'POST', '/_sandbox/oauth/code', { scope => 'nonsense' });
    is($r->{status}, 400, 'code with an unknown scope: 400');

    my $g = grants($sb);
    ok(@{ $g->{codes} } && @{ $g->{access_tokens} } && @{ $g->{refresh_tokens} }, 'grants lists codes and tokens');
    my %states = map { $_->{state} => 1 } @{ $g->{refresh_tokens} };
    ok($states{active} && $states{rotated} && $states{revoked}, 'refresh states active, rotated, revoked');
    %states = map { $_->{state} => 1 } @{ $g->{access_tokens} };
    ok($states{active} && $states{expired} && $states{revoked}, 'access states active, expired, revoked');
    my ($entry) = @{ $g->{access_tokens} };
    ok(exists $entry->{$_}, "access entry has $_") for qw(access_token client_id scope grant_type state expires_in);
    ($entry) = @{ $g->{refresh_tokens} };
    ok(exists $entry->{$_}, "refresh entry has $_") for qw(refresh_token client_id scope state replaced_by);
    ok(grep({ $_->{state} eq 'used' } @{ $g->{codes} }), 'code state used');

    ($r) = control($sb, 'GET', '/_sandbox/oauth/nothing');
    is($r->{status}, 404, 'unknown /_sandbox/oauth/ endpoint: 404');
    ($r) = control($sb, 'GET', '/_sandbox/oauth/revoke');
    is($r->{status}, 404, 'GET on a POST control endpoint: 404');

    my $t = tokens($sb);
    $sb->reset;
    $g = grants($sb);
    is_deeply([map { scalar @{ $g->{$_} } } qw(codes access_tokens refresh_tokens)], [0, 0, 0],
              'reset forgets every grant');
    is(api($sb, '/v1/employees/4', "Bearer $t->{access_token}")->{status}, 401, 'old bearer after reset: 401');
    ($resp, $data) = refresh($sb, $t->{refresh_token});
    is($data->{error}, 'invalid_grant', 'old refresh token after reset: invalid_grant');
    is(authorize($sb)->{status}, 302, 'clients survive reset');
}

# -- statistics: token.php calls by grant type ---------------------------------------

{
    $sb->reset;
    my $t = tokens($sb);
    refresh($sb, $t->{refresh_token}) for 1 .. 2;     # second one: invalid_grant, still counted
    token($sb, grant_type => 'client_credentials', client_id => $CLIENT, client_secret => $SECRET);
    my $stats = $sb->stats;
    is($stats->{by_path}{'/token.php#authorization_code'}, 1, 'stats: code exchanges');
    is($stats->{by_path}{'/token.php#refresh_token'}, 2, 'stats: refreshes (failed ones too)');
    is($stats->{by_path}{'/token.php#client_credentials'}, 1, 'stats: other grant types by name');
    is($stats->{by_path}{'/token.php'}, 4, 'stats: the raw path count as usual');
    is($stats->{requests}, 5, 'requests unchanged by the grant-type keys (1 authorize + 4 token)');
    is_deeply(grants($sb)->{token_calls}, { map { ("/token.php#$_" => $stats->{by_path}{"/token.php#$_"}) }
                                            qw(authorization_code refresh_token client_credentials) },
              'the grants listing carries the same counters');
    $sb->reset;
    is_deeply($sb->stats, { requests => 0, by_path => {}, faults_served => 0 }, 'reset clears them');

    $sb->fault({ fault => '503', path => '/token.php', retry_after => '2' });
    my ($r) = exchange($sb, code_for($sb));
    is($r->{status}, 503, 'faults hit /token.php too (path => "/token.php")');
    is($r->{headers}{'retry-after'}, '2', '... with Retry-After');
}

# -- --code-ttl, --access-token-ttl, --no-rotate ---------------------------------------

{
    my $box = HRIS::Sandbox->start('bamboohr', args => ['--code-ttl', '1', '--access-token-ttl', '1',
                                                        '--no-rotate', '--company-domain', 'acme']);
    my $late = code_for($box);
    my $soon = code_for($box);
    my ($r, $data) = exchange($box, $soon);
    is($r->{status}, 200, 'a code used within --code-ttl works');
    is($data->{expires_in}, 1, '--access-token-ttl sets expires_in');
    is($data->{companyDomain}, 'acme', '--company-domain');
    my $bearer = "Bearer $data->{access_token}";
    is(api($box, '/v1/employees/4', $bearer)->{status}, 200, 'fresh access token works');
    my (undef, $minted) = control($box, 'POST', '/_sandbox/oauth/code', {});
    is($minted->{expires_in}, 1, 'minted code lifetime follows --code-ttl');
    sleep 1.3;
    ($r, my $expired) = exchange($box, $late);
    is_oauth_error($r, $expired, 400, 'invalid_grant', 'a code older than --code-ttl');
    like($expired->{error_description}, qr/expired/, 'description says expired');
    is(state_of($box, 'access_tokens', $data->{access_token}), 'expired', 'access token expired by itself');
    $r = api($box, '/v1/employees/4', $bearer);
    is($r->{status}, 401, 'access token older than --access-token-ttl: 401');
    like($r->{headers}{'x-bamboohr-error-message'}, qr/expired/, '... with the error header');

    ($r, my $one) = refresh($box, $data->{refresh_token});
    is($r->{status}, 200, '--no-rotate: refresh works');
    ok(!exists $one->{refresh_token}, '--no-rotate: no refresh_token in the answer');
    unlike($r->{content}, qr/refresh_token/, '--no-rotate: not even a null one');
    ($r, my $two) = refresh($box, $data->{refresh_token});
    is($r->{status}, 200, '--no-rotate: the same refresh token works again');
    isnt($two->{access_token}, $one->{access_token}, '--no-rotate: a new access token each time');
    is(state_of($box, 'refresh_tokens', $data->{refresh_token}), 'active', '--no-rotate: still active');
    $box->stop;
}

# -- --token-delay-ms and concurrent refreshes ------------------------------------------

{
    my $box = HRIS::Sandbox->start('bamboohr', args => ['--token-delay-ms', '400']);
    my $t = tokens($box);
    my $start = time;
    my ($r) = refresh($box, $t->{refresh_token});
    my $took = time - $start;
    ok($took >= 0.38, sprintf('--token-delay-ms delays token.php (%.2fs)', $took));
    my $current = decode_json($r->{content})->{refresh_token};

    $start = time;
    is(api($box, '/v1/employees/4', "Bearer $t->{access_token}")->{status}, 200, 'data endpoints');
    ok(time - $start < 0.3, 'data endpoints are not delayed');

    # Two refreshes of the same token at the same time: both wait, one wins.
    my $body = "grant_type=refresh_token&refresh_token=$current&client_id=$CLIENT&client_secret=$SECRET";
    my @socks = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $box->port, Proto => 'tcp')
            or die "connect: $!";
        print {$s} "POST /token.php?request=token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " . length($body)
            . "\r\n\r\n$body";
        $s;
    } 1 .. 2;
    $start = time;
    my @statuses;
    for my $s (@socks) {
        local $/;
        my $answer = <$s>;
        push @statuses, ($answer =~ m{^HTTP/1\.1 (\d+)})[0];
        close $s;
    }
    $took = time - $start;
    ok($took < 0.75, sprintf('the two delayed refreshes ran concurrently (%.2fs)', $took));
    is_deeply([sort @statuses], [200, 400], 'concurrent refreshes of one token: one 200, one invalid_grant');
    is($box->stats->{by_path}{'/token.php#refresh_token'}, 3, 'stats count every refresh attempt');
    $box->stop;
}

done_testing();
