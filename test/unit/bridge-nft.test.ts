import { renderBridgeNft, renderBridgeNftRemoval } from '../../agent/network/plans/bridge-nft';
import { refusal } from '../support/rejection';

const HEAD = ['table inet swarmlet-bridge', 'delete table inet swarmlet-bridge', 'table inet swarmlet-bridge {'];

test('no networks: an empty table with both chains, replacing the old one', () => {
  expect(renderBridgeNft([])).toBe(
    [
      ...HEAD,
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t}',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
});

test('one network: masquerade when leaving through a non-bridge interface, nothing to isolate', () => {
  const text = renderBridgeNft([{ bridge: 'swbabc', subnet: '10.1.0.0/24', internal: false }]);
  expect(text).toContain('\t\tip saddr 10.1.0.0/24 oifname != "swbabc" masquerade\n');
  expect(text).not.toContain('drop');
});

test('several networks: sorted, isolated from each other; internal ones isolated from everything and not masqueraded', () => {
  const text = renderBridgeNft([
    { bridge: 'swbbbb', subnet: '10.2.0.0/24', internal: false },
    { bridge: 'swbaaa', subnet: '10.1.0.0/24', internal: false },
    { bridge: 'swbccc', subnet: '10.3.0.0/24', internal: true },
    { bridge: 'swbaaa', subnet: '10.1.0.0/24', internal: false },
  ]);
  expect(text).toBe(
    [
      ...HEAD,
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\tiifname "swbaaa" oifname { "swbbbb", "swbccc" } ct status ! dnat drop',
      '\t\tiifname "swbbbb" oifname { "swbaaa", "swbccc" } ct status ! dnat drop',
      '\t\tiifname "swbccc" oifname != "swbccc" drop',
      '\t\toifname "swbccc" iifname != "swbccc" drop',
      '\t}',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tip saddr 10.1.0.0/24 oifname != { "swbaaa", "swbbbb", "swbccc" } masquerade',
      '\t\tip saddr 10.2.0.0/24 oifname != { "swbaaa", "swbbbb", "swbccc" } masquerade',
      '\t}',
      '}',
      '',
    ].join('\n'),
  );
});

test('an isolated bridge (the gateway bridge) also drops what would be routed back into it, and is masqueraded', () => {
  const text = renderBridgeNft([
    { bridge: 'swb-gw', subnet: '172.18.0.0/16', internal: false, isolated: true },
    { bridge: 'swbaaa', subnet: '10.1.0.0/24', internal: false },
  ]);
  expect(text).toContain('\t\tiifname "swb-gw" oifname "swb-gw" ct status ! dnat drop\n');
  expect(text).toContain('\t\tiifname "swb-gw" oifname "swbaaa" ct status ! dnat drop\n');
  expect(text).toContain('\t\tiifname "swbaaa" oifname "swb-gw" ct status ! dnat drop\n');
  expect(text).toContain('\t\tip saddr 172.18.0.0/16 oifname != { "swb-gw", "swbaaa" } masquerade\n');
  expect(text).not.toContain('iifname "swbaaa" oifname "swbaaa"');
});

test('bad names and subnets are refused, not rendered', () => {
  expect(refusal(() => renderBridgeNft([{ bridge: 'swb"; flush ruleset', subnet: '10.1.0.0/24', internal: false }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/bridge name/) });
  expect(refusal(() => renderBridgeNft([{ bridge: 'swbaaa', subnet: '10.1.0.0/33', internal: false }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/subnet/) });
  expect(refusal(() => renderBridgeNft([{ bridge: 'swbaaa', subnet: '10.300.0.0/24', internal: false }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/subnet/) });
  expect(refusal(() => renderBridgeNft([{ bridge: 'swbaaa', subnet: 'fd00::/64', internal: false }]))).toMatchObject({ kind: 'InvalidArgument', message: expect.stringMatching(/subnet/) });
});

test('removal deletes the table, also when it is missing', () => {
  expect(renderBridgeNftRemoval()).toBe('table inet swarmlet-bridge\ndelete table inet swarmlet-bridge\n');
});
