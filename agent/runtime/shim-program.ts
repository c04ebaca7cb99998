/**
 * A task's shim: a small Perl program (Debian's perl-base is essential, so it is on every host)
 * that the spawning helper starts in a session of its own (so it outlives the agent), its standard
 * output and error appended to output.log. It is the task's log writer and its exit recorder, and
 * it starts the task's first process itself, with no shell in between:
 *
 *   perl -e SHIM_PROGRAM swarmlet-shim CMD ARGS...
 *
 * It makes two pipes and forks. The child joins the task's cgroups (so the writer counts in none
 * of the task's limits, as docker's log copier), lowers its OOM score when told, makes the task's
 * fifos, takes the task's stdin, points its stdout and stderr at the pipes and execs CMD (the
 * runtime's `unshare ...`: exec-runtime.ts, crun-runtime.ts). Anything that fails before the exec
 * is said on stderr (so in the task's log) and ends the task with 125.
 *
 * The parent writes the task's output to output.log as records (log-plans.ts): one record per
 * line, each with one write; a line without its newline yet is written as a part after SL_LOG_WAIT
 * seconds (default 0.05: a shell's prompt; a tty's output, echoes included, 0: at once), or when
 * it reaches 16 KiB. Once both pipes are closed by every process of the task and the child has
 * ended, it writes the task's exit code to $SL_DIR/exitcode (through exitcode.tmp): the child's
 * (128+N for a signal N), or with SL_STATUS=1 (the exec runtime's pid 1 writes the command's) the
 * one in $SL_DIR/status, else 137 when $SL_DIR/ready says pid 1 came up (pid 1 of a pid namespace
 * is only killed from outside, by SIGKILL). So a task's last lines are in output.log once the task
 * shows as exited.
 *
 * The environment (handed on to CMD whole):
 *   SL_DIR           the task's state directory (on the host's filesystem)
 *   SL_CGROUP_PROCS  cgroup.procs files the child joins first, space-separated
 *   SL_START_FIFO_MODE  the mode of $SL_DIR/start.fifo, made by the child when missing (default 0600)
 *   SL_STDIN         "1": the task has a stdin fifo, $SL_DIR/stdin.fifo (tty or open_stdin), made when
 *                    missing and held open for reading and writing (so it never sees EOF): CMD's stdin;
 *                    else CMD's stdin is /dev/null
 *   SL_OOM_SCORE_ADJ the child's oom_score_adj (the oci runtime's crun protects itself)
 *   SL_ROOTFS_OVERLAY "1": before the exec, the child moves into a private mount namespace of its
 *                    own, hides $SL_UNMOUNT and mounts the overlay of $SL_LOWER on $SL_DIR/rootfs
 *                    (upper/ and work/ beside it): what crun-shim.ts's script does with unshare,
 *                    umount and mount processes
 *   SL_LOG_WAIT, SL_STATUS  see above
 * Two processes per task instead of a shell shim, a Perl writer and mkfifo, mv and sh helpers: on a
 * loaded host each process start costs milliseconds of CPU and tens of wall time. For the same
 * reason no module is loaded before the child execs CMD: the fifos are made with mknodat(2)
 * through syscall (POSIX alone costs twice perl's own start; it is the fallback on an unknown
 * architecture), and the writer loads Time::HiRes after the fork.
 */

export const SHIM_NAME = 'swarmlet-shim';

