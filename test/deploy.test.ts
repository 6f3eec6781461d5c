/**
 * What the container image and the systemd unit rely on, checked on the host
 * (there is no container engine here): configuration by environment alone, the
 * privilege drop to nobody/nogroup after the capture opens, capture that keeps
 * working after it, a SIGTERM flush under load inside Docker's 10 s grace period
 * with no flow lost, and a non-zero exit when the captured interface goes away.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveIdentity } from '../src/privileges/identity.js';
import { runtimeStage, startContainer } from './helpers/container.js';
import { parseExposition } from './helpers/http.js';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair, namespaceForSuite } from './helpers/netns.js';
import { PROJECT_ROOT, logRecords, run, start, startProbe, stopped, summaryText, waitFor, type Running } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { copyRuntimeTree, type RuntimeTree } from './helpers/runtime-tree.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const skip = needsRoot('network namespaces and the privilege drop');
/** docker stop's default grace period, and the compose file's lower bound */
const GRACE_MS = 10_000;

/** The environment the image gives the probe (the Dockerfile's ENV), plus `vars`; no flags. */
function imageEnvironment(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWPROBE_')) env[k] = v;
  return { ...env, ...runtimeStage().env, ...vars };
}

interface TaskIds {
  uid: string;
  gid: string;
  groups: string;
  capEff: string;
  capPrm: string;
}

/** Uid/Gid/Groups/capabilities of every thread of a process. */
function taskIds(pid: number): TaskIds[] {
  return readdirSync(`/proc/${pid}/task`).map((task) => {
    const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    const field = (name: string): string => (new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '').trim();
    return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups'), capEff: field('CapEff'), capPrm: field('CapPrm') };
  });
}

/** 100 UDP datagrams of 100 bytes payload (IP length 128) from A:40000 to B:5000. */
async function sendUdp(net: VethPair, sport: number): Promise<void> {
  const sender = `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(${sport}, '${net.addrA}', async () => {
      const payload = Buffer.alloc(100, 7);
      for (let i = 0; i < 100; i++) await new Promise((r) => s.send(payload, 5000, '${net.addrB}', r));
      s.close();
    });`;
  const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
  assert.equal(sent.code, 0, sent.stderr);
}

