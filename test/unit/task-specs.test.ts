/** Alike task specs decoded as one object (manager/store/task-specs.ts). */
import { sameFields, TaskSpecs } from '../../manager/store/task-specs';
import { Task } from '../../services/gen/swarmlet/v1/types';

const stored = (o: object): Task => Task.fromJSON(JSON.parse(JSON.stringify(Task.toJSON(Task.fromPartial(o)))));
const spec = { container: { image: 'alpine', args: ['sleep', '100'], env: ['A=1'] }, resources: { limits: { memoryBytes: 64 << 20 } } };

test('the tasks of a service at one spec version share one spec; another version, service or spec keeps its own', () => {
  const specs = new TaskSpecs();
  const a = stored({ id: 'a', serviceId: 's1', specVersion: 1, spec });
  const b = stored({ id: 'b', serviceId: 's1', specVersion: 1, spec });
  expect(b.spec).not.toBe(a.spec);
  specs.share(a);
  specs.share(b);
  expect(b.spec).toBe(a.spec);
  // Equal keys, different specs (an update that kept the version): each its own.
  const c = stored({ id: 'c', serviceId: 's1', specVersion: 1, spec: { ...spec, container: { ...spec.container, env: ['A=2'] } } });
  specs.share(c);
  expect(c.spec).not.toBe(a.spec);
  expect(c.spec?.container?.env).toEqual(['A=2']);
  for (const other of [stored({ id: 'd', serviceId: 's1', specVersion: 2, spec }), stored({ id: 'e', serviceId: 's2', specVersion: 1, spec }), stored({ id: 'f', serviceId: '', specVersion: 1, spec })]) {
    const own = other.spec;
    specs.share(other);
    expect(other.spec).toBe(own);
  }
  expect(specs.size).toBe(3); // s1/1, s1/2, s2/1
});

test('sameFields compares as decoded: fields, arrays, bytes, and what is absent', () => {
  expect(sameFields({ a: [1, { b: 'x' }], c: undefined }, { a: [1, { b: 'x' }], c: undefined })).toBe(true);
  expect(sameFields({ a: [1, 2] }, { a: [1, 2, 3] })).toBe(false);
  expect(sameFields({ a: undefined }, {})).toBe(false);
  expect(sameFields({ a: {} }, { a: undefined })).toBe(false);
  expect(sameFields({ a: [] }, { a: {} })).toBe(false);
  expect(sameFields(Buffer.from('ab'), new Uint8Array([97, 98]))).toBe(true);
  expect(sameFields(Buffer.from('ab'), Buffer.from('ac'))).toBe(false);
  expect(sameFields({ n: 0 }, { n: -0 })).toBe(true);
  expect(sameFields({ n: 1 }, { n: '1' })).toBe(false);
});
