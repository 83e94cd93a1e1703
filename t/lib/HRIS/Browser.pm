package HRIS::Browser;
# Headless Chromium (Debian's "chromium") driven through the DevTools
# protocol over a pipe (--remote-debugging-pipe: JSON messages ended by a
# NUL byte on file descriptors 3 and 4), so that tests see pages as a
# browser renders them and fill and send forms as a person would.
#
#   my $why = HRIS::Browser::missing();     # undef, or why there is none
#   my $b = HRIS::Browser->start;           # 390 x 844, a phone (mobile)
#   $b->visit($url);                        # waits for the load
#   $b->eval('document.title');             # the value, JSON-decoded
#   $b->type('f-api_key', 'secret');        # focus, then typed text
#   $b->key('Enter');                       # true when a page loaded then
#   $b->screenshot('/tmp/x.png', full => 1);
#   $b->stop;
#
# The browser reaches nothing but 127.0.0.1: every host name other than
# 127.0.0.1 fails to resolve, and every other address goes to a proxy
# that is not there (loopback addresses included, bar 127.0.0.1). Its
# profile is a temporary directory; as root it runs with --no-sandbox.
use strict;
use warnings;
use Fcntl qw(F_DUPFD);
use File::Temp qw(tempdir);
use IO::Select;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my $J = JSON::PP->new->canonical->allow_nonref;

sub binary {
    return $ENV{HRIS_CHROMIUM} if $ENV{HRIS_CHROMIUM};
    for my $dir (split /:/, $ENV{PATH} // '') {
        for my $name (qw(chromium chromium-browser)) {
            return "$dir/$name" if -x "$dir/$name";
        }
    }
    return undef;
}

# undef when a browser can run here, else the reason to skip
sub missing {
    my $bin = binary();
    return 'no chromium in PATH (apt-get install chromium; make test installs it)'
        unless $bin;
    return undef;
}