describe('the image\'s run, on the host: environment only, dropped to nobody/nogroup', { skip }, () => {
  const net = new VethPair('d');
  const work = namespaceForSuite(net, 'deploy');

  test('every thread runs as nobody/nogroup with no capabilities, and the capture keeps counting exactly', async () => {
    const nobody = resolveIdentity('nobody', 'nogroup');
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env = imageEnvironment({
      FLOWPROBE_INTERFACE: net.ifB,
      FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}`,
      FLOWPROBE_INACTIVE_TIMEOUT: '60',
    });
    const probe = startProbe([], { prefix: net.exec(net.nsB), env });
    try {
      await waitFor(() => probe.stderrSoFar().includes('no longer possible'), 10_000, 'the probe to drop privileges');
      const stderr = probe.stderrSoFar();
      assert.match(stderr, new RegExp(`capturing on ${net.ifB} \\(Ethernet`));
      assert.match(
        stderr,
        /dropped privileges: now user nobody \(uid \d+\), group nogroup \(gid \d+\), no supplementary groups; gave up all \d+ of root's capabilities/,
      );
      assert.match(stderr, /no longer possible: opening a capture .*; changing promiscuous mode; .*rsh server on 514.*; switching user again/);
      // the capture opened before the drop (the order of the lines is the order of the events)
      assert.ok(stderr.indexOf('capturing on') < stderr.indexOf('dropped privileges'));

      const pid = probe.child.pid!;
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /dist\/cli\.js/, 'the pid is the probe itself');
      const tasks = taskIds(pid);
      assert.ok(tasks.length >= 2, `main thread and capture worker at least (${tasks.length} threads)`);
      const ids = (n: number): string => `${n}\t${n}\t${n}\t${n}`;
      for (const t of tasks) {
        assert.equal(t.uid, ids(nobody.uid), 'real, effective, saved and filesystem uid');
        assert.equal(t.gid, ids(nobody.gid), 'real, effective, saved and filesystem gid');
        assert.equal(t.groups, '', 'no supplementary groups');
        assert.equal(BigInt(`0x${t.capEff}`), 0n, 'no effective capabilities');
        assert.equal(BigInt(`0x${t.capPrm}`), 0n, 'no permitted capabilities');
      }

      // packets sent after the drop are captured by the worker's open handle
      await sendUdp(net, 40000);
      const ping = await run('ip', ['netns', 'exec', net.nsA, 'ping', '-c', '3', '-i', '0.2', net.addrB]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      await new Promise((r) => setTimeout(r, 500));
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      const totals = await nfcapd.totals();
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40000 5000`), { packets: 100, octets: 12800 });
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 1 0 2048`), { packets: 3, octets: 252 });
      process.stdout.write(`# after the drop: ${tasks.length} threads, all uid ${nobody.uid} gid ${nobody.gid}, CapEff 0\n`);
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });

  test('SIGTERM under load after the drop: exits 0 inside the 10 s grace period and nfcapd has every record', async () => {
    const capture = join(work, 'load.pcap');
    writeSyntheticCapture({ path: capture, packets: 400_000, flows: 20_000, seed: 11 });
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env = imageEnvironment({ FLOWPROBE_INTERFACE: net.ifB, FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}` });
    const probe = startProbe([], { prefix: net.exec(net.nsB), env });
    let replay: Running | undefined;
    try {
      await waitFor(() => probe.stderrSoFar().includes('dropped privileges'), 10_000, 'the probe to drop privileges');
      replay = start('ip', ['netns', 'exec', net.nsA, 'tcpreplay', '-q', '-i', net.ifA, '--topspeed', '--loop', '50', capture]);
      // load until the probe has seen a good share of it (no rate is assumed)
      await new Promise((r) => setTimeout(r, 2000));
      assert.equal(replay.child.exitCode, null, 'tcpreplay is still sending when the signal comes');
      const signalledAt = performance.now();
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      const stopMs = performance.now() - signalledAt;
      replay.child.kill('SIGTERM');
      await replay.result;

      assert.equal(result.code, 0, result.stderr);
      assert.ok(stopMs < GRACE_MS, `stopped ${stopMs.toFixed(0)} ms after SIGTERM (grace period ${GRACE_MS} ms)`);
      const figure = (pattern: RegExp): number => {
        const m = pattern.exec(result.stderr);
        assert.ok(m, `${String(pattern)} in\n${result.stderr}`);
        return Number(m[1]);
      };
      const captured = figure(/packets captured: (\d+)/);
      const skipped = figure(/packets skipped: (\d+)/);
      // the veth pair's own IPv6 (neighbour discovery, MLD) makes flows v5 does not carry: IPv4's are counted apart
      const created = figure(/IPv4: \d+ packets \(\d+ IP bytes\), (\d+) flows/);
      const ipv4Packets = figure(/IPv4: (\d+) packets/);
      const built = figure(/records exported: (\d+) in/);
      const sent = figure(/(\d+) records sent; send errors 0/);
      assert.ok(captured > 10_000, `the probe was under load (${captured} packets)`);
      assert.doesNotMatch(result.stderr, /dropped on a full send queue/);
      assert.equal(built, created, 'every flow became one record');
      assert.equal(sent, built, 'every record was sent');
      await nfcapd.stop();
      const stat = await nfcapd.stat();
      assert.equal(stat['Flows'], sent, 'nfcapd received every record the probe sent');
      assert.equal(stat['Packets'], ipv4Packets, 'every IPv4 packet captured is in a record');
      assert.equal(captured - skipped - ipv4Packets, figure(/IPv6: (\d+) packets/), 'the rest is IPv6');
      process.stdout.write(
        `# graceful stop under load as nobody: ${stopMs.toFixed(0)} ms after SIGTERM, ${captured} packets, ${sent} records = nfcapd's ${stat['Flows']}\n`,
      );
    } finally {
      if (replay !== undefined) await stopped(replay);
      await stopped(probe);
      await nfcapd.dispose();
    }
  });
});

