import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatHostPort } from '../../services/common/addr';
import { asSwarmletError, failedPrecondition } from '../../services/common/errors';
import { Logger, componentLogger } from '../../services/common/logger';
import { CertificateSource } from '../../services/api/tls';
import { PeerIdentity, verifyPeerCertificate } from '../../services/pki/ca';
import { DashboardTokens } from '../store/dashboard-token';
import { DashboardFeed } from './dashboard-feed';

export interface DashboardServerOptions {
  log: Logger;
  feed: DashboardFeed;
  /** The swarm's dashboard token: as it is now (undefined until `swarmlet dashboard` made one), and a watch of its changes. */
  tokens: Pick<DashboardTokens, 'current' | 'watch'>;
  /** The node's swarm certificate (renewals replace it). */
  certificate: CertificateSource;
  /**
   * Lets in a client certificate of the swarm's CA (TLS has verified it) as well as the token:
   * resolves if this caller may see the dashboard, rejects if not. Without it, only the token.
   */
  checkPeer?: (peer: PeerIdentity) => Promise<void>;
}

/** The page's files, kept in the source tree (bin/swarmlet runs dist/, which tsc fills with the compiled code alone). */
export const STATIC_DIR = [path.join(__dirname, 'static'), path.resolve(__dirname, '../../../manager/dashboard/static')].find((d) => fs.existsSync(d)) ?? path.join(__dirname, 'static');

const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
};

/** The page runs only its own files and talks only to its own origin; no framing, no referrer. */
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Strict-Transport-Security': 'max-age=31536000',
};

const UNAUTHORIZED = { message: 'unauthorized: this needs the dashboard token (run "swarmlet dashboard" on a manager)' };

/** An SSE comment this often keeps idle connections (and proxies) open. */
const KEEPALIVE_MS = 15000;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether `header` (an Authorization header) carries `token`, compared in constant time. */
export function bearerMatches(header: string | undefined, token: string | undefined): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m || !token) return false;
  return timingSafeEqual(digest(m[1]), digest(token));
}

/**
 * The web dashboard over HTTPS, with the node's swarm certificate: the page's static files to
 * anyone, and, to a request that carries the swarm's dashboard token (`Authorization: Bearer`) or
 * a client certificate `checkPeer` lets in, GET /api/view (the view as JSON) and GET /api/stream
 * (server-sent events: the view at once and again after every change; a stream opened with a token
 * ends when the token is rotated). Without either, these answer 401 and say nothing of the swarm.
 */
export class DashboardServer {
  private app?: FastifyInstance;
  private bound?: string;
  private readonly log: Logger;
  private readonly files: Map<string, Buffer>;
  /** The open streams, each with its end and the Authorization header it was opened with (none: by a client certificate). */
  private readonly streams = new Map<http.ServerResponse, { header?: string; end: () => void }>();
  private unwatchToken?: () => Promise<void>;
  private readonly onIdentity = () => (this.app?.server as tls.Server | undefined)?.setSecureContext(this.secureContext());

  constructor(private readonly opts: DashboardServerOptions) {
    this.log = componentLogger(opts.log, 'dashboard');
    this.files = new Map(Object.values(STATIC_FILES).map((f) => [f.file, fs.readFileSync(path.join(STATIC_DIR, f.file))]));
  }

  /** Where it listens, IP:PORT (undefined before `listen`). */
  get address(): string | undefined {
    return this.bound;
  }

  /** Listens at host:port (port 0: any free one, which `address` then names); once per server (a new role makes a new one). */
  async listen(host: string, port: number): Promise<void> {
    if (this.app) throw failedPrecondition(`the dashboard is served at ${this.bound} already`);
    const want = formatHostPort(host, port);
    // A client certificate is asked for, never demanded: a browser comes with the token instead.
    const app = Fastify({ https: { ...this.secureContext(), requestCert: Boolean(this.opts.checkPeer), rejectUnauthorized: false }, logger: false, forceCloseConnections: true });
    this.routes(app);
    try {
      await app.listen({ host, port });
    } catch (err) {
      await app.close().catch(() => undefined);
      throw failedPrecondition(`cannot serve the dashboard at ${want}: ${(err as Error).message}`, err);
    }
    this.app = app;
    this.bound = formatHostPort(host, (app.server.address() as { port: number }).port);
    // A rotated token ends the streams opened with the old one at once.
    this.unwatchToken = await this.opts.tokens.watch(() => void this.endStale()).catch((err) => {
      this.log.warn({ err: asSwarmletError(err).message }, 'cannot watch the dashboard token: open pages keep their stream after a rotation until it ends');
      return undefined;
    });
    this.opts.certificate.addIdentityCertificateListener(this.onIdentity);
    this.opts.feed.start();
    this.log.info({ addr: this.bound }, `serving the dashboard at https://${this.bound}/`);
  }

