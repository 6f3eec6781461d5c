/**
 * The probe against real parts: every fixture goes through `flowprobe -r` into a
 * real nfcapd, and nfdump must read back, per 5-tuple, exactly the packets and
 * octets tshark counts in the same capture (tshark is the independent decoder).
 */
import { FIXTURE_FILES, fixture } from './helpers/fixtures.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair, namespaceForSuite } from './helpers/netns.js';
import { pcapBytes } from './helpers/pcap-writer.js';
import { freeUdpPort, run, runProbe, start, startProbe, stopped, waitFor } from './helpers/processes.js';
import { needsRoot, needsTool } from './helpers/requirements.js';
import { tsharkFlowTotals } from './helpers/tshark.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const FILES = FIXTURE_FILES;

function sorted(map: Map<string, { packets: number; octets: number }>): [string, { packets: number; octets: number }][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function summaryNumber(stderr: string, pattern: RegExp): number {
  const m = pattern.exec(stderr);
  assert.ok(m?.[1] !== undefined, `summary has ${pattern}:\n${stderr}`);
  return Number(m[1]);
}

before(async () => {
  // bigflow.pcap (8 MB) is generated, not committed
  if (!existsSync(fixture('bigflow.pcap'))) {
    const made = await run('/usr/bin/python3', [fixture('generate.py'), 'bigflow']);
    assert.equal(made.code, 0, made.stderr);
  }
});

describe('nfcapd receives what tshark counts, per 5-tuple', () => {
  for (const name of FILES) {
    test(name, async () => {
      const nfcapd = await Nfcapd.start();
      try {
        const result = await runProbe(['-r', fixture(name), '-n', `127.0.0.1:${nfcapd.port}`]);
        assert.equal(result.code, 0, result.stderr);
        const log = await nfcapd.stop();
        assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
        const [fromCollector, fromTshark] = await Promise.all([nfcapd.totals(), tsharkFlowTotals(fixture(name))]);
        assert.ok(fromTshark.size > 0, 'tshark found flows');
        assert.deepEqual(sorted(fromCollector), sorted(fromTshark));
        // what the probe says it sent is what the collector stored
        const stat = await nfcapd.stat();
        assert.equal(stat['Flows'], summaryNumber(result.stderr, /(\d+) records sent/));
      } finally {
        await nfcapd.dispose();
      }
    });
  }
});

test('malformed and non-IP frames are skipped and counted by reason; IPv6 is counted as IPv6', async () => {
  const expected = JSON.parse(readFileSync(fixture('malformed.expected.json'), 'utf8')) as {
    ipv4_valid_packets: number;
    malformed: number;
    non_ipv4: Record<'arp' | 'ipv6' | 'mpls' | 'pppoe', number>;
  };
  const result = await runProbe(['-r', fixture('malformed.pcap')]);
  assert.equal(result.code, 0, result.stderr);
  const skipped = summaryNumber(result.stderr, /packets skipped: (\d+)/);
  const { ipv6, ...nonIp } = expected.non_ipv4;
  assert.equal(skipped, expected.malformed + Object.values(nonIp).reduce((a, b) => a + b, 0));
  for (const [reason, count] of Object.entries(nonIp)) {
    assert.equal(summaryNumber(result.stderr, new RegExp(`${reason} (\\d+) \\(`)), count, reason);
  }
  assert.equal(summaryNumber(result.stderr, /IPv4: (\d+) packets/), expected.ipv4_valid_packets);
  assert.equal(summaryNumber(result.stderr, /IPv6: (\d+) packets/), ipv6);
  const captured = summaryNumber(result.stderr, /packets captured: (\d+)/);
  assert.equal(captured, expected.ipv4_valid_packets + ipv6 + skipped);
});

test('a flow over 4 GiB becomes several records, none wrapped, summing to the total', async () => {
  const nfcapd = await Nfcapd.start();
  try {
    const result = await runProbe(['-r', fixture('bigflow.pcap'), '-n', `127.0.0.1:${nfcapd.port}`]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(summaryNumber(result.stderr, /counter_limit (\d+)/) >= 1);
    await nfcapd.stop();
    const records = await nfcapd.records();
    const tcp = records.filter((r) => r.key.split(' ')[2] === '6');
    assert.ok(tcp.length >= 2, 'the big TCP flow is split');
    for (const r of tcp) assert.ok(r.octets <= 0xffffffff && r.octets > 0);
    const total = tcp.reduce((a, r) => a + r.octets, 0);
    assert.ok(total > 2 ** 32, `total ${total} exceeds 4 GiB`);
  } finally {
    await nfcapd.dispose();
  }
});

describe('live, -i any: VLAN-tagged frames as Linux cooked captures show them', { skip: needsRoot('network namespaces') || needsTool('tcpreplay', 'tcpreplay') }, () => {
  const net = new VethPair('v');
  const work = namespaceForSuite(net, 'vlan-any');

  test('vlan.pcap replayed over a veth pair: nfcapd receives what tshark counts in the file, per 5-tuple', async () => {
    // after the fixture, one PPPoE discovery frame: once the probe has counted it, it has seen every frame before it
    const marker = join(work, 'marker.pcap');
    const padi = [...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...[0x02, 0, 0, 0, 0, 0x63], 0x88, 0x63, 0x11, 0x09, 0, 0, 0, 0];
    writeFileSync(marker, pcapBytes(1, [{ time: 1767225700, frame: Uint8Array.from(padi) }]));
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const metrics = '127.0.0.1:9464';
    const probe = startProbe(['-i', 'any', '-n', `127.0.0.1:${nfcapd.port}`, '--metrics-listen', metrics, '--status-interval', '0'], {
      prefix: net.exec(net.nsB),
    });
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 60_000, 'the probe to open the capture');
      assert.match(probe.stderrSoFar(), /capturing on any \(Linux cooked/);
      const replay = await run('ip', ['netns', 'exec', net.nsA, 'tcpreplay', '-q', '-i', net.ifA, fixture('vlan.pcap'), marker]);
      assert.equal(replay.code, 0, replay.stderr);
      await waitFor(
        async () => {
          const fetchScript = `fetch('http://${metrics}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), () => {})`;
          const scrape = await run('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', fetchScript]);
          return /^flowprobe_decode_skipped_packets_total\{reason="pppoe"\} [1-9]/m.test(scrape.stdout);
        },
        60_000,
        'the probe to count the marker frame',
      );
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      // the scrapes themselves are IPv4 on lo, which "any" captures too
      const replayed = new Map([...(await nfcapd.totals())].filter(([key]) => !key.includes('127.0.0.1')));
      const [fromTshark, tagged] = await Promise.all([
        tsharkFlowTotals(fixture('vlan.pcap')),
        run('tshark', ['-r', fixture('vlan.pcap'), '-Y', 'vlan', '-T', 'fields', '-e', 'frame.number']),
      ]);
      assert.ok(tagged.stdout.trim().split('\n').length >= 60, 'most of the frames are tagged');
      assert.deepEqual(sorted(replayed), sorted(fromTshark));
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });
});

describe('the datagrams on the wire', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-wire-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('tshark decodes them as NetFlow v5 without errors; framing and sequence are exact', async () => {
    const port = await freeUdpPort();
    const capture = join(work, 'v5.pcap');
    const tshark = start('tshark', ['-i', 'lo', '-f', `udp dst port ${port}`, '-w', capture]);
    await waitFor(() => tshark.stderrSoFar().includes('Capturing on'), 15_000, 'tshark to start capturing');
    await new Promise((r) => setTimeout(r, 300));
    // a sink that reads and discards, so the sends succeed
    const sink = start(process.execPath, [
      '-e',
      `require('node:dgram').createSocket('udp4').on('message', () => {}).bind(${port}, '127.0.0.1')`,
    ]);
    const synthetic = join(work, 'synthetic.pcap');
    writeSyntheticCapture({ path: synthetic, packets: 20_000, flows: 2_000, seed: 11 });
    // two runs, told apart by their engine id: each has its own flow_sequence from 0
    const runs = [
      { file: fixture('basic.pcap'), engineId: 9 },
      { file: synthetic, engineId: 10 },
    ];
    const results = [];
    for (const { file, engineId } of runs) {
      results.push(await runProbe(['-r', file, '-n', `127.0.0.1:${port}`, '--engine-type', '7', '--engine-id', String(engineId)]));
    }
    await new Promise((r) => setTimeout(r, 500));
    tshark.child.kill('SIGTERM');
    await tshark.result;
    sink.child.kill('SIGTERM');
    await sink.result;
    for (const r of results) assert.equal(r.code, 0, r.stderr);

    const problems = await run('tshark', [
      '-r', capture, '-d', `udp.port==${port},cflow`, '-Y', '_ws.malformed || _ws.expert.severity >= "warning"',
      '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message',
    ]);
    assert.equal(problems.code, 0, problems.stderr);
    assert.equal(problems.stdout.trim(), '', 'no malformed or warned datagrams');

    const fields = await run('tshark', [
      '-r', capture, '-d', `udp.port==${port},cflow`, '-T', 'fields', '-E', 'occurrence=f',
      '-e', 'udp.length', '-e', 'cflow.version', '-e', 'cflow.count', '-e', 'cflow.sequence',
      '-e', 'cflow.engine_type', '-e', 'cflow.engine_id', '-e', 'cflow.sysuptime',
    ]);
    const rows = fields.stdout.trim().split('\n').map((l) => l.split('\t'));
    const expectedDatagrams = results.reduce((a, r) => a + summaryNumber(r.stderr, /in (\d+) datagrams/), 0);
    assert.equal(rows.length, expectedDatagrams);
    assertSequences(rows, runs.map((r) => r.engineId), results.map((r) => summaryNumber(r.stderr, /(\d+) records sent/)));
  });

  test('the sequence check fails on a flow_sequence that goes back to 0 within a run', () => {
    const row = (seq: number, count: number, engineId: number): string[] => [String(8 + 24 + 48 * count), '5', String(count), String(seq), '7', String(engineId)];
    const good = [row(0, 30, 9), row(30, 5, 9), row(0, 30, 10), row(30, 30, 10), row(60, 1, 10)];
    assertSequences(good, [9, 10], [35, 61]);
    const reset = [row(0, 30, 9), row(30, 5, 9), row(0, 30, 10), row(0, 30, 10), row(30, 1, 10)];
    assert.throws(() => assertSequences(reset, [9, 10], [35, 61]), /flow_sequence/);
    const gap = [row(0, 30, 9), row(31, 4, 9), row(0, 30, 10), row(30, 30, 10), row(60, 1, 10)];
    assert.throws(() => assertSequences(gap, [9, 10], [34, 61]), /flow_sequence/);
  });
});

