#!/usr/bin/perl
# The Debian package (make deb): built from this tree, it holds the module,
# the mapping tables and hris-seal, depends on the nginx ABI it was built
# for, installs with dpkg -i (enabling the module), and the installed module
# with the installed tables passes nginx -t and answers a unified request;
# dpkg --purge then leaves the machine as it was.
#
# It builds (about a minute) and installs a package on this machine, so it
# runs only with HRIS_TEST_DEB=1 (.ci/run sets it), as root. The system's
# nginx service is neither started nor touched: every nginx here runs in a
# temporary prefix, and the install is skipped if that service is running
# (the package's postinst would reload it).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use lib 't/lib';
use HRIS::Sandbox;
use HRIS::Nginx;

plan skip_all => 'builds, installs and removes the Debian package: set HRIS_TEST_DEB=1 (as root)'
    unless $ENV{HRIS_TEST_DEB};

my $PKG     = 'libnginx-mod-http-hris';
my $MODULE  = '/usr/lib/nginx/modules/ngx_http_hris_module.so';
my $AVAIL   = '/usr/share/nginx/modules-available/mod-http-hris.conf';
my $ENABLED = '/etc/nginx/modules-enabled/50-mod-http-hris.conf';
my $MAPS    = '/usr/share/nginx-hris/mappings';
my $root    = HRIS::Nginx::root();

is($>, 0, 'running as root (dpkg -i needs it)') or BAIL_OUT('HRIS_TEST_DEB=1 needs root');

# -- the build -----------------------------------------------------------------

my $out = `make -s -C '$root' deb 2>&1`;
is($?, 0, 'make deb succeeds') or diag($out);
my ($deb) = grep { !/-dbgsym_/ } glob("$root/build/deb/${PKG}_*.deb");
ok($deb && -f $deb, 'make deb leaves the package in build/deb/')
    or BAIL_OUT("no package: $out");
my @litter = glob("$root/../${PKG}_*");
is_deeply(\@litter, [], 'nothing written beside the repository');

# -- what the package holds ------------------------------------------------------

chomp(my $depends = `dpkg-deb -f '$deb' Depends`);
my ($abi) = `cat /usr/share/nginx/src/debian/libnginx-mod.abisubstvars` =~ /^nginx:abi=(\S+)/m;
ok($abi, "Debian's nginx ABI: $abi");
like($depends, qr/(?:^|,\s*)\Q$abi\E(?:,|$)/,
     'Depends names the nginx ABI the module was built for');
like($depends, qr/libcurl4/, 'Depends names libcurl (shlibs)');
like($depends, qr/libjansson4/, 'Depends names jansson (shlibs)');

my %files = map { m{\s\.(/\S+)} ? ($1 => 1) : () } `dpkg-deb -c '$deb'`;
for my $f ($MODULE, $AVAIL, '/usr/bin/hris-seal', "$MAPS/README.md",
           map { "$MAPS/" . (split m{/}, $_)[-1] } glob("$root/mappings/*.json")) {
    ok($files{$f}, "the package holds $f");
}
ok(!grep({ m{^/etc/nginx} } keys %files), 'no file in /etc/nginx (the link is made on install)');

# -- installed -------------------------------------------------------------------

sub installed {
    `dpkg-query -W -f='\${Status}' $PKG 2>/dev/null` =~ /ok installed/;
}

sub system_nginx_running {
    open my $fh, '<', '/run/nginx.pid' or return 0;
    my $pid = <$fh> // '';
    return $pid =~ /^(\d+)/ && kill(0, $1);
}

my $we_installed = 0;
END {
    # whatever failed above, leave no package behind
    local $?;
    system('dpkg', '--purge', $PKG) if $we_installed && installed();
}

SKIP: {
    skip "$PKG is installed already: not touching it", 1 if installed();
    skip "the system's nginx is running: the package's postinst would reload it", 1
        if system_nginx_running();

    $out = `dpkg -i '$deb' 2>&1`;
    $we_installed = 1;
    is($?, 0, 'dpkg -i installs the package (its nginx-abi dependency is met)')
        or diag($out);
    ok(-f $MODULE, "the module is in $MODULE");
    is(readlink($ENABLED), $AVAIL, "installing enables it ($ENABLED)");
    open my $fh, '<', $AVAIL;
    is(scalar(<$fh> // ''), "load_module modules/ngx_http_hris_module.so;\n",
       "$AVAIL loads it from nginx's module directory");

    # hris-seal from the package seals with a key it made
    my $dir = tempdir('hris-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    system("hris-seal --new-key > $dir/hris.key") == 0 or diag('hris-seal --new-key failed');
    my $sealed = `hris-seal $dir/hris.key 0123456789abcdef0123456789abcdef01234567`;
    like($sealed, qr/^sealed:v1:[A-Za-z0-9_-]+$/, '/usr/bin/hris-seal seals a credential');

    # nginx -t as an operator would configure it: the enabled snippet (its
    # "modules/" is relative to nginx's prefix: a link in the temporary one)
    # and the installed tables
    symlink('/usr/lib/nginx/modules', "$dir/modules") or die $!;
    HRIS::Nginx::write_file("$dir/accounts.json", '{"api_keys": [], "accounts": []}');
    HRIS::Nginx::write_file("$dir/nginx.conf", <<"CONF");
include $ENABLED;
pid $dir/nginx.pid;
error_log $dir/error.log;
events {}
http {
    hris_mappings $MAPS;
    hris_accounts $dir/accounts.json;
    hris_secrets_key $dir/hris.key;
    server { listen 127.0.0.1:1; location /unified/ { hris_unified; } }
}
CONF
    $out = `/usr/sbin/nginx -t -p $dir/ -c $dir/nginx.conf -e $dir/error.log 2>&1`;
    is($? >> 8, 0, 'nginx -t passes with the enabled module and the installed tables')
        or diag($out);

    # the installed module serves the unified API from the installed tables
    {
        local $ENV{HRIS_MODULE} = $MODULE;
        local $ENV{HRIS_PRELOAD};
        my $sb = HRIS::Sandbox->start('bamboohr');
        my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb), mappings => $MAPS);
        open my $maps, '<', "/proc/$ng->{pid}/maps";
        like(join('', <$maps>), qr/\Q$MODULE\E/, "nginx runs with $MODULE");
        my $res = $ng->unified('employees', limit => 3);
        is($res->{status}, 200, 'a unified employees request answers 200') or diag($res->{body});
        is(scalar @{ $res->{json}{result} // [] }, 3, 'with 3 mapped employees');
        $ng->stop;
        $sb->stop;
    }

    $out = `dpkg --purge $PKG 2>&1`;
    is($?, 0, 'dpkg --purge removes it') or diag($out);
    ok(!installed(), 'the package is gone');
    ok(!-e $MODULE && !-e $MAPS && !-e '/usr/bin/hris-seal', 'its files are gone');
    ok(!-l $ENABLED && !-l "$ENABLED.removed", 'and so is the link that enabled it');
}

done_testing();
