import { SEAL_KEY_BYTES, newSealKey, seal, unseal } from '../../services/pki/seal';

describe('seal / unseal (AES-256-GCM)', () => {
  const key = newSealKey();

  test('round trip, and a fresh iv each time', () => {
    const a = seal(key, 'alice:pw', 'svc1');
    const b = seal(key, 'alice:pw', 'svc1');
    expect(unseal(key, a, 'svc1')).toBe('alice:pw');
    expect(a.equals(b)).toBe(false);
    expect(a.includes(Buffer.from('alice'))).toBe(false);
    expect(key.length).toBe(SEAL_KEY_BYTES);
  });

  test('a wrong key, a wrong context or a tampered blob does not open', () => {
    const sealed = seal(key, 'alice:pw', 'svc1');
    expect(() => unseal(newSealKey(), sealed, 'svc1')).toThrow(/does not open with this key/);
    expect(() => unseal(key, sealed, 'svc2')).toThrow(/does not open with this key/);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] ^= 1;
    expect(() => unseal(key, tampered, 'svc1')).toThrow(/does not open/);
    expect(() => unseal(key, Buffer.alloc(10), 'svc1')).toThrow(/malformed/);
    expect(() => unseal(Buffer.alloc(16), sealed, 'svc1')).toThrow(/must be 32 bytes/);
    expect(() => seal(key, '', 'svc1')).toThrow(/nothing to seal/);
  });
});
