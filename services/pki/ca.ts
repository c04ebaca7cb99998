import * as nodeCrypto from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import 'reflect-metadata'; // tsyringe, under @peculiar/x509, needs the Reflect metadata API
import * as x509 from '@peculiar/x509';
import { invalidArgument, permissionDenied } from '../common/errors';
import { encodeBase36 } from './tokens';

x509.cryptoProvider.set(nodeCrypto.webcrypto);
const { subtle } = nodeCrypto.webcrypto;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const ROOT_CA_COMMON_NAME = 'swarmlet-root-ca';
const ROOT_CA_VALIDITY_YEARS = 20;
const DEFAULT_LEAF_VALIDITY_DAYS = 90;
/** Certificates start this far in the past so that a peer whose clock is a little behind still accepts them. */
const CLOCK_SKEW_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export type CertRole = 'manager' | 'worker' | 'operator';
const CERT_ROLES: readonly CertRole[] = ['manager', 'worker', 'operator'];
const ROLE_OU_PREFIX = 'swarmlet-';

export interface RootCAMaterial {
  certPem: string;
  keyPem: string;
  digest: string;
}

export interface PeerIdentity {
  nodeId: string;
  clusterId: string;
  role: CertRole;
  notAfter: Date;
  /** The certificate's serial number, lowercase hex. */
  serial: string;
}

export interface CertificateInfo {
  nodeId: string;
  clusterId: string;
  role: CertRole;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

export interface CertificateSubject {
  nodeId: string;
  clusterId: string;
  role: CertRole;
  /** Put into manager certificates as IP SANs, because etcd peers dial each other by address. */
  ipAddresses?: string[];
}

export interface SignOptions {
  validityDays?: number;
  now?: Date;
}

export async function createRootCA(clusterId: string, now = new Date()): Promise<RootCAMaterial> {
  requireNonEmpty('cluster id', clusterId);
  const keys = await generateKeyPair();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_CA_VALIDITY_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ O: [clusterId] }, { CN: [ROOT_CA_COMMON_NAME] }],
    keys,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = toPem(cert.rawData, 'CERTIFICATE');
  return { certPem, keyPem: await exportPrivateKey(keys.privateKey), digest: caDigest(certPem) };
}

/** SHA-256 of the CA certificate's DER, in the base36 form join tokens carry. */
export function caDigest(certPem: string): string {
  const der = parseWithNodeCrypto(certPem, (cause) => invalidArgument('The CA certificate is not a valid PEM certificate.', cause)).raw;
  return encodeBase36(nodeCrypto.createHash('sha256').update(der).digest(), 50);
}

/** The private key stays with the caller; only the CSR is meant to leave the node. */
export async function createKeyAndCSR(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  requireNonEmpty('common name', commonName);
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [commonName] }], keys, signingAlgorithm: SIGNING_ALGORITHM });
  return { keyPem: await exportPrivateKey(keys.privateKey), csrPem: toPem(csr.rawData, 'CERTIFICATE REQUEST') };
}

