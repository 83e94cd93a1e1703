package HRIS::Nginx;

# Start Debian's nginx with the built module in a temporary prefix and talk
# to it.
#
#   my $sb = HRIS::Sandbox->start('bamboohr');
#   my $ng = HRIS::Nginx->start(accounts => HRIS::Nginx::accounts($sb));
#   my $res = $ng->get('/unified/hris/employees?integrated_account_id=acme-bamboohr');
#   $res->{status}; $res->{json}; $res->{headers}{'retry-after'};
#   $ng->error_log;        # the whole error log so far
#   $ng->stop;
#
# Options of start():
#   accounts => \%json     the accounts file (required)
#   http     => TEXT       extra directives in http{}
#   location => TEXT       extra directives in both API locations
#   server   => TEXT       extra directives in server{}
#   workers  => N          worker_processes (default 1: a blocking call
#                          would stall every other request, which tests see)
#   mappings => DIR        mapping tables (default: the repository's)
#   log_level => LEVEL     error_log level (default info)
#   env      => {NAME => V} environment of the nginx master (and so of its
#                          forked workers), e.g. LD_PRELOAD
#   worker_connections => N  (default 1024)
#
# Environment (make test-asan sets both):
#   HRIS_MODULE=PATH       the module to load (default build/ngx_http_hris_module.so)
#   HRIS_PRELOAD=LIB       LD_PRELOAD for nginx only (not for the sandboxes):
#                          the ASan runtime, for a module built with it. Their
#                          reports go to san/ in each nginx's prefix, and a
#                          test file whose nginx wrote one exits non-zero
#                          with the report (ASAN_OPTIONS and UBSAN_OPTIONS
#                          from the environment are added to ours)

use strict;
use warnings;

use File::Spec;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

use HRIS::Sandbox;

our $KEY       = 'sk_test_acme_0123456789';
our $OTHER_KEY = 'sk_test_globex_9876543210';
our $NGINX     = $ENV{HRIS_NGINX} || '/usr/sbin/nginx';

my %LIVE;

sub root { HRIS::Sandbox::repo_root() }

sub module_path {
    $ENV{HRIS_MODULE} || File::Spec->catfile(root(), 'build', 'ngx_http_hris_module.so');
}

my $MAIN = $$;
my @SAN_DIRS;                   # prefixes whose nginx ran with HRIS_PRELOAD

