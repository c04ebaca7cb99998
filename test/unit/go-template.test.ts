import { execute, headerOf, parseTemplate } from '../../services/common/go-template';
import { fieldOf, formatInspect, formatList, rowObjects, table, wantsJson } from '../../cli/format';

const run = (t: string, v: unknown) => execute(parseTemplate(t), v);

describe('Go templates, as docker users write them', () => {
  const row = { ID: 'abc', Name: 'web', Replicas: '2/3', Labels: { a: '1' }, Aliases: ['x', 'y'], Spec: { Mode: { Replicated: { Replicas: 3 } } } };
  test.each([
    ['{{.Name}} {{.Replicas}}', 'web 2/3'],
    ['{{.Name}}\\t{{.ID}}', 'web\tabc'],
    ['{{ .Name }}', 'web'],
    ['{{.Spec.Mode.Replicated.Replicas}}', '3'],
    ['{{json .Labels}}', '{"a":"1"}'],
    ['{{json .}}', JSON.stringify(row)],
    ['{{upper .Name}}|{{.Name | upper}}|{{lower "AB"}}', 'WEB|WEB|ab'],
    ['{{join .Aliases ","}}', 'x,y'],
    ['{{.Aliases}} {{.Labels}}', '[x y] map[a:1]'],
    ['{{truncate .Name 2}}', 'we'],
    ['name:  {{- .Name -}}  !', 'name:web!'],
  ])('%s', (t, want) => expect(run(t, row)).toBe(want));

  test.each([
    ['{{.Nope}}', /can't evaluate field Nope/],
    ['{{range .Aliases}}{{.}}{{end}}', /"range" is not supported/],
    ['{{frob .Name}}', /function "frob" not defined/],
    ['{{.Name', /unclosed action/],
    ['{{.Name.Deeper}}', /can't evaluate field Deeper in type string/],
  ])('%s is refused in one line', (t, why) => {
    expect(() => run(t, row)).toThrow(why);
    try {
      run(t, row);
    } catch (err) {
      expect((err as Error).message).not.toMatch(/\n/);
      expect((err as { kind?: string }).kind).toBe('InvalidArgument');
    }
  });

  test('table headers are the fields in docker\'s words', () => {
    expect(headerOf('.CurrentState')).toBe('CURRENT STATE');
    expect(headerOf('.ID')).toBe('ID');
    expect(fieldOf('MANAGER STATUS')).toBe('ManagerStatus');
    expect(fieldOf('ID')).toBe('ID');
  });
});

describe('--format on lists and inspect', () => {
  const headers = ['ID', 'NAME', 'CURRENT STATE'];
  const rows = [['a1', 'web.1', 'Running 2 seconds ago'], ['b2', 'web.2', 'Preparing']];
  const objects = rowObjects(headers, rows);
  const api = () => [{ id: 'a1', status: { state: 'TASK_STATE_RUNNING' } }];
  const tableText = () => table(headers, rows);

  test('the default and `table` are docker\'s table', () => {
    expect(formatList(undefined, objects, tableText, api)).toBe(tableText());
    expect(formatList('table', objects, tableText, api)).toBe(tableText());
  });
  test('json is one docker-shaped object per line', () => {
    expect(formatList('json', objects, tableText, api)).toBe('{"ID":"a1","Name":"web.1","CurrentState":"Running 2 seconds ago"}\n{"ID":"b2","Name":"web.2","CurrentState":"Preparing"}\n');
  });
  test('api is the API\'s own objects', () => expect(JSON.parse(formatList('api', objects, tableText, api))).toEqual(api()));
  test('a template runs per row, and `table TEMPLATE` puts headers over aligned columns', () => {
    expect(formatList('{{.Name}}: {{.CurrentState}}', objects, tableText, api)).toBe('web.1: Running 2 seconds ago\nweb.2: Preparing\n');
    expect(formatList('table {{.Name}}\\t{{.CurrentState}}', objects, tableText, api)).toBe(table(['NAME', 'CURRENT STATE'], [['web.1', 'Running 2 seconds ago'], ['web.2', 'Preparing']]));
  });
  test('inspect: docker-shaped JSON by default, a template per object, the API\'s objects with api', () => {
    const docker = [{ Spec: { Name: 'web' } }];
    expect(JSON.parse(formatInspect(undefined, docker, api))).toEqual(docker);
    expect(formatInspect('{{.Spec.Name}}', docker, api)).toBe('web\n');
    expect(JSON.parse(formatInspect('api', docker, api))).toEqual(api());
  });
  test('commands with one JSON form refuse a template', () => {
    expect(wantsJson('json')).toBe(true);
    expect(wantsJson('api')).toBe(true);
    expect(wantsJson(undefined)).toBe(false);
    expect(() => wantsJson('{{.X}}')).toThrow(/not a template/);
  });
});
