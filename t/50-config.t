#!/usr/bin/perl
# Configuration checks (CONTRACT.md §2): a broken mapping table or accounts
# file makes `nginx -t` fail with a message naming the file and what is
# wrong in it; a running nginx keeps serving when a reload fails.

use strict;
use warnings;
use Test::More;
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP;
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

my $root = HRIS::Nginx::root();
my $dir = tempdir('hris-mappings-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $TABLE = "$dir/bamboohr.json";
my $ORIGINAL = do {
    local $/;
    open my $fh, '<', "$root/mappings/bamboohr.json" or die $!;
    <$fh>;
};

sub restore_mappings {
    copy("$root/mappings/$_", "$dir/$_") or die "$_: $!" for qw(schema.json bamboohr.json);
}
restore_mappings();

# The table with one change: edit_table(sub { $_[0]{...} = ... }), or raw text.
sub edit_table {
    my ($edit) = @_;
    my $t = decode_json($ORIGINAL);
    my $text = ref $edit ? do { $edit->($t); JSON::PP->new->canonical->pretty->encode($t) }
                         : $edit;
    HRIS::Nginx::write_file($TABLE, $text);
}

my $sb = HRIS::Sandbox->start('bamboohr');
my $ACCOUNTS = HRIS::Nginx::accounts($sb);

sub accounts_with {
    my ($edit) = @_;
    my $a = decode_json(encode_json($ACCOUNTS));
    $edit->($a);
    return $a;
}

# nginx -t fails, and its [emerg] line names the file and matches $what.
sub config_fails {
    my ($name, $file, $what, %o) = @_;
    my $ng = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => $dir, %o);
    $file = $ng->dir . '/accounts.json' if $file eq 'ACCOUNTS';
    my ($rc, $out) = $ng->test_config;
    my ($emerg) = grep { /\[emerg\]/ } split /\n/, $out;
    subtest "nginx -t fails: $name" => sub {
        isnt($rc, 0, 'exit code');
        ok(defined $emerg, 'an [emerg] line') or return diag($out);
        like($emerg, qr/\Q$file\E/, 'names the file');
        like($emerg, $what, 'says what is wrong');
        for my $secret ('0123456789abcdef0123456789abcdef01234567', $HRIS::Nginx::KEY,
                        $HRIS::Nginx::OTHER_KEY) {
            ok(index($out, $secret) < 0, 'no credential in it');
        }
    };
}

# -- the good configuration ------------------------------------------------------

{
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => $dir)->test_config;
    is($rc, 0, 'nginx -t passes for the good configuration') or diag($out);
    like($out, qr/test is successful/, 'nginx says so');
}

# -- mapping tables ----------------------------------------------------------------

edit_table(substr($ORIGINAL, 0, 500));
config_fails('table with invalid JSON', $TABLE, qr/line \d+, column \d+/);

edit_table('[]');
config_fails('table that is not an object', $TABLE, qr/must be an object/);

edit_table(sub {
    $_[0]{resources}{employees}{fields}{email} = { path => '/workEmail', tpye => 'string' };
});
config_fails('unknown key in a field expression', $TABLE,
             qr/resources\.employees\.fields\.email: unknown \w+ "tpye"/);

edit_table(sub { $_[0]{resources}{employees}{list}{path} = '/v1/employees/{{nope.x}}' });
config_fails('unknown template variable in a path', $TABLE,
             qr/resources\.employees\.list\.path: unknown template variable.*\{\{nope\.x\}\}/);

edit_table(sub { $_[0]{resources}{employees}{list}{query}{after} = '{{page.nope}}' });
config_fails('unknown template variable in a query', $TABLE,
             qr/resources\.employees\.list\.query\.after: unknown template variable/);

edit_table(sub { $_[0]{headers}{'X-Key'} = '{{credentialz.api_key}}' });
config_fails('unknown template variable in a header', $TABLE,
             qr/headers\.X-Key: unknown template variable/);

