/** dist/healthcheck.js, the image's HEALTHCHECK, against a stand-in /healthz (not the metrics server). */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { run } from './helpers/processes.js';

const HEALTHCHECK = fileURLToPath(new URL('../dist/healthcheck.js', import.meta.url));

describe('healthcheck', () => {
  let status = 200;
  const paths: string[] = [];
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((request, response) => {
      paths.push(request.url ?? '');
      response.writeHead(request.url === '/healthz' ? status : 404).end('ok\n');
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const check = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [HEALTHCHECK, ...args], { env: { PATH: process.env['PATH'], ...env } });

  test('200 on /healthz: exit 0', async () => {
    status = 200;
    const result = await check([`127.0.0.1:${port}`]);
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.stdout, `healthy: http://127.0.0.1:${port}/healthz answered 200\n`);
    assert.equal(paths.at(-1), '/healthz');
  });

  test('anything else: exit 1 with one line', async () => {
    status = 503;
    let result = await check([`127.0.0.1:${port}`]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, `unhealthy: http://127.0.0.1:${port}/healthz answered 503\n`);
    // nothing listening: a port that was just closed
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    result = await check([`127.0.0.1:${closedPort}`]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^unhealthy: .*ECONNREFUSED\n$/);
    result = await check(['nowhere']);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^--metrics-listen: expected HOST:PORT/);
  });

  test('the address comes from FLOWPROBE_METRICS_LISTEN when not given; a wildcard is reached on loopback', async () => {
    status = 200;
    assert.equal((await check([], { FLOWPROBE_METRICS_LISTEN: `127.0.0.1:${port}` })).code, 0);
    const wildcard = await check([`0.0.0.0:${port}`]);
    assert.equal(wildcard.code, 0, wildcard.stdout);
    assert.match(wildcard.stdout, new RegExp(`http://127\\.0\\.0\\.1:${port}/`));
  });
});