/**
 * Each run's datagrams (tshark rows: udp.length, version, count, sequence, engine
 * type, engine id; told apart by engine id, in capture order) are exactly 24 + 48·n
 * bytes, and their flow_sequence starts at 0 and then always equals the records sent
 * before: a reset or a gap within a run fails, as it would make a collector count
 * lost flows.
 */
function assertSequences(rows: string[][], engineIds: number[], recordsPerRun: number[]): void {
  const next = new Map(engineIds.map((id) => [String(id), 0]));
  for (const [i, [udpLength, version, count, seq, engineType, engineId]] of rows.entries()) {
    const n = Number(count);
    assert.equal(version, '5');
    assert.ok(n >= 1 && n <= 30, `count ${n}`);
    assert.equal(Number(udpLength) - 8, 24 + 48 * n, 'datagram is exactly 24 + 48·n bytes');
    assert.equal(engineType, '7');
    const expected = next.get(engineId!);
    assert.ok(expected !== undefined, `datagram ${i} from engine id ${engineId}, not one of the runs'`);
    assert.equal(Number(seq), expected, `datagram ${i} (engine id ${engineId}): flow_sequence ${seq}, but ${expected} records went before`);
    next.set(engineId!, expected + n);
  }
  assert.deepEqual([...next.values()], recordsPerRun, 'records per run');
}
