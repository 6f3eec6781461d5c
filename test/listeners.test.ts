/**
 * Every listener binds the loopback by default: the probe runs alone in a fresh
 * namespace with default options (metrics live; flowprobe ipcad with `rsh enable`
 * and its JSON API), and the namespace's /proc/net tables must show no TCP socket
 * listening anywhere but 127.0.0.1, and no UDP socket that is not connected (the
 * collector sockets are connected: they receive from nobody else).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IsolatedNamespace, namespaceForSuite } from './helpers/netns.js';
import { run, startProbe, waitFor, type Running } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';

const skip = needsRoot('network namespaces');

interface Socket {
  local: string;
  remote: string;
  state: string;
}

/** /proc/net/{tcp,tcp6,udp,udp6} as seen inside the namespace */
async function sockets(ns: IsolatedNamespace, table: string): Promise<Socket[]> {
  const result = await run(ns.exec()[0]!, [...ns.exec().slice(1), 'cat', `/proc/net/${table}`]);
  return result.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 3)
    .map((f) => ({ local: f[1]!, remote: f[2]!, state: f[3]! }));
}

const LOOPBACK4 = '0100007F';
const LOOPBACK6 = '00000000000000000000000001000000';
const TCP_LISTEN = '0A';

async function assertLoopbackOnly(ns: IsolatedNamespace, expectListeners: number): Promise<void> {
  const listening = [...(await sockets(ns, 'tcp')), ...(await sockets(ns, 'tcp6'))].filter((s) => s.state === TCP_LISTEN);
  assert.equal(listening.length, expectListeners, JSON.stringify(listening));
  for (const s of listening) {
    const [address] = s.local.split(':');
    assert.ok(address === LOOPBACK4 || address === LOOPBACK6, `listening on ${s.local}`);
  }
  for (const s of [...(await sockets(ns, 'udp')), ...(await sockets(ns, 'udp6'))]) {
    assert.ok(!/^0+:0000$/.test(s.remote), `an unconnected UDP socket on ${s.local}`);
  }
}

async function stop(probe: Running): Promise<void> {
  probe.child.kill('SIGTERM');
  const result = await probe.result;
  assert.equal(result.code, 0, result.stderr);
}

describe('listeners bind 127.0.0.1 by default', { skip }, () => {
  const ns = new IsolatedNamespace('l');
  const work = namespaceForSuite(ns, 'listen');

  test('flowprobe -i lo -n 127.0.0.1:9995: the metrics endpoint on the loopback, the collector socket connected', async () => {
    const probe = startProbe(['-i', 'lo', '-n', '127.0.0.1:9995'], { prefix: ns.exec() });
    await waitFor(() => probe.stderrSoFar().includes('capturing on') || probe.child.exitCode !== null, 10_000, 'the probe to start');
    assert.match(probe.stderrSoFar(), /serving metrics on http:\/\/127\.0\.0\.1:9464\/metrics/);
    await assertLoopbackOnly(ns, 1);
    await stop(probe);
  });

  test('flowprobe ipcad with "rsh enable": rsh and the metrics listener on the loopback (no JSON API unless asked for), the exposure said', async () => {
    const conf = join(work, 'ipcad.conf');
    writeFileSync(conf, 'interface lo;\nrsh enable;\nrsh root@127.0.0.1 view-only;\n');
    const probe = startProbe(['ipcad', '-c', conf], { prefix: ns.exec() });
    await waitFor(() => /Opening lo\.\.\. Initialized/.test(probe.stderrSoFar()) || probe.child.exitCode !== null, 10_000, 'ipcad to start');
    await waitFor(async () => (await sockets(ns, 'tcp')).filter((s) => s.state === TCP_LISTEN).length >= 2, 5000, 'both listeners');
    assert.match(probe.stderrSoFar(), /"rsh enable\\" listens on 127\.0\.0\.1 only/);
    await assertLoopbackOnly(ns, 2);
    await stop(probe);
  });
});