describe('the captured interface goes away', { skip }, () => {
  const net = new VethPair('g');
  before(() => net.create());
  after(() => net.remove());

  test('after the drop: the flows are exported, one line says why, and the exit is non-zero for the supervisor', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env = imageEnvironment({
      FLOWPROBE_INTERFACE: net.ifB,
      FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}`,
      FLOWPROBE_INACTIVE_TIMEOUT: '60',
    });
    const probe = startProbe([], { prefix: net.exec(net.nsB), env });
    try {
      await waitFor(() => probe.stderrSoFar().includes('dropped privileges'), 10_000, 'the probe to drop privileges');
      await sendUdp(net, 40002);
      await new Promise((r) => setTimeout(r, 500));
      // deleting one end of a veth pair deletes both: the probe's interface is gone
      const removed = await run('ip', ['-n', net.nsA, 'link', 'del', net.ifA]);
      assert.equal(removed.code, 0, removed.stderr);
      const result = await Promise.race([
        probe.result,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the probe did not exit after its interface went away')), GRACE_MS)),
      ]);
      assert.equal(result.code, 1, result.stderr);
      const errors = logRecords(result.stderr).filter((r) => r.level >= 50).map((r) => r.msg);
      assert.deepEqual(errors, [
        `${net.ifB}: the interface went away (capture read error): exporting the cached flows, then exiting with status 1 for the supervisor to restart flowprobe`,
      ]);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      const summary = summaryText(result.stderr);
      const created = Number(/flows created: (\d+)/.exec(summary)?.[1]);
      // IPv4's flows are exported; the veth pair's own IPv6 ones are counted as not exported (v5)
      const ipv4Flows = Number(/IPv4: \d+ packets \(\d+ IP bytes\), (\d+) flows/.exec(summary)?.[1]);
      const ipv6Flows = Number(/IPv6: \d+ packets \(\d+ IP bytes\), (\d+) flows/.exec(summary)?.[1]);
      assert.equal(created, ipv4Flows + ipv6Flows);
      assert.match(summary, new RegExp(`flows expired: .*shutdown ${created}\n  records exported: ${ipv4Flows} in`), 'flushed at the exit');
      await nfcapd.stop();
      const totals = await nfcapd.totals();
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40002 5000`), { packets: 100, octets: 12800 }, 'the cached flow was exported');
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });
});

