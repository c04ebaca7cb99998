/**
 * Tells which etcd member leads raft, as the local member sees it: the cluster benchmark asks this
 * of the host whose swarmlet leader it is about to kill, to tell apart a failover that also needs
 * a new etcd raft leader from one that does not. Uses etcd's JSON gateway
 * (POST /v3/maintenance/status), since etcdctl may not be installed.
 *
 * Run it inside a lab host's netns (lab.exec), where the daemon's etcd answers on loopback:
 *
 *   node dist/bench/etcd-status-probe.js [--port 2379]
 *
 * Prints one JSON line, {"memberId":"...","leaderId":"..."}, and exits 0; or one line on stderr and exits 1.
 */
import { request } from 'node:http';
import { SwarmletError } from '../services/common/errors';

export interface EtcdStatus {
  memberId: string;
  leaderId: string;
}

const TIMEOUT_MS = 3000;

export function readEtcdStatus(port: number): Promise<EtcdStatus> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v3/maintenance/status', method: 'POST', timeout: TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const status = JSON.parse(body) as { header?: { member_id?: string }; leader?: string };
          if (!status.header?.member_id || !status.leader) throw new Error(`unexpected answer ${body.slice(0, 200)}`);
          resolve({ memberId: status.header.member_id, leaderId: status.leader });
        } catch (err) {
          reject(new SwarmletError('Internal', `etcd status on port ${port}: ${(err as Error).message}`, { cause: err }));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => reject(new SwarmletError('Unavailable', `etcd status on port ${port}: ${err.message}`, { cause: err })));
    req.end('{}');
  });
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const port = args[0] === '--port' ? Number(args[1]) : 2379;
  readEtcdStatus(port).then(
    (status) => process.stdout.write(`${JSON.stringify(status)}\n`),
    (err: unknown) => {
      process.stderr.write(`etcd-status-probe: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
