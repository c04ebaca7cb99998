import { renderNftReplace } from '../../agent/network/plans/lb-nft';
import { VXLAN_NFT_TABLE, renderVxlanFilterNft } from '../../agent/network/plans/vxlan-filter-nft';

describe('renderVxlanFilterNft', () => {
  test('drops VXLAN from every address but the nodes\', listed as nft lists them (sorted by address, no duplicates); VXLAN is not tracked', () => {
    expect(renderVxlanFilterNft(['198.51.100.12', '198.51.100.2', '10.1.0.7', '198.51.100.2'])).toBe(
      [
        'table ip swarmlet-vxlan {',
        '\tchain raw-prerouting {',
        '\t\ttype filter hook prerouting priority raw; policy accept;',
        '\t\tudp dport 4789 notrack',
        '\t}',
        '',
        '\tchain raw-output {',
        '\t\ttype filter hook output priority raw; policy accept;',
        '\t\tudp dport 4789 notrack',
        '\t}',
        '',
        '\tchain input {',
        '\t\ttype filter hook input priority filter; policy accept;',
        '\t\tudp dport 4789 ip saddr != { 10.1.0.7, 198.51.100.2, 198.51.100.12 } drop',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  test('one node: a plain address, as nft lists a one-element set', () => {
    expect(renderVxlanFilterNft(['198.51.100.10'])).toContain('\t\tudp dport 4789 ip saddr != 198.51.100.10 drop\n');
  });

  test('addresses that are not IPv4 are left out, and none at all is no table', () => {
    expect(renderVxlanFilterNft(['198.51.100.10', '', '2001:db8::1', '300.1.1.1', 'x; flush ruleset'])).toContain('ip saddr != 198.51.100.10 drop');
    expect(renderVxlanFilterNft([])).toBe('');
    expect(renderVxlanFilterNft(['', 'nonsense'])).toBe('');
  });

  test('applied in one transaction that replaces the table', () => {
    const body = renderVxlanFilterNft(['198.51.100.10', '198.51.100.11']);
    expect(renderNftReplace(VXLAN_NFT_TABLE, body)).toBe(`table ip swarmlet-vxlan\ndelete table ip swarmlet-vxlan\n${body}`);
  });
});
