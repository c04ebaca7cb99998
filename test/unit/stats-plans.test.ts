import {
  bytesSize,
  decimalSize,
  parseIoStat,
  parseNetDev,
  parseOnlineCpus,
  parsePasswd,
  parseProcStat,
  parseSystemCpuNs,
  planCpuTime,
  planMemory,
  planStatsEntry,
  planStatsRow,
  planTopCommand,
  planTopRows,
  planTty,
} from '../../agent/containers/stats-plans';
import { planSignal } from '../../agent/containers/signal-plans';
import type { ContainerUsage } from '../../services/gen/swarmlet/v1/control';

const usage = (over: Partial<ContainerUsage>): ContainerUsage => ({
  id: 'a'.repeat(64),
  name: 'web',
  running: true,
  systemCpuNs: 0,
  cpuNs: 0,
  onlineCpus: 2,
  memoryBytes: 0,
  memoryLimitBytes: 0,
  netRxBytes: 0,
  netTxBytes: 0,
  blockReadBytes: 0,
  blockWriteBytes: 0,
  pids: 0,
  ...over,
});

describe('stats figures', () => {
  test("CPU % is docker's: the container's CPU time over the host's, times the online CPUs", () => {
    const prev = usage({ systemCpuNs: 10e9, cpuNs: 1e9 });
    // The host spent 2 s of CPU (1 s of wall time on 2 CPUs); the container 0.5 s: half a CPU, 50%.
    const cur = usage({ systemCpuNs: 12e9, cpuNs: 1.5e9 });
    expect(planStatsEntry(cur, prev).CPUPerc).toBe('50.00%');
    expect(planStatsEntry(cur, undefined).CPUPerc).toBe('0.00%');
    expect(planStatsEntry(cur, usage({ running: false })).CPUPerc).toBe('0.00%');
  });

  test('a row has the columns in docker\'s order, memory in binary units and I/O in decimal ones', () => {
    const e = planStatsEntry(
      usage({ memoryBytes: 1.5 * 1024 * 1024, memoryLimitBytes: 64 * 1024 * 1024, netRxBytes: 1234, netTxBytes: 648, blockReadBytes: 4096000, blockWriteBytes: 0, pids: 3 }),
      undefined,
    );
    expect(planStatsRow(e)).toEqual(['aaaaaaaaaaaa', 'web', '0.00%', '1.5MiB / 64MiB', '2.34%', '1.23kB / 648B', '4.1MB / 0B', '3']);
    expect(e).toMatchObject({ Container: 'aaaaaaaaaaaa', ID: 'aaaaaaaaaaaa', Name: 'web' });
  });

  test('a stopped container shows zeros and --, as docker does', () => {
    expect(planStatsRow(planStatsEntry(usage({ running: false, memoryBytes: 5 }), undefined))).toEqual(['aaaaaaaaaaaa', 'web', '0.00%', '0B / 0B', '0.00%', '--', '--', '0']);
  });

  test('sizes as go-units prints them', () => {
    expect(bytesSize(0)).toBe('0B');
    expect(bytesSize(1023)).toBe('1023B');
    expect(bytesSize(7.6 * 1024 ** 3)).toBe('7.6GiB');
    expect(decimalSize(999)).toBe('999B');
    expect(decimalSize(1000)).toBe('1kB');
    expect(decimalSize(12345678)).toBe('12.3MB');
  });

  test('memory: usage minus inactive file cache; no limit means the host memory', () => {
    const host = 8 * 1024 ** 3;
    expect(planMemory(10_000_000, 'cache 5000\ntotal_inactive_file 2000000\n', '9223372036854771712\n', host)).toEqual({ used: 8_000_000, limit: host });
    expect(planMemory(10_000_000, 'inactive_file 1000000\n', '67108864\n', host)).toEqual({ used: 9_000_000, limit: 67108864 });
    expect(planMemory(4096, '', 'max\n', host)).toEqual({ used: 4096, limit: host });
  });

  test('/proc parsers: net/dev without lo, io.stat over devices, /proc/stat CPU time and CPUs', () => {
    const netDev = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:    9999      10    0    0    0     0          0         0     9999      10    0    0    0     0       0          0',
      '  eth0:    1500      12    0    0    0     0          0         0      700       5    0    0    0     0       0          0',
      '  eth1:     500       2    0    0    0     0          0         0      300       1    0    0    0     0       0          0',
    ].join('\n');
    expect(parseNetDev(netDev)).toEqual({ rx: 2000, tx: 1000 });
    expect(parseIoStat('8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=1 rios=1 wios=1\n')).toEqual({ read: 105, write: 21 });
    const stat = 'cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n';
    expect(parseSystemCpuNs(stat)).toBe(1000 * 1e7);
    expect(parseOnlineCpus(stat)).toBe(2);
  });

  test('/proc/<pid>/stat with spaces and parentheses in the command name', () => {
    const text = '4242 (my (odd) cmd) S 1 4242 4242 34816 4242 4194560 100 0 0 0 150 50 0 0 20 0 3 0 123456 1000000 200 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0';
    expect(parseProcStat(text)).toEqual({ comm: 'my (odd) cmd', state: 'S', ppid: 1, ttyNr: 34816, cpuTicks: 200, threads: 3, startTicks: 123456 });
    expect(parseProcStat('')).toBeUndefined();
  });
});

describe('top rows', () => {
  test("ps -ef's columns: user names, TTY, STIME today or a date, TIME, CMD or [comm]", () => {
    const boot = new Date(2026, 11, 3, 8, 0, 0).getTime();
    const now = new Date(2026, 11, 4, 12, 0, 0);
    const stat = (startTicks: number, cpuTicks: number, ttyNr = 0) => ({ comm: 'sleep', state: 'S', ppid: 7, ttyNr, cpuTicks, startTicks, threads: 1 });
    // Started 27 h after boot (Dec 4 11:00), an hour before now, with 36 s of CPU: 1%.
    const today = 27 * 3600 * 100;
    const rows = planTopRows(
      [
        { pid: 20, uid: 1000, stat: stat(100, 0, 34816 + 3), cmdline: '' },
        { pid: 10, uid: 0, stat: stat(today, 3600), cmdline: 'sleep\u00001000\u0000' },
      ],
      parsePasswd('root:x:0:0:root:/root:/bin/bash\n'),
      boot,
      now,
    );
    expect(rows).toEqual([
      ['root', '10', '7', '1', '11:00', '?', '00:00:36', 'sleep 1000'],
      ['1000', '20', '7', '0', 'Dec03', 'pts/3', '00:00:00', '[sleep]'],
    ]);
    expect(planTty(0)).toBe('?');
    expect(planTopCommand('/bin/sh\0-c\0set -u\nexec x\0swarmlet-init\0sleep\u00001000\0', 'sh')).toBe('swarmlet-init sleep 1000');
    expect(planTopCommand('/bin/sh\0-c\0echo a\nb\0', 'sh')).toBe('/bin/sh -c echo a?b');
    expect(planCpuTime(100 * (86400 + 3661))).toBe('1-01:01:01');
  });
});

describe('kill signals', () => {
  test("docker's spellings: names with or without SIG, any case, numbers; anything else is refused", () => {
    expect(planSignal('HUP')).toBe('HUP');
    expect(planSignal('sigusr1')).toBe('USR1');
    expect(planSignal('9')).toBe('KILL');
    expect(planSignal('')).toBe('KILL');
    expect(planSignal('15')).toBe('TERM');
    expect(planSignal('BOGUS')).toBeUndefined();
    expect(planSignal('99')).toBeUndefined();
  });
});