# more parts than a render has room for: refused here, not a 500 per request
edit_table(sub { $_[0]{resources}{employees}{list}{path} = '/v1' . ('/{{context.x}}' x 9) });
config_fails('template with too many parts', $TABLE,
             qr/resources\.employees\.list\.path: too many parts \(at most 16/);

edit_table(sub { $_[0]{resources}{employees}{fields}{shoe_size} = '/shoeSize' });
config_fails('field not in the schema', $TABLE,
             qr/resources\.employees\.fields: "shoe_size" is not a field of the unified employees resource/);

edit_table(sub { $_[0]{resources}{payslips} = $_[0]{resources}{groups} });
config_fails('unknown resource', $TABLE, qr/resources: unknown resource "payslips"/);

edit_table(sub {
    $_[0]{resources}{employees}{fields}{email} = { path => '/workEmail', regex => '([a-z' };
});
config_fails('bad regex in a field', $TABLE,
             qr/resources\.employees\.fields\.email\.regex: .*"\(\[a-z"/);

edit_table(sub { $_[0]{context}{subdomain}{pattern} = '^[a-z' });
config_fails('bad context pattern', $TABLE, qr/context\.subdomain\.pattern: /);

edit_table(sub { $_[0]{connect}{form} = ['api_key"><script>'] });
config_fails('a connect form field that is not a name', $TABLE,
             qr/connect\.form\[0\]: "name" must be a credential or context name/);

# the connect form's fields, its check and the provider's name (mappings/README.md)
for my $c (
    [ 'a form field with an unknown key', { form => [ { name => 'api_key', lable => 'Key' } ] },
      qr/connect\.form\[0\]: unknown key "lable"/ ],
    [ 'a form field without a name', { form => [ 'subdomain', { label => 'Key' } ] },
      qr/connect\.form\[1\]: "name" must be a credential or context name/ ],
    [ 'a field twice', { form => [ 'api_key', { name => 'api_key' } ] },
      qr/connect\.form\[1\]: "api_key" is in the form twice/ ],
    [ 'a field pattern that is no regex', { form => [ { name => 'api_key', pattern => '^[a-' } ] },
      qr/connect\.form\[0\]\.pattern: / ],
    [ 'a label with a line break', { form => [ { name => 'api_key', label => "API\nkey" } ] },
      qr/connect\.form\[0\]: "label" must be a string of at most 200 characters without control/ ],
    [ 'secret not a boolean', { form => [ { name => 'api_key', secret => 'yes' } ] },
      qr/connect\.form\[0\]: "secret" must be true or false/ ],
    [ 'an unknown inputmode', { form => [ { name => 'api_key', inputmode => 'hex' } ] },
      qr/connect\.form\[0\]: "inputmode" must be one of/ ],
    [ 'an autocomplete that is not tokens', { form => [ { name => 'api_key', autocomplete => 'off" x="' } ] },
      qr/connect\.form\[0\]: "autocomplete" must be HTML autofill tokens/ ],
    [ 'an empty form', { form => [] }, qr/connect\.form: must be an array of 1 to 32 fields/ ],
    [ 'a display name that is not a string', { display_name => 7 },
      qr/connect\.display_name: must be a string/ ],
    [ 'a check with token and path', { verify => { token => JSON::PP::true, path => '/x' } },
      qr/connect\.verify: needs either "token": true or a "path", not both/ ],
    [ 'a check with neither', { verify => { refused => [401] } },
      qr/connect\.verify: needs either "token": true or a "path"/ ],
    [ 'a token check where the only token auth is a refresh', { verify => { token => JSON::PP::true } },
      qr/connect\.verify\.token: needs an "auth" of type "token" that exchanges credentials/ ],
    [ 'a check path with an unknown context key', { verify => { path => '/v1/{{context.nope}}' } },
      qr/connect\.verify\.path: / ],
    [ 'refused statuses out of range', { verify => { path => '/x', refused => [200] } },
      qr/connect\.verify\.refused: must be an array of 1 to 8 HTTP statuses/ ],
    [ 'a check method in lower case', { verify => { path => '/x', method => 'get' } },
      qr/connect\.verify\.method: must be an HTTP method in capitals/ ],
    [ 'an unknown check key', { verify => { path => '/x', timeout => 5 } },
      qr/connect\.verify: unknown key "timeout"/ ],
) {
    my ($name, $connect, $re) = @$c;
    edit_table(sub { $_[0]{connect}{$_} = $connect->{$_} for keys %$connect });
    config_fails($name, $TABLE, $re);
}

# the plain form of connect.form (names, no check) still passes
edit_table(sub { $_[0]{connect}{form} = ['subdomain', 'api_key']; delete $_[0]{connect}{verify} });
{
    my ($rc, $out) = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => $dir)->test_config;
    is($rc, 0, 'a connect form of plain names, without a check, passes') or diag($out);
}