describe('--on-interface-loss retry: the interface goes and comes back', { skip }, () => {
  const net = new VethPair('r');
  const work = namespaceForSuite(net, 'retry');

  test('the probe waits, says so, captures again on the new interface, and loses nothing it had', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`, '--on-interface-loss', 'retry', '--inactive-timeout', '300'], {
      prefix: net.exec(net.nsB),
    });
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      await sendUdp(net, 40004);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal((await run('ip', ['-n', net.nsA, 'link', 'del', net.ifA])).code, 0);
      await waitFor(() => probe.stderrSoFar().includes('waiting for it to come back'), 10_000, 'the probe to notice the loss');
      assert.equal(probe.child.exitCode, null, 'still running');
      net.link();
      await waitFor(() => probe.stderrSoFar().includes('the interface is back'), 10_000, 'the probe to reopen the capture');
      await sendUdp(net, 40005);
      await new Promise((r) => setTimeout(r, 500));
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      assert.match(summaryText(result.stderr), new RegExp(`${net.ifB} went away 1 times`));
      await nfcapd.stop();
      const totals = await nfcapd.totals();
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40004 5000`), { packets: 100, octets: 12800 }, 'before the loss');
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40005 5000`), { packets: 100, octets: 12800 }, 'after the interface came back');
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });

  test('after the reopen libpcap counts from 0 again: /metrics, the status line and the summary add it up (no phantom 4.29 G drops)', async () => {
    // A flood into the smallest capture buffer makes libpcap drop (ps_drop) before the loss.
    const flood = join(work, 'flood.pcap');
    writeSyntheticCapture({ path: flood, packets: 50_000, flows: 100, seed: 3 });
    const probe = startProbe(['-i', net.ifB, '-B', '65536', '--on-interface-loss', 'retry', '--metrics-listen', '127.0.0.1:0', '--status-interval', '1'], {
      prefix: net.exec(net.nsB),
    });
    const kernel = `flowprobe_capture_dropped_packets_total{interface="${net.ifB}",stage="kernel"}`;
    const statusDrops = (): number[] =>
      logRecords(probe.stderrSoFar())
        .filter((r) => r.msg.startsWith('status:'))
        .map((r) => r['dropped'] as number);
    const statusDropped = (): number => statusDrops().reduce((sum, d) => sum + d, 0);
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      const url = /serving metrics on (http:\/\/\S+\/metrics)/.exec(probe.stderrSoFar())?.[1];
      assert.ok(url !== undefined, probe.stderrSoFar());
      // the metrics listener is inside the capture's namespace: scrape from there
      const scrape = async (): Promise<Map<string, number>> => {
        const got = await run('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', `fetch('${url}').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
        assert.equal(got.code, 0, got.stderr);
        return parseExposition(got.stdout);
      };
      let dropped = 0;
      for (let attempt = 0; attempt < 5 && dropped === 0; attempt++) {
        const replay = await run('ip', ['netns', 'exec', net.nsA, 'tcpreplay', '-q', '-i', net.ifA, '--topspeed', flood]);
        assert.equal(replay.code, 0, replay.stderr);
        // settled: two scrapes a worker tick apart agree
        let previous = -1;
        await waitFor(
          async () => {
            const now = (await scrape()).get(kernel)!;
            const settled = now === previous;
            previous = now;
            if (!settled) await new Promise((r) => setTimeout(r, 1100));
            return settled;
          },
          20_000,
          'the drop count to settle',
        );
        dropped = previous;
      }
      assert.ok(dropped > 0, 'the flood made libpcap drop');
      await waitFor(() => statusDropped() === dropped, 10_000, `status lines with the ${dropped} drops`);
      assert.equal((await run('ip', ['-n', net.nsA, 'link', 'del', net.ifA])).code, 0);
      await waitFor(() => probe.stderrSoFar().includes('waiting for it to come back'), 10_000, 'the probe to notice the loss');
      net.link();
      await waitFor(() => probe.stderrSoFar().includes('the interface is back'), 10_000, 'the probe to reopen the capture');
      await sendUdp(net, 40007);
      // two status lines and a scrape after the new handle's first figures (the worker reads them every second)
      const linesBefore = statusDrops().length;
      await waitFor(() => statusDrops().length >= linesBefore + 2, 10_000, 'two more status lines');
      // The new handle counts from 0 and adds to the old one's total. Its ring is as
      // small (-B 65536): on a busy machine it may drop a few of the packets sent since
      // (seen in CI: 1 and 8), so the total may grow by those, never wrap.
      const total = (await scrape()).get(kernel)!;
      assert.ok(total >= dropped && total - dropped <= 200, `the drops before the loss (${dropped}) and at most a few since: ${total}`);
      await waitFor(() => statusDropped() === total, 10_000, `status lines with the ${total} drops`);
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const summary = summaryText(result.stderr);
      const received = Number(new RegExp(`${net.ifB} libpcap: received (\\d+), dropped ${total},`).exec(summary)?.[1]);
      const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
      // both handles' packets: libpcap's figures added up over the reopen
      assert.ok(captured > 100 && received >= captured, summary);
    } finally {
      await stopped(probe);
    }
  });

  test('retry and --user exclude each other (a dropped process cannot reopen a capture)', async () => {
    const result = await startProbe(['-i', 'lo', '--on-interface-loss', 'retry', '--user', 'nobody']).result;
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--on-interface-loss retry cannot reopen a capture after --user/);
  });
});

