/**
 * Which tasks use the embedded DNS, and the resolv.conf they get. Pure: both runtimes (exec, oci)
 * and the resolver itself use these.
 */

/** The embedded resolver's address inside every task namespace that uses it (docker's). */
export const EMBEDDED_DNS_ADDRESS = '127.0.0.11';
export const EMBEDDED_DNS_PORT = 53;

/** The name of the built-in bridge network, and of the routing mesh's network: neither gets names. */
const BUILTIN_BRIDGE = 'bridge';
const INGRESS = 'ingress';

/**
 * A task uses the embedded DNS when it is on an overlay (the ingress network aside) or on a
 * user-defined bridge network (not the built-in `bridge`).
 */
export function usesEmbeddedDns(attachments: { driver: string; networkName: string }[]): boolean {
  return attachments.some(
    (a) => (a.driver === 'overlay' && a.networkName !== INGRESS) || (a.driver === 'bridge' && a.networkName !== BUILTIN_BRIDGE),
  );
}

/** The networks whose names a task may ask for (the same rule, per attachment). */
export function dnsNetworkIds(attachments: { driver: string; networkName: string; networkId: string }[]): string[] {
  return attachments.filter((a) => usesEmbeddedDns([a])).map((a) => a.networkId);
}

/** /etc/resolv.conf of a task that uses the embedded DNS. ndots:0: every name goes to the resolver as asked. */
export function renderResolvConf(): string {
  return `nameserver ${EMBEDDED_DNS_ADDRESS}\noptions ndots:0\n`;
}

/** The `nameserver` addresses of a resolv.conf text, in order. */
export function parseResolvConfNameservers(text: string): string[] {
  return text.split('\n').flatMap((line) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    return m ? [m[1].replace(/%.*$/, '')] : [];
  });
}
