/**
 * What the end-to-end tests read while they wait: the objects `--format api` prints (`node ls`,
 * `service ps`, `service ls`, `info`), read over the host daemon's unix socket from the test process
 * instead of by starting the CLI. A wait polls every 200 ms; through the CLI each poll was a Node
 * start-up (about 0.35 s of CPU) that the lab's daemons and the other jest worker then went without.
 * What a test says about the CLI itself still runs the CLI.
 */
import * as grpc from '@grpc/grpc-js';
import { nodeJson } from '../../cli/commands/node';
import { callUnary } from '../../services/api/handlers';
import { LOCAL_API_MESSAGE_OPTIONS } from '../../services/api/limits';
import { ControlClient, LocalNodeClient } from '../../services/gen/swarmlet/v1/control';
import { Service, Task } from '../../services/gen/swarmlet/v1/types';
import type { LabHost } from '../lab/lab';

interface HostClients {
  control: ControlClient;
  local: LocalNodeClient;
}

// A daemon that is killed and started again is reached within a second of its return, not after
// grpc-js's default back-off (up to two minutes).
const CHANNEL_OPTIONS = { ...LOCAL_API_MESSAGE_OPTIONS, 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 };
const READ_TIMEOUT_MS = 15000;

const clients = new Map<string, HostClients>();

function clientsFor(h: Pick<LabHost, 'socket'>): HostClients {
  let c = clients.get(h.socket);
  if (!c) {
    const address = `unix://${h.socket}`;
    const creds = grpc.credentials.createInsecure();
    c = { control: new ControlClient(address, creds, CHANNEL_OPTIONS), local: new LocalNodeClient(address, creds, CHANNEL_OPTIONS) };
    clients.set(h.socket, c);
  }
  return c;
}

/** Closes every channel opened here: after each jest test file by itself; a benchmark calls it when its lab goes. */
export function closeApiReads(): void {
  for (const c of clients.values()) {
    c.control.close();
    c.local.close();
  }
  clients.clear();
}
if (typeof afterAll === 'function') afterAll(closeApiReads);

/** `node ls --format api`. */
export async function apiNodes(h: Pick<LabHost, 'socket'>): Promise<any[]> {
  const { control } = clientsFor(h);
  const res = await callUnary(control.listNodes.bind(control), {}, READ_TIMEOUT_MS);
  return res.nodes.map(nodeJson);
}

/** `service ps REF --format api`: every task of the service, with its history. */
export async function apiServiceTasks(h: Pick<LabHost, 'socket'>, ref: string): Promise<any[]> {
  const { control } = clientsFor(h);
  const res = await callUnary(control.listTasks.bind(control), { service: ref, node: '', all: true }, READ_TIMEOUT_MS);
  return res.tasks.map((t) => Task.toJSON(t));
}

/** `service ls --format api`. */
export async function apiServices(h: Pick<LabHost, 'socket'>): Promise<any[]> {
  const { control } = clientsFor(h);
  const res = await callUnary(control.listServices.bind(control), {}, READ_TIMEOUT_MS);
  return res.services.map((s) => ({ ...(Service.toJSON(s.service!) as object), running: s.running, desired: s.desired }));
}

/** `info --format api`. */
export async function apiInfo(h: Pick<LabHost, 'socket'>): Promise<Record<string, any>> {
  const { local } = clientsFor(h);
  return JSON.parse(JSON.stringify(await callUnary(local.info.bind(local), {}, READ_TIMEOUT_MS)));
}
