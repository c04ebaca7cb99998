/**
 * The overlay driver's converge loop: reads the sandboxes, plans (planSandboxes), applies the
 * operations, and reads again until nothing is left to do (normally one extra read), so a device
 * made again gets back every entry that went with the old one.
 */
import { SwarmletError, asSwarmletError, internal } from '../../../services/common/errors';
import type { Logger } from '../../../services/common/logger';
import { SandboxOp, WantedOverlay, planSandboxes, vxlanName } from '../plans/overlay-plan';
import { deleteNetns, ensureNetns } from '../sandbox';
import { OverlaySandboxes, Sandbox } from './sandboxes';

/** Applying a plan and reading again: normally 1 pass, 2 when a device was made again. */
const MAX_PASSES = 3;

const describeOp = (op: SandboxOp): string => {
  const { op: name, vni, ...rest } = op;
  return `${name} ${JSON.stringify(rest)} (VNI ${vni})`;
};

/**
 * Applies plans until the kernel matches `wanted`. With `everything`, the whole host: sandboxes
 * of other VNIs and host-namespace leftovers go. Without, only the wanted networks' sandboxes
 * are looked at (attach), and nothing else is touched.
 */
export async function convergeOverlays(sandboxes: OverlaySandboxes, log: Logger, wanted: WantedOverlay[], everything: boolean): Promise<void> {
  const wantedVnis = new Set(wanted.map((w) => w.vni));
  const unwanted: number[] = [];
  if (everything) {
    for (const { vni, mounted } of await sandboxes.discover()) {
      if (wantedVnis.has(vni)) continue;
      if (mounted) unwanted.push(vni);
      else await deleteNetns(sandboxes.name(vni));
    }
    // Handles whose namespace vanished from /run/netns: clean through them and let them go.
    for (const vni of sandboxes.openVnis()) if (!wantedVnis.has(vni) && !unwanted.includes(vni)) await sandboxes.drop(vni, true);
  }
  // `ip netns add` one at a time (its first run makes /run/netns a shared mount), handles side by side.
  for (const vni of wantedVnis) {
    if (await ensureNetns(sandboxes.name(vni))) log.info({ vni, netns: sandboxes.name(vni) }, 'overlay sandbox created');
  }
  await Promise.all([...wantedVnis].map((vni) => sandboxes.openSandbox(vni)));
  for (const vni of unwanted) await sandboxes.openSandbox(vni);
  if (everything) {
    for (const l of await sandboxes.hostLeftovers()) {
      log.warn({ link: l.name }, 'removing a VXLAN device left in the host network namespace');
      await (await sandboxes.hostNl()).deleteLink(l.name);
    }
  }

  const vnis = [...wantedVnis, ...unwanted].sort((a, b) => a - b);
  let applied = 0;
  const failures: { vni: number; err: SwarmletError }[] = [];
  for (let pass = 1; ; pass++) {
    const states = await Promise.all(vnis.map((vni) => sandboxes.read(sandboxes.get(vni) as Sandbox)));
    const { ops, noProxy } = planSandboxes(wanted, states);
    for (const vni of noProxy) log.warn({ vni }, `${vxlanName(vni)} has ARP proxy off; making it again`);
    if (ops.length === 0) break;
    if (pass > MAX_PASSES) {
      failures.push({ vni: ops[0].vni, err: internal(`the kernel does not converge after ${MAX_PASSES} passes; left: ${ops.slice(0, 5).map(describeOp).join('; ')}`) });
      break;
    }
    failures.push(...(await applyOps(sandboxes, log, ops)));
    applied += ops.length;
    if (failures.length) break;
  }
  for (const vni of unwanted) {
    await sandboxes.remove(vni).catch((err) => failures.push({ vni, err: asSwarmletError(err) }));
  }
  if (applied > 0 || unwanted.length > 0) {
    log.info({ operations: applied, networks: [...wantedVnis], removed: unwanted }, 'overlay networks reconciled');
  } else {
    log.debug({ networks: [...wantedVnis] }, 'overlay networks already as wanted');
  }
  if (failures.length) {
    const [first] = failures;
    const what = failures.map((f) => `VNI ${f.vni}: ${f.err.message}`).join('; ');
    throw new SwarmletError(first.err.kind, `overlay networks not reconciled: ${what}`, { cause: first.err });
  }
}

/** Applies the operations, one VNI's in order, the VNIs side by side; returns the VNIs that failed. */
async function applyOps(sandboxes: OverlaySandboxes, log: Logger, ops: SandboxOp[]): Promise<{ vni: number; err: SwarmletError }[]> {
  const byVni = new Map<number, SandboxOp[]>();
  for (const op of ops) byVni.set(op.vni, [...(byVni.get(op.vni) ?? []), op]);
  const results = await Promise.allSettled(
    [...byVni].map(async ([vni, list]) => {
      const sb = sandboxes.get(vni) as Sandbox;
      for (const op of list) {
        log.debug({ vni, op: describeOp(op) }, 'overlay operation');
        await sandboxes.guarded(sb, () => applyOp(sandboxes, sb, op));
      }
    }),
  );
  const failures: { vni: number; err: SwarmletError }[] = [];
  [...byVni.keys()].forEach((vni, i) => {
    const r = results[i];
    if (r.status === 'rejected') failures.push({ vni, err: asSwarmletError(r.reason) });
  });
  return failures;
}

async function applyOp(sandboxes: OverlaySandboxes, sb: Sandbox, op: SandboxOp): Promise<void> {
  const nl = sb.nl;
  switch (op.op) {
    case 'deleteLink':
      return nl.deleteLink(op.name);
    case 'createBridge':
      await nl.ensureBridge(op.name, { mtu: op.mtu });
      if (op.address) await nl.ensureAddress(op.name, op.address);
      return;
    case 'createVxlan': {
      // Made in the host's namespace, so that its UDP socket is there, then moved (kept name).
      const host = await sandboxes.hostNl();
      await host.ensureVxlan(op.name, { vni: op.vni, local: op.local, port: op.port, learning: false, proxy: true, mtu: op.mtu });
      await host.moveToNetns(op.name, sb.path);
      return;
    }
    case 'setMtu':
      return nl.setMtu(op.name, op.mtu);
    case 'setMaster':
      return nl.setMaster(op.name, op.master);
    case 'setUp':
      return nl.setUp(op.name);
    case 'addFdb':
      return nl.ensureFdb(op.dev, op.mac, { dst: op.dst, self: true });
    case 'delFdb':
      return nl.deleteFdb(op.dev, op.mac, { dst: op.dst || undefined, self: true });
    case 'addNeigh':
      return nl.ensureNeighbour(op.dev, op.ip, op.mac);
    case 'delNeigh':
      return nl.deleteNeighbour(op.dev, op.ip);
    case 'addBridgeFdb':
      return nl.ensureFdb(op.dev, op.mac, { self: false });
    case 'delBridgeFdb':
      return nl.deleteFdb(op.dev, op.mac, { self: false });
  }
}