/** Issues a node certificate for the CSR's public key. The CSR's subject and extensions are ignored: the CA decides the identity. */
export async function signCertificate(
  ca: { certPem: string; keyPem: string },
  csrPem: string,
  subject: CertificateSubject,
  opts: SignOptions = {},
): Promise<string> {
  requireNonEmpty('node id', subject.nodeId);
  requireNonEmpty('cluster id', subject.clusterId);
  if (!CERT_ROLES.includes(subject.role)) throw invalidArgument(`"${subject.role}" is not a certificate role.`);
  const ipAddresses = subject.role === 'manager' ? subject.ipAddresses ?? [] : [];
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw invalidArgument(`"${ip}" is not an IP address.`);
  const validityDays = opts.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
  if (!(validityDays > 0)) throw invalidArgument('The certificate validity must be a positive number of days.');

  const csr = await parseVerifiedCSR(csrPem);
  const caCert = parseCACertificate(ca.certPem);
  const now = opts.now ?? new Date();
  const cert = await x509.X509CertificateGenerator.create({
    // Reuse the CA's encoded name so the issuer matches the CA's subject byte for byte.
    issuer: caCert.subjectName,
    subject: [{ O: [subject.clusterId] }, { OU: [ROLE_OU_PREFIX + subject.role] }, { CN: [subject.nodeId] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    publicKey: csr.publicKey,
    signingKey: await importPrivateKey(ca.keyPem),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: ROLE_OU_PREFIX + subject.role },
        ...ipAddresses.map((ip) => ({ type: 'ip' as const, value: ip })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return toPem(cert.rawData, 'CERTIFICATE');
}

/** The identity in a certificate a peer presented, after checking that this cluster's CA issued it and that it is valid at `now`. */
export function verifyPeerCertificate(caCertPem: string, certDerOrPem: Buffer | string, now = new Date()): PeerIdentity {
  return verifiedPeers.verify(caCertPem, certDerOrPem, now);
}

interface VerifiedPeer {
  identity: PeerIdentity;
  notBefore: Date;
}

/**
 * What verifyPeerCertificate checks, done once per certificate and CA: the identity of a
 * certificate whose signature the CA has checked is kept under the SHA-256 of its DER and of the
 * CA's certificate, and a later call only checks the validity period against `now` (a cached
 * certificate that has since expired is refused). Failures are never kept. Whether the node is
 * still in the swarm, or an operator certificate revoked, is for the caller to check on every
 * call (manager/peer-access.ts): a certificate's signature never changes, its holder's standing may.
 */
export class VerifiedPeerCertificates {
  private readonly peers = new Map<string, VerifiedPeer>();
  private readonly cas = new Map<string, { ca: nodeCrypto.X509Certificate; clusterId: string; digest: string }>();
  /** Verifications answered from the cache, and done in full: what tests and benchmarks look at. */
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 20000) {}

  verify(caCertPem: string, certDerOrPem: Buffer | string, now = new Date()): PeerIdentity {
    const ca = this.ca(caCertPem);
    const der = typeof certDerOrPem === 'string' ? pemToDer(certDerOrPem) : certDerOrPem;
    const key = `${ca.digest}:${der ? nodeCrypto.createHash('sha256').update(der).digest('base64') : ''}`;
    let peer = der ? this.peers.get(key) : undefined;
    if (peer) this.hits++;
    else {
      this.misses++;
      peer = verifyAgainst(ca.ca, ca.clusterId, certDerOrPem);
      if (der) {
        if (this.peers.size >= this.maxEntries) this.peers.clear();
        this.peers.set(key, peer);
      }
    }
    if (now < peer.notBefore) throw permissionDenied(`The certificate is not valid until ${peer.notBefore.toISOString()}.`);
    if (now > peer.identity.notAfter) throw permissionDenied(`The certificate expired on ${peer.identity.notAfter.toISOString()}.`);
    return { ...peer.identity };
  }

  private ca(caCertPem: string) {
    let entry = this.cas.get(caCertPem);
    if (!entry) {
      const ca = parseWithNodeCrypto(caCertPem, (cause) => invalidArgument('The CA certificate is not a valid PEM certificate.', cause));
      const [clusterId] = new x509.X509Certificate(ca.raw).subjectName.getField('O');
      entry = { ca, clusterId: clusterId ?? '', digest: nodeCrypto.createHash('sha256').update(ca.raw).digest('base64') };
      if (this.cas.size >= 16) this.cas.clear();
      this.cas.set(caCertPem, entry);
    }
    return entry;
  }
}

const verifiedPeers = new VerifiedPeerCertificates();

/** The signature, CA flag and cluster checks of verifyPeerCertificate (not the validity period, which depends on the time of the call). */
function verifyAgainst(ca: nodeCrypto.X509Certificate, caClusterId: string, certDerOrPem: Buffer | string): VerifiedPeer {
  const leaf = parseWithNodeCrypto(certDerOrPem, (cause) => permissionDenied('The certificate could not be parsed.', cause));
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) throw permissionDenied("The certificate was not issued by this cluster's CA.");
  if (leaf.ca) throw permissionDenied('The certificate is a CA certificate, not a node certificate.');
  const info = readVerifiedLeaf(leaf) ?? readCertificate(leaf.raw, permissionDenied);
  if (info.clusterId !== caClusterId) throw permissionDenied(`The certificate belongs to cluster ${info.clusterId}, not ${caClusterId}.`);
  return { identity: { nodeId: info.nodeId, clusterId: info.clusterId, role: info.role, notAfter: info.notAfter, serial: normalizeSerial(info.serial) }, notBefore: info.notBefore };
}

/**
 * readCertificate's answer from Node's own parse of the certificate, which is about ten times
 * cheaper than @peculiar/x509's: undefined (read it the slow way) when a name has characters
 * Node quotes or escapes, or is not the three names a node certificate has.
 */
function readVerifiedLeaf(leaf: nodeCrypto.X509Certificate): CertificateInfo | undefined {
  const subject = leaf.subject;
  if (/["\\]/.test(subject)) return undefined;
  const fields = new Map<string, string>();
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0 || fields.has(line.slice(0, eq))) return undefined;
    fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const nodeId = fields.get('CN');
  const clusterId = fields.get('O');
  const unit = fields.get('OU');
  const role = unit?.startsWith(ROLE_OU_PREFIX) ? (unit.slice(ROLE_OU_PREFIX.length) as CertRole) : undefined;
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (fields.size !== 3 || !nodeId || !clusterId || !role || !CERT_ROLES.includes(role) || isNaN(notBefore.getTime()) || isNaN(notAfter.getTime())) return undefined;
  // As @peculiar/x509 prints it: whole bytes, without the sign byte DER adds when the top bit is set.
  let serial = leaf.serialNumber.toLowerCase();
  if (serial.length % 2) serial = `0${serial}`;
  return { nodeId, clusterId, role, notBefore, notAfter, serial };
}

/** The DER of the first certificate in a PEM text, or undefined when there is none (then nothing is cached, and parsing says why). */
function pemToDer(pem: string): Buffer | undefined {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}

/** A certificate serial as swarmlet keeps it: lowercase hex without separators (openssl prints it uppercase, some tools with colons). */
export function normalizeSerial(serial: string): string {
  return serial.trim().replace(/^serial=/i, '').replace(/:/g, '').toLowerCase();
}

/** Reads a certificate without verifying it: for a node looking at its own certificate. */
export function certificateInfo(certPem: string): CertificateInfo {
  return readCertificate(certPem, invalidArgument);
}

/** Random bytes for ids, drawn from the system's CSPRNG a page at a time (one call per id was most of an id's cost). */
const ID_POOL = Buffer.alloc(4096);
let idPoolUsed = ID_POOL.length;

/** A 128-bit random identifier in base36, as swarmkit's identity.NewID. */
export function newRandomId(): string {
  if (idPoolUsed + 16 > ID_POOL.length) {
    nodeCrypto.randomFillSync(ID_POOL);
    idPoolUsed = 0;
  }
  const bytes = ID_POOL.subarray(idPoolUsed, (idPoolUsed += 16));
  return encodeBase36(bytes, 25);
}

export function newTokenSecret(): Uint8Array {
  return new Uint8Array(nodeCrypto.randomBytes(16));
}

function readCertificate(cert: string | Buffer, fail: (message: string, cause?: unknown) => Error): CertificateInfo {
  let parsed: x509.X509Certificate;
  try {
    parsed = new x509.X509Certificate(cert);
  } catch (err) {
    throw fail('The certificate could not be parsed.', err);
  }
  const name = parsed.subjectName;
  const [nodeId] = name.getField('CN');
  const [clusterId] = name.getField('O');
  const [unit] = name.getField('OU');
  const role = unit?.startsWith(ROLE_OU_PREFIX) ? (unit.slice(ROLE_OU_PREFIX.length) as CertRole) : undefined;
  if (!nodeId || !clusterId || !role || !CERT_ROLES.includes(role)) throw fail('The certificate is not a swarmlet node certificate.');
  return { nodeId, clusterId, role, notBefore: parsed.notBefore, notAfter: parsed.notAfter, serial: parsed.serialNumber };
}

function parseWithNodeCrypto(cert: string | Buffer, fail: (cause: unknown) => Error): nodeCrypto.X509Certificate {
  try {
    return new nodeCrypto.X509Certificate(cert);
  } catch (err) {
    throw fail(err);
  }
}

function parseCACertificate(certPem: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(certPem);
  } catch (err) {
    throw invalidArgument('The CA certificate is not a valid PEM certificate.', err);
  }
}

async function parseVerifiedCSR(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  const refuse = (cause?: unknown) => invalidArgument('The certificate signing request is not valid.', cause);
  let csr: x509.Pkcs10CertificateRequest;
  let signatureValid: boolean;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
    signatureValid = await csr.verify();
  } catch (err) {
    throw refuse(err);
  }
  if (!signatureValid) throw refuse();
  const algorithm = csr.publicKey.algorithm as Partial<webcrypto.EcKeyAlgorithm>;
  if (algorithm.name !== KEY_ALGORITHM.name || algorithm.namedCurve !== KEY_ALGORITHM.namedCurve) {
    throw invalidArgument('The certificate signing request must carry an ECDSA P-256 key.');
  }
  return csr;
}

async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function exportPrivateKey(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importPrivateKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  try {
    return await subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), KEY_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw invalidArgument('The CA key is not a valid ECDSA P-256 PKCS#8 key.', err);
  }
}

/** @peculiar/x509 ends PEM without a newline, which breaks the usual `leaf + ca` chain concatenation. */
function toPem(der: ArrayBuffer, tag: string): string {
  return `${x509.PemConverter.encode(der, tag)}\n`;
}

function requireNonEmpty(what: string, value: string): void {
  if (typeof value !== 'string' || value.trim() === '') throw invalidArgument(`The ${what} must not be empty.`);
}
