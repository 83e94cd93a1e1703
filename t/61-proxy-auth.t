#!/usr/bin/perl
# The proxy API injects every kind of credential the tables know: a token
# exchanged once for the account (Personio, HeavenHR), an API key carried
# in the JSON body (PeopleHR), headers (ClayHR); and holds the account to
# its rate limit like unified calls, and refused credentials to their
# cool-down.

use strict;
use warnings;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my %sb = (
    personio => HRIS::Sandbox->start('personio'),
    peoplehr => HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']),
    heavenhr => HRIS::Sandbox->start('heavenhr'),
    clayhr   => HRIS::Sandbox->start('clayhr'),
);
my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(%sb,
    extra => { 'acme-peoplehr' => { rate_limit => { calls => 3, per => '60s' } } }),
    http => 'hris_retry_after_max 200ms;');

my $res = $ng->get('/proxy/v1/company/employees?limit=2&integrated_account_id=acme-personio');
is($res->{status}, 200, 'Personio through the proxy: the token is exchanged and sent');
is(scalar @{ $res->{json}{data} }, 2, 'the provider\'s own answer');
$ng->get('/proxy/v1/company/time-off-types?integrated_account_id=acme-personio');
is($sb{personio}->stats->{by_path}{'/v1/auth'}, 1, 'one exchange for both calls');

# CONTRACT §5: no answer of the proxy carries a provider-issued token.
# Personio hands its token back in `authorization` on every data answer;
# the sandbox's live token is the one /v1/auth gives for the same client.
{
    my $creds = $HRIS::Nginx::PROVIDER{personio}{credentials};
    my $auth = HTTP::Tiny->new(timeout => 10)->post($sb{personio}->url . '/v1/auth',
        { headers => { 'Content-Type' => 'application/json' },
          content => encode_json($creds) });
    my $token = eval { decode_json($auth->{content})->{data}{token} } // '';
    like($token, qr/^papi-/, "the account's live Personio token, straight from the sandbox");
    for my $path ('/proxy/v1/company/employees?limit=1&', '/proxy/v1/company/time-off-types?') {
        my $r = $ng->get("${path}integrated_account_id=acme-personio");
        is($r->{status}, 200, "$path: 200");
        ok(!exists $r->{headers}{authorization}, "$path: no Authorization header comes back");
        my @leaks = grep {
            my $v = ref $r->{headers}{$_} ? join("\n", @{ $r->{headers}{$_} })
                                          : $r->{headers}{$_};
            index($v, $token) >= 0 || $v =~ /papi-|bearer/i || /^authorization$/i
        } keys %{ $r->{headers} };
        is_deeply(\@leaks, [], "$path: no header of the answer holds the token")
            or diag(explain($r->{headers}));
        ok(index($r->{body}, $token) < 0, "$path: nor does the body");
    }

    # one-time tokens: each answer hands back the next one, which the
    # gateway keeps for itself
    my $rot = HRIS::Sandbox->start('personio', args => ['--rotate-tokens']);
    my $ng2 = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(personio => $rot));
    for my $try (1 .. 3) {
        my $r = $ng2->get('/proxy/v1/company/time-off-types?integrated_account_id=acme-personio');
        is($r->{status}, 200, "rotating tokens, call $try: 200 (the echoed token was kept)");
        my @leaks = grep { /^authorization$/i || join('', $r->{headers}{$_}) =~ /papi-/ }
                    keys %{ $r->{headers} };
        is_deeply(\@leaks, [], "rotating tokens, call $try: no token in the answer's headers");
    }
    is($rot->stats->{by_path}{'/v1/auth'}, 1, 'one exchange: the rotated tokens were used');
    $ng2->stop;
    $rot->stop;
}

$res = $ng->get('/proxy/employees?pageSize=1&integrated_account_id=acme-heavenhr');
is($res->{status}, 200, 'HeavenHR through the proxy');
is($res->{json}{pageSize}, 1, 'the provider\'s page envelope comes back as it is');

$res = $ng->request('POST', '/proxy/Employee?integrated_account_id=acme-peoplehr',
                    headers => { 'Content-Type' => 'application/json' },
                    body => '{"Action":"GetEmployeeDetailById","EmployeeId":"PW4"}');
is($res->{status}, 200, 'PeopleHR through the proxy');
is($res->{json}{isError}, JSON::PP::false, 'the API key was merged into the body');
is($res->{json}{Result}{FirstName}{DisplayValue}, 'Björn', 'and the provider answered');

$res = $ng->request('POST', '/proxy/Employee?integrated_account_id=acme-peoplehr',
                    headers => { 'Content-Type' => 'application/json' },
                    body => '{"APIKey":"forged","Action":"GetCompanyInformation"}');
is($res->{json}{isError}, JSON::PP::false, 'a caller\'s own APIKey is replaced by the account\'s');

$res = $ng->request('POST', '/proxy/Employee?integrated_account_id=acme-peoplehr',
                    headers => { 'Content-Type' => 'application/json' },
                    body => '{"Action":"GetCompanyInformation"}');
is($res->{status}, 200, 'the third call of three allowed');
$res = $ng->request('POST', '/proxy/Employee?integrated_account_id=acme-peoplehr',
                    headers => { 'Content-Type' => 'application/json' },
                    body => '{"Action":"GetCompanyInformation"}');
is($res->{status}, 429, 'the account\'s rate limit holds for proxy calls too');
like($res->{headers}{'retry-after'} // '', qr/^\d+$/, 'with Retry-After');

$res = $ng->get('/proxy/orgunits?integrated_account_id=acme-clayhr');
is($res->{status}, 200, 'ClayHR through the proxy: x-api-key and userid headers');
ok(ref $res->{json} eq 'ARRAY' && @{ $res->{json} }, 'its bare array');

$ng->stop;
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alerts');

# A key the provider refuses: the proxy does not send it again for the
# cool-down, whatever the client retries (hris_credentials_cooldown).
{
    my $bad = 'clayhr-refused-key-4e1a77';
    my $ngb = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts_for(clayhr => $sb{clayhr},
        extra => { 'acme-clayhr' => { credentials => { api_key => $bad } } }));
    my $before = $sb{clayhr}->stats->{requests};
    my $res = $ngb->get('/proxy/orgunits?integrated_account_id=acme-clayhr');
    is($res->{status}, 401, 'a refused key through the proxy: the provider\'s 401');
    my @again = map { $ngb->get('/proxy/orgunits?integrated_account_id=acme-clayhr') } 1 .. 4;
    is(join(' ', map { $_->{status} } @again), '401 401 401 401', 'four retries: 401');
    is($again[-1]{json}{details}{credentials_rejected}, JSON::PP::true,
       'details.credentials_rejected');
    like($again[-1]{json}{message} // '', qr/refused the integrated account's credentials/,
         'the message says so');
    is($sb{clayhr}->stats->{requests} - $before, 1, 'the provider saw the key once');
    $res = $ngb->get('/proxy/employees?pageSize=1&integrated_account_id=acme-clayhr');
    is($res->{status}, 401, 'every path of the account waits');
    is($sb{clayhr}->stats->{requests} - $before, 1, 'still once');
    $ngb->stop;
    unlike($ngb->error_log, qr/\Q$bad\E/, 'the key is not logged');
}

done_testing;
