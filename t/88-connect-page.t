#!/usr/bin/perl
# The connect page as end users see it, in a real browser: headless
# Chromium (t/lib/HRIS/Browser.pm) on a phone-sized window opens form links
# of the API-key sandboxes (ClayHR, PeopleHR), reads what it rendered, types
# into it and sends it with the keyboard. Checked:
#  - the page: valid structure (lang, viewport, title and heading with the
#    provider's display name), labels tied to inputs, the table's help lines
#    tied by aria-describedby, password inputs for secrets, autocomplete and
#    inputmode, a visible focus ring, the keyboard order, no horizontal
#    scrolling at 390 px, the inline style applied under the strict CSP, no
#    script and nothing loaded from elsewhere; a screenshot;
#  - a wrong key: the form again (400) with the error next to the key
#    (aria-invalid, aria-describedby), what was typed kept but the key, one
#    call to the provider, no account, the link still usable;
#  - the right key: 303 to the app's redirect_uri (another origin: the CSP's
#    form-action lets the redirect through) with status=connected, and the
#    account served by the unified API; the used link then shows a page;
#  - escaping: script in a typed value and in a context value of the link
#    stays text;
#  - a provider that cannot be reached: said so, nothing stored, retry works;
#  - the checks count against the account's rate limit: 429 and Retry-After
#    once PeopleHR's 30 calls a minute are used;
#  - pages for links that cannot be used (altered, used) and the JSON
#    envelope for clients that ask for JSON;
#  - Personio and HeavenHR (token exchange as the check) over HTTP: a wrong
#    secret is refused next to it, the client ID kept, the right one connects;
#    BambooHR: a key of the wrong shape is refused before any call, one
#    BambooHR does not know after one call.
# Skipped, saying why, where Chromium is missing (`make test` installs it).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;
use HRIS::Browser;

my $why = HRIS::Browser::missing();
plan skip_all => "no browser: $why" if $why;

my $J = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);
my $SHOTS = $ENV{HRIS_SCREENSHOTS} // $dir;

my $CLAY_KEY  = $HRIS::Nginx::PROVIDER{clayhr}{credentials}{api_key};
my $CLAY_USER = $HRIS::Nginx::PROVIDER{clayhr}{context}{user_id};
my $PHR_KEY   = $HRIS::Nginx::PROVIDER{peoplehr}{credentials}{api_key};

my $cl = HRIS::Sandbox->start('clayhr');
# the gateway's own limit for PeopleHR (30 calls a minute) is tested, not the sandbox's
my $ph = HRIS::Sandbox->start('peoplehr', args => ['--rate-limit', '0']);
my $pe = HRIS::Sandbox->start('personio');
my $hv = HRIS::Sandbox->start('heavenhr');

# the app the browser goes back to: another port, so another origin
my $app_port = HRIS::Nginx::free_port();
my $APP = "http://127.0.0.1:$app_port/done";

# an operator who lets context values hold anything (bar control
# characters): what the page shows of them must still be text
my $overrides = "$dir/overrides.json";
HRIS::Nginx::write_file($overrides, $J->encode({
    clayhr => { 'context.subdomain' => { pattern => '^[^\x00-\x1f]{1,100}$' } },
}));

my $acc = HRIS::Nginx::accounts_for(clayhr => $cl, peoplehr => $ph, personio => $pe,
                                    heavenhr => $hv);
my $ng = HRIS::Nginx->start(
    accounts => $acc,
    http => "hris_mapping_overrides $overrides; hris_allowed_urls http://127.0.0.1;",
    server => "listen 127.0.0.1:$app_port; "
            . 'location /admin/ { hris_admin; } location /connect/ { hris_connect; } '
            . 'location = /done { default_type text/html; '
            . 'return 200 "<!DOCTYPE html><html lang=en><title>The app</title><p>Back in the app</p>"; }',
);

my $http = HTTP::Tiny->new(keep_alive => 0, timeout => 30, max_redirect => 0);

sub api {
    my ($method, $path, $body) = @_;
    my $res = $http->request($method, $ng->url . $path, {
        headers => { Authorization => "Bearer $HRIS::Nginx::KEY",
                     $body ? ('Content-Type' => 'application/json') : () },
        $body ? (content => $J->encode($body)) : () });
    $res->{json} = eval { $J->decode($res->{content}) };
    return $res;
}

