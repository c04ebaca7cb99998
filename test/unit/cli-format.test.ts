import { enumWord, json, table, title } from '../../cli/format';

describe('table', () => {
  test('pads every column but the last to its widest cell plus three spaces', () => {
    const out = table(
      ['ID', 'HOSTNAME', 'STATUS'],
      [
        ['abc', 'alpha', 'Ready'],
        ['abcdef123', 'b', 'Down'],
      ],
    );
    expect(out).toBe(['ID          HOSTNAME   STATUS', 'abc         alpha      Ready', 'abcdef123   b          Down', ''].join('\n'));
  });

  test('a header wider than its cells sets the width', () => {
    expect(table(['MANAGER STATUS', 'X'], [['a', 'b']])).toBe('MANAGER STATUS   X\na                b\n');
  });

  test('every column starts at the same offset on every line', () => {
    const rows = [
      ['1', 'long-hostname-here', 'Ready', 'Active', 'Leader'],
      ['22222222', 'h', 'Down', 'Drain', ''],
      ['', '', '', '', 'Reachable'],
    ];
    const headers = ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS'];
    const lines = table(headers, rows).split('\n').slice(0, -1);
    expect(lines).toHaveLength(4);
    const offsets = [0];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (let i = 1; i < headers.length; i++) offsets.push(offsets[i - 1] + widths[i - 1] + 3);
    for (const [l, cells] of [headers, ...rows].entries()) {
      cells.forEach((cell, i) => {
        if (cell) expect(lines[l].slice(offsets[i], offsets[i] + cell.length)).toBe(cell);
        // Nothing but spaces between a cell and the next column.
        if (i + 1 < cells.length) expect(lines[l].slice(offsets[i] + cell.length, offsets[i + 1]).trim()).toBe('');
      });
    }
  });

  test('no trailing spaces, also when the last cells are empty', () => {
    const out = table(['A', 'B', 'C'], [['x', '', ''], ['yyyy', 'z', '']]);
    for (const line of out.split('\n')) expect(line).toBe(line.trimEnd());
    expect(out).toBe('A      B   C\nx\nyyyy   z\n');
  });

  test('headers only, no rows', () => {
    expect(table(['ID', 'NAME'], [])).toBe('ID   NAME\n');
  });

  test('a short row is padded by the widths of the full ones', () => {
    expect(table(['A', 'B', 'C'], [['aaaa', 'bb', 'c'], ['a']])).toBe('A      B    C\naaaa   bb   c\na\n');
  });
});

describe('json', () => {
  test('two-space indent and a final newline', () => {
    expect(json({ a: [1], b: 'x' })).toBe('{\n  "a": [\n    1\n  ],\n  "b": "x"\n}\n');
  });
});

describe('title and enumWord', () => {
  test.each([
    ['', ''],
    ['ready', 'Ready'],
    ['READY', 'Ready'],
    ['rEACHABLE', 'Reachable'],
  ])('title(%j) = %j', (input, expected) => {
    expect(title(input)).toBe(expected);
  });

  test.each([
    ['NODE_STATE_READY', 'Ready'],
    ['NODE_AVAILABILITY_DRAIN', 'Drain'],
    ['REACHABILITY_UNREACHABLE', 'Unreachable'],
    ['LEADER', 'Leader'],
  ])('enumWord(%j) = %j', (input, expected) => {
    expect(enumWord(input)).toBe(expected);
  });
});
