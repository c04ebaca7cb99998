import * as grpc from '@grpc/grpc-js';
import { permissionDenied } from '../common/errors';
import { toServiceError } from './grpc-errors';
import { CertRole, PeerIdentity, verifyPeerCertificate } from '../pki/ca';

/** The name every manager certificate carries; clients check managers against it, not against an IP. */
export const MANAGER_SERVER_NAME = 'swarmlet-manager';

export interface TlsMaterial {
  caCertPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * Server credentials that ask every client for a certificate but do not demand one: the CA
 * service lets a joining node in with a token alone. Handlers that need a peer call
 * `requirePeer`, which sees a certificate only when TLS verified it against the cluster CA.
 */
export function managerServerCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  const identity = { certificate: Buffer.from(tls.certPem + tls.caCertPem), privateKey: Buffer.from(tls.keyPem) };
  const ca = { caCertificate: Buffer.from(tls.caCertPem) };
  // grpc-js registers its watcher only after adding these listeners: answer on the next tick, or
  // the update is lost and the server drops every connection as having no credentials.
  const provider = {
    addCaCertificateListener: (l: (u: typeof ca) => void) => setImmediate(() => l(ca)),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l: (u: typeof identity) => void) => setImmediate(() => l(identity)),
    removeIdentityCertificateListener: () => undefined,
  };
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
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

/** Wraps every unary handler of a service so that it first demands a peer certificate of one of `roles`. */
export function requireRoles<S extends object>(service: S, caCertPem: string, roles: CertRole[]): S {
  const wrapped: Record<string, grpc.handleUnaryCall<unknown, unknown>> = {};
  for (const [name, handler] of Object.entries(service as Record<string, grpc.handleUnaryCall<unknown, unknown>>)) {
    wrapped[name] = (call, callback) => {
      try {
        requirePeer(call, caCertPem, roles);
      } catch (err) {
        return callback(toServiceError(err));
      }
      handler(call, callback);
    };
  }
  return wrapped as S;
}
