import { createHash, createPrivateKey, createPublicKey, webcrypto as crypto, X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { SwarmletError } from '../../services/common/errors';
import {
  CertRole,
  RootCAMaterial,
  caDigest,
  certificateInfo,
  createKeyAndCSR,
  createRootCA,
  newRandomId,
  newTokenSecret,
  signCertificate,
  verifyPeerCertificate,
  VerifiedPeerCertificates,
} from '../../services/pki/ca';
// After ca.ts, which installs the Reflect metadata shim @peculiar/x509 needs.
import * as x509 from '@peculiar/x509';
import { encodeBase36, formatJoinToken, parseJoinToken } from '../../services/pki/tokens';
import { rejection } from '../support/rejection';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const CLUSTER = 'cluster0000000000000000001';

interface NodeMaterial {
  keyPem: string;
  certPem: string;
}

async function issue(ca: RootCAMaterial, nodeId: string, role: CertRole, extra: { ipAddresses?: string[]; now?: Date; validityDays?: number } = {}): Promise<NodeMaterial> {
  const { keyPem, csrPem } = await createKeyAndCSR(nodeId);
  const certPem = await signCertificate(ca, csrPem, { nodeId, clusterId: CLUSTER, role, ipAddresses: extra.ipAddresses }, extra);
  return { keyPem, certPem };
}

function errorOf(fn: () => unknown): SwarmletError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SwarmletError);
    return err as SwarmletError;
  }
  throw new Error('expected a SwarmletError');
}


let ca: RootCAMaterial;
let otherCA: RootCAMaterial;
let manager: NodeMaterial;
let worker: NodeMaterial;

beforeAll(async () => {
  [ca, otherCA] = await Promise.all([createRootCA(CLUSTER), createRootCA('cluster0000000000000000002')]);
  manager = await issue(ca, 'manager1', 'manager', { ipAddresses: ['127.0.0.1', '10.0.0.7', 'fd00::7'] });
  worker = await issue(ca, 'worker1', 'worker');
});