sub link_for {
    my (%o) = @_;
    my $res = api('POST', '/admin/connect_links', { method => 'form', redirect_uri => $APP, %o });
    die "link: $res->{status} $res->{content}" unless $res->{status} == 201;
    return $res->{json}{result}{url};
}

sub form_post {
    my ($url, %f) = @_;
    return $http->request('POST', $url, {
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded' },
        content => join('&', map { "$_=" . HRIS::Nginx::uri_escape($f{$_}) } sort keys %f) });
}

sub calls { my ($sb, $path) = @_; $sb->stats->{by_path}{$path} // 0 }

my $b = HRIS::Browser->start(size => [390, 844]);
END { $b->stop if $b }

# what the page says of one field, from the DOM the browser built
my $FIELD_JS = <<'JS';
(name => {
  const i = document.getElementById('f-' + name);
  if (!i) return null;
  const l = document.querySelector('label[for="f-' + name + '"]');
  const ids = (i.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
  return {
    type: i.type, value: i.value, required: i.required, name: i.name,
    autocomplete: i.getAttribute('autocomplete'), inputmode: i.getAttribute('inputmode'),
    pattern: i.getAttribute('pattern'), invalid: i.getAttribute('aria-invalid'),
    label: l ? l.textContent : null, label_control: l && l.control ? l.control.id : null,
    described: ids.map(id => { const e = document.getElementById(id); return e ? e.textContent : null }),
    described_ids: ids, font_px: parseFloat(getComputedStyle(i).fontSize),
    right: i.getBoundingClientRect().right,
  };
})
JS
sub field { $b->eval("($FIELD_JS)(" . $J->encode($_[0]) . ')') }
sub text_of { $b->eval('(e => e ? e.textContent.trim() : null)(document.querySelector(' . $J->encode($_[0]) . '))') }

# -- the ClayHR form, as rendered ----------------------------------------------------------

my $url = link_for(integrated_account_id => 'acme-clay-page', provider => 'clayhr', base_url => $cl->url);
is($b->visit($url), '', 'the browser opens the ClayHR form link');
is($b->last_status, 200, 'status 200');
is($b->eval('document.title'), 'Connect ClayHR', 'title: the provider\'s display name');
like(text_of('h1'), qr/^Connect your ClayHR account$/, 'heading: the display name');
is($b->eval('document.documentElement.lang'), 'en', 'the page says its language');
is($b->eval('document.compatMode'), 'CSS1Compat', 'standards mode (a doctype)');
is($b->eval('document.characterSet'), 'UTF-8', 'UTF-8');
like($b->eval('(m => m && m.content)(document.querySelector("meta[name=viewport]"))') // '',
     qr/width=device-width/, 'a viewport for phones');
is($b->eval('document.querySelectorAll("script").length'), 0, 'no script');
is($b->eval('performance.getEntriesByType("resource").length'), 0, 'nothing loaded besides the page');
is($b->eval('getComputedStyle(document.querySelector("button")).backgroundColor'), 'rgb(29, 78, 216)',
   'the inline style is applied (its hash is in the CSP)');
like(text_of('main p'), qr/^127\.0\.0\.1:$app_port asks to read data from your ClayHR account/,
     'the app that asks is named (the redirect_uri\'s host)');

my %f = map { $_ => field($_) } qw(subdomain user_id api_key);
is($f{subdomain}{label}, 'Company subdomain', 'label "Company subdomain" (the table\'s)');
is($f{user_id}{label}, 'User ID', 'label "User ID"');
is($f{api_key}{label}, 'API key', 'label "API key"');
for my $n (sort keys %f) {
    is($f{$n}{label_control}, "f-$n", "the $n label is tied to its input (for/id)");
    is($f{$n}{name}, $n, "... which posts as $n");
    ok($f{$n}{required}, '... required');
    is($f{$n}{autocomplete}, 'off', '... autocomplete="off"');
    cmp_ok($f{$n}{font_px}, '>=', 16, '... 16 px text at least (phones do not zoom in)');
}
like($f{api_key}{described}[0] // '', qr/My Integrations.*Manage API Keys.*Generate API key/,
     'the key\'s help says where ClayHR shows it, tied by aria-describedby');
like($f{user_id}{described}[0] // '', qr{/rm/user/view/123456}, 'the user ID\'s help too');
like($f{subdomain}{described}[0] // '', qr/acme for https:\/\/acme\.clayhr\.net/, 'the subdomain\'s too');
is($f{api_key}{type}, 'password', 'the API key is a password input');
is($f{user_id}{type}, 'text', 'the user ID is text');
is($f{user_id}{inputmode}, 'numeric', 'with a numeric keyboard on phones');
$b->type('f-user_id', '12ab');
is($b->eval('document.getElementById("f-user_id").validity.patternMismatch'), JSON::PP::true,
   'the table\'s pattern works in the browser: 12ab does not pass');
$b->eval('document.getElementById("f-user_id").value = ""');
$b->type('f-subdomain', 'acme-2');
is($b->eval('document.getElementById("f-subdomain").validity.valid'), JSON::PP::true,
   'acme-2 passes the subdomain\'s');
$b->eval('document.getElementById("f-subdomain").value = ""');

my $width = $b->eval('[document.documentElement.scrollWidth, window.innerWidth]');
cmp_ok($width->[0], '<=', $width->[1], "no horizontal scrolling at 390 px ($width->[0] <= $width->[1])");
cmp_ok($f{$_}{right}, '<=', 390, "the $_ input fits the screen") for qw(subdomain api_key);
my $cancel = $b->eval('(a => a && [a.href, a.textContent])(document.querySelector(".back a"))') // [];
is($cancel->[0], "$APP?integrated_account_id=acme-clay-page&status=error&error=access_denied",
   'a way back to the app: status=error&error=access_denied');
is($cancel->[1], "Cancel and go back to 127.0.0.1:$app_port", 'that names it');

# the keyboard: Tab walks the fields in order, then the button, then the way back
$b->visit($url);
my @order;
for (1 .. 5) {
    $b->key('Tab');
    push @order, $b->eval('(e => e.id || e.tagName.toLowerCase() + (e.className ? "." + e.className : ""))(document.activeElement)');
}
is_deeply(\@order, [qw(f-subdomain f-user_id f-api_key button a)], 'Tab: the fields in order, the button, the link')
    or diag "@order";
$b->visit($url);
$b->key('Tab');
my $ring = $b->eval('(s => [s.outlineStyle, s.outlineWidth, s.outlineColor, document.activeElement.id])'
                    . '(getComputedStyle(document.activeElement))');
is($ring->[3], 'f-subdomain', 'the first Tab of the page: the first field');
is($ring->[0], 'solid', "a focus ring on it ($ring->[0] $ring->[1] $ring->[2])");
is($ring->[2], 'rgb(29, 78, 216)', 'in the accent colour');
cmp_ok(parseFloat($ring->[1]), '>=', 2, 'at least 2 px wide');

$b->screenshot("$SHOTS/connect-clayhr-390.png");
ok(-s "$SHOTS/connect-clayhr-390.png", 'a screenshot at 390 x 844');
note("screenshot: $SHOTS/connect-clayhr-390.png");

# -- a wrong key ---------------------------------------------------------------------------

my $before = calls($cl, '/users');
$b->type('f-subdomain', 'acme');
$b->type('f-user_id', $CLAY_USER);
$b->type('f-api_key', 'clayhr-wrong-key-0000');
$b->key('Enter');
is($b->last_status, 400, 'a wrong key, sent with Enter: the form again, 400');
is(calls($cl, '/users'), $before + 1, 'after one call to ClayHR');
%f = map { $_ => field($_) } qw(subdomain user_id api_key);
is($f{api_key}{invalid}, 'true', 'the key is marked invalid (aria-invalid)');
like($f{api_key}{described}[-1] // '', qr/^ClayHR refused this API key/,
     'its error says the provider refused this API key, tied by aria-describedby');
is($f{api_key}{described_ids}[-1], 'f-api_key-error', '(the error element)');
is($f{api_key}{value}, '', 'the key is not sent back');
unlike($b->eval('document.documentElement.outerHTML'), qr/clayhr-wrong-key/, '(anywhere in the page)');
is($f{subdomain}{value}, 'acme', 'the subdomain typed is kept');
is($f{user_id}{value}, $CLAY_USER, 'so is the user ID');
ok(!defined $f{subdomain}{invalid}, 'the subdomain is not marked');
like(text_of('[role=alert]') // '', qr/ClayHR did not accept these details\. Nothing was saved\./,
     'an alert says nothing was saved');
is($b->eval('document.activeElement.id'), 'f-api_key', 'the focus is on the field in error');
$b->screenshot("$SHOTS/connect-clayhr-refused-390.png", full => 1);
note("screenshot: $SHOTS/connect-clayhr-refused-390.png");
is(api('GET', '/admin/accounts/acme-clay-page')->{status}, 404, 'no account was stored');

# -- the right key -------------------------------------------------------------------------

$b->type('f-api_key', $CLAY_KEY);
ok($b->key('Enter'), 'the right key, sent: a page loads (the CSP\'s form-action allows the redirect)');
is($b->eval('location.href'), "$APP?integrated_account_id=acme-clay-page&status=connected",
   'the right key: back at the app\'s redirect_uri with status=connected');
is($b->last_status, 200, 'the app\'s page loaded (the CSP let the redirect through)');
is(calls($cl, '/users'), $before + 2, 'one more call to ClayHR');
my $res = api('GET', '/unified/hris/employees?integrated_account_id=acme-clay-page&limit=2');
is($res->{status}, 200, 'the account is served by the unified API');
ok(@{ $res->{json}{result} // [] } > 0, 'with employees');
is_deeply(api('GET', '/admin/accounts/acme-clay-page')->{json}{result}{context},
          { subdomain => 'acme', user_id => $CLAY_USER }, 'the context typed in');

$b->visit($url);
is($b->last_status, 410, 'the used link: 410');
is(text_of('h1'), 'This link was used already', 'a page that says so');
like(text_of('main p'), qr/^This connect link was used already.*ask for a new link/, 'and what to do');
$b->screenshot("$SHOTS/connect-used-390.png");
note("screenshot: $SHOTS/connect-used-390.png");

# -- escaping ------------------------------------------------------------------------------

my $evil = q{"><script>document.title='pwned'</script><img id=pwn src=x>};
$url = link_for(integrated_account_id => 'acme-clay-xss', provider => 'clayhr', base_url => $cl->url,
                context => { subdomain => q{<img id=pwn2 src=x>&"'<b>} });
$b->visit($url);
is(text_of('.given dd'), q{<img id=pwn2 src=x>&"'<b>}, 'a context value of the link is shown as text');
is(text_of('.given dt'), 'Company subdomain', 'under its label');
ok(!$b->eval('document.getElementById("f-subdomain")'), 'and not asked for');
$b->type('f-user_id', $evil);
$b->type('f-api_key', $CLAY_KEY);
$b->eval('document.querySelector("form").noValidate = true');    # past the browser's own check
$b->key('Enter');
is($b->last_status, 400, 'script typed into a field: 400 (not a user ID)');
is(field('user_id')->{value}, $evil, 'sent back as the exact text typed');
like(field('user_id')->{described}[-1] // '', qr/The user ID is a number of 1 to 12 digits/,
     'with the table\'s pattern_error');
is($b->eval('document.querySelectorAll("script, #pwn, #pwn2, b").length'), 0, 'no element made of either');
is($b->eval('document.title'), 'Connect ClayHR', 'no script ran');
is(api('GET', '/admin/accounts/acme-clay-xss')->{status}, 404, 'no account');

# -- a provider that cannot be reached -------------------------------------------------------

my $dead = HRIS::Nginx::free_port();
$url = link_for(integrated_account_id => 'acme-clay-dead', provider => 'clayhr',
                base_url => "http://127.0.0.1:$dead", context => { subdomain => 'acme', user_id => $CLAY_USER });
$b->visit($url);
$b->type('f-api_key', $CLAY_KEY);
$b->key('Enter');
is($b->last_status, 502, 'ClayHR cannot be reached: 502');
like(text_of('[role=alert]') // '', qr/^Could not check these details with ClayHR: it could not be reached\. Nothing was saved: try again/,
     'the page says so');
is(api('GET', '/admin/accounts/acme-clay-dead')->{status}, 404, 'no account');
is($http->get($url)->{status}, 200, 'the link can be tried again');

# -- PeopleHR: the key in the body, refused inside a 200 -------------------------------------

$url = link_for(integrated_account_id => 'acme-phr-page', provider => 'peoplehr', base_url => $ph->url);
$b->visit($url);
is($b->eval('document.title'), 'Connect PeopleHR', 'PeopleHR\'s form: its display name');
is_deeply($b->eval('[...document.querySelectorAll("input")].map(i => i.name)'), ['api_key'],
          'one field: the API key');
like(field('api_key')->{described}[0] // '', qr/Settings, then API, and add a key/, 'with where to find it');
$before = calls($ph, '/Employee');
$b->type('f-api_key', '00000000-0000-0000-0000-000000000000');
$b->key('Enter');
is($b->last_status, 400, 'a wrong key (PeopleHR answers 200 with isError): 400');
like(field('api_key')->{described}[-1] // '', qr/^PeopleHR refused this API key/, 'the error next to it');
is(calls($ph, '/Employee'), $before + 1, 'one call');
$b->type('f-api_key', $PHR_KEY);
$b->key('Enter');
is($b->eval('location.href'), "$APP?integrated_account_id=acme-phr-page&status=connected", 'the right one connects');
$res = api('GET', '/unified/hris/employees?integrated_account_id=acme-phr-page&limit=2');
is($res->{status}, 200, 'and is served') or diag $res->{content};

# -- pages for links that cannot be used -----------------------------------------------------

(my $bad = $url) =~ s/.$/($& eq 'A' ? 'B' : 'A')/e;
$b->visit($bad);
is($b->last_status, 400, 'an altered link: 400');
is(text_of('h1'), 'This link does not work', 'a page for people');
like(text_of('main p'), qr/^This connect link is not valid.*ask for a new link/, 'that says what to do');
ok($b->eval('!!document.querySelector("meta[name=viewport]")'), 'with a viewport too');
$res = $http->get($bad, { headers => { Accept => 'application/json' } });
is($res->{status}, 400, 'asked for JSON: 400');
is((eval { $J->decode($res->{content}) } // {})->{statusCode}, 400, 'the JSON error envelope');
$b->visit($ng->url . '/connect/callback?code=x');
is(text_of('h1'), 'Connecting did not work', 'a callback without state: a page');

# -- the token exchange as the check (Personio, HeavenHR), over HTTP ---------------------------

for my $c ([personio => $pe, '/v1/auth', 'Personio', qr/Settings, then Integrations, then API credentials.*Readable employee attributes/],
           [heavenhr => $hv, '/oauth2/token', 'HeavenHR', qr/customer care/]) {
    my ($p, $sb, $path, $name, $help) = @$c;
    my $creds = $HRIS::Nginx::PROVIDER{$p}{credentials};
    $url = link_for(integrated_account_id => "acme-$p-page", provider => $p, base_url => $sb->url);
    $res = $http->get($url);
    like($res->{content}, qr{<title>Connect $name</title>}, "$name: its form");
    like($res->{content}, qr{<label for="f-client_id">Client ID</label>.*<label for="f-client_secret">Client secret</label>}s,
         '... asks for the client ID and secret');
    like($res->{content}, $help, '... says where they are');
    my $n = calls($sb, $path);
    $res = form_post($url, client_id => $creds->{client_id}, client_secret => 'wrong-secret-1234');
    is($res->{status}, 400, "$name: a wrong secret: 400");
    is(calls($sb, $path), $n + 1, '... after one token exchange');
    like($res->{content}, qr{<p class="error" id="f-client_secret-error">$name refused these credentials},
         '... the error next to the secret');
    like($res->{content}, qr{id="f-client_id"[^>]*value="\Q$creds->{client_id}\E"}, '... the client ID kept');
    unlike($res->{content}, qr/wrong-secret-1234/, '... the secret not');
    is(api('GET', "/admin/accounts/acme-$p-page")->{status}, 404, '... no account');
    $res = form_post($url, %$creds);
    is($res->{status}, 303, "$name: the right ones: 303") or diag $res->{content};
    is($res->{headers}{location}, "$APP?integrated_account_id=acme-$p-page&status=connected",
       '... status=connected');
    $res = api('GET', "/unified/hris/employees?integrated_account_id=acme-$p-page&limit=2");
    is($res->{status}, 200, '... the account is served') or diag $res->{content};
}

# -- BambooHR's API key: its pattern, then a read of the key's own employee --------------------

{
    my $bb = HRIS::Sandbox->start('bamboohr');
    my $key = $HRIS::Nginx::PROVIDER{bamboohr}{credentials}{api_key};
    $url = link_for(integrated_account_id => 'acme-bamboo-page', provider => 'bamboohr', base_url => $bb->url,
                    context => { subdomain => 'acme' });
    $res = $http->get($url);
    like($res->{content}, qr{<title>Connect BambooHR</title>}, 'BambooHR: its form');
    like($res->{content}, qr{open your user menu and choose API Keys}, '... says where the key is');
    my $n = calls($bb, '/v1/employees/0');
    $res = form_post($url, api_key => 'not-a-key');
    is($res->{status}, 400, 'a key of the wrong shape: 400');
    like($res->{content}, qr{<p class="error" id="f-api_key-error">A BambooHR API key is 40 characters long},
         '... the table\'s pattern_error next to it');
    is(calls($bb, '/v1/employees/0'), $n, '... without calling BambooHR');
    $res = form_post($url, api_key => 'f' x 40);
    is($res->{status}, 400, 'a well-formed key BambooHR does not know: 400');
    like($res->{content}, qr{BambooHR refused this API key}, '... refused');
    is(calls($bb, '/v1/employees/0'), $n + 1, '... after one read of the key\'s own employee');
    $res = form_post($url, api_key => "  $key \t");
    is($res->{status}, 303, 'the right key (blanks around it go): 303') or diag $res->{content};
    $res = api('GET', '/unified/hris/employees?integrated_account_id=acme-bamboo-page&limit=2');
    is($res->{status}, 200, '... the account is served') or diag $res->{content};
    $bb->stop;
}

# -- the check counts against the account's rate limit (PeopleHR: 30 calls a minute) ----------

$url = link_for(integrated_account_id => 'acme-phr-busy', provider => 'peoplehr', base_url => $ph->url);
my $n = calls($ph, '/Employee');
my @st = map { form_post($url, api_key => "0000000$_-0000-0000-0000-000000000000")->{status} } 1 .. 30;
is(scalar(grep { $_ == 400 } @st), 30, 'thirty wrong keys: 400 each') or diag "@st";
is(calls($ph, '/Employee'), $n + 30, 'thirty checks reached PeopleHR');
$res = form_post($url, api_key => $PHR_KEY);
is($res->{status}, 429, 'the thirty-first within the minute: 429');
like($res->{headers}{'retry-after'} // '', qr/^[1-9][0-9]*$/, '... with Retry-After');
like($res->{content}, qr{role="alert"[^>]*><p>PeopleHR takes only so many calls a minute .* try again in \d+ seconds},
     '... the form says to try again later');
is(calls($ph, '/Employee'), $n + 30, '... without calling PeopleHR');
is(api('GET', '/admin/accounts/acme-phr-busy')->{status}, 404, '... nothing stored');

# -- what was typed stays out of the log ------------------------------------------------------

$b->stop;
undef $b;
$ng->stop;
my $log = $ng->error_log;
unlike($log, qr/clayhr-wrong-key|wrong-secret-1234|\Q$CLAY_KEY\E|\Q$PHR_KEY\E/, 'no key in the error log');
like($log, qr/connect "acme-clay-page": the provider refused the credentials typed into the form \(upstream 401\)/,
     'the refusal is logged (without the key)');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert');

done_testing;

sub parseFloat { my ($s) = @_; ($s // '') =~ /([\d.]+)/ ? $1 : 0 }
