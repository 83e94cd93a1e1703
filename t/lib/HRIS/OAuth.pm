package HRIS::OAuth;

# The BambooHR sandbox's OAuth2 side as tests use it:
#
#   my $tok = HRIS::OAuth::grant($sb);            # a real grant: code, exchange
#   HRIS::OAuth::control($sb, '/_sandbox/oauth/expire', { all => 1 });
#   HRIS::OAuth::refreshes($sb);                  # refresh grants it answered
#   my $acc = HRIS::OAuth::accounts($sb, $tok, expires_at => time - 10);
#       # the standard accounts file, acme-bamboohr made an OAuth2 account

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;

use HRIS::Nginx;

my $JSON = JSON::PP->new->canonical;
my $HTTP = HTTP::Tiny->new(keep_alive => 0, timeout => 10);

our $CLIENT_ID     = 'sandbox-bamboohr-client';
our $CLIENT_SECRET = 'sandbox-bamboohr-secret';

# a control call of the sandbox: GET, or POST with a JSON body
sub control {
    my ($sb, $path, $body) = @_;
    my $res = $HTTP->request($body ? 'POST' : 'GET', $sb->url . $path,
        { headers => { 'Content-Type' => 'application/json' },
          $body ? (content => $JSON->encode($body)) : () });
    die "$path: $res->{status} $res->{content}" unless $res->{success};
    return $JSON->decode($res->{content} || '{}');
}

# a code minted by the sandbox, exchanged the way a client does
sub grant {
    my ($sb) = @_;
    my $code = control($sb, '/_sandbox/oauth/code', { scope => 'offline_access employee' })->{code};
    my $res = $HTTP->post_form($sb->url . '/token.php?request=token', {
        grant_type => 'authorization_code', code => $code,
        redirect_uri => 'http://127.0.0.1/callback',
        client_id => $CLIENT_ID, client_secret => $CLIENT_SECRET });
    return $JSON->decode($res->{content});
}

sub refreshes { $_[0]->stats->{by_path}{'/token.php#refresh_token'} // 0 }

# the credentials of an OAuth2 account holding the grant
sub credentials {
    my ($tok, %o) = @_;
    return {
        client_id => $CLIENT_ID, client_secret => $CLIENT_SECRET,
        access_token => $tok->{access_token}, refresh_token => $tok->{refresh_token},
        expires_at => $o{expires_at} // time + 3600,
    };
}

sub accounts {
    my ($sb, $tok, %o) = @_;
    my $acc = HRIS::Nginx::accounts($sb);
    $acc->{accounts}[0]{credentials} = credentials($tok, %o);
    $acc->{accounts}[0]{token_url} = $sb->url . '/token.php?request=token';
    return $acc;
}

1;