describe('createRootCA', () => {
  test('is a self-signed CA named for the cluster, valid for 20 years from an hour ago', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const root = await createRootCA(CLUSTER, now);
    const cert = new X509Certificate(root.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe(`O=${CLUSTER}\nCN=swarmlet-root-ca`);
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(new Date(cert.validFrom).getTime()).toBe(now.getTime() - HOUR);
    expect(new Date(cert.validTo).toISOString()).toBe('2050-01-01T00:00:00.000Z');
    expect(cert.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });

    const parsed = new x509.X509Certificate(root.certPem);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, critical: true });
    expect(parsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(parsed.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
  });

  test('every PEM ends with a newline, so that leaf + CA concatenates into a valid chain', async () => {
    const { csrPem } = await createKeyAndCSR('n');
    for (const pem of [ca.certPem, ca.keyPem, worker.certPem, worker.keyPem, csrPem]) expect(pem).toMatch(/-----\n$/);
  });

  test('the key is PKCS#8 and belongs to the certificate', () => {
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const publicFromKey = createPublicKey(createPrivateKey(ca.keyPem)).export({ format: 'der', type: 'spki' });
    expect(publicFromKey.equals(new X509Certificate(ca.certPem).publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
  });
});

describe('caDigest', () => {
  test('is the 50-character base36 SHA-256 of the DER, stable across calls', () => {
    const der = new X509Certificate(ca.certPem).raw;
    const expected = encodeBase36(createHash('sha256').update(der).digest(), 50);
    expect(ca.digest).toBe(expected);
    expect(caDigest(ca.certPem)).toBe(expected);
    expect(caDigest(ca.certPem)).toMatch(/^[0-9a-z]{50}$/);
  });

  test('differs between CAs and fits a join token', () => {
    expect(otherCA.digest).not.toBe(ca.digest);
    expect(parseJoinToken(formatJoinToken(ca.digest, newTokenSecret())).caDigest).toBe(ca.digest);
  });

  test('refuses something that is not a certificate', () => {
    expect(errorOf(() => caDigest('nonsense')).kind).toBe('InvalidArgument');
  });
});

describe('signCertificate', () => {
  test.each<[CertRole, string[] | undefined, string]>([
    ['manager', ['127.0.0.1', '10.0.0.7', 'fd00::7'], 'DNS:swarmlet-manager, IP Address:127.0.0.1, IP Address:10.0.0.7, IP Address:FD00:0:0:0:0:0:0:7'],
    ['manager', undefined, 'DNS:swarmlet-manager'],
    ['worker', ['10.0.0.8'], 'DNS:swarmlet-worker'],
    ['operator', undefined, 'DNS:swarmlet-operator'],
  ])('a %s certificate with IPs %p carries %s', async (role, ipAddresses, subjectAltName) => {
    const node = await issue(ca, 'node7', role, { ipAddresses });
    const cert = new X509Certificate(node.certPem);
    expect(cert.subjectAltName?.toUpperCase()).toBe(subjectAltName.toUpperCase());
    expect(cert.subject).toBe(`O=${CLUSTER}\nOU=swarmlet-${role}\nCN=node7`);
    expect(verifyPeerCertificate(ca.certPem, node.certPem)).toEqual({ nodeId: 'node7', clusterId: CLUSTER, role, notAfter: expect.any(Date), serial: cert.serialNumber.toLowerCase() });
  });

  test('issues a leaf for the CSR key, for both TLS ends, valid 90 days from an hour ago', async () => {
    const now = new Date('2031-06-01T12:00:00Z');
    const { keyPem, csrPem } = await createKeyAndCSR('whatever-the-node-asks-for');
    const certPem = await signCertificate(ca, csrPem, { nodeId: 'node8', clusterId: CLUSTER, role: 'worker' }, { now });
    const cert = new X509Certificate(certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);

    const parsed = new x509.X509Certificate(certPem);
    expect(parsed.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false, critical: true });
    expect(parsed.getExtension(x509.KeyUsagesExtension)?.usages).toBe(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);

    expect(certificateInfo(certPem)).toEqual({
      nodeId: 'node8',
      clusterId: CLUSTER,
      role: 'worker',
      notBefore: new Date(now.getTime() - HOUR),
      notAfter: new Date(now.getTime() + 90 * DAY),
      serial: expect.stringMatching(/^[0-9a-f]+$/),
    });
  });

  test('serials are random', async () => {
    const serials = await Promise.all([1, 2, 3].map(async () => certificateInfo((await issue(ca, 'n', 'worker')).certPem).serial));
    expect(new Set(serials).size).toBe(3);
  });

  test('a tampered CSR is refused', async () => {
    const { csrPem } = await createKeyAndCSR('node-honest');
    const der = Buffer.from(x509.PemConverter.decodeFirst(csrPem));
    const at = der.indexOf('node-honest');
    der.write('node-forged', at);
    const tampered = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    const err = await rejection(signCertificate(ca, tampered, { nodeId: 'n', clusterId: CLUSTER, role: 'manager' }));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toMatch(/certificate signing request is not valid/);
  });

  test('a CSR for a key other than ECDSA P-256 is refused', async () => {
    const algorithm = { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' };
    const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=n', keys, signingAlgorithm: algorithm });
    const err = await rejection(signCertificate(ca, csr.toString('pem'), { nodeId: 'n', clusterId: CLUSTER, role: 'worker' }));
    expect(err.message).toMatch(/must carry an ECDSA P-256 key/);
  });

  test.each([
    ['garbage instead of a CSR', 'not a csr', { nodeId: 'n', clusterId: CLUSTER, role: 'worker' as const }, /certificate signing request is not valid/],
    ['an empty node id', undefined, { nodeId: '', clusterId: CLUSTER, role: 'worker' as const }, /node id must not be empty/],
    ['an unknown role', undefined, { nodeId: 'n', clusterId: CLUSTER, role: 'admin' as CertRole }, /"admin" is not a certificate role/],
    ['a bad IP address', undefined, { nodeId: 'n', clusterId: CLUSTER, role: 'manager' as const, ipAddresses: ['10.0.0.300'] }, /"10.0.0.300" is not an IP address/],
  ])('%s is refused', async (_name, csr, subject, message) => {
    const csrPem = csr ?? (await createKeyAndCSR('n')).csrPem;
    const err = await rejection(signCertificate(ca, csrPem, subject));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toMatch(message);
  });
});

describe('verifyPeerCertificate', () => {
  test('accepts DER and PEM from this cluster', () => {
    const der = new X509Certificate(worker.certPem).raw;
    expect(verifyPeerCertificate(ca.certPem, der)).toEqual(verifyPeerCertificate(ca.certPem, worker.certPem));
    expect(verifyPeerCertificate(ca.certPem, der)).toMatchObject({ nodeId: 'worker1', clusterId: CLUSTER, role: 'worker' });
  });

  test('refuses a certificate from another CA, even one with the same names', async () => {
    const impostorCA = await createRootCA(CLUSTER);
    for (const foreign of [await issue(otherCA, 'worker1', 'worker'), await issue(impostorCA, 'worker1', 'worker')]) {
      const err = errorOf(() => verifyPeerCertificate(ca.certPem, foreign.certPem));
      expect(err.kind).toBe('PermissionDenied');
      expect(err.message).toBe("The certificate was not issued by this cluster's CA.");
    }
  });

  test('refuses an expired certificate', async () => {
    const expired = await issue(ca, 'old', 'worker', { now: new Date(Date.now() - 3 * DAY), validityDays: 1 });
    const err = errorOf(() => verifyPeerCertificate(ca.certPem, expired.certPem));
    expect(err.kind).toBe('PermissionDenied');
    expect(err.message).toMatch(/^The certificate expired on \d{4}-\d\d-\d\dT/);
  });

  test('refuses a certificate that is not valid yet', () => {
    const err = errorOf(() => verifyPeerCertificate(ca.certPem, worker.certPem, new Date(Date.now() - DAY)));
    expect(err.kind).toBe('PermissionDenied');
    expect(err.message).toMatch(/^The certificate is not valid until /);
  });

  test.each([
    ['the CA certificate itself', () => ca.certPem, /is a CA certificate/],
    ['garbage', () => Buffer.from('garbage'), /could not be parsed/],
  ])('refuses %s', (_name, cert, message) => {
    const err = errorOf(() => verifyPeerCertificate(ca.certPem, cert()));
    expect(err.kind).toBe('PermissionDenied');
    expect(err.message).toMatch(message);
  });
});

describe('VerifiedPeerCertificates', () => {
  test('checks a certificate in full once per CA, and its validity period on every call', async () => {
    const cache = new VerifiedPeerCertificates();
    const der = new X509Certificate(worker.certPem).raw;
    const first = cache.verify(ca.certPem, der);
    expect(cache.verify(ca.certPem, worker.certPem)).toEqual(first);
    expect(cache.verify(ca.certPem, Buffer.from(der))).toEqual(first);
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 1 });
    // Cached, and still refused outside its validity period.
    expect(errorOf(() => cache.verify(ca.certPem, der, new Date(Date.now() - DAY))).message).toMatch(/^The certificate is not valid until /);
    expect(errorOf(() => cache.verify(ca.certPem, der, new Date(Date.now() + 200 * DAY))).message).toMatch(/^The certificate expired on /);
    // Against another CA it is checked again, and refused.
    const err = errorOf(() => cache.verify(otherCA.certPem, der));
    expect(err.message).toBe("The certificate was not issued by this cluster's CA.");
    expect(cache.misses).toBe(2);
  });

  test('reads the same identity as certificateInfo, whatever the serial (a top bit set, a short one)', async () => {
    const certs = [worker, manager, ...(await Promise.all(Array.from({ length: 24 }, (_, i) => issue(ca, `n${i}`, i % 2 ? 'worker' : 'manager'))))];
    for (const { certPem } of certs) {
      const info = certificateInfo(certPem);
      expect(new VerifiedPeerCertificates().verify(ca.certPem, certPem)).toEqual({ nodeId: info.nodeId, clusterId: info.clusterId, role: info.role, notAfter: info.notAfter, serial: info.serial.toLowerCase() });
    }
  });

  test('keeps no failure: a refused certificate is refused every time', () => {
    const cache = new VerifiedPeerCertificates();
    for (let i = 0; i < 2; i++) expect(errorOf(() => cache.verify(ca.certPem, ca.certPem)).message).toMatch(/is a CA certificate/);
    expect(cache.hits).toBe(0);
  });

  test('forgets everything once full, and still answers', () => {
    const cache = new VerifiedPeerCertificates(1);
    const a = cache.verify(ca.certPem, worker.certPem);
    cache.verify(ca.certPem, manager.certPem);
    expect(cache.verify(ca.certPem, worker.certPem)).toEqual(a);
    expect(cache.misses).toBe(3);
  });
});

