/**
 * dist/healthcheck.js, the image's HEALTHCHECK: against a stand-in /healthz (not the
 * metrics server), then inside a stand-in container whose PID 1 is the probe.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { runtimeStage, startContainer } from './helpers/container.js';
import { IsolatedNamespace } from './helpers/netns.js';
import { run, waitFor } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { copyRuntimeTree, type RuntimeTree } from './helpers/runtime-tree.js';

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

describe("the image's HEALTHCHECK follows the probe's own --metrics-listen (PID 1's options)", { skip: needsRoot('network namespaces and a PID namespace') }, () => {
  const space = new IsolatedNamespace('h');
  let app: RuntimeTree;
  before(() => {
    space.create();
    app = copyRuntimeTree();
  });
  after(() => {
    space.remove();
    app.remove();
  });

  /** the container's environment: the image's, as Docker gives it to the probe and to its healthcheck */
  const containerEnv = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: process.env['PATH'], ...runtimeStage().env, ...vars });

  test('--metrics-listen given as a flag (no variable): the healthcheck asks that address', async () => {
    const env = containerEnv({});
    const container = startContainer({ app, netns: space.name, env, args: ['-i', 'lo', '--metrics-listen', '127.0.0.1:9599'] });
    try {
      await waitFor(() => container.running.stderrSoFar().includes('dropped privileges'), 10_000, 'the probe to start');
      const health = await container.exec(process.execPath, [app.healthcheck], env);
      assert.equal(health.stdout, 'healthy: http://127.0.0.1:9599/healthz answered 200\n', health.stdout + health.stderr);
      assert.equal(health.code, 0);
      process.kill(await container.init(), 'SIGTERM');
      assert.equal((await container.running.result).code, 0);
    } finally {
      await container.dispose();
    }
  });

  test('FLOWPROBE_METRICS_LISTEN=off: healthy while the probe runs, unhealthy when it is stopped', async () => {
    const env = containerEnv({ FLOWPROBE_METRICS_LISTEN: 'off' });
    const container = startContainer({ app, netns: space.name, env, args: ['-i', 'lo'] });
    try {
      await waitFor(() => container.running.stderrSoFar().includes('dropped privileges'), 10_000, 'the probe to start');
      assert.doesNotMatch(container.running.stderrSoFar(), /serving metrics/);
      let health = await container.exec(process.execPath, [app.healthcheck], env);
      assert.equal(health.stdout, 'healthy: the metrics listener is off, no /healthz to ask: the probe (pid 1) runs\n', health.stdout + health.stderr);
      assert.equal(health.code, 0);
      const init = await container.init();
      process.kill(init, 'SIGSTOP');
      try {
        health = await container.exec(process.execPath, [app.healthcheck], env);
      } finally {
        process.kill(init, 'SIGCONT');
      }
      assert.equal(health.stdout, 'unhealthy: the metrics listener is off, no /healthz to ask, and the probe (pid 1) is stopped\n');
      assert.equal(health.code, 1);
      process.kill(init, 'SIGTERM');
      assert.equal((await container.running.result).code, 0);
    } finally {
      await container.dispose();
    }
  });
});
