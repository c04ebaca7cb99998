/**
 * The node's Attach (terminal-service.ts) over a real grpc-js server and client on a unix socket,
 * with the exec runtime's real processes and pty: a task removed as soon as it ended (what --rm
 * does to a container) still ends the attach with the code it exited with, not 255.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { removeCgroupParent } from '../../agent/runtime/cgroups';
import { ExecRuntime } from '../../agent/runtime/exec-runtime';
import { LocalNodeClient, LocalNodeServer, LocalNodeService, TerminalInput, TerminalOutput } from '../../services/gen/swarmlet/v1/control';
import { TaskState } from '../../services/gen/swarmlet/v1/types';
import { terminalService } from '../../node/terminal-service';
import { uniqueSuffix } from '../support/unique';
import { sleep } from '../lab/process-tree';

const log = pino({ level: 'silent' });
const suffix = uniqueSuffix(6);
const parent = `swarmlet-test-tsvc-${suffix}`;
let base: string;
let rt: ExecRuntime;
let server: grpc.Server;
let client: InstanceType<typeof LocalNodeClient>;
/** What --rm remembers of the containers it removed (Containers.removedExitCode). */
const removed = new Map<string, number>();

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'swl-tsvc-'));
  rt = new ExecRuntime({ stateDir: join(base, 'tasks'), cgroupParent: parent, log });
  server = new grpc.Server();
  const service = terminalService({ runtimeFor: () => rt, targets: [async () => (await rt.list()).map((id) => ({ id, names: [] }))], exitCodeOf: (id) => removed.get(id), log });
  server.addService(LocalNodeService, service as unknown as LocalNodeServer);
  const socket = `unix://${join(base, 'node.sock')}`;
  await new Promise<void>((resolve, reject) => server.bindAsync(socket, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  client = new LocalNodeClient(socket, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  server?.forceShutdown();
  try {
    for (const id of (await rt?.list()) ?? []) {
      await rt.stop(id, 0).catch(() => undefined);
      await rt.remove(id).catch(() => undefined);
    }
  } finally {
    await removeCgroupParent(parent);
    if (base) rmSync(base, { recursive: true, force: true });
  }
});

test('an attached task removed as soon as it ended (--rm) ends the attach with its own exit code', async () => {
  const id = `t${suffix}rm1abcdefghij`;
  await rt.prepare({
    id,
    serviceId: '',
    serviceName: 'it',
    slot: 0,
    nodeId: 'node1',
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    createdAt: '',
    spec: { networkAliases: [], container: { image: 'exec:/', command: ['sh'], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 0, mounts: [], pull: 0, tty: true, openStdin: true, secrets: [], configs: [] }, forceUpdate: 0, networks: [] },
    networks: [],
  });
  await rt.start(id);
  const call = client.attach();
  let output = '';
  const exitCode = new Promise<number | undefined>((resolve, reject) => {
    let code: number | undefined;
    call.on('data', (m: TerminalOutput) => {
      if (m.msg?.$case === 'output') output += m.msg.value.data.toString();
      if (m.msg?.$case === 'exitCode') code = m.msg.value;
    });
    call.on('end', () => resolve(code));
    call.on('error', reject);
  });
  call.write(TerminalInput.fromPartial({ msg: { $case: 'attach', value: { target: id } } }));
  // Typed once the shell shows its prompt: a line typed before is echoed first, and the prompt then lands before its answer ("# 12").
  for (let i = 0; i < 400 && !/# $/.test(output); i++) await sleep(25);
  call.write(TerminalInput.fromPartial({ msg: { $case: 'stdin', value: Buffer.from('echo $((3*4))\n') } }));
  for (let i = 0; i < 400 && !/\n12\r?\n/.test(output); i++) await sleep(25);
  expect(output).toMatch(/\n12\r?\n/);
  call.write(TerminalInput.fromPartial({ msg: { $case: 'stdin', value: Buffer.from('exit 7\n') } }));
  // As the containers' monitor does with a --rm container: its exit recorded, the task removed at once.
  for (let i = 0; i < 1000 && (await rt.inspect(id)).state !== 'exited'; i++) await sleep(2);
  const st = await rt.inspect(id);
  expect(st).toMatchObject({ state: 'exited', exitCode: 7 });
  removed.set(id, st.exitCode!);
  // Its state directory goes first (the runtime's remove ends with it, after its cgroup): the session's next look finds no task.
  rmSync(join(base, 'tasks', id), { recursive: true, force: true });
  expect((await rt.inspect(id)).state).toBe('missing');
  expect(await exitCode).toBe(7);
  await rt.remove(id);
});
