/**
 * The writer of a task's output.log records (log-plans.ts): a small Perl program (Debian's
 * perl-base is essential, so it is on every host) that the task's shim starts before it joins the
 * task's cgroup (the writer counts in none of the task's limits, as docker's log copier), whose
 * standard output is output.log (opened for appending), and that reads the task's stdout and
 * stderr from two fifos. It writes one record per line, each with one write; a line without its
 * newline yet is written as a part after WAIT seconds (default 0.05: a shell's prompt; a tty's
 * output, echoes included, 0: at once), or when it reaches 16 KiB. It ends when both streams are
 * closed by every process of the task, after writing what it has.
 * Run as `perl -e "$SL_LOG" OUT_FIFO ERR_FIFO [WAIT]`; it removes the fifos once it holds them.
 */

export const LOG_WRITER_SCRIPT = String.raw`use strict;
use Time::HiRes qw(gettimeofday);
$0 = 'swarmlet-log';
my @name = ('stdout', 'stderr');
my (@fh, @buf);
for my $i (0, 1) {
  open($fh[$i], '<', $ARGV[$i]) or die "swarmlet-log: cannot open $ARGV[$i]: $!\n";
  binmode($fh[$i]);
  $buf[$i] = '';
}
unlink(@ARGV[0, 1]);
binmode(STDOUT);
sub put {
  my ($i, $text, $flag) = @_;
  my ($s, $us) = gettimeofday();
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
my $wait = $ARGV[2] // 0.05;
my %open = (0 => 1, 1 => 1);
while (%open) {
  my $rin = '';
  vec($rin, fileno($fh[$_]), 1) = 1 for keys %open;
  my $waiting = grep { length($buf[$_]) > 0 } keys %open;
  my $n = select(my $rout = $rin, undef, undef, $waiting ? $wait : undef);
  next if $n < 0;
  if ($n == 0) { drain($_, 1) for keys %open; next; }
  for my $i (sort keys %open) {
    next unless vec($rout, fileno($fh[$i]), 1);
    my $r = sysread($fh[$i], my $data, 65536);
    next if !defined($r) && $!{EINTR};
    if (!$r) { drain($i, 1); delete $open{$i}; close($fh[$i]); next; }
    $buf[$i] .= $data;
    drain($i, 0);
  }
}
`;

/**
 * The shim's first lines (sh): start the writer on two fifos in the task's state directory and
 * send the shim's own stdout and stderr (so the task's) to them (without perl, the output goes to
 * output.log as it is, which readers take as stdout lines without times); SL_LOG_WAIT is the
 * writer's WAIT. `$logger` is the writer's pid: the shim waits for it before it writes the exit
 * code, so a task's last lines are in output.log once the task shows as exited.
 */
const LOG_SHIM_LINES = `logger=
# Opened for reading and writing: never blocks, even if the writer could not start (then lines wait in the pipe).
if command -v perl >/dev/null 2>&1 && mkfifo -m 0600 "$SL_DIR/log-out.fifo" "$SL_DIR/log-err.fifo"; then
  perl -e "$SL_LOG" "$SL_DIR/log-out.fifo" "$SL_DIR/log-err.fifo" "\${SL_LOG_WAIT:-0.05}" </dev/null &
  logger=$!
  exec 1<>"$SL_DIR/log-out.fifo" 2<>"$SL_DIR/log-err.fifo"
fi`;

/**
 * The shim's last step before the exit code: its own output closed, then the writer's end awaited.
 * First, the shim holds its ends of the fifos until the writer holds its own (it removes the fifos
 * once it does): a short task on a loaded host can end before the writer has opened them, and with
 * no writer left its open would wait for ever, and the shim with it (10 s at most, then the
 * writer is stopped).
 */
const LOG_SHIM_FINISH = `if [ -n "$logger" ]; then
    n=0
    while [ -p "$SL_DIR/log-err.fifo" ] && [ $n -lt 1000 ] && kill -0 "$logger" 2>/dev/null; do sleep 0.01; n=$((n + 1)); done
    if [ -p "$SL_DIR/log-err.fifo" ]; then kill "$logger" 2>/dev/null; fi
  fi
  exec >/dev/null 2>&1
  if [ -n "$logger" ]; then wait "$logger"; fi`;

/**
 * How both shims begin (sh): finish() records the exit code once the shim's output is closed and
 * the writer is done; the writer starts; the shim joins the task's cgroups (125 if it cannot).
 */
export const SHIM_PRELUDE = `set -u
finish() {
  ${LOG_SHIM_FINISH}
  echo "$1" > "$SL_DIR/exitcode.tmp" && mv -f "$SL_DIR/exitcode.tmp" "$SL_DIR/exitcode"
  exit 0
}
${LOG_SHIM_LINES}
for f in $SL_CGROUP_PROCS; do
  echo $$ > "$f" || { echo "swarmlet: cannot join cgroup $f" >&2; finish 125; }
done`;
