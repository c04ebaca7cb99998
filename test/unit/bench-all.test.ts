import { renderReport } from '../../bench/lab-helpers';
import { firstTable } from '../../bench/all';

describe('firstTable', () => {
  test('finds the table a benchmark printed: its header, the dashes and its rows, without the notes', () => {
    const report = renderReport('title', ['figure', 'now', 'reference'], [['a', '1.00 s', '0.50 s'], ['b', '2', '3']], [0], ['a note']);
    expect(firstTable(`progress\n${report}BENCH_JSON {}\n`)).toEqual(['figure     now  reference', '------  ------  ---------', 'a       1.00 s     0.50 s', 'b            2          3']);
  });

  test('no table: nothing', () => {
    expect(firstTable('only text\n\nand more\n')).toEqual([]);
  });
});