# What nginx's environment adds when HRIS_PRELOAD is set: sanitizer reports
# into DIR/san/ (made writable for the workers' user), leaks not checked
# (nginx does not free everything at exit), and on after an UBSan report.
sub sanitizer_env {
    my ($dir) = @_;
    return () unless $ENV{HRIS_PRELOAD};
    my $logs = "$dir/san";
    unless (-d $logs) {
        mkdir $logs or die "$logs: $!";
        chmod 01777, $logs;
        push @SAN_DIRS, $dir;
    }
    my $asan = "detect_leaks=0:abort_on_error=0:log_path=$logs/asan";
    my $ubsan = "print_stacktrace=1:halt_on_error=0:log_path=$logs/ubsan";
    return (LD_PRELOAD   => $ENV{HRIS_PRELOAD},
            ASAN_OPTIONS => join(':', $asan, $ENV{ASAN_OPTIONS} // ()),
            UBSAN_OPTIONS => join(':', $ubsan, $ENV{UBSAN_OPTIONS} // ()));
}

# The sanitizer reports nginx wrote in DIR: (file, text) pairs. Reports go
# to san/; one written before the log file could be opened lands in nginx's
# logs, of which only the report's lines are kept.
sub sanitizer_reports {
    my ($dir) = @_;
    my $mark = qr/ERROR: AddressSanitizer|runtime error:/;
    my @found;
    for my $f (glob("$dir/san/*"), "$dir/error.log", "$dir/stdout.log") {
        open my $fh, '<', $f or next;
        my @lines = <$fh>;
        next unless grep { /$mark/ } @lines;
        if ($f =~ m{/san/}) {
            push @found, $f, join '', @lines;
            next;
        }
        my ($text, $left) = ('', 0);
        for (@lines) {
            $left = 40 if /$mark/;
            $left = 0 if m{^\d{4}/\d\d/\d\d } && !/$mark/;   # nginx's own lines
            $text .= $_ if $left-- > 0;
        }
        push @found, $f, $text;
    }
    return @found;
}

# The standard accounts file: tenant acme with a BambooHR account on the
# sandbox, tenant globex with one of its own.
sub accounts {
    my ($sb, %o) = @_;
    my $key = $o{api_key} // '0123456789abcdef0123456789abcdef01234567';
    return {
        api_keys => [
            { key => $KEY, tenant => 'acme' },
            { key_sha256 => sha256_hex($OTHER_KEY), tenant => 'globex' },
        ],
        accounts => [
            {
                id => 'acme-bamboohr', tenant => 'acme', provider => 'bamboohr',
                context => { subdomain => 'acme' },
                credentials => { api_key => $key },
                base_url => $sb->url . '/api/gateway.php/acme',
            },
            {
                id => 'globex-bamboohr', tenant => 'globex', provider => 'bamboohr',
                context => { subdomain => 'globex' },
                credentials => { api_key => $key },
                base_url => $sb->url,
            },
        ],
    };
}

# Sandbox credentials per provider (the sandboxes' defaults), and what the
# account's base_url adds to the sandbox's URL.
our %PROVIDER = (
    bamboohr => { credentials => { api_key => '0123456789abcdef0123456789abcdef01234567' },
                  context => { subdomain => 'acme' }, path => '/api/gateway.php/acme' },
    personio => { credentials => { client_id => 'sandbox-personio-client-id',
                                   client_secret => 'sandbox-personio-client-secret' } },
    peoplehr => { credentials => { api_key => '7c9e6679-7425-40de-944b-e07fc1f90ae7' } },
    heavenhr => { credentials => { client_id => 'sandbox-heavenhr-client-id',
                                   client_secret => 'sandbox-heavenhr-client-secret' } },
    clayhr   => { credentials => { api_key => 'clayhr-sandbox-0123456789abcdef' },
                  context => { subdomain => 'acme', user_id => '123456' } },
);

# An accounts file with one account "acme-<provider>" per sandbox given:
# accounts_for(heavenhr => $sb, clayhr => $sb2, extra => { 'acme-clayhr' =>
# { rate_limit => {...} } }). Tenant globex has the key $OTHER_KEY and no
# accounts.
sub accounts_for {
    my (%sb) = @_;
    my $extra = delete $sb{extra} // {};
    my @accounts;
    for my $p (sort keys %sb) {
        my $d = $PROVIDER{$p} or die "no sandbox defaults for $p";
        my $id = "acme-$p";
        push @accounts, {
            id => $id, tenant => 'acme', provider => $p,
            context => { %{ $d->{context} // {} } },
            credentials => { %{ $d->{credentials} } },
            base_url => $sb{$p}->url . ($d->{path} // ''),
            %{ $extra->{$id} // {} },
        };
    }
    return {
        api_keys => [
            { key => $KEY, tenant => 'acme' },
            { key_sha256 => sha256_hex($OTHER_KEY), tenant => 'globex' },
        ],
        accounts => \@accounts,
    };
}

sub sha256_hex {
    require Digest::SHA;
    return Digest::SHA::sha256_hex($_[0]);
}

sub free_port { HRIS::Sandbox::free_port() }

sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
}

sub config_text {
    my ($self) = @_;
    my $o = $self->{opts};
    my $dir = $self->{dir};
    my $loc = $o->{location} // '';
    return <<"CONF";
load_module @{[ module_path() ]};
worker_processes @{[ $o->{workers} // 1 ]};
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log @{[ $o->{log_level} // 'info' ]};
@{[ $o->{main} // '' ]}
events { worker_connections @{[ $o->{worker_connections} // 1024 ]}; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    hris_mappings @{[ $o->{mappings} // File::Spec->catdir(root(), 'mappings') ]};
    hris_accounts $dir/accounts.json;
    @{[ $o->{http} // '' ]}
    server {
        listen 127.0.0.1:$self->{port};
        @{[ $o->{server} // '' ]}
        location /unified/ { hris_unified; $loc }
        location /proxy/   { hris_proxy; $loc }
    }
}
CONF
}

sub prepare {
    my ($class, %opts) = @_;
    my $self = bless { opts => \%opts }, $class;
    $self->{dir} = tempdir('hris-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{HRIS_KEEP});
    # the workers (user nobody) reach the state directory nginx makes in it
    chmod 0711, $self->{dir};
    $self->{port} = $opts{port} // free_port();
    write_file("$self->{dir}/accounts.json",
               ref $opts{accounts} ? JSON::PP->new->canonical->encode($opts{accounts})
                                   : ($opts{accounts} // '{}'));
    write_file("$self->{dir}/nginx.conf", $self->config_text);
    return $self;
}

# nginx -t on the prepared configuration: (exit code, output)
sub test_config {
    my ($self) = @_;
    my %env = sanitizer_env($self->{dir});
    local @ENV{keys %env} = values %env;
    my $out = `$NGINX -t -p $self->{dir} -c $self->{dir}/nginx.conf -e $self->{dir}/error.log 2>&1`;
    return ($? >> 8, $out);
}

sub start {
    my ($class, %opts) = @_;
    my $self = ref $class ? $class : $class->prepare(%opts);
    my ($rc, $out) = $self->test_config;
    die "nginx -t failed:\n$out" if $rc != 0;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/stdout.log";
        open STDERR, '>&', \*STDOUT;
        my %env = sanitizer_env($self->{dir});
        @ENV{keys %env} = values %env;
        for my $k (keys %{ $self->{opts}{env} // {} }) {
            my $v = $self->{opts}{env}{$k};
            # the ASan runtime must stay first in LD_PRELOAD
            $v = "$ENV{$k} $v" if $k eq 'LD_PRELOAD' && $ENV{$k};
            $ENV{$k} = $v;
        }
        exec $NGINX, '-p', $self->{dir}, '-c', "$self->{dir}/nginx.conf",
             '-e', "$self->{dir}/error.log";
        exit 127;
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    $LIVE{$pid} = $$;

    my $deadline = time + 10;
    while (time < $deadline) {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}", Timeout => 1);
        if ($s) { close $s; return $self; }
        die "nginx exited:\n" . $self->error_log if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    die "nginx did not listen on $self->{port}:\n" . $self->error_log;
}

sub port { $_[0]->{port} }

# The pid of its worker (the first child of the master found): the master
# takes connections before it forks its worker (start() returns then), so
# this waits up to 30 s for it (ASan on a loaded machine comes late).
sub worker_pid {
    my ($self) = @_;
    my $deadline = time + 30;
    while (time < $deadline) {
        for my $st (glob '/proc/[0-9]*/stat') {
            open my $fh, '<', $st or next;
            my $line = <$fh> // next;
            return $1 if $line =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $self->{pid};
        }
        select undef, undef, undef, 0.05;
    }
    die 'no worker';
}
sub url  { 'http://127.0.0.1:' . $_[0]->{port} }
sub dir  { $_[0]->{dir} }

sub error_log {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/error.log" or return '';
    local $/;
    return <$fh>;
}

# request(METHOD, PATH, %opts): key => API key (default $KEY; undef for
# none), headers => {}, body => TEXT, timeout => S.
sub request {
    my ($self, $method, $path, %o) = @_;
    my %h = %{ $o{headers} // {} };
    my $key = exists $o{key} ? $o{key} : $KEY;
    $h{Authorization} = "Bearer $key" if defined $key;
    my $http = HTTP::Tiny->new(timeout => $o{timeout} // 30, keep_alive => 0,
                               max_redirect => 0);
    my $res = $http->request($method, $self->url . $path,
                             { headers => \%h, defined $o{body} ? (content => $o{body}) : () });
    my $json;
    if (($res->{headers}{'content-type'} // '') =~ /json/) {
        $json = eval { JSON::PP->new->decode($res->{content}) };
    }
    return { status => $res->{status}, headers => $res->{headers},
             body => $res->{content}, json => $json };
}

sub get { my ($self, $path, %o) = @_; $self->request('GET', $path, %o) }

# Unified list or get of the default account: unified('employees', limit => 7)
sub unified {
    my ($self, $what, %q) = @_;
    my $account = delete $q{account} // 'acme-bamboohr';
    my %o;
    $o{key} = delete $q{key} if exists $q{key};
    my $qs = join '&', "integrated_account_id=$account",
             map { "$_=" . uri_escape($q{$_}) } sort keys %q;
    return $self->get("/unified/hris/$what?$qs", %o);
}

# Every page of a list: (\@records, $pages, \@responses)
sub walk {
    my ($self, $what, %q) = @_;
    my (@records, @responses);
    my $cursor;
    for my $page (1 .. 10_000) {
        my $res = $self->unified($what, %q, defined $cursor ? (cursor => $cursor) : ());
        push @responses, $res;
        die "page $page of $what: $res->{status} $res->{body}" if $res->{status} != 200;
        push @records, @{ $res->{json}{result} };
        $cursor = $res->{json}{next_cursor};
        return (\@records, $page, \@responses) unless defined $cursor;
    }
    die "no end to $what";
}

# N requests at once, (port, path, n): forked children released together;
# a list of [status, X-Worker header, Retry-After] per answer.
sub burst {
    my ($port, $path, $n) = @_;
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    pipe(my $out_r, my $out_w) or die "pipe: $!";
    my @pids;
    for (1 .. $n) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $go_w;
            close $out_r;
            sysread($go_r, my $x, 1);        # EOF when the parent lets go
            my $res = HTTP::Tiny->new(timeout => 30, keep_alive => 0)->get(
                "http://127.0.0.1:$port$path",
                { headers => { Authorization => "Bearer $HRIS::Nginx::KEY" } });
            syswrite $out_w, join(' ', $res->{status}, $res->{headers}{'x-worker'} // '-',
                                  $res->{headers}{'retry-after'} // '-') . "\n";
            POSIX::_exit(0);                 # no destructors: they would stop nginx
        }
        push @pids, $pid;
    }
    close $go_r;
    close $out_w;
    Time::HiRes::sleep(0.2);
    close $go_w;
    my @answers = map { [split ' '] } <$out_r>;
    waitpid($_, 0) for @pids;
    return @answers;
}


sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub reload {
    my ($self, %opts) = @_;
    $self->{opts}{$_} = $opts{$_} for keys %opts;
    write_file("$self->{dir}/nginx.conf", $self->config_text);
    kill 'HUP', $self->{pid};
    sleep 1;
}

sub stop {
    my ($self) = @_;
    # a forked child of the test must not stop its parent's nginx
    return if defined $self->{owner} && $self->{owner} != $$;
    my $pid = delete $self->{pid} or return;
    delete $LIVE{$pid};
    kill 'QUIT', $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'TERM', $pid;
    sleep 0.5;
    kill 'KILL', $pid if waitpid($pid, WNOHANG) != $pid;
    waitpid($pid, 0);
    $self->{stop_timed_out} = 1;
}

sub DESTROY { $_[0]->stop }

END {
    my $status = $?;            # the test's exit code, which waitpid sets
    for my $pid (keys %LIVE) {
        next unless $LIVE{$pid} == $$;
        kill 'TERM', $pid;
        waitpid($pid, 0);
    }
    $? = $status;
    return unless $$ == $MAIN;
    my $reports = 0;
    for my $dir (@SAN_DIRS) {
        my @found = sanitizer_reports($dir);
        while (my ($f, $text) = splice @found, 0, 2) {
            $reports++;
            my @lines = split /\n/, $text;
            splice @lines, 80, @lines - 80, '...' if @lines > 80;
            print STDERR "# sanitizer report in $f:\n", map { "#   $_\n" } @lines;
        }
    }
    $? ||= 1 if $reports;       # the test file fails, even when every test passed
}

1;
