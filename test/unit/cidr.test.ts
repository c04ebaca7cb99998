import { containsAddress, formatIpv4, isIPv4, macOfIpv4, readCidr, readIpv4 } from '../../services/common/cidr';
import { parseHostPort } from '../../services/common/addr';
import { parseIp } from '../../agent/network/netlink/encode';

test.each([
  ['10.0.1.5', 0x0a000105],
  ['0.0.0.0', 0],
  ['255.255.255.255', 0xffffffff],
  ['010.0.1.5', undefined],
  ['10.0.1', undefined],
  ['10.0.1.256', undefined],
  ['0x0a.0.0.1', undefined],
  [' 10.0.1.5', undefined],
  ['10', undefined],
])('readIpv4(%j) is %s, strict as Go', (text, want) => {
  expect(readIpv4(text)).toBe(want);
  expect(isIPv4(text)).toBe(want !== undefined);
});

test.each([
  ['10.0.1.5/24', '10.0.1.0', 24],
  ['10.0.0.0/8', '10.0.0.0', 8],
  ['0.0.0.0/0', '0.0.0.0', 0],
])('readCidr(%j) is the subnet the address lies in', (text, base, prefix) => {
  expect(readCidr(text)).toEqual({ base: readIpv4(base), prefix });
});

test.each(['10.0.1.5', '10.0.1.0/33', '10.0.1.0/', 'x/24', '10.0.1.0/024'])('readCidr(%j) is undefined', (text) => {
  expect(readCidr(text)).toBeUndefined();
});

test('MACs of an address, task end and host end', () => {
  const n = readIpv4('172.18.0.2')!;
  expect(macOfIpv4(n)).toBe('02:42:ac:12:00:02');
  expect(macOfIpv4(n, '06')).toBe('06:42:ac:12:00:02');
  expect(formatIpv4(n)).toBe('172.18.0.2');
  expect(containsAddress(readCidr('172.18.0.0/16')!, n)).toBe(true);
  expect(containsAddress(readCidr('172.19.0.0/16')!, n)).toBe(false);
});

test('addresses with ports, and netlink byte forms, read IPv4 the same way', () => {
  expect(parseHostPort('10.0.0.1:2377')).toEqual({ host: '10.0.0.1', port: 2377 });
  expect(() => parseHostPort('10.0.0.01:2377')).toThrow(/invalid address/);
  expect(parseIp('10.0.1.5')).toEqual(Buffer.from([10, 0, 1, 5]));
  expect(parseIp('010.0.1.5')).toBeUndefined();
  expect(parseIp('fe80::1')).toEqual(Buffer.from([0xfe, 0x80, ...Array(13).fill(0), 1]));
  expect(parseIp('fe80::1%eth0')).toBeUndefined();
  expect(parseIp('1:2:3:4:5:6:7:8:9')).toBeUndefined();
  expect(parseIp('1')).toBeUndefined();
});
