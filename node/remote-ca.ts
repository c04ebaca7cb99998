import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { permissionDenied, unavailable } from '../services/common/errors';
import { caDigest } from '../services/pki/ca';

/**
 * Fetches a manager's root CA from its TLS handshake, without trusting it yet, and pins it to
 * the digest in the join token: a joining node sends nothing to a manager of another swarm.
 * Also returns the local address the connection left from, the natural advertise address.
 */
export function fetchPinnedRootCA(host: string, port: number, expectedDigest: string, timeoutMs = 5000): Promise<{ caCertPem: string; localAddress: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: 'swarmlet-manager' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unavailable(`could not reach a manager at ${host}:${port}: no answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(unavailable(`could not reach a manager at ${host}:${port}: ${err.message}`, err));
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const localAddress = socket.localAddress ?? '';
      let cert = socket.getPeerCertificate(true);
      socket.end();
      // The manager sends its chain, root last; the root is the certificate that issued itself.
      for (let i = 0; i < 5 && cert?.issuerCertificate && cert.issuerCertificate !== cert; i++) cert = cert.issuerCertificate;
      if (!cert?.raw) return reject(permissionDenied(`${host}:${port} sent no certificate; is it a swarmlet manager?`));
      const caCertPem = new X509Certificate(cert.raw).toString();
      const digest = caDigest(caCertPem);
      if (digest !== expectedDigest) {
        return reject(permissionDenied(`the manager at ${host}:${port} belongs to another swarm: its CA does not match the join token (expected ${expectedDigest.slice(0, 12)}…, got ${digest.slice(0, 12)}…)`));
      }
      resolve({ caCertPem, localAddress });
    });
  });
}
