import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { join } from 'node:path';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair, namespaceForSuite } from './helpers/netns.js';
import { parseExposition } from './helpers/http.js';
import { logRecords, run, start, startProbe, stopped, summaryText, waitFor } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';
import { UdpWitness, assertOnlyTheOtherExporterCounted, otherExporterScript } from './helpers/export-traffic.js';

const skip = needsRoot('network namespaces');

describe('live capture on a veth pair between network namespaces', { skip }, () => {
  const net = new VethPair('l');
  const work = namespaceForSuite(net, 'live');

  test('counts exactly the traffic sent, exports it to nfcapd, stops cleanly on SIGTERM', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    try {
      const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`, '--inactive-timeout', '60'], {
        prefix: net.exec(net.nsB),
      });
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');

      // 100 UDP datagrams of 100 bytes payload (IP length 128) from port 40000 to 5000
      const sender = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(40000, '${net.addrA}', async () => {
          const payload = Buffer.alloc(100, 7);
          for (let i = 0; i < 100; i++) await new Promise((r) => s.send(payload, 5000, '${net.addrB}', r));
          s.close();
        });`;
      const sent = await run(net.exec(net.nsA)[0]!, [...net.exec(net.nsA).slice(1), process.execPath, '-e', sender]);
      assert.equal(sent.code, 0, sent.stderr);
      const ping = await run('ip', ['netns', 'exec', net.nsA, 'ping', '-c', '5', '-i', '0.2', '-s', '56', net.addrB]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      await new Promise((r) => setTimeout(r, 500)); // let the last packets reach the capture

      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /SIGTERM: flushing flows and stopping/);
      await nfcapd.stop();
      const totals = await nfcapd.totals();
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40000 5000`), { packets: 100, octets: 12800 });
      // echo request 8/0 → port 2048, reply 0/0 → port 0; 56 bytes + 8 ICMP + 20 IP = 84
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 1 0 2048`), { packets: 5, octets: 420 });
      assert.deepEqual(totals.get(`${net.addrB} ${net.addrA} 1 0 0`), { packets: 5, octets: 420 });
      const ifIndexLine = /capturing on (\S+)/.exec(result.stderr);
      assert.ok(ifIndexLine, 'start-up line names the interface');
    } finally {
      await nfcapd.dispose();
    }
  });

  test('a stop right after the last packet: every packet is counted (the last TPACKET_V3 block is read before the handle closes)', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    try {
      const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`, '--inactive-timeout', '60', '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '60'], {
        prefix: net.exec(net.nsB),
      });
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      // `ip netns exec` execs the probe: the pid is node's own (Node 26 names its main thread node-MainThread)
      assert.match((await run('cat', [`/proc/${probe.child.pid}/comm`])).stdout.trim(), /^node/);
      // 300 datagrams back to back, and SIGTERM from the sender the moment the last is sent:
      // the last ones sit in a block the kernel has not handed over yet
      const sender = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(40010, '${net.addrA}', async () => {
          const payload = Buffer.alloc(100, 7);
          for (let i = 0; i < 300; i++) await new Promise((r) => s.send(payload, 5000, '${net.addrB}', r));
          process.kill(${probe.child.pid}, 'SIGTERM');
          s.close();
        });`;
      const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
      assert.equal(sent.code, 0, sent.stderr);
      await waitFor(() => probe.stderrSoFar().includes('serving the final metrics'), 20_000, 'the run to end');
      const url = /serving metrics on (http:\/\/\S+\/metrics)/.exec(probe.stderrSoFar())?.[1];
      const scraped = await run('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', `fetch('${url}').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
      probe.child.kill('SIGTERM'); // a second signal ends the linger
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      const totals = await nfcapd.totals();
      assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 17 40010 5000`), { packets: 300, octets: 38400 });
      // libpcap's own count agrees: nothing it received was left unread
      const summary = summaryText(result.stderr);
      const received = Number(new RegExp(`${net.ifB} libpcap: received (\\d+), dropped 0,`).exec(summary)?.[1]);
      const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
      assert.equal(captured, received, summary);
      assert.doesNotMatch(summary, /never processed/);
      assert.equal(parseExposition(scraped.stdout).get(`flowprobe_capture_unprocessed_packets_total{interface="${net.ifB}"}`), 0, scraped.stderr);
    } finally {
      await nfcapd.dispose();
    }
  });

  test('an ifIndex above 65535 is said once and counted, its records carry the low 16 bits; two interfaces the cut would make one are refused', async () => {
    // a second veth pair between the namespaces, its capture side numbered 70001 (ifindexes are per namespace)
    const tag = process.pid % 100000;
    const [wideA, wideB, clash] = [`fwa${tag}`, `fwb${tag}`, `fwc${tag}`];
    const subnet = `10.97.${1 + (process.pid % 200)}`;
    for (const args of [
      ['-n', net.nsB, 'link', 'add', wideB, 'index', '70001', 'type', 'veth', 'peer', 'name', wideA, 'netns', net.nsA],
      ['-n', net.nsA, 'addr', 'add', `${subnet}.1/24`, 'dev', wideA],
      ['-n', net.nsB, 'addr', 'add', `${subnet}.2/24`, 'dev', wideB],
      ['-n', net.nsA, 'link', 'set', wideA, 'up'],
      ['-n', net.nsB, 'link', 'set', wideB, 'up'],
      // 65537 is 1 in 16 bits: the namespace's loopback
      ['-n', net.nsB, 'link', 'add', clash, 'index', '65537', 'type', 'veth', 'peer', 'name', `${clash}p`, 'netns', net.nsA],
    ]) {
      const made = await run('ip', args);
      assert.equal(made.code, 0, made.stderr);
    }
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    try {
      const probe = startProbe(['-i', wideB, '-n', `127.0.0.1:${nfcapd.port}`], { prefix: net.exec(net.nsB) });
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      const sender = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(40020, '${subnet}.1', async () => {
          for (let i = 0; i < 50; i++) await new Promise((r) => s.send(Buffer.alloc(100), 5000, '${subnet}.2', r));
          s.close();
        });`;
      const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
      assert.equal(sent.code, 0, sent.stderr);
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const notices = logRecords(result.stderr).filter((r) => r.msg.includes('does not fit'));
      assert.deepEqual(
        notices.map((r) => [r.level, r.msg]),
        [[40, `${wideB}: ifIndex 70001 does not fit NetFlow v5's 16-bit interface fields: its records carry 4465 (-i INDEX:${wideB} chooses another)`]],
      );
      const summary = summaryText(result.stderr);
      // every packet counted in a flow (the rest, ARP and IPv6, are skipped)
      const counted = Number(/packets captured: (\d+)/.exec(summary)?.[1]) - Number(/packets skipped: (\d+)/.exec(summary)?.[1]);
      assert.ok(counted >= 50, summary);
      assert.match(summary, new RegExp(`${wideB}: ${counted} packets had an input ifIndex above 65535, sent cut to its low 16 bits`));
      await nfcapd.stop();
      const rows = (await nfcapd.records()).filter((r) => r.key === `${subnet}.1 ${subnet}.2 17 40020 5000`);
      assert.deepEqual(
        rows.map((r) => [r.input, r.packets]),
        [[4465, 50]],
      );

      const refused = await startProbe(['-i', 'lo', '-i', clash], { prefix: net.exec(net.nsB) }).result;
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr.trim(),
        new RegExp(`^flowprobe: --interface: lo \\(ifIndex 1\\) and ${clash} \\(ifIndex 65537\\) would both be 1 in NetFlow v5's 16-bit interface fields`),
      );
      assert.doesNotMatch(refused.stderr, /capturing on/);
    } finally {
      await nfcapd.dispose();
    }
  });

  test('with no -i it captures on libpcap\'s default device', async () => {
    const probe = startProbe([], { prefix: net.exec(net.nsB) });
    await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
    assert.match(probe.stderrSoFar(), new RegExp(`capturing on ${net.ifB} \\(Ethernet`));
    probe.child.kill('SIGINT');
    const result = await probe.result;
    assert.equal(result.code, 0, result.stderr);
  });

  test('several interfaces in one process, "any" among them: each packet is counted per input ifIndex', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    try {
      const probe = startProbe(['-i', 'any', '-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`], {
        prefix: net.exec(net.nsB),
      });
      await waitFor(() => (probe.stderrSoFar().match(/capturing on/g) ?? []).length === 2, 10_000, 'both captures to open');
      const sender = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(40001, '${net.addrA}', async () => {
          const payload = Buffer.alloc(22, 1);
          for (let i = 0; i < 50; i++) await new Promise((r) => s.send(payload, 5001, '${net.addrB}', r));
          s.close();
        });`;
      const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
      assert.equal(sent.code, 0, sent.stderr);
      await new Promise((r) => setTimeout(r, 500));
      probe.child.kill('SIGINT');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      const ifIndex = Number((await run('ip', ['netns', 'exec', net.nsB, 'cat', `/sys/class/net/${net.ifB}/ifindex`])).stdout);
      const rows = (await nfcapd.records()).filter((r) => r.key === `${net.addrA} ${net.addrB} 17 40001 5001`);
      const byInput = new Map<number, number>();
      for (const r of rows) {
        assert.equal(r.octets, r.packets * 50);
        byInput.set(r.input, (byInput.get(r.input) ?? 0) + r.packets);
      }
      // "any" (SLL, no index in the header) reports ifIndex 0; the veth its own
      assert.deepEqual([...byInput].sort(), [[0, 50], [ifIndex, 50]]);
    } finally {
      await nfcapd.dispose();
    }
  });

  test('the exclusion filter leaves out our own export datagrams only: another exporter\'s NetFlow to the same collector is captured and counted', async () => {
    // nfcapd behind the veth (ns a), the probe capturing the veth (ns b): its datagrams
    // to nfcapd cross the captured interface, and so do another exporter's from ns b.
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsA), bind: net.addrA });
    // tshark on the same interface is the independent witness of what crossed it
    const witness = await UdpWitness.start(net.exec(net.nsB), net.ifB, `udp and dst host ${net.addrA} and dst port ${nfcapd.port}`);
    const probe = startProbe(['-i', net.ifB, '-n', `${net.addrA}:${nfcapd.port}`, '--inactive-timeout', '1', '--status-interval', '0'], {
      prefix: net.exec(net.nsB),
    });
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      // traffic of our own to export meanwhile: 20 flows that expire after 1 s
      const traffic = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(0, '${net.addrA}', async () => {
          for (let i = 0; i < 20; i++) await new Promise((r) => s.send(Buffer.alloc(22), 6000 + i, '${net.addrB}', r));
          s.close();
        });`;
      const [sentOther, sentOurs] = await Promise.all([
        run('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', otherExporterScript(net.addrB, 40555, net.addrA, nfcapd.port, 30)]),
        run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', traffic]),
      ]);
      assert.equal(sentOther.code, 0, sentOther.stderr);
      assert.equal(sentOurs.code, 0, sentOurs.stderr);
      // our export datagrams crossed the interface while the probe was capturing
      await waitFor(() => witness.sawOtherThan(net.addrB, 40555), 15_000, 'the probe to export while capturing');
      await new Promise((r) => setTimeout(r, 2500)); // the other exporter's flow expires (1 s) and is exported
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      await witness.stop();

      const totals = await nfcapd.totals();
      assertOnlyTheOtherExporterCounted(witness, totals, { address: net.addrB, port: 40555, datagrams: 30 }, { address: net.addrA, port: nfcapd.port });
      let flows = 0;
      for (const key of totals.keys()) if (key.startsWith(`${net.addrA} ${net.addrB} 17 `)) flows++;
      assert.equal(flows, 20, 'the traffic exported meanwhile');
    } finally {
      await stopped(probe);
      await witness.stop();
      await nfcapd.dispose();
    }
  });

  test('SIGTERM during a saturated capture flushes and exits inside the 10 s grace period', async () => {
    const capture = join(work, 'flood.pcap');
    writeSyntheticCapture({ path: capture, packets: 400_000, flows: 20_000, seed: 7 });
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    try {
      const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`], { prefix: net.exec(net.nsB) });
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
      const replay = start('ip', ['netns', 'exec', net.nsA, 'tcpreplay', '-q', '-i', net.ifA, '--topspeed', '--loop', '20', capture]);
      await new Promise((r) => setTimeout(r, 1500));
      const signalledAt = performance.now();
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      const stopMs = performance.now() - signalledAt;
      replay.child.kill('SIGTERM');
      await replay.result;
      assert.equal(result.code, 0, result.stderr);
      const captured = Number(/packets captured: (\d+)/.exec(result.stderr)?.[1]);
      assert.ok(captured > 10_000, `the capture was loaded (${captured} packets)`);
      // the spec's bound (docker stop's default grace period), not a speed: the figure is printed below
      assert.ok(stopMs < 10_000, `stopped ${stopMs.toFixed(0)} ms after SIGTERM`);
      await nfcapd.stop();
      // every record the probe reports sent reached the collector
      const sentRecords = Number(/(\d+) records sent/.exec(result.stderr)?.[1]);
      const stat = await nfcapd.stat();
      assert.equal(stat['Flows'], sentRecords, `nfcapd flows vs records sent\n${result.stderr}`);
      process.stdout.write(`# saturated live stop: ${stopMs.toFixed(0)} ms after SIGTERM, ${captured} packets, ${sentRecords} records\n`);
    } finally {
      await nfcapd.dispose();
    }
  });
});


