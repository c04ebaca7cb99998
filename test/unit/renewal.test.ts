import { planCertRenewal, renewalFraction } from '../../services/pki/renewal';

const day = 24 * 3600 * 1000;
const cert = { notBefore: new Date(0), notAfter: new Date(90 * day) };

test.each([
  [0, 0.5],
  [1, 0.8],
  [0.5, 0.65],
  [-3, 0.5],
  [7, 0.8],
])('random %d renews at %d of the life', (random, fraction) => expect(renewalFraction(random)).toBeCloseTo(fraction));

test.each([
  [10 * day, 0.5, false],
  [44 * day, 0.5, false],
  [45 * day, 0.5, true],
  [71 * day, 0.8, false],
  [72 * day, 0.8, true],
  [100 * day, 0.8, true],
])('at day %d/86400000 with fraction %d: renew %s', (now, fraction, renew) => expect(planCertRenewal(cert, new Date(now), fraction)).toBe(renew));