export const SHIM_PROGRAM = String.raw`use strict;
shift(@ARGV);
my $dir = $ENV{SL_DIR};
my @name = ('stdout', 'stderr');
my (@r, @w, @buf);
for my $i (0, 1) {
  pipe($r[$i], $w[$i]) or die "swarmlet: cannot make a pipe: $!\n";
  $buf[$i] = '';
}
my $pid = fork();
die "swarmlet: cannot fork: $!\n" unless defined($pid);
if ($pid == 0) {
  close($r[0]);
  close($r[1]);
  open(STDOUT, '>&', $w[0]) or exit(125);
  open(STDERR, '>&', $w[1]) or exit(125);
  close($w[0]);
  close($w[1]);
  my $fail = sub { print STDERR "swarmlet: $_[0]\n"; exit(125); };
  for my $f (split(' ', $ENV{SL_CGROUP_PROCS} // '')) {
    my $fh;
    (open($fh, '>', $f) && syswrite($fh, "$$\n") && close($fh)) or $fail->("cannot join cgroup $f");
  }
  if (defined($ENV{SL_OOM_SCORE_ADJ}) && open(my $oom, '>', '/proc/self/oom_score_adj')) {
    syswrite($oom, "$ENV{SL_OOM_SCORE_ADJ}\n");
    close($oom);
  }
  my @fifos = (['start.fifo', oct($ENV{SL_START_FIFO_MODE} || '0600')]);
  push(@fifos, ['stdin.fifo', 0600]) if ($ENV{SL_STDIN} // '') eq '1';
  # System calls by number where the architecture's are known: POSIX (for mkfifo) costs more CPU to load than perl does to start.
  my $arch = '';
  if (open(my $fh, '<', '/proc/sys/kernel/arch')) { $arch = <$fh> // ''; chomp($arch); close($fh); }
  my $nr = {
    x86_64 => { mknodat => 259, unshare => 272, mount => 165, umount2 => 166 },
    aarch64 => { mknodat => 33, unshare => 97, mount => 40, umount2 => 39 },
  }->{$arch};
  for my $f (@fifos) {
    my $path = "$dir/$f->[0]";
    next if -p $path;
    my $made = $nr ? syscall($nr->{mknodat}, -100, $path, 0010000 | $f->[1], 0) == 0 : do { require POSIX; POSIX::mkfifo($path, $f->[1]) };
    ($made && chmod($f->[1], $path)) or $fail->("cannot make the " . ($f->[0] eq 'start.fifo' ? 'start' : 'stdin') . " fifo");
  }
  if (($ENV{SL_ROOTFS_OVERLAY} // '') eq '1') {
    # An oci task's root: a private mount namespace (CLONE_NEWNS; / made rprivate), the hybrid
    # cgroup2 mount hidden (SL_UNMOUNT, detached), the overlay mounted on $SL_DIR/rootfs.
    $nr or $fail->("cannot mount the task's root filesystem: unknown architecture $arch");
    # (syscall takes its string arguments as writable buffers: variables, not constants.)
    my ($root, $type, $target, $hide) = ('/', 'overlay', "$dir/rootfs", $ENV{SL_UNMOUNT} // '');
    my $opts = "lowerdir=$ENV{SL_LOWER},upperdir=$dir/upper,workdir=$dir/work";
    syscall($nr->{unshare}, 0x00020000) == 0 or $fail->("cannot make a mount namespace: $!");
    syscall($nr->{mount}, 0, $root, 0, 0x44000, 0) == 0 or $fail->("cannot make the mounts private: $!");
    syscall($nr->{umount2}, $hide, 2) if $hide ne '';
    syscall($nr->{mount}, $type, $target, $type, 0, $opts) == 0 or $fail->("cannot mount the task's root filesystem (overlay on $ENV{SL_LOWER}): $!");
  }
  if (-p "$dir/stdin.fifo") {
    open(STDIN, '+<', "$dir/stdin.fifo") or $fail->("cannot open the stdin fifo");
  } else {
    open(STDIN, '<', '/dev/null') or $fail->('cannot open /dev/null');
  }
  exec { $ARGV[0] } @ARGV;
  $fail->("cannot run $ARGV[0]: $!");
}
close($w[0]);
close($w[1]);
open(STDIN, '<', '/dev/null');
binmode(STDOUT);
# Loaded here, after the fork: the task's start does not wait for it.
require Time::HiRes;
sub put {
  my ($i, $text, $flag) = @_;
  my ($s, $us) = Time::HiRes::gettimeofday();
  my @t = gmtime($s);
  my $rec = sprintf('%04d-%02d-%02dT%02d:%02d:%02d.%06d000Z %s %s ', $t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0], $us, $name[$i], $flag) . $text . "\n";
  my $off = 0;
  while ($off < length($rec)) {
    my $n = syswrite(STDOUT, $rec, length($rec) - $off, $off);
    if (!defined($n)) { next if $!{EINTR}; last; }
    $off += $n;
  }
}
sub drain {
  my ($i, $all) = @_;
  while ((my $nl = index($buf[$i], "\n")) >= 0) {
    put($i, substr($buf[$i], 0, $nl), 'F');
    substr($buf[$i], 0, $nl + 1) = '';
  }
  if (length($buf[$i]) >= 16384 || ($all && length($buf[$i]) > 0)) {
    put($i, $buf[$i], 'P');
    $buf[$i] = '';
  }
}
my $wait = $ENV{SL_LOG_WAIT} // 0.05;
my %open = (0 => 1, 1 => 1);
while (%open) {
  my $rin = '';
  vec($rin, fileno($r[$_]), 1) = 1 for keys %open;
  my $waiting = grep { length($buf[$_]) > 0 } keys %open;
  my $n = select(my $rout = $rin, undef, undef, $waiting ? $wait : undef);
  next if $n < 0;
  if ($n == 0) { drain($_, 1) for keys %open; next; }
  for my $i (sort keys %open) {
    next unless vec($rout, fileno($r[$i]), 1);
    my $got = sysread($r[$i], my $data, 65536);
    next if !defined($got) && $!{EINTR};
    if (!$got) { drain($i, 1); delete $open{$i}; close($r[$i]); next; }
    $buf[$i] .= $data;
    drain($i, 0);
  }
}
my $rc;
while (1) {
  my $done = waitpid($pid, 0);
  if ($done == $pid) { $rc = ($? & 127) ? 128 + ($? & 127) : $? >> 8; last; }
  next if $done < 0 && $!{EINTR};
  $rc = -1;
  last;
}
if (($ENV{SL_STATUS} // '') eq '1') {
  if (-s "$dir/status" && open(my $st, '<', "$dir/status")) {
    my $line = <$st>;
    close($st);
    $rc = $1 if defined($line) && $line =~ /^(-?\d+)/;
  } elsif (-e "$dir/ready") {
    $rc = 137;
  }
}
open(my $out, '>', "$dir/exitcode.tmp") or die "swarmlet: cannot write the exit code: $!\n";
print $out "$rc\n";
close($out);
rename("$dir/exitcode.tmp", "$dir/exitcode") or die "swarmlet: cannot write the exit code: $!\n";
`;