describe('errors a deployment meets: one line each', { skip }, () => {
  test('an unknown user is one line and exit 2, before any capture opens', async () => {
    const result = await startProbe(['-i', 'lo', '--user', 'no-such-user-here']).result;
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /--user: no user named "no-such-user-here"/);
    assert.doesNotMatch(result.stderr, /capturing on/);
  });

  test('a bad FLOWPROBE_ variable is one line and exit 2', async () => {
    const result = await startProbe(['-i', 'lo'], { env: { ...process.env, FLOWPROBE_COLECTOR: '127.0.0.1:9995' } }).result;
    assert.equal(result.code, 2);
    assert.match(result.stderr.trim(), /^flowprobe: FLOWPROBE_COLECTOR: no such option [^\n]*$/);
  });

  test('no route to the collector at start: one line naming it, exit 1 (the supervisor tries again), no stack trace', async () => {
    const ns = `fp-${process.pid}-u`; // a namespace whose loopback is down: 127.0.0.1 is unreachable
    await run('ip', ['netns', 'del', ns]);
    assert.equal((await run('ip', ['netns', 'add', ns])).code, 0);
    try {
      const result = await startProbe(['-r', join(PROJECT_ROOT, 'test/fixtures/basic.pcap'), '-n', '127.0.0.1:9995'], {
        prefix: ['ip', 'netns', 'exec', ns],
      }).result;
      assert.equal(result.code, 1, result.stderr);
      const records = logRecords(result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.equal(records[0]?.level, 50);
      assert.equal(records[0]?.msg, 'collector 127.0.0.1:9995: cannot send to 127.0.0.1 port 9995 (ENETUNREACH)');
    } finally {
      await run('ip', ['netns', 'del', ns]);
    }
  });

  test('reading a file also drops (exit 0, same flows)', async () => {
    const file = join(PROJECT_ROOT, 'test/fixtures/basic.pcap');
    const asRoot = await startProbe(['-r', file]).result;
    const dropped = await startProbe(['-r', file, '--user', 'nobody']).result;
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.match(dropped.stderr, /dropped privileges: now user nobody/);
    assert.equal(dropped.stdout, asRoot.stdout);
  });
});

/** KEY=value lines of an environment file (systemd's EnvironmentFile, simple form). */
function environmentFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]!] = m[2]!;
  }
  return vars;
}

/** Values of a key in a unit file's [Service] section, space-separated words. */
function unitWords(path: string, key: string): string[] {
  const m = new RegExp(`^${key}=(.*)$`, 'm').exec(readFileSync(path, 'utf8'));
  return m === null ? [] : m[1]!.trim().split(/\s+/);
}

