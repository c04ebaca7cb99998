import * as http from 'node:http';
import { formatHostPort } from '../common/addr';
import { asSwarmletError, failedPrecondition } from '../common/errors';
import { Logger, componentLogger } from '../common/logger';
import { metricsRegistry } from './metrics';

export interface MetricsServerOptions {
  log: Logger;
  /** Brings the gauges that are read on a scrape up to date (the cluster's counts, the tasks' cgroups). */
  collect: () => Promise<void>;
}

/**
 * Serves the daemon's metrics in Prometheus's text format at GET /metrics (HEAD too): 404 for any
 * other path, 405 for any other method. `listen` binds (again, when the address changes).
 */
export class MetricsServer {
  private server?: http.Server;
  private bound?: string;
  private readonly log: Logger;

  constructor(private readonly opts: MetricsServerOptions) {
    this.log = componentLogger(opts.log, 'metrics');
  }

  /** Where it listens, IP:PORT (undefined before `listen`). */
  get address(): string | undefined {
    return this.bound;
  }

  async listen(host: string, port: number): Promise<void> {
    const want = formatHostPort(host, port);
    if (this.bound === want) return;
    await this.close();
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(failedPrecondition(`cannot serve metrics at ${want}: ${err.message}`, err)));
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.bound = want;
    this.log.info({ addr: want }, 'serving metrics at /metrics');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = this.bound = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return reply(res, 404, 'not found: metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(res, 405, `method ${req.method} not allowed: use GET\n`);
    }
    try {
      await this.opts.collect();
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'could not read some metrics; serving the others');
    }
    const body = await metricsRegistry.metrics();
    res.setHeader('Content-Type', metricsRegistry.contentType);
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function reply(res: http.ServerResponse, code: number, text: string): void {
  res.statusCode = code;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(text);
}
