/**
 * Collector faults with real parts: a collector that refuses (nothing listens:
 * ICMP port unreachable → ECONNREFUSED on the connected socket) and then appears
 * (a real nfcapd started later), and a collector name that does not resolve, at
 * start and for good (`.invalid`, RFC 6761) or until the test writes it into the
 * namespace's own /etc/hosts. Every lookup stays in a namespace whose resolver is
 * 127.0.0.1, where nothing listens.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { Nfcapd } from './helpers/nfcapd.js';
import { IsolatedNamespace, VethPair, namespaceForSuite } from './helpers/netns.js';
import { freeUdpPort, logRecords, run, runProbe, startProbe, stopped, summaryText, waitFor } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';
import { UdpWitness, assertOnlyTheOtherExporterCounted, otherExporterScript } from './helpers/export-traffic.js';

const skip = needsRoot('network namespaces');

/** node -e inside a namespace: `count` UDP datagrams of 22 bytes, ports from `firstPort`, to `dst`. */
function sendScript(src: string, dst: string, firstPort: number, count: number, gapMs = 0): string {
  return `
    const s = require('node:dgram').createSocket('udp4');
    s.bind(0, '${src}', async () => {
      const payload = Buffer.alloc(22, 1);
      for (let i = 0; i < ${count}; i++) {
        await new Promise((r) => s.send(payload, ${firstPort} + i, '${dst}', r));
        if (${gapMs} > 0) await new Promise((r) => setTimeout(r, ${gapMs}));
      }
      s.close();
    });`;
}

/** GET a URL from inside a namespace: [status, body]. */
async function getInside(prefix: string[], url: string): Promise<[number, string]> {
  const script = `fetch('${url}').then(async (r) => console.log(r.status + ' ' + (await r.text()).trim()), (e) => console.log('0 ' + e.message))`;
  const result = await run(prefix[0]!, [...prefix.slice(1), process.execPath, '-e', script]);
  const m = /^(\d+) (.*)$/s.exec(result.stdout.trim());
  return [Number(m?.[1] ?? 0), m?.[2] ?? result.stderr];
}

/** "collector X: N datagrams, M records sent; send errors E (CODE n, …)" from the summary. */
function collectorLine(summary: string, label: string): { datagrams: number; records: number; errors: number; byCode: Record<string, number> } {
  const line = summary.split('\n').find((l) => l.includes(`collector ${label}:`)) ?? '';
  const m = /(\d+) datagrams, (\d+) records sent; send errors (\d+)(?: \(([^)]*)\))?/.exec(line);
  assert.ok(m, `no collector line for ${label} in\n${summary}`);
  const byCode: Record<string, number> = {};
  for (const part of (m[4] ?? '').split(', ').filter((p) => p !== '')) {
    const [code, n] = part.split(' ');
    byCode[code!] = Number(n);
  }
  return { datagrams: Number(m[1]), records: Number(m[2]), errors: Number(m[3]), byCode };
}

function exported(summary: string): { records: number; datagrams: number } {
  const m = /records exported: (\d+) in (\d+) datagrams/.exec(summary);
  assert.ok(m, summary);
  return { records: Number(m[1]), datagrams: Number(m[2]) };
}

