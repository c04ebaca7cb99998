import { prepareComposeArgs } from '../../cli/argv';

describe('prepareComposeArgs', () => {
  test.each([
    [['compose', '-f', 'a.yml', '-f', 'b.yml', 'logs', '-f', 'web'], ['compose', '--file', 'a.yml', '--file', 'b.yml', 'logs', '-f', 'web'], []],
    [['-H', 'unix:///x.sock', 'compose', '-fa.yml', 'up', '-d'], ['-H', 'unix:///x.sock', 'compose', '--file=a.yml', 'up', '-d'], []],
    [['compose', '-p', 'app', 'exec', '-T', '-e', 'A=1', 'web', 'sh', '-c', 'echo -f'], ['compose', '-p', 'app', 'exec', '-T', '-e', 'A=1', 'web'], ['sh', '-c', 'echo -f']],
    [['compose', 'exec', 'web'], ['compose', 'exec', 'web'], []],
    [['ps', '-f', 'name=x'], ['ps', '-f', 'name=x'], []],
  ])('%j', (input, args, command) => expect(prepareComposeArgs(input)).toEqual({ args, command }));
});
