/**
 * A tiny HTTP server for the discovery tests and benchmark, run as an exec task: it answers every
 * request with its host name (a task's is the first 12 characters of its id).
 *
 *   node dist/test/support/whoami-server.js PORT
 */
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const port = Number(process.argv[2] ?? '8000');
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write(`whoami-server: bad port ${process.argv[2]}\n`);
  process.exit(2);
}
const name = hostname();
const body = Buffer.from(name);
createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}).listen(port, '0.0.0.0', () => process.stdout.write(`whoami ${name} listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
