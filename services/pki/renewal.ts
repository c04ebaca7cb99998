/**
 * When a node renews its certificate: at a point between half and four fifths of its life, as
 * swarmkit does, drawn once per node so that a swarm's nodes do not all renew together. Pure.
 */
export const RENEW_MIN_FRACTION = 0.5;
export const RENEW_MAX_FRACTION = 0.8;

export function renewalFraction(random: number): number {
  return RENEW_MIN_FRACTION + (RENEW_MAX_FRACTION - RENEW_MIN_FRACTION) * Math.min(Math.max(random, 0), 1);
}

export function planCertRenewal(cert: { notBefore: Date; notAfter: Date }, now: Date, fraction: number): boolean {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return now.getTime() >= cert.notBefore.getTime() + life * fraction;
}