describe('certificateInfo', () => {
  test('refuses a certificate that is not a node certificate', () => {
    const err = errorOf(() => certificateInfo(ca.certPem));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toMatch(/not a swarmlet node certificate/);
  });
});

describe('random material', () => {
  test('ids are 25 base36 characters and distinct', () => {
    const ids = Array.from({ length: 50 }, newRandomId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{25}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('token secrets are 16 bytes', () => {
    const secret = newTokenSecret();
    expect(secret).toBeInstanceOf(Uint8Array);
    expect(secret).toHaveLength(16);
  });
});

describe('Node TLS with these certificates', () => {
  interface Handshake {
    serverAuthorized: boolean;
    serverError?: string;
    clientAuthorized: boolean;
    clientError?: string;
    peerNodeId?: string;
  }

  // Typed as Error, but Node sets a string code such as 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'.
  const errorCode = (error: unknown) => (error ? String(error) : undefined);

  /** A mutual TLS handshake against a manager; the server records instead of rejecting so the test sees both verdicts. */
  async function handshake(client: NodeMaterial, expectedServerName = 'swarmlet-manager'): Promise<Handshake> {
    const server = tls.createServer({
      key: manager.keyPem,
      cert: manager.certPem + ca.certPem,
      ca: [ca.certPem],
      requestCert: true,
      rejectUnauthorized: false,
    });
    const serverSide = new Promise<Pick<Handshake, 'serverAuthorized' | 'serverError' | 'peerNodeId'>>((resolve) => {
      server.once('secureConnection', (socket) => {
        resolve({
          serverAuthorized: socket.authorized,
          serverError: errorCode(socket.authorizationError),
          peerNodeId: socket.getPeerCertificate().subject?.CN as string | undefined,
        });
        socket.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        ca: [ca.certPem],
        key: client.keyPem,
        cert: client.certPem,
        servername: 'swarmlet-manager',
        checkServerIdentity: (_host, cert) => tls.checkServerIdentity(expectedServerName, cert),
        rejectUnauthorized: false,
      });
      const clientSide = await new Promise<Pick<Handshake, 'clientAuthorized' | 'clientError'>>((resolve, reject) => {
        socket.once('secureConnect', () => resolve({ clientAuthorized: socket.authorized, clientError: errorCode(socket.authorizationError) }));
        socket.once('error', reject);
      });
      const result = { ...clientSide, ...(await serverSide) };
      socket.destroy();
      return result;
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  }

  test('a worker and a manager authorize each other', async () => {
    expect(await handshake(worker)).toEqual({ serverAuthorized: true, serverError: undefined, clientAuthorized: true, clientError: undefined, peerNodeId: 'worker1' });
  });

  test("the manager refuses a client certificate from another cluster's CA", async () => {
    const result = await handshake(await issue(otherCA, 'intruder', 'worker'));
    expect(result.clientAuthorized).toBe(true);
    expect(result.serverAuthorized).toBe(false);
    expect(result.serverError).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  test('a client expecting another name refuses the manager', async () => {
    const result = await handshake(worker, 'swarmlet-worker');
    expect(result.clientAuthorized).toBe(false);
    expect(result.clientError).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test.each([
    ['127.0.0.1', true],
    ['fd00::7', true],
    ['swarmlet-manager', true],
    ['10.0.0.8', false],
    ['swarmlet-worker', false],
  ])('the manager certificate is good for %s: %p', (host, good) => {
    const peer = new X509Certificate(manager.certPem).toLegacyObject();
    expect(tls.checkServerIdentity(host, peer) === undefined).toBe(good);
  });
});