describe('from a production-only tree, as the image and the unit start it', { skip }, () => {
  const net = new VethPair('e');
  let app: RuntimeTree;
  before(() => {
    net.create();
    app = copyRuntimeTree();
  });
  after(() => {
    net.remove();
    app.remove();
  });

  test("the image's ENTRYPOINT as PID 1 with the README's capabilities: docker stop's SIGTERM flushes every flow, exit 0", async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env = imageEnvironment({
      FLOWPROBE_INTERFACE: net.ifB,
      FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}`,
      FLOWPROBE_INACTIVE_TIMEOUT: '60',
    });
    const container = startContainer({ app, netns: net.nsB, env });
    try {
      await waitFor(() => container.running.stderrSoFar().includes('no longer possible'), 10_000, 'the probe to drop privileges');
      assert.match(container.running.stderrSoFar(), /dropped privileges: now user nobody \(uid \d+\), group nogroup .*; gave up capabilities setgid, setuid, net_admin, net_raw"/);
      await sendUdp(net, 40004);
      await new Promise((r) => setTimeout(r, 500));
      // docker stop: SIGTERM to the container's PID 1, sent by a root daemon from outside it
      process.kill(await container.init(), 'SIGTERM');
      const result = await container.running.result;
      assert.doesNotMatch(result.stderr, /FATAL|Operation not permitted/);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /SIGTERM: flushing flows and stopping/);
      await nfcapd.stop();
      assert.deepEqual((await nfcapd.totals()).get(`${net.addrA} ${net.addrB} 17 40004 5000`), { packets: 100, octets: 12800 });
      const bad = await startContainer({ app, netns: net.nsB, env, args: ['--frobnicate'] }).running.result;
      assert.equal(bad.code, 2, "the probe's exit status is the container's");
    } finally {
      await container.dispose();
      await nfcapd.dispose();
    }
  });

  test("FLOWPROBE_USER= (empty) turns the image's drop off: the probe keeps the four capabilities, captures, stops cleanly", async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env = imageEnvironment({
      FLOWPROBE_USER: '',
      FLOWPROBE_INTERFACE: net.ifB,
      FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}`,
      FLOWPROBE_INACTIVE_TIMEOUT: '60',
    });
    const container = startContainer({ app, netns: net.nsB, env });
    try {
      await waitFor(
        () => container.running.stderrSoFar().includes('exporting NetFlow') || container.running.child.exitCode !== null,
        10_000,
        'the probe to start',
      );
      assert.equal(container.running.child.exitCode, null, container.running.stderrSoFar());
      assert.doesNotMatch(container.running.stderrSoFar(), /dropped privileges/);
      const status = readFileSync(`/proc/${await container.init()}/status`, 'utf8');
      assert.match(status, /^Uid:\s+0\s+0\s+0\s+0$/m, 'still root');
      assert.match(status, /^CapEff:\s+00000000000030c0$/m, 'net_raw, net_admin, setuid and setgid: what docker run gave it');
      await sendUdp(net, 40008);
      await new Promise((r) => setTimeout(r, 500));
      process.kill(await container.init(), 'SIGTERM');
      const result = await container.running.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      assert.deepEqual((await nfcapd.totals()).get(`${net.addrA} ${net.addrB} 17 40008 5000`), { packets: 100, octets: 12800 });
    } finally {
      await container.dispose();
      await nfcapd.dispose();
    }
  });

  test('the systemd unit: a non-root user with only its ambient capabilities captures (no runtime drop)', async () => {
    const unit = join(PROJECT_ROOT, 'config/flowprobe.service');
    const caps = unitWords(unit, 'AmbientCapabilities').map((c) => c.replace(/^CAP_/, '').toLowerCase());
    assert.deepEqual(caps, ['net_raw', 'net_admin']);
    const nobody = resolveIdentity('nobody', 'nogroup');
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWPROBE_')) env[k] = v;
    Object.assign(env, environmentFile(join(PROJECT_ROOT, 'config/flowprobe.env')), {
      FLOWPROBE_INTERFACE: net.ifB,
      FLOWPROBE_COLLECTOR: `127.0.0.1:${nfcapd.port}`,
      FLOWPROBE_INACTIVE_TIMEOUT: '60',
    });
    // User=, AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=yes, as setpriv does them
    const capList = caps.map((c) => `+${c}`).join(',');
    const setpriv = [
      'setpriv',
      `--reuid=${nobody.uid}`,
      `--regid=${nobody.gid}`,
      '--clear-groups',
      `--inh-caps=-all,${capList}`,
      `--ambient-caps=-all,${capList}`,
      `--bounding-set=-all,${capList}`,
      '--no-new-privs',
      '--',
    ];
    const service = start('ip', ['netns', 'exec', net.nsB, ...setpriv, process.execPath, app.cli], { env });
    try {
      await waitFor(() => service.stderrSoFar().includes('exporting NetFlow'), 10_000, 'the probe to start');
      assert.doesNotMatch(service.stderrSoFar(), /dropped privileges|running as root/);
      const status = readFileSync(`/proc/${service.child.pid!}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${nobody.uid}\\s`, 'm'));
      assert.match(status, /^CapEff:\s+0000000000003000$/m, 'net_raw and net_admin only');
      await sendUdp(net, 40006);
      await new Promise((r) => setTimeout(r, 500));
      service.child.kill('SIGTERM');
      const result = await service.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      assert.deepEqual((await nfcapd.totals()).get(`${net.addrA} ${net.addrB} 17 40006 5000`), { packets: 100, octets: 12800 });
    } finally {
      await stopped(service);
      await nfcapd.dispose();
    }
  });
});
