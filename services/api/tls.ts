import * as grpc from '@grpc/grpc-js';
import { permissionDenied } from '../common/errors';
import { endServerStream, toServiceError } from './grpc-errors';
import { CertRole, PeerIdentity, verifyPeerCertificate } from '../pki/ca';

/** The name every manager certificate carries; clients check managers against it, not against an IP. */
export const MANAGER_SERVER_NAME = 'swarmlet-manager';

export interface TlsMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * The certificate a manager serves with. Renewing it takes effect for new connections at once:
 * grpc-js listens for updates.
 */
export class CertificateSource {
  private readonly caListeners = new Set<(u: { caCertificate: Buffer }) => void>();
  private readonly identityListeners = new Set<(u: { certificate: Buffer; privateKey: Buffer }) => void>();

  constructor(private tls: TlsMaterial) {}

  set(tls: TlsMaterial): void {
    this.tls = tls;
    for (const l of this.caListeners) l(this.ca());
    for (const l of this.identityListeners) l(this.identity());
  }

  // grpc-js registers its watcher only after adding these listeners: answer on the next tick, or
  // the first update is lost and the server drops every connection as having no credentials.
  addCaCertificateListener(l: (u: { caCertificate: Buffer }) => void): void {
    this.caListeners.add(l);
    setImmediate(() => l(this.ca()));
  }
  removeCaCertificateListener(l: (u: { caCertificate: Buffer }) => void): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: (u: { certificate: Buffer; privateKey: Buffer }) => void): void {
    this.identityListeners.add(l);
    setImmediate(() => l(this.identity()));
  }
  removeIdentityCertificateListener(l: (u: { certificate: Buffer; privateKey: Buffer }) => void): void {
    this.identityListeners.delete(l);
  }

  get caCertPem(): string {
    return this.tls.caCertPem;
  }

  /** The certificate, key and CA as they are now. */
  get material(): TlsMaterial {
    return this.tls;
  }

  private ca() {
    return { caCertificate: Buffer.from(this.tls.caCertPem) };
  }
  private identity() {
    return { certificate: Buffer.from(this.tls.certPem + this.tls.caCertPem), privateKey: Buffer.from(this.tls.keyPem) };
  }
}

/**
 * Server credentials that ask every client for a certificate but do not demand one: the CA
 * service lets a joining node in with a token alone. Handlers that need a peer call
 * `requirePeer`, which sees a certificate only when TLS verified it against the cluster CA.
 */
export function managerServerCredentials(source: CertificateSource): grpc.ServerCredentials {
  return grpc.experimental.createCertificateProviderServerCredentials(source, source, false);
}

/** Client credentials for talking to a manager: the cluster CA as the only root, our node certificate if we have one. */
export function managerClientCredentials(caCertPem: string, cert?: { certPem: string; keyPem: string }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(caCertPem),
    cert ? Buffer.from(cert.keyPem) : null,
    cert ? Buffer.from(cert.certPem) : null,
  );
}

export const managerChannelOptions: grpc.ChannelOptions = {
  // Nothing reads channelz (see NODE_SERVER_OPTIONS).
  'grpc.enable_channelz': 0,
  'grpc.ssl_target_name_override': MANAGER_SERVER_NAME,
  'grpc.default_authority': MANAGER_SERVER_NAME,
  'grpc.keepalive_time_ms': 10000,
  'grpc.keepalive_timeout_ms': 5000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
};

/** The verified identity of the caller, or PermissionDenied when it has none or the wrong role. */
export function requirePeer(call: { getAuthContext(): { sslPeerCertificate?: { raw: Buffer } } }, caCertPem: string, roles: CertRole[]): PeerIdentity {
  const raw = call.getAuthContext().sslPeerCertificate?.raw;
  if (!raw) throw permissionDenied('a certificate issued by this cluster is required');
  const peer = verifyPeerCertificate(caCertPem, raw);
  if (!roles.includes(peer.role)) throw permissionDenied(`a ${roles.join(' or ')} certificate is required; this one is for a ${peer.role}`);
  return peer;
}

/** A further check of a caller TLS has verified (does its node still exist, is it revoked): rejects to refuse the call. */
export type PeerCheck = (peer: PeerIdentity) => Promise<void>;

/**
 * Wraps every handler of a service (unary or server-streaming) so that it first demands a peer
 * certificate of one of `roles`, and then, if given, that `check` lets that peer in.
 */
export function requireRoles<S extends object>(service: S, caCertPem: string, roles: CertRole[], check?: PeerCheck): S {
  type Handler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;
  const wrapped: Record<string, Handler> = {};
  for (const [name, handler] of Object.entries(service as Record<string, Handler>)) {
    wrapped[name] = (call, callback) => {
      let peer: PeerIdentity;
      try {
        peer = requirePeer(call, caCertPem, roles);
      } catch (err) {
        return failCall(call, callback, err);
      }
      if (!check) return handler(call, callback);
      check(peer).then(
        () => handler(call, callback),
        (err) => failCall(call, callback, err),
      );
    };
  }
  return wrapped as S;
}

/** Ends a unary call (through its callback) or a server stream (endServerStream: never by destroy(), which sends no status) with an error's status. */
export function failCall(call: grpc.ServerWritableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown> | undefined, err: unknown): void {
  const status = toServiceError(err);
  if (typeof callback === 'function') return callback(status);
  endServerStream(call, Object.assign(new Error(status.details), status));
}

/** Client credentials for calling one particular node: its certificate must be the cluster's and name that node. */
export function nodeClientCredentials(tls: TlsMaterial, nodeId: string): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(Buffer.from(tls.caCertPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem), {
    checkServerIdentity: (_host, cert) => (cert.subject?.CN === nodeId ? undefined : new Error(`expected node ${nodeId}, reached ${cert.subject?.CN}`)),
  });
}