sub start {
    my ($class, %o) = @_;
    my $self = bless { id => 0, events => [], buf => '' }, $class;
    $self->{dir} = tempdir('hris-chromium-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($w, $h) = @{ $o{size} // [390, 844] };

    pipe(my $cmd_r, my $cmd_w) or die "pipe: $!";
    pipe(my $res_r, my $res_w) or die "pipe: $!";

    my @args = (
        binary(), '--headless', '--remote-debugging-pipe',
        "--user-data-dir=$self->{dir}/profile", "--window-size=$w,$h",
        '--hide-scrollbars', '--disable-gpu', '--no-first-run',
        '--no-default-browser-check', '--disable-background-networking',
        '--disable-component-update', '--disable-default-apps', '--disable-sync',
        '--disable-extensions', '--metrics-recording-only', '--mute-audio',
        '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication',
        # nothing but 127.0.0.1: other names do not resolve, other
        # addresses (loopback ones too) go to a proxy that is not there
        '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
        '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=<-loopback>;127.0.0.1',
        ($> == 0 ? ('--no-sandbox') : ()),
        'about:blank',
    );

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $cmd_w;
        close $res_r;
        # above 4 first, so that neither lands on the other's number
        my $in = fcntl($cmd_r, F_DUPFD, 10) or POSIX::_exit(126);
        my $out = fcntl($res_w, F_DUPFD, 10) or POSIX::_exit(126);
        POSIX::dup2($in, 3) // POSIX::_exit(126);
        POSIX::dup2($out, 4) // POSIX::_exit(126);
        POSIX::close($in);
        POSIX::close($out);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$self->{dir}/chromium.log";
        open STDERR, '>&', \*STDOUT;
        { exec @args };
        POSIX::_exit(127);
    }

    close $cmd_r;
    close $res_w;
    $self->{pid} = $pid;
    $self->{owner} = $$;
    $self->{w} = $cmd_w;
    $self->{r} = $res_r;
    binmode $cmd_w;
    binmode $res_r;
    select((select($cmd_w), $| = 1)[0]);

    # one tab, its session, and the events tests wait for
    my $t = $self->call('Target.createTarget', { url => 'about:blank' });
    my $a = $self->call('Target.attachToTarget', { targetId => $t->{targetId}, flatten => JSON::PP::true });
    $self->{session} = $a->{sessionId};
    $self->call($_) for qw(Page.enable Runtime.enable Network.enable);
    # a phone: this width, and the page's viewport meta decides the layout
    # (without one, a phone lays a page out 980 px wide and shrinks it)
    $self->call('Emulation.setDeviceMetricsOverride', {
        width => $w, height => $h, deviceScaleFactor => 1,
        mobile => ($o{mobile} // 1) ? JSON::PP::true : JSON::PP::false });
    return $self;
}

sub log_text {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/chromium.log" or return '';
    local $/;
    return <$fh>;
}

# One message out; the id of its answer.
sub send_msg {
    my ($self, $method, $params, $session) = @_;
    my $id = ++$self->{id};
    my $msg = { id => $id, method => $method, params => $params // {} };
    $msg->{sessionId} = $session if defined $session;
    my $text = $J->encode($msg) . "\0";
    while (length $text) {
        my $n = syswrite($self->{w}, $text);
        die "chromium went away: $!\n" . $self->log_text unless defined $n;
        substr($text, 0, $n) = '';
    }
    return $id;
}

# The next message in, or undef after $timeout seconds.
sub read_msg {
    my ($self, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $i = index($self->{buf}, "\0");
        if ($i >= 0) {
            my $text = substr($self->{buf}, 0, $i);
            substr($self->{buf}, 0, $i + 1) = '';
            return $J->decode($text);
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        my @ready = IO::Select->new($self->{r})->can_read($left);
        next unless @ready;
        my $n = sysread($self->{r}, my $chunk, 1 << 16);
        die "chromium closed its pipe\n" . $self->log_text unless $n;
        $self->{buf} .= $chunk;
    }
}

# What tests ask about later, noted as it passes: the last document's
# status and URL.
sub note {
    my ($self, $m) = @_;
    my $p = $m->{params} // {};
    if (($m->{method} // '') eq 'Network.responseReceived' && ($p->{type} // '') eq 'Document') {
        $self->{status} = $p->{response}{status};
        $self->{doc_url} = $p->{response}{url};
    }
    return $m;
}

# A command of the tab (or of the browser: session => undef); its result.
sub call {
    my ($self, $method, $params, %o) = @_;
    my $session = exists $o{session} ? $o{session} : $self->{session};
    my $id = $self->send_msg($method, $params, $session);
    my $deadline = time + ($o{timeout} // 30);
    while (time < $deadline) {
        my $m = $self->read_msg($deadline - time) // last;
        $self->note($m);
        if (defined $m->{id} && $m->{id} == $id) {
            die "$method: $m->{error}{message}\n" if $m->{error};
            return $m->{result};
        }
        push @{ $self->{events} }, $m if $m->{method};
    }
    die "$method: no answer from chromium\n";
}

# The first event named $name (and passing $filter) since the last look.
sub wait_event {
    my ($self, $name, $timeout, $filter) = @_;
    my $deadline = time + ($timeout // 30);
    while (1) {
        my @e = @{ $self->{events} };
        for my $i (0 .. $#e) {
            next unless $e[$i]{method} eq $name && (!$filter || $filter->($e[$i]{params}));
            splice @{ $self->{events} }, 0, $i + 1;
            return $e[$i]{params};
        }
        my $left = $deadline - time;
        return undef if $left <= 0;
        my $m = $self->read_msg($left) // return undef;
        $self->note($m);
        push @{ $self->{events} }, $m if $m->{method};
    }
}

sub forget_events { $_[0]{events} = [] }

# Navigates and waits for the page's load: the navigation's error, or ''.
sub visit {
    my ($self, $url) = @_;
    $self->forget_events;
    my $r = $self->call('Page.navigate', { url => $url });
    return $r->{errorText} if $r->{errorText};
    $self->wait_event('Page.loadEventFired', 30) or die "no load event for $url";
    return '';
}

# A JavaScript expression in the page (DevTools' evaluation: the page's
# CSP, which allows no script, does not apply to it); its value.
sub eval {
    my ($self, $expr) = @_;
    my $r = $self->call('Runtime.evaluate', { expression => $expr, returnByValue => JSON::PP::true });
    die "eval: $r->{exceptionDetails}{text}: $expr\n" if $r->{exceptionDetails};
    return $r->{result}{value};
}

# Focus an element by id and type text into it, as a keyboard would.
sub type {
    my ($self, $id, $text) = @_;
    $self->eval('document.getElementById(' . $J->encode($id) . ').focus()');
    $self->call('Input.insertText', { text => $text });
}

# Press a key (Tab, Enter); Enter waits for the load it starts.
sub key {
    my ($self, $key, %o) = @_;
    my %k = (Enter => [13, "\r"], Tab => [9, undef]);
    my ($code, $text) = @{ $k{$key} // die "key $key?" };
    $self->forget_events;
    for my $type ('keyDown', 'keyUp') {
        $self->call('Input.dispatchKeyEvent', {
            type => $type, key => $key, code => $key, windowsVirtualKeyCode => $code,
            nativeVirtualKeyCode => $code,
            ($type eq 'keyDown' && defined $text ? (text => $text) : ()),
            ($o{shift} ? (modifiers => 8) : ()),
        });
    }
    # Enter sends a form: whether a page loaded after it (within 20 s)
    return 1 unless $key eq 'Enter' && !$o{no_wait};
    return $self->wait_event('Page.loadEventFired', 20) ? 1 : 0;
}

# The status of the last document the tab loaded (its main request).
sub last_status { $_[0]{status} }

# The screen as a PNG; full => 1: the whole page, below the fold too.
sub screenshot {
    my ($self, $path, %o) = @_;
    require MIME::Base64;
    my %clip;
    if ($o{full}) {
        my $m = $self->call('Page.getLayoutMetrics');
        my $c = $m->{cssContentSize} // $m->{contentSize};
        %clip = (captureBeyondViewport => JSON::PP::true,
                 clip => { x => 0, y => 0, width => $c->{width}, height => $c->{height}, scale => 1 });
    }
    my $r = $self->call('Page.captureScreenshot', { format => 'png', %clip });
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh MIME::Base64::decode_base64($r->{data});
    close $fh;
}

sub stop {
    my ($self) = @_;
    return if !$self->{pid} || $self->{owner} != $$;
    my $pid = delete $self->{pid};
    eval { $self->send_msg('Browser.close', {}, undef) };
    close $self->{w};
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY { $_[0]->stop }

1;