edit_table(sub { $_[0]{connect}{oauth2} = { scope => 'x' } });
config_fails('an oauth2 connect flow without authorize_url', $TABLE, qr/connect\.oauth2\.authorize_url: /);

edit_table(sub { $_[0]{connect}{sso} = {} });
config_fails('an unknown connect key', $TABLE, qr/connect: unknown key "sso"/);

# the "webhooks" section (mappings/README.md): provider webhooks in
for my $c (
    [ 'webhooks not an object', sub { $_[0]{webhooks} = [] }, qr/webhooks: must be an object/ ],
    [ 'an unknown webhooks key', sub { $_[0]{webhooks}{sign} = 1 }, qr/webhooks: unknown key "sign"/ ],
    [ 'webhooks without verify', sub { delete $_[0]{webhooks}{verify} },
      qr/webhooks\.verify: is required/ ],
    [ 'an unknown verify type', sub { $_[0]{webhooks}{verify}{type} = 'rsa' },
      qr/webhooks\.verify\.type: must be "hmac" or "token"/ ],
    [ 'an hmac algorithm the gateway lacks', sub { $_[0]{webhooks}{verify}{algorithm} = 'md5' },
      qr/webhooks\.verify\.algorithm: must be "sha256"/ ],
    [ 'a signed part that is neither body nor header', sub { $_[0]{webhooks}{verify}{signed} = ['body', 'query:x'] },
      qr/webhooks\.verify\.signed: part 1 must be "body" or "header:<name>"/ ],
    [ 'a tolerance of 0', sub { $_[0]{webhooks}{verify}{tolerance} = 0 },
      qr/webhooks\.verify\.tolerance: must be the seconds/ ],
    [ 'a credential name with a space', sub { $_[0]{webhooks}{verify}{credential} = 'web hook' },
      qr/webhooks\.verify\.credential: "web hook" has a character/ ],
    [ 'a token in an unknown place', sub { $_[0]{webhooks}{verify} = { type => 'token', in => 'cookie', credential => 'webhook_token' } },
      qr/webhooks\.verify\.in: must be "header", "query" or "path"/ ],
    [ 'no event pointer', sub { delete $_[0]{webhooks}{event} }, qr/webhooks\.event: is required/ ],
    [ 'an id that is no JSON pointer', sub { $_[0]{webhooks}{id} = 'data.employeeId' },
      qr/webhooks\.id: "data\.employeeId" is not a JSON pointer/ ],
    [ 'an event for an unknown resource', sub { $_[0]{webhooks}{map}{'employee.created'}{resource} = 'staff' },
      qr/webhooks\.map\.employee\.created: unknown resource "staff"/ ],
    [ 'an unknown action', sub { $_[0]{webhooks}{map}{'employee.created'}{action} = 'hired' },
      qr/webhooks\.map\.employee\.created: action must be "created", "updated" or "deleted"/ ],
    [ 'an event without a record id anywhere', sub { delete $_[0]{webhooks}{id} },
      qr/webhooks\.map\.employee\.\w+: says nowhere where the record id is/ ],
    [ 'fields naming no unified field', sub { $_[0]{webhooks}{fields}{firstName} = 1 },
      qr/webhooks\.fields: "firstName" must name a unified field/ ],
) {
    my ($name, $edit, $re) = @$c;
    edit_table($edit);
    config_fails($name, $TABLE, $re);
}

edit_table(sub { $_[0]{resources}{timeoff_requests}{list}{filters}{start_date}{pattern} = '(' });
config_fails('bad filter pattern', $TABLE,
             qr/resources\.timeoff_requests\.list\.filters\.start_date/);

edit_table(sub { $_[0]{resources}{employees}{fields}{email} = { path => '/workEmail', type => 'strnig' } });
config_fails('unknown type', $TABLE, qr/resources\.employees\.fields\.email\.type: unknown type/);

edit_table(sub { $_[0]{resources}{employees}{list}{pagination}{type} = 'pages' });
config_fails('unknown pagination', $TABLE,
             qr/resources\.employees\.list\.pagination: unknown type "pages"/);

edit_table(sub { $_[0]{auth}[1]{type} = 'digest' });
config_fails('unknown auth type', $TABLE, qr/auth\.1\.type: unknown type "digest"/);

edit_table(sub { $_[0]{resources}{employees}{list}{recrods} = '/data' });
config_fails('unknown operation key', $TABLE, qr/resources\.employees\.list.*"recrods"/);

