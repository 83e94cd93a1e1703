#!/usr/bin/perl
# .ci/install-deps, as 'make deps' and 'make bench-deps' use it, against
# stand-ins for apt-get, dpkg-query and id (nothing is installed): plain
# arguments are Debian packages installed when dpkg does not know them;
# command=package arguments install the package only when the command is
# missing, one after the other, so a nodejs that brings its own npm does
# not get Debian's npm package (which conflicts with it).

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Spec;
use lib 't/lib';
use HRIS::Sandbox;

my $script = File::Spec->catfile(HRIS::Sandbox::repo_root(), '.ci', 'install-deps');

sub write_exec {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
    chmod 0755, $path or die "$path: $!";
}

# run(installed_packages => [...], commands => [...], provides => {pkg =>
# [commands]}, args => [...]): (exit code, output, [apt-get calls])
sub run {
    my (%o) = @_;
    my $dir = tempdir(CLEANUP => 1);
    my $bin = "$dir/bin";
    mkdir $bin or die;
    symlink('/bin/grep', "$bin/grep") or die;
    write_exec("$bin/$_", "#!/bin/sh\nexit 0\n") for @{ $o{commands} // [] };
    write_exec("$bin/id", "#!/bin/sh\necho 0\n");
    my $installed = join ' ', @{ $o{installed_packages} // [] };
    write_exec("$bin/dpkg-query", <<"SH");
#!/bin/sh
for a in "\$@"; do last=\$a; done
for p in $installed; do
    [ "\$p" = "\$last" ] && { printf 'install ok installed'; exit 0; }
done
exit 1
SH
    # apt-get logs its arguments; "install" makes the commands of each package
    my $provides = join "\n", map {
        my $p = $_;
        "    $p) " . join(' ', map { "printf '#!/bin/sh\\n' >$bin/$_; /bin/chmod +x $bin/$_;" }
                             @{ $o{provides}{$p} }) . ' ;;'
    } sort keys %{ $o{provides} // {} };
    write_exec("$bin/apt-get", <<"SH");
#!/bin/sh
echo "\$*" >>$dir/apt.log
[ "\$1" = install ] || exit 0
for p in "\$@"; do
    case "\$p" in
$provides
    esac
done
SH
    my $args = join ' ', map { "'$_'" } @{ $o{args} };
    my $out = `env -i PATH=$bin /bin/sh $script $args 2>&1`;
    my $rc = $? >> 8;
    my @calls;
    if (open my $fh, '<', "$dir/apt.log") { chomp(@calls = <$fh>) }
    s/^install -y -qq --no-install-recommends /install / for @calls;
    return ($rc, $out, \@calls);
}

{
    my ($rc, $out, $calls) = run(commands => [qw(wrk node npm)],
                                 args => [qw(wrk=wrk node=nodejs npm=npm)]);
    is($rc, 0, 'every command there: success');
    is_deeply($calls, [], 'and apt-get is not called');
}

{
    # the failing machine: nodejs (NodeSource) with its own npm, no npm package
    my ($rc, $out, $calls) = run(commands => [qw(node npm)],
                                 args => [qw(wrk=wrk node=nodejs npm=npm)],
                                 provides => { wrk => ['wrk'] });
    is($rc, 0, 'node and npm there, wrk missing: success') or diag $out;
    is_deeply($calls, ['update -qq', 'install wrk'], 'only wrk is installed');
}

{
    my ($rc, $out, $calls) = run(args => [qw(node=nodejs npm=npm)],
                                 provides => { nodejs => [qw(node npm)] });
    is($rc, 0, 'a nodejs that brings npm: success') or diag $out;
    is_deeply($calls, ['update -qq', 'install nodejs'],
              'npm is not installed after it (one apt-get update)');
}

{
    my ($rc, $out, $calls) = run(args => [qw(node=nodejs npm=npm)],
                                 provides => { nodejs => ['node'], npm => ['npm'] });
    is($rc, 0, "Debian's nodejs without npm: success") or diag $out;
    is_deeply($calls, ['update -qq', 'install nodejs', 'install npm'],
              'npm is installed after nodejs');
}

{
    my ($rc, $out, $calls) = run(args => [qw(frob=frobnicator)],
                                 provides => { frobnicator => [] });
    isnt($rc, 0, 'a package that does not provide its command: failure');
    like($out, qr/frobnicator did not provide frob/, 'which says so');
}

{
    my ($rc, $out, $calls) = run(args => ['/nonexistent/time=time'],
                                 provides => { time => [] });
    isnt($rc, 0, 'a command given as a path is checked as that path');
    is_deeply($calls, ['update -qq', 'install time'], 'its package was installed');
}

{
    # plain package names, as 'make deps' gives them
    my ($rc, $out, $calls) = run(installed_packages => [qw(nginx perl)],
                                 args => [qw(nginx libjansson-dev perl curl)]);
    is($rc, 0, 'packages: success') or diag $out;
    is_deeply($calls, ['update -qq', 'install libjansson-dev curl'],
              'those dpkg does not know are installed at once');
    ($rc, $out, $calls) = run(installed_packages => [qw(nginx perl)], args => [qw(nginx perl)]);
    is_deeply($calls, [], 'none missing: apt-get is not called');
}

done_testing();
