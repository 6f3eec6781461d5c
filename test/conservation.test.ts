/**
 * Conservation on the benchmark's captures: every packet and octet the capture
 * holds reaches a real nfcapd, per 5-tuple, with a flow cache holding ~1 M flows.
 * The generator's own per-flow counts are the source of truth.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Nfcapd } from './helpers/nfcapd.js';
import { run, runProbe, startProbe, stopped } from './helpers/processes.js';
import { needsTool } from './helpers/requirements.js';
import {
  SYNTHETIC_IPV6_LENGTH,
  SYNTHETIC_IP_LENGTH,
  flowKeyOf,
  flowKeyOf6,
  writeSyntheticCapture,
  type SyntheticCaptureTotals,
} from './helpers/synthetic-pcap.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-conservation-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** nfcapd (stopped here) holds exactly the packets and octets the generator wrote, per 5-tuple. */
async function assertEveryPacketPerFlow(nfcapd: Nfcapd, written: SyntheticCaptureTotals, family: 4 | 6 = 4): Promise<void> {
  const log = await nfcapd.stop();
  // (IPFIX: nfdump 1.7.1 leaves options records out of its sequence count, see interop-v9-ipfix)
  assert.match(log, family === 4 ? /Sequence Errors: 0, Bad Packets: 0/ : /Bad Packets: 0/, log);
  const totals = await nfcapd.totals();
  assert.equal(totals.size, written.flows, 'one 5-tuple per generated flow');
  let packets = 0;
  for (let i = 0; i < written.flows; i++) {
    const expected = written.perFlowPackets[i]!;
    const key = family === 4 ? flowKeyOf(i) : flowKeyOf6(i);
    const got = totals.get(key);
    if (got?.packets !== expected || got.octets !== expected * (family === 4 ? SYNTHETIC_IP_LENGTH : SYNTHETIC_IPV6_LENGTH)) {
      assert.fail(`flow ${key}: expected ${expected} packets, got ${JSON.stringify(got)}`);
    }
    packets += got.packets;
  }
  assert.equal(packets, written.packets);
}

const CAPTURES = [
  { name: '1.5M packets, 50k flows', packets: 1_500_000, flows: 50_000, seed: 1 },
  { name: '3M packets, 950k concurrent flows', packets: 3_000_000, flows: 950_000, seed: 2 },
];

for (const capture of CAPTURES) {
  test(`benchmark capture (${capture.name}): nfcapd gets every packet and octet per 5-tuple`, async () => {
    const file = join(work, 'capture.pcap');
    const written = writeSyntheticCapture({ path: file, ...capture });
    const nfcapd = await Nfcapd.start();
    try {
      const result = await runProbe(['-r', file, '-n', `127.0.0.1:${nfcapd.port}`, '-m', '2000000']);
      assert.equal(result.code, 0, result.stderr);
      await assertEveryPacketPerFlow(nfcapd, written);
    } finally {
      await nfcapd.dispose();
      rmSync(file, { force: true });
    }
  });
}

// IPv6 over IPFIX: past 16384 flows the IPv6 path batches packets to warm the
// address table and the cache (accountBatch6); the generator's IPv6 twins of the
// captures above (same flows and counts) check it as the IPv4 path is checked.
for (const capture of CAPTURES) {
  test(`benchmark capture, IPv6 over IPFIX (${capture.name}): nfcapd gets every packet and octet per 5-tuple`, async () => {
    const file = join(work, 'capture6.pcap');
    const written = writeSyntheticCapture({ path: file, ...capture, family: 6 });
    const nfcapd = await Nfcapd.start();
    try {
      const result = await runProbe(['-r', file, '-n', `127.0.0.1:${nfcapd.port}/10`, '-m', '2000000']);
      assert.equal(result.code, 0, result.stderr);
      await assertEveryPacketPerFlow(nfcapd, written, 6);
    } finally {
      await nfcapd.dispose();
      rmSync(file, { force: true });
    }
  });
}

// Both families interleaved packet by packet, each cache past 16384 flows: the
// IPv4 and IPv6 batches take turns (one is accounted before the other gathers),
// and every packet of both still reaches nfcapd, per 5-tuple.
test('the 50k-flow capture and its IPv6 twin merged: both families exact over IPFIX', { skip: needsTool('mergecap', 'wireshark-common') }, async () => {
  const capture = CAPTURES[0]!;
  const file4 = join(work, 'four.pcap');
  const file6 = join(work, 'six.pcap');
  const merged = join(work, 'merged.pcap');
  const written4 = writeSyntheticCapture({ path: file4, ...capture });
  const written6 = writeSyntheticCapture({ path: file6, ...capture, family: 6 });
  const nfcapd = await Nfcapd.start();
  try {
    const merge = await run('mergecap', ['-F', 'pcap', '-w', merged, file4, file6]);
    assert.equal(merge.code, 0, merge.stderr);
    const result = await runProbe(['-r', merged, '-n', `127.0.0.1:${nfcapd.port}/10`, '-m', '2000000']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /out of time order/, 'the clock never went back');
    const log = await nfcapd.stop();
    assert.match(log, /Bad Packets: 0/, log);
    const totals = await nfcapd.totals();
    assert.equal(totals.size, written4.flows + written6.flows);
    for (const [written, key, length] of [
      [written4, flowKeyOf, SYNTHETIC_IP_LENGTH],
      [written6, flowKeyOf6, SYNTHETIC_IPV6_LENGTH],
    ] as const) {
      for (let i = 0; i < written.flows; i++) {
        const expected = written.perFlowPackets[i]!;
        const got = totals.get(key(i));
        if (got?.packets !== expected || got.octets !== expected * length) {
          assert.fail(`flow ${key(i)}: expected ${expected} packets, got ${JSON.stringify(got)}`);
        }
      }
    }
  } finally {
    await nfcapd.dispose();
    for (const f of [file4, file6, merged]) rmSync(f, { force: true });
  }
});