# field_batches (the provider's most fields a call)
my $FB = 'resources\.employees\.list\.field_batches';
for my $case (
    [ 'not an object', 400, qr/$FB: must be an object/ ],
    [ 'unknown key', { param => 'fields', max => 400, merge_on => '/employeeId', maxx => 1 },
      qr/$FB: unknown key "maxx"/ ],
    [ 'max not a positive integer', { param => 'fields', max => 0, merge_on => '/employeeId' },
      qr/$FB\.max: must be a positive integer/ ],
    [ 'max missing', { param => 'fields', merge_on => '/employeeId' },
      qr/$FB\.max: must be a positive integer/ ],
    [ 'param not in the query', { param => 'fieldz', max => 400, merge_on => '/employeeId' },
      qr/$FB\.param: "fieldz" is not a parameter of resources\.employees\.list\.query/ ],
    [ 'merge_on not a pointer', { param => 'fields', max => 400, merge_on => 'employeeId' },
      qr/$FB\.merge_on: "employeeId" is not a JSON pointer/ ],
    [ 'merge_on the whole record', { param => 'fields', max => 400, merge_on => '' },
      qr/$FB\.merge_on: must point at the record's own id/ ],
    [ 'more calls a page than allowed', { param => 'fields', max => 1, merge_on => '/employeeId' },
      qr/resources\.employees\.list\.query\.fields: 20 fields would take 20 calls per page at 1 a call, more than 16/ ],
) {
    my ($name, $spec, $re) = @$case;
    edit_table(sub { $_[0]{resources}{employees}{list}{field_batches} = $spec });
    config_fails("field_batches: $name", $TABLE, $re);
}
restore_mappings();
config_fails('field_batches in an account override', 'ACCOUNTS',
             qr/account "acme-bamboohr" overrides.*$FB\.max: must be a positive integer/,
             accounts => accounts_with(sub {
                 $_[0]{accounts}[0]{overrides} = { 'resources.employees.list.field_batches.max' => '400' };
             }));
edit_table(sub { $_[0]{resources}{employees}{list}{query}{fields} = 'workEmail,{{context.subdomain}}' });
config_fails('field_batches over a list that is not literal', $TABLE,
             qr/resources\.employees\.list\.query\.fields: must be a literal list of field names/);

restore_mappings();
HRIS::Nginx::write_file("$dir/schema.json", '{"resources": ');
config_fails('schema with invalid JSON', "$dir/schema.json", qr/line \d+/);
restore_mappings();

# -- the accounts file ---------------------------------------------------------------

config_fails('accounts file with invalid JSON', 'ACCOUNTS', qr/line \d+, column \d+/,
             accounts => '{"api_keys": [');

config_fails('account naming a provider with no table', 'ACCOUNTS',
             qr/account "acme-bamboohr": provider "workday" has no mapping table/,
             accounts => accounts_with(sub { $_[0]{accounts}[0]{provider} = 'workday' }));

config_fails('missing context key', 'ACCOUNTS',
             qr/account "acme-bamboohr": context\.subdomain is required/,
             accounts => accounts_with(sub { $_[0]{accounts}[0]{context} = {} }));

config_fails('context value not matching the pattern', 'ACCOUNTS',
             qr{account "acme-bamboohr": context\.subdomain "evil\.com/x" does not match},
             accounts => accounts_with(sub {
                 $_[0]{accounts}[0]{context}{subdomain} = 'evil.com/x';
                 delete $_[0]{accounts}[0]{base_url};
             }));

config_fails('duplicate account id', 'ACCOUNTS', qr/account id "acme-bamboohr" is used twice/,
             accounts => accounts_with(sub { $_[0]{accounts}[1]{id} = 'acme-bamboohr' }));

for my $bad ('xyz', 'g' x 64, 'ab' x 31) {
    config_fails("bad key_sha256 ($bad)", 'ACCOUNTS', qr/api_keys\[1\]: .*key_sha256/,
                 accounts => accounts_with(sub { $_[0]{api_keys}[1]{key_sha256} = $bad }));
}

config_fails('one API key for two tenants', 'ACCOUNTS',
             qr/the same API key is given to tenants "acme" and "globex"/,
             accounts => accounts_with(sub {
                 $_[0]{api_keys}[1] = { key => $HRIS::Nginx::KEY, tenant => 'globex' };
             }));

config_fails('account without a tenant', 'ACCOUNTS', qr/accounts\[0\]: needs "id", "tenant"/,
             accounts => accounts_with(sub { delete $_[0]{accounts}[0]{tenant} }));

config_fails('base_url that is not http(s)', 'ACCOUNTS',
             qr/account "acme-bamboohr": base_url "file:\/\/\/etc" must start with http/,
             accounts => accounts_with(sub { $_[0]{accounts}[0]{base_url} = 'file:///etc' }));

config_fails('credentials that are not an object of strings', 'ACCOUNTS',
             qr/account "acme-bamboohr": "context" and "credentials" must be objects/,
             accounts => accounts_with(sub { $_[0]{accounts}[0]{credentials} = ['x'] }));

# The key itself is never printed, even when its entry is broken.
config_fails('api key entry without a tenant', 'ACCOUNTS', qr/api_keys\[0\]/,
             accounts => accounts_with(sub { delete $_[0]{api_keys}[0]{tenant} }));

# -- directives ----------------------------------------------------------------------

{
    my $ng = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => $dir);
    my $conf = do { local $/; open my $fh, '<', $ng->dir . '/nginx.conf' or die; <$fh> };
    (my $without = $conf) =~ s/^\s*hris_accounts .*\n//m or die 'no hris_accounts line';
    HRIS::Nginx::write_file($ng->dir . '/nginx.conf', $without);
    my ($rc, $out) = $ng->test_config;
    isnt($rc, 0, 'hris_mappings without hris_accounts: nginx -t fails');
    like($out, qr/\[emerg\].*"hris_mappings" and "hris_accounts"/, 'and says what is missing');

    ($without = $conf) =~ s/^\s*hris_mappings .*\n//m or die 'no hris_mappings line';
    HRIS::Nginx::write_file($ng->dir . '/nginx.conf', $without);
    ($rc, $out) = $ng->test_config;
    isnt($rc, 0, 'hris_accounts without hris_mappings: nginx -t fails');
    like($out, qr/\[emerg\].*"hris_mappings" and "hris_accounts"/, 'and says what is missing');

    my ($rc2, $out2) = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => "$dir/nowhere")
                                  ->test_config;
    isnt($rc2, 0, 'a mappings directory that does not exist: nginx -t fails');
    like($out2, qr/\Q$dir\E\/nowhere/, 'and names it');

    my ($rc3, $out3) = HRIS::Nginx->prepare(accounts => $ACCOUNTS, mappings => $dir,
                                           location => 'hris_retries 11;')->test_config;
    isnt($rc3, 0, 'hris_retries 11: nginx -t fails');
    like($out3, qr/hris_retries must be between 0 and 10/, 'and says the range');
}

