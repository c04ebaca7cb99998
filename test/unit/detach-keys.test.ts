import { scanDetachKeys } from '../../cli/detach-keys';

const b = (...bytes: number[]) => Buffer.from(bytes);

describe('scanDetachKeys (Ctrl-P Ctrl-Q)', () => {
  test.each([
    ['plain text goes through', b(0x61, 0x62), 0, { forward: b(0x61, 0x62), detached: false, held: 0 }],
    ['Ctrl-P Ctrl-Q detaches and drops what follows', b(0x61, 0x10, 0x11, 0x62), 0, { forward: b(0x61), detached: true, held: 0 }],
    ['a Ctrl-P at the end is held', b(0x61, 0x10), 0, { forward: b(0x61), detached: false, held: 1 }],
    ['a held Ctrl-P then Ctrl-Q detaches', b(0x11), 1, { forward: b(), detached: true, held: 0 }],
    ['a held Ctrl-P then another key sends both', b(0x61), 1, { forward: b(0x10, 0x61), detached: false, held: 0 }],
    ['Ctrl-P Ctrl-P Ctrl-Q sends one Ctrl-P and detaches', b(0x10, 0x10, 0x11), 0, { forward: b(0x10), detached: true, held: 0 }],
    ['Ctrl-Q alone and Ctrl-C go through', b(0x11, 0x03), 0, { forward: b(0x11, 0x03), detached: false, held: 0 }],
  ])('%s', (_name, chunk, held, want) => {
    expect(scanDetachKeys(chunk, held)).toEqual(want);
  });
});