  /** The node's certificate (with the CA, so that a client can build the chain), and the CA that client certificates must chain to. */
  private secureContext(): tls.SecureContextOptions {
    const { certPem, caCertPem, keyPem } = this.opts.certificate.material;
    return { cert: certPem + caCertPem, key: keyPem, ca: caCertPem };
  }

  async close(): Promise<void> {
    const app = this.app;
    this.app = this.bound = undefined;
    if (!app) return;
    this.opts.certificate.removeIdentityCertificateListener(this.onIdentity);
    await this.unwatchToken?.();
    this.unwatchToken = undefined;
    for (const s of [...this.streams.values()]) s.end();
    await this.opts.feed.stop();
    await app.close();
  }

  private routes(app: FastifyInstance): void {
    app.addHook('onSend', async (_req, reply) => {
      reply.headers(SECURITY_HEADERS);
    });
    for (const [url, f] of Object.entries(STATIC_FILES)) {
      app.get(url, async (_req, reply) => reply.type(f.type).header('Cache-Control', 'no-cache').send(this.files.get(f.file)));
    }
    app.get('/api/view', async (req, reply) => {
      if (!(await this.authorized(req, reply))) return reply;
      const view = await this.opts.feed.view();
      return reply.header('Cache-Control', 'no-store').send(view);
    });
    app.get('/api/stream', async (req, reply) => {
      const by = await this.authorized(req, reply);
      if (!by) return reply;
      this.stream(reply, by === 'token' ? req.headers.authorization : undefined);
      return reply;
    });
    app.setErrorHandler(async (err, _req, reply) => {
      // Fastify's own refusals (a malformed request) keep their 4xx; a failed read of the cluster is 503, anything else 500.
      const status = (err as { statusCode?: number }).statusCode;
      const e = asSwarmletError(err);
      if (status && status < 500) return reply.code(status).send({ message: e.message });
      this.log.warn({ err: e.message }, 'a dashboard request failed');
      return e.kind === 'Unavailable' ? reply.code(503).send({ message: e.message }) : reply.code(500).send({ message: "internal error; see the manager's log" });
    });
  }

  /** Whether the request carries the token (or a client certificate let in); if not, the reply is a 401 that says nothing of the swarm. */
  private async authorized(req: FastifyRequest, reply: FastifyReply): Promise<'token' | 'certificate' | undefined> {
    if (bearerMatches(req.headers.authorization, await this.opts.tokens.current())) return 'token';
    if (await this.peerAllowed(req.raw.socket as tls.TLSSocket)) return 'certificate';
    reply.code(401).header('WWW-Authenticate', 'Bearer realm="swarmlet dashboard"').header('Cache-Control', 'no-store').send(UNAUTHORIZED);
    return undefined;
  }

  /** Whether TLS verified a client certificate of the swarm's CA that `checkPeer` lets in. */
  private async peerAllowed(socket: tls.TLSSocket): Promise<boolean> {
    if (!this.opts.checkPeer || !socket.authorized) return false;
    try {
      const peer = verifyPeerCertificate(this.opts.certificate.caCertPem, socket.getPeerCertificate().raw);
      await this.opts.checkPeer(peer);
      return true;
    } catch {
      return false;
    }
  }

  /** The view as server-sent events: at once, then after every change, until the client goes, the server closes or the token changes. */
  private stream(reply: FastifyReply, header: string | undefined): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      clearInterval(keepalive);
      this.streams.delete(res);
      res.end();
    };
    const unsubscribe = this.opts.feed.subscribe((json) => res.write(`event: view\ndata: ${json}\n\n`));
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    this.streams.set(res, { header, end });
    res.on('close', end);
  }

  /** Ends the streams whose token is no longer the swarm's. */
  private async endStale(): Promise<void> {
    try {
      const token = await this.opts.tokens.current();
      for (const s of [...this.streams.values()]) if (s.header !== undefined && !bearerMatches(s.header, token)) s.end();
    } catch (err) {
      this.log.warn({ err: asSwarmletError(err).message }, 'could not read the dashboard token; open streams stay');
    }
  }
}