// Timeouts above one turn of the flow cache's timing wheel (4096 s) used to hang
// the first eviction that met two flows filed in one slot a turn or more apart
// (both timeouts matter: a flow is due at the earlier of the two). A small cache
// over many flows evicts on nearly every packet.
test('a full cache (-m 1000) with timeouts of 86400 s: the read ends and nfcapd gets every packet and octet per 5-tuple', async () => {
  const capture = { packets: 200_000, flows: 20_000, seed: 5 };
  const file = join(work, 'long-timeouts.pcap');
  const written = writeSyntheticCapture({ path: file, ...capture });
  const nfcapd = await Nfcapd.start();
  const probe = startProbe([
    '-r', file, '-n', `127.0.0.1:${nfcapd.port}`, '-m', '1000',
    '--inactive-timeout', '86400', '--active-timeout', '86400',
  ]);
  // generous: the read takes a second or two; a hang never ends
  const bound = setTimeout(() => probe.child.kill('SIGKILL'), 180_000);
  try {
    const result = await probe.result;
    assert.equal(result.signal, null, `killed after 180 s: the read hung\n${result.stderr.slice(-2000)}`);
    assert.equal(result.code, 0, result.stderr);
    await assertEveryPacketPerFlow(nfcapd, written);
  } finally {
    clearTimeout(bound);
    await stopped(probe);
    await nfcapd.dispose();
    rmSync(file, { force: true });
  }
});

// Past 16384 flows the data plane accounts packets in batches (PacketBatch, warmed
// first): each must still count at its own time, so timeouts cut records exactly
// where the capture says. The generator's packet order and times are the truth.
test('batched accounting (30k flows): each record starts and ends where the timeouts cut the capture', async () => {
  const flows = 30_000;
  const packets = 600_000;
  const gapMicros = 1000; // whole milliseconds: v5 carries ms, so times compare exactly
  const startSeconds = 1767225600;
  const inactiveMs = 60_000;
  const activeMs = 120_000;
  const file = join(work, 'timeouts.pcap');
  const written = writeSyntheticCapture({ path: file, packets, flows, seed: 7, gapMicros, startSeconds, keepFlowOrder: true });
  const order = written.flowOfPacket!;

  // What the timeouts make of the capture: a packet at or past a record's deadline
  // (last + inactive, first + active) starts a new record; the rest go at the end.
  const expected = new Map<string, string[]>();
  const first = new Float64Array(flows);
  const last = new Float64Array(flows);
  const count = new Uint32Array(flows);
  const close = (f: number): void => {
    const key = flowKeyOf(f);
    const list = expected.get(key) ?? [];
    list.push(`${(first[f]! / 1000).toFixed(3)} ${(last[f]! / 1000).toFixed(3)} ${count[f]}`);
    expected.set(key, list);
    count[f] = 0;
  };
  for (let n = 0; n < packets; n++) {
    const f = order[n]!;
    const t = startSeconds * 1000 + (n * gapMicros) / 1000;
    if (count[f]! > 0 && (t >= last[f]! + inactiveMs || t >= first[f]! + activeMs)) close(f);
    if (count[f] === 0) first[f] = t;
    last[f] = t;
    count[f]! += 1;
  }
  for (let f = 0; f < flows; f++) if (count[f]! > 0) close(f);

  const nfcapd = await Nfcapd.start();
  try {
    const result = await runProbe([
      '-r', file, '-n', `127.0.0.1:${nfcapd.port}`, '-m', '2000000',
      '--inactive-timeout', String(inactiveMs / 1000), '--active-timeout', String(activeMs / 1000),
    ]);
    assert.equal(result.code, 0, result.stderr);
    const log = await nfcapd.stop();
    assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
    const got = new Map<string, string[]>();
    for (const row of await nfcapd.records()) {
      const list = got.get(row.key) ?? [];
      list.push(`${row.first.toFixed(3)} ${row.last.toFixed(3)} ${row.packets}`);
      got.set(row.key, list);
    }
    let records = 0;
    for (const [key, list] of expected) {
      records += list.length;
      assert.deepEqual((got.get(key) ?? []).sort(), list.sort(), `records of ${key}`);
    }
    assert.equal(got.size, expected.size);
    // the timeouts did cut: more records than flows, by both rules
    assert.ok(records > flows * 2, `${records} records`);
  } finally {
    await nfcapd.dispose();
    rmSync(file, { force: true });
  }
});
