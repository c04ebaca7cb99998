import * as fs from 'node:fs';
import * as path from 'node:path';
import { internal } from '../services/common/errors';
import { TlsMaterial } from '../services/api/tls';
import { EtcdConfig, ManagerPeer } from '../services/gen/swarmlet/v1/types';

/** What a node remembers of its swarm across restarts. `state.json` is written last: it is the commit point. */
export interface NodeState {
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  advertiseAddr: string;
  /** TCP API address, IP:PORT (served only while a manager). */
  listenAddr: string;
  managers: ManagerPeer[];
  etcd: EtcdConfig;
}

export class NodeStateDir {
  constructor(readonly dataDir: string) {}

  get certDir() {
    return path.join(this.dataDir, 'certs');
  }
  get etcdDir() {
    return path.join(this.dataDir, 'etcd');
  }
  /** The runtime's per-task state: sandboxes, exit codes, output. */
  get tasksDir() {
    return path.join(this.dataDir, 'tasks');
  }
  get etcdLog() {
    return path.join(this.dataDir, 'etcd.log');
  }
  get stateFile() {
    return path.join(this.dataDir, 'state.json');
  }
  /** Managers only: the swarm's key that seals services' registry credentials (0600). */
  get sealKeyFile() {
    return path.join(this.dataDir, 'seal.key');
  }
  get certFiles() {
    return { caFile: path.join(this.certDir, 'ca.pem'), certFile: path.join(this.certDir, 'node.pem'), keyFile: path.join(this.certDir, 'node-key.pem') };
  }

  ensure(): void {
    fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
  }

  readState(): NodeState | undefined {
    if (!fs.existsSync(this.stateFile)) return undefined;
    try {
      return JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as NodeState;
    } catch (err) {
      throw internal(`${this.stateFile} is unreadable: ${(err as Error).message}`, err);
    }
  }

  writeState(state: NodeState): void {
    writeAtomic(this.stateFile, JSON.stringify(state, null, 2) + '\n', 0o600);
  }

  readTls(): TlsMaterial {
    const f = this.certFiles;
    return { caCertPem: fs.readFileSync(f.caFile, 'utf8'), certPem: fs.readFileSync(f.certFile, 'utf8'), keyPem: fs.readFileSync(f.keyFile, 'utf8') };
  }

  writeTls(tls: TlsMaterial): void {
    fs.mkdirSync(this.certDir, { recursive: true, mode: 0o700 });
    const f = this.certFiles;
    writeAtomic(f.caFile, tls.caCertPem, 0o644);
    writeAtomic(f.keyFile, tls.keyPem, 0o600);
    writeAtomic(f.certFile, tls.certPem, 0o644);
  }

  readSealKey(): Buffer | undefined {
    try {
      return fs.readFileSync(this.sealKeyFile);
    } catch {
      return undefined;
    }
  }

  /** Keeps the seal key a manager was given (or made at init); a worker keeps none. */
  writeSealKey(key: Buffer | undefined): void {
    if (!key?.length) {
      fs.rmSync(this.sealKeyFile, { force: true });
      return;
    }
    const tmp = `${this.sealKeyFile}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, key, { mode: 0o600 });
    fs.renameSync(tmp, this.sealKeyFile);
  }

  /** Forgets the swarm: state first (so a crash half-way leaves an inactive node), then certificates and etcd data. */
  wipe(): void {
    fs.rmSync(this.stateFile, { force: true });
    fs.rmSync(this.certDir, { recursive: true, force: true });
    fs.rmSync(this.sealKeyFile, { force: true });
    this.wipeEtcd();
  }

  wipeEtcd(): void {
    fs.rmSync(this.etcdDir, { recursive: true, force: true });
  }
}

function writeAtomic(file: string, content: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
}