describe('a collector that is down, then comes up', { skip }, () => {
  const net = new VethPair('f');
  before(() => net.create());
  after(() => net.remove());

  test('refused sends are counted and warned about (rate-limited); once nfcapd listens it receives every later flow', async () => {
    const port = await freeUdpPort();
    const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${port}`, '--inactive-timeout', '1', '--status-interval', '0'], {
      prefix: net.exec(net.nsB),
    });
    let nfcapd: Nfcapd | undefined;
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      // Before nfcapd: 40 flows over ~4 s, expiring in several batches (the first send
      // draws the ICMP port unreachable, the later ones fail with ECONNREFUSED).
      const early = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sendScript(net.addrA, net.addrB, 20000, 40, 100)]);
      assert.equal(early.code, 0, early.stderr);
      await waitFor(() => /failed: .*ECONNREFUSED/.test(probe.stderrSoFar()), 15_000, 'a refused send');
      assert.equal(probe.child.exitCode, null, 'still running');

      nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB), port });
      const late = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sendScript(net.addrA, net.addrB, 30000, 50)]);
      assert.equal(late.code, 0, late.stderr);
      await new Promise((r) => setTimeout(r, 2500)); // the 1 s inactive timeout, then the send
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();

      const summary = summaryText(result.stderr);
      const c = collectorLine(summary, `127.0.0.1:${port}`);
      assert.ok((c.byCode['ECONNREFUSED'] ?? 0) >= 1, summary);
      // every datagram built was accepted by the kernel or failed, counted; a refusal read
      // while the socket was idle is counted for a datagram the kernel had accepted
      assert.ok(c.datagrams <= exported(summary).datagrams && c.datagrams + c.errors >= exported(summary).datagrams, summary);
      const warnings = logRecords(result.stderr).filter((r) => r.level === 40 && /failed: .*ECONNREFUSED/.test(r.msg));
      assert.ok(warnings.length >= 1 && warnings.length <= 2, `${warnings.length} warnings (one per 10 s)`);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');

      // the sender's source port is ephemeral: match on the destination ports
      let flows = 0;
      for (const [key, t] of await nfcapd.totals()) {
        const [src, dst, proto, , dport] = key.split(' ');
        if (src === net.addrA && dst === net.addrB && proto === '17' && Number(dport) >= 30000 && Number(dport) < 30050) {
          flows++;
          assert.deepEqual(t, { packets: 1, octets: 50 }, key);
        }
      }
      assert.equal(flows, 50, 'every flow after nfcapd started arrived');
    } finally {
      await stopped(probe);
      await nfcapd?.dispose();
    }
  });
});

describe('a collector name that does not resolve', { skip }, () => {
  const ns = new IsolatedNamespace('n');
  const work = namespaceForSuite(ns, 'faults');

  test('at start, then resolves: capture goes on, /readyz 503 meanwhile, held datagrams and later ones all reach nfcapd', async () => {
    ns.setHosts([]);
    const nfcapd = await Nfcapd.start({ prefix: ns.exec() });
    const metricsPort = 19000 + (process.pid % 1000);
    const probe = startProbe(
      [
        '-i', 'lo',
        '-n', `collector.flowprobe.test:${nfcapd.port}`,
        '--inactive-timeout', '1',
        '--status-interval', '0',
        '--metrics-listen', `127.0.0.1:${metricsPort}`,
        'udp and dst host 127.0.0.2',
      ],
      { prefix: ns.exec() },
    );
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      const first = logRecords(probe.stderrSoFar()).find((r) => r.level === 40);
      assert.match(first?.msg ?? '', /^collector collector\.flowprobe\.test:\d+: cannot resolve or reach it \(EAI_AGAIN|ENOTFOUND/);
      assert.match(first?.msg ?? '', /capturing on, holding up to 256 datagrams/);
      const [status, body] = await getInside(ns.exec(), `http://127.0.0.1:${metricsPort}/readyz`);
      assert.equal(status, 503, body);
      assert.match(body, /collector collector\.flowprobe\.test:\d+ does not resolve yet/);

      // flows while unresolved: held
      const early = await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', sendScript('127.0.0.1', '127.0.0.2', 20000, 30)]);
      assert.equal(early.code, 0, early.stderr);
      await new Promise((r) => setTimeout(r, 2000)); // they expire and are held

      ns.setHosts(['127.0.0.1\tcollector.flowprobe.test']);
      await waitFor(() => /resolved to 127\.0\.0\.1 after \d+ failed lookups/.test(probe.stderrSoFar()), 40_000, 'the name to resolve');
      await waitFor(async () => (await getInside(ns.exec(), `http://127.0.0.1:${metricsPort}/readyz`))[0] === 200, 10_000, '/readyz 200');

      const late = await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', sendScript('127.0.0.1', '127.0.0.2', 30000, 30)]);
      assert.equal(late.code, 0, late.stderr);
      await new Promise((r) => setTimeout(r, 2500));
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();

      const summary = summaryText(result.stderr);
      const c = collectorLine(summary, `collector.flowprobe.test:${nfcapd.port}`);
      assert.equal(c.errors, 0, summary);
      assert.match(summary, /\d+ failed lookups/);
      assert.doesNotMatch(summary, /never resolved/);
      const totals = await nfcapd.totals();
      let flows = 0;
      for (const [key, t] of totals) {
        const dport = Number(key.split(' ')[4]);
        if ((dport >= 20000 && dport < 20030) || (dport >= 30000 && dport < 30030)) {
          flows++;
          assert.deepEqual(t, { packets: 1, octets: 50 }, key);
        }
      }
      assert.equal(flows, 60, 'both the held flows and the later ones arrived');
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });

  test('unresolved at start: the exclusion filter names our source port, so another exporter\'s NetFlow to the collector\'s port is counted, ours not', async () => {
    ns.setHosts([]);
    const nfcapd = await Nfcapd.start({ prefix: ns.exec() });
    // tshark on lo is the independent witness of what the capture was shown
    const witness = await UdpWitness.start(ns.exec(), 'lo', `udp and dst port ${nfcapd.port}`);
    const probe = startProbe(
      ['-i', 'lo', '-n', `collector.flowprobe.test:${nfcapd.port}`, '--inactive-timeout', '1', '--status-interval', '0', `udp and dst port ${nfcapd.port}`],
      { prefix: ns.exec() },
    );
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      const sendOther = async (): Promise<void> => {
        const sent = await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', otherExporterScript('127.0.0.1', 40556, '127.0.0.1', nfcapd.port, 15)]);
        assert.equal(sent.code, 0, sent.stderr);
      };
      await sendOther(); // while the name does not resolve
      await new Promise((r) => setTimeout(r, 2000)); // its flow expires (1 s) and is held
      ns.setHosts(['127.0.0.1\tcollector.flowprobe.test']);
      await waitFor(() => /resolved to 127\.0\.0\.1 after \d+ failed lookups/.test(probe.stderrSoFar()), 40_000, 'the name to resolve');
      await sendOther(); // and once it resolved, when ours go to the same place
      // our export datagrams went over lo while the probe was capturing
      await waitFor(() => witness.sawOtherThan('127.0.0.1', 40556), 15_000, 'the probe to export while capturing');
      await new Promise((r) => setTimeout(r, 2500)); // the second flow expires (1 s) and is exported
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      await witness.stop();

      assertOnlyTheOtherExporterCounted(
        witness,
        await nfcapd.totals(),
        { address: '127.0.0.1', port: 40556, datagrams: 30 },
        { address: '127.0.0.1', port: nfcapd.port },
      );
    } finally {
      await stopped(probe);
      await witness.stop();
      await nfcapd.dispose();
    }
  });

  test('live, never resolving: keeps capturing, holds 256 datagrams, counts the rest and the held ones as unresolved failures', async () => {
    ns.setHosts([]);
    const probe = startProbe(['-i', 'lo', '-n', 'nowhere.flowprobe.invalid:9995', '--inactive-timeout', '1', '--status-interval', '0', 'udp and dst host 127.0.0.2'], {
      prefix: ns.exec(),
    });
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      // 9000 flows → 300 datagrams of 30 records: more than the 256 held
      const sent = await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', sendScript('127.0.0.1', '127.0.0.2', 1, 9000)]);
      assert.equal(sent.code, 0, sent.stderr);
      await waitFor(() => /export to nowhere\.flowprobe\.invalid:9995 failed: cannot resolve/.test(probe.stderrSoFar()), 20_000, 'the overflow to fail');
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const summary = summaryText(result.stderr);
      assert.match(summary, /packets captured: 9000 /);
      const c = collectorLine(summary, 'nowhere.flowprobe.invalid:9995');
      assert.equal(c.datagrams, 0);
      const e = exported(summary);
      assert.equal(e.records, 9000, summary);
      assert.equal(c.errors, e.datagrams, `every datagram is a counted failure\n${summary}`);
      assert.match(summary, /failed lookups, never resolved/);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await stopped(probe);
    }
  });

  test('reading a file, never resolving: reading waits instead of dropping; SIGTERM ends it with every datagram counted', async () => {
    ns.setHosts([]);
    const file = join(work, 'wait.pcap');
    // 200k flows → 6667 datagrams: more than the send queue (--export-queue 256) holds
    writeSyntheticCapture({ path: file, packets: 200_000, flows: 200_000, seed: 21 });
    const probe = startProbe(['-r', file, '-n', 'nowhere.flowprobe.invalid:9995', '--export-queue', '256', '-m', '1024'], { prefix: ns.exec() });
    try {
      await waitFor(() => /cannot resolve or reach it/.test(probe.stderrSoFar()), 10_000, 'the warning');
      assert.match(probe.stderrSoFar(), /then waiting for it \(a file loses no record\)/);
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(probe.child.exitCode, null, 'still waiting, not dropping');
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const summary = summaryText(result.stderr);
      const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
      assert.ok(captured < 200_000, `reading paused (${captured} of 200000 read)`);
      assert.doesNotMatch(summary, /dropped on a full send queue/);
      const c = collectorLine(summary, 'nowhere.flowprobe.invalid:9995');
      assert.equal(c.errors, exported(summary).datagrams, summary);
      assert.equal(exported(summary).records, Number(/flows created: (\d+)/.exec(summary)?.[1]), 'every flow read was exported (to a counted failure)');
    } finally {
      await stopped(probe);
    }
  });
});

describe('no interface to capture on', { skip }, () => {
  const ns = new IsolatedNamespace('d');
  namespaceForSuite(ns, 'no-device');

  test('with no -i where libpcap finds no default device: one line naming the problem, exit 1', async () => {
    const result = await runProbe(['--metrics-listen', 'off'], { prefix: ns.exec() });
    assert.equal(result.code, 1, result.stderr);
    const errors = logRecords(result.stderr).filter((r) => r.level === 50);
    assert.deepEqual(
      errors.map((r) => r.msg),
      ['no capture device: libpcap finds no interface to default to here (name one with -i)'],
    );
  });
});
