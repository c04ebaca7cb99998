import { planContainerLayout } from '../../agent/network/plans/container-layout';

test.each([
  ['a first plugging: in their order', undefined, ['a', 'b'], false, { slots: ['a', 'b'] }],
  ['overlays alone: the gateway bridge after them', undefined, ['a'], true, { slots: ['a'], gateway: 1 }],
  ['connect: the new one takes the lowest free slot, the others stay', { slots: ['a', undefined, 'c'] }, ['a', 'c', 'd'], false, { slots: ['a', 'd', 'c'] }],
  ['disconnect of the middle one: a free slot, the last stays', { slots: ['a', 'b', 'c'] }, ['a', 'c'], false, { slots: ['a', undefined, 'c'] }],
  ['disconnect of the last one: nothing trails', { slots: ['a', 'b'] }, ['a'], false, { slots: ['a'] }],
  ['the gateway keeps its slot; a new overlay goes after it', { slots: ['a'], gateway: 1 }, ['a', 'b'], true, { slots: ['a', undefined, 'b'], gateway: 1 }],
  ['the gateway goes when no longer needed; a bridge may take its slot', { slots: ['a'], gateway: 1 }, ['a', 'b'], false, { slots: ['a', 'b'] }],
  ['the gateway comes back in the lowest free slot', { slots: ['a', 'b'] }, ['a'], true, { slots: ['a'], gateway: 1 }],
] as const)('%s', (_what, prev, ids, needsGateway, expected) => {
  expect(planContainerLayout(prev as never, ids, needsGateway)).toEqual(expected);
});