describe('the final flush at SIGTERM, live (where a full queue drops while capturing)', { skip }, () => {
  const net = new VethPair('s');
  namespaceForSuite(net, 'flush');
  const FLOWS = 6000;

  /**
   * FLOWS one-packet UDP flows from ns a to ns b (ports 10000…), cached until the stop
   * (long timeouts), and one ICMP flow of the port-unreachable replies.
   */
  async function cacheFlows(probe: ReturnType<typeof startProbe>): Promise<void> {
    await waitFor(() => probe.stderrSoFar().includes('capturing on'), 10_000, 'the probe to open the capture');
    const sender = `
      const s = require('node:dgram').createSocket('udp4');
      s.bind(40100, '${net.addrA}', async () => {
        const payload = Buffer.alloc(22, 1);
        for (let i = 0; i < ${FLOWS}; i++) await new Promise((r) => s.send(payload, 10000 + i, '${net.addrB}', r));
        s.close();
      });`;
    const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
    assert.equal(sent.code, 0, sent.stderr);
    // the status line (every second) says when every flow is in the cache
    await waitFor(() => logRecords(probe.stderrSoFar()).some((r) => Number(r['flows']) >= FLOWS), 20_000, `${FLOWS} cached flows`);
  }

  function probeArgs(port: number, rate: number): string[] {
    return [
      '-i', net.ifB, '-n', `127.0.0.1:${port}`,
      // a small queue and a low rate: the flush takes seconds, and a full queue would drop
      '--export-queue', '64', '--export-rate', String(rate),
      '--inactive-timeout', '3600', '--active-timeout', '7200', '--status-interval', '1',
    ];
  }

  /** IPv4's flows: the veth pair's own IPv6 (neighbour discovery, MLD) makes flows NetFlow v5 does not carry */
  function flowsCreated(summary: string): number {
    const created = Number(/IPv4: \d+ packets \(\d+ IP bytes\), (\d+) flows/.exec(summary)?.[1]);
    assert.ok(created >= FLOWS, summary);
    return created;
  }

  function collectorRecords(summary: string): { records: number; errors: number } {
    const m = /collector 127\.0\.0\.1:\d+: \d+ datagrams, (\d+) records sent; send errors (\d+)/.exec(summary);
    assert.ok(m, summary);
    return { records: Number(m[1]), errors: Number(m[2]) };
  }

  test('every cached record reaches nfcapd, with no sequence gap, however small the queue and low the rate; the log says how long', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const probe = startProbe(probeArgs(nfcapd.port, 100), { prefix: net.exec(net.nsB) });
    try {
      await cacheFlows(probe);
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const log = await nfcapd.stop();

      // nfcapd has every flow, in sequence
      assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
      const totals = await nfcapd.totals();
      for (let i = 0; i < FLOWS; i++) {
        const key = `${net.addrA} ${net.addrB} 17 40100 ${10000 + i}`;
        assert.deepEqual(totals.get(key), { packets: 1, octets: 50 }, key);
      }

      const summary = summaryText(result.stderr);
      assert.doesNotMatch(summary, /dropped on a full send queue/);
      const created = flowsCreated(summary);
      assert.match(summary, new RegExp(`records exported: ${created} in \\d+ datagrams \\(flow_sequence ${created}\\)`));
      assert.deepEqual(collectorRecords(summary), { records: created, errors: 0 });
      assert.equal((await nfcapd.stat())['Flows'], created, 'nothing else reached nfcapd');

      // and the log said how long it would take, and took
      const records = logRecords(result.stderr);
      const stop = records.find((r) => r.msg.startsWith('SIGTERM: flushing flows and stopping'));
      // 6000 flows (and the ICMP one) = 200 datagrams at 100/s
      assert.match(stop?.msg ?? '', /: 600\d cached flows, .* the flush takes about 2\.0 s /, result.stderr);
      assert.ok(records.some((r) => /^final flush done in [\d.]+ s: \d+ datagrams since the stop, none dropped$/.test(r.msg)), result.stderr);
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });

  test('a second SIGTERM during the flush stops it at once: what was not sent is counted and logged, exit 1', async () => {
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    // 200 datagrams at 10/s: a flush of 20 s
    const probe = startProbe(probeArgs(nfcapd.port, 10), { prefix: net.exec(net.nsB) });
    try {
      await cacheFlows(probe);
      probe.child.kill('SIGTERM');
      await waitFor(() => /final flush|SIGTERM: flushing flows and stopping/.test(probe.stderrSoFar()), 10_000, 'the flush to begin');
      await new Promise((r) => setTimeout(r, 1000));
      const secondAt = performance.now();
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      const stopMs = performance.now() - secondAt;
      assert.equal(result.code, 1, result.stderr);
      // at once: well inside the ~19 s the flush still had to go
      assert.ok(stopMs < 8000, `stopped ${stopMs.toFixed(0)} ms after the second SIGTERM`);
      const log = await nfcapd.stop();

      const warnings = logRecords(result.stderr).filter((r) => r.level === 40).map((r) => r.msg);
      assert.ok(warnings.some((m) => /^SIGTERM again: stopping the final flush at once after [\d.]+ s: \d+ queued datagrams \(\d+ records\) not sent/.test(m)), result.stderr);
      assert.ok(warnings.some((m) => /^final flush stopped after [\d.]+ s: \d+ datagrams \(\d+ records\) not sent$/.test(m)), result.stderr);
      const summary = summaryText(result.stderr);
      const abandoned = /not sent, the final flush stopped by a second signal: (\d+) datagrams, (\d+) records/.exec(summary);
      assert.ok(abandoned, summary);
      const sent = collectorRecords(summary);
      assert.equal(sent.errors, 0, summary);
      assert.ok(sent.records > 0 && Number(abandoned[2]) > 0, summary);
      // every record is accounted for: sent or counted as not sent
      assert.equal(sent.records + Number(abandoned[2]), flowsCreated(summary), summary);
      assert.doesNotMatch(summary, /dropped on a full send queue/);

      // what was sent arrived, in sequence
      assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
      assert.equal((await nfcapd.stat())['Flows'], sent.records);
      process.stdout.write(`# second SIGTERM: stopped ${stopMs.toFixed(0)} ms later, ${sent.records} records sent, ${abandoned[2]} not sent\n`);
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });
});