# -- a failed reload keeps the running configuration ----------------------------------

{
    restore_mappings();
    my $ng = HRIS::Nginx->start(accounts => $ACCOUNTS, mappings => $dir);
    is($ng->unified('employees', limit => 2)->{status}, 200, 'running');

    edit_table(sub { $_[0]{resources}{employees}{fields}{email} = { path => '/x', tpye => 1 } });
    $ng->reload;
    like($ng->error_log, qr/\[emerg\].*\Q$TABLE\E.*"tpye"/,
         'the reload failed, and the log says why');
    my $res = $ng->unified('employees', limit => 2);
    is($res->{status}, 200, 'nginx still serves with the old configuration');
    is($res->{json}{result}[0]{email}, 'charlotte.abbott@efficientoffice.example',
       'with the old table');
    is($ng->unified('groups')->{status}, 200, 'every resource');

    # a broken accounts file, too
    HRIS::Nginx::write_file($ng->dir . '/accounts.json', '{');
    restore_mappings();
    $ng->reload;
    is($ng->unified('employees', limit => 2)->{status}, 200,
       'still serving after a reload with a broken accounts file');

    # and a good reload afterwards takes effect: globex's account removed
    HRIS::Nginx::write_file($ng->dir . '/accounts.json', encode_json(accounts_with(sub {
        pop @{ $_[0]{accounts} };
    })));
    $ng->reload;
    is($ng->unified('employees', limit => 2)->{status}, 200, 'a good reload serves');
    is($ng->unified('employees', account => 'globex-bamboohr', key => $HRIS::Nginx::OTHER_KEY)
          ->{status}, 404, 'with the new accounts file');

    $ng->stop;
    unlike($ng->error_log, qr/exited on signal|\[alert\]/, 'no crash, no alert');
}

done_testing;
