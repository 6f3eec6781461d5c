/**
 * Decoder fuzz: over a million seeded frames per run (more with FUZZ_FRAMES), each
 * checked against what its generator built (test/helpers/fuzz-frames.ts: the
 * frame's fields are chosen first, then at most one defect; the expected result and
 * fields follow from those choices, never from the decoder). Chaos frames (noise,
 * bytes overwritten anywhere) have no known outcome: they must only never throw.
 * Then built frames through the real probe (`flowprobe -r` into a real nfcapd): the
 * summary's skip counts per reason and nfdump's packets and octets per 5-tuple
 * equal the generator's ledger; capinfos (Wireshark) agrees on the number of frames.
 *
 * A frame that ever makes decodeFrame throw goes into fuzz-regressions.json (the
 * failure prints its entry) and is decoded on every run from then on.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecodeResult, DecodedPacket, PortsUnavailable, SKIP_REASONS, decodeFrame } from '../src/decode/decode.js';
import {
  BAD_IPV6_PAYLOAD_LENGTH,
  FUZZ_LINK_TYPES,
  IPV6_JUMBOGRAM,
  TRUNCATED_IPV6_EXTENSION_HEADER,
  fuzzFrames,
  ipv6String,
  type FuzzExpectation,
} from './helpers/fuzz-frames.js';
import { Nfcapd } from './helpers/nfcapd.js';
import { PROJECT_ROOT, run, runProbe, summaryText } from './helpers/processes.js';
import { ipv4String } from './helpers/synthetic-pcap.js';

const FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 1_000_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 0x0f10_0d5e);
/** frames per link type written to a capture file and read by the probe */
const PROBE_FRAMES = 40_000;

interface Regression {
  linkType: number;
  caplen: number;
  wirelen: number;
  hex: string;
  note?: string;
}
const REGRESSIONS = join(PROJECT_ROOT, 'test/fixtures/fuzz-regressions.json');

/** The fields compared for a decoded frame, in DecodedPacket's names: for both families, then per family. */
const FIELDS = ['family', 'protocol', 'tos', 'ipLength', 'srcPort', 'dstPort', 'tcpFlags', 'portsUnavailable', 'linkIfIndex', 'vlanId'] as const;
const FIELDS4 = ['srcAddr', 'dstAddr'] as const;
const FIELDS6 = ['src6', 'dst6', 'flowLabel'] as const;

/** A field's value as text (the IPv6 addresses are arrays). */
function text(v: unknown): string {
  return ArrayBuffer.isView(v) ? ipv6String(v as Int32Array) : String(v);
}

/** How the decoder's reading differs from the ledger's, or '' when it does not. */
function difference(result: DecodeResult, out: DecodedPacket, expected: FuzzExpectation): string {
  if (result !== expected.result) return `result ${SKIP_REASONS[result]}, built to be ${SKIP_REASONS[expected.result] ?? expected.result}`;
  if (result !== DecodeResult.ok) return '';
  // read loosely: family, vlanId, src6, dst6 and flowLabel come with the IPv6 decoder
  const got = out as unknown as Record<string, unknown>;
  const fields = [...FIELDS, ...(expected.family === 6 ? FIELDS6 : FIELDS4)];
  const wrong = fields.filter((f) => text(got[f]) !== text(expected[f]));
  return wrong.map((f) => `${f} ${text(got[f])}, built as ${text(expected[f])}`).join('; ');
}

interface FuzzRun {
  /** frames whose outcome the generator knows, by expected result */
  expected: number[];
  /** of those, by ports-unavailable reason */
  portsUnavailable: number[];
  chaos: number;
  total: number;
  /** frames decoded otherwise than built (the first few) */
  mismatches: (Regression & { defect: string; why: string })[];
  mismatchCount: number;
  crashes: Regression[];
}

/** Decode every frame; a known frame must decode as built, no frame may throw. */
function fuzzRun(linkType: number, count: number, seed: number): FuzzRun {
  const r: FuzzRun = {
    expected: new Array<number>(SKIP_REASONS.length).fill(0),
    portsUnavailable: [0, 0, 0, 0],
    chaos: 0,
    total: 0,
    mismatches: [],
    mismatchCount: 0,
    crashes: [],
  };
  const out = new DecodedPacket();
  const entry = (frame: Uint8Array, caplen: number, wirelen: number): Regression => ({
    linkType,
    caplen,
    wirelen,
    hex: Buffer.from(frame.subarray(0, caplen)).toString('hex'),
  });
  fuzzFrames(linkType, count, seed, (frame, caplen, wirelen, _i, expected) => {
    r.total++;
    let result: DecodeResult;
    try {
      result = decodeFrame(frame, caplen, wirelen, linkType, out);
    } catch (error) {
      if (r.crashes.length < 10) r.crashes.push({ ...entry(frame, caplen, wirelen), note: String(error) });
      return;
    }
    if (!expected.known) {
      r.chaos++;
      if (result === DecodeResult.ok && (out.ipLength < 20 || out.ipLength > wirelen || out.srcPort > 0xffff || out.dstPort > 0xffff)) {
        if (r.crashes.length < 10) r.crashes.push({ ...entry(frame, caplen, wirelen), note: `impossible fields: ipLength ${out.ipLength}, ports ${out.srcPort}/${out.dstPort}` });
      }
      return;
    }
    r.expected[expected.result]!++;
    if (expected.result === DecodeResult.ok) r.portsUnavailable[expected.portsUnavailable]!++;
    const why = difference(result, out, expected);
    if (why !== '') {
      r.mismatchCount++;
      if (r.mismatches.length < 10) r.mismatches.push({ ...entry(frame, caplen, wirelen), defect: expected.defect, why });
    }
  });
  return r;
}

/** The results each link type can give (raw IP has no ethertype; LINKTYPE_IPV4 / IPV6 carry one family). */
function reachable(linkType: number): DecodeResult[] {
  const ip4 = [DecodeResult.ok, DecodeResult.truncatedIp, DecodeResult.badVersion, DecodeResult.badHeaderLength, DecodeResult.badTotalLength];
  const ip6 = [DecodeResult.ok, DecodeResult.truncatedIp, DecodeResult.badVersion, IPV6_JUMBOGRAM, BAD_IPV6_PAYLOAD_LENGTH, TRUNCATED_IPV6_EXTENSION_HEADER];
  const name = FUZZ_LINK_TYPES.find((t) => t.linkType === linkType)!.name;
  if (name === 'ipv4') return ip4;
  if (name === 'ipv6') return ip6;
  const both = [...new Set([...ip4, ...ip6])];
  if (name === 'raw') return [...both, DecodeResult.truncatedLink];
  // IPv6 is decoded now: no frame is skipped as "ipv6"
  return [...new Set([...Object.values(DecodeResult), ...both])];
}

describe('decoder fuzz', () => {
  test(`${FRAMES} built and chaos frames: each built one decodes to what was built, none throws`, () => {
    const perType = Math.ceil(FRAMES / FUZZ_LINK_TYPES.length);
    let all = 0;
    let known = 0;
    const crashes: Regression[] = [];
    const mismatches: string[] = [];
    FUZZ_LINK_TYPES.forEach(({ linkType, name }, t) => {
      const r = fuzzRun(linkType, perType, SEED + t);
      crashes.push(...r.crashes);
      assert.equal(r.total, perType, `${name}: every frame visited`);
      if (r.mismatchCount > 0) {
        mismatches.push(`${name}: ${r.mismatchCount} frames decoded otherwise than built (seed ${SEED + t}), the first:\n${JSON.stringify(r.mismatches, null, 2)}`);
      }
      // the ledger covers every outcome the link type can have, not only the happy path
      for (const result of reachable(linkType)) {
        assert.ok(r.expected[result]! > 0, `${name}: no frame built to be ${SKIP_REASONS[result]}`);
      }
      for (const reason of [PortsUnavailable.fragment, PortsUnavailable.snaplen, PortsUnavailable.shortTransport]) {
        assert.ok(r.portsUnavailable[reason]! > 0, `${name}: no frame built with ports unavailable (${reason})`);
      }
      assert.ok(r.expected[DecodeResult.ok]! > perType / 5, `${name}: built frames often decode (${r.expected[DecodeResult.ok]})`);
      assert.ok(r.chaos > perType / 10, `${name}: chaos frames too (${r.chaos})`);
      all += r.total;
      known += r.total - r.chaos;
    });
    assert.ok(all >= FRAMES, `${all} frames`);
    assert.deepEqual(mismatches, [], mismatches.join('\n'));
    assert.deepEqual(
      crashes,
      [],
      `decodeFrame threw; add these to test/fixtures/fuzz-regressions.json:\n${JSON.stringify(crashes, null, 2)}`,
    );
    process.stdout.write(`fuzz: ${all} frames, ${known} decoded as built, ${all - known} chaos frames, 0 exceptions (seed ${SEED})\n`);
  });

  test('regression fixtures: each decodes to its recorded result without throwing', () => {
    const entries = JSON.parse(readFileSync(REGRESSIONS, 'utf8')) as (Regression & { result: string })[];
    assert.ok(entries.length > 0);
    const out = new DecodedPacket();
    for (const e of entries) {
      const frame = Buffer.from(e.hex, 'hex');
      const result = decodeFrame(frame, e.caplen, e.wirelen, e.linkType, out);
      assert.equal(SKIP_REASONS[result], e.result, e.note ?? e.hex);
    }
  });
});

describe('built frames through the probe', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-fuzz-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const [t, { linkType, fileLinkType, name }] of FUZZ_LINK_TYPES.entries()) {
    test(`${name}: ${PROBE_FRAMES} built frames via flowprobe -r: skips per reason and nfcapd's totals per 5-tuple are the ledger's`, async () => {
      const seed = SEED + 100 + t;
      const path = join(work, `${name}.pcap`);
      const parts: Buffer[] = [];
      const header = Buffer.alloc(24);
      header.writeUInt32LE(0xa1b2c3d4, 0);
      header.writeUInt16LE(2, 4);
      header.writeUInt16LE(4, 6);
      header.writeUInt32LE(65535, 16);
      header.writeUInt32LE(fileLinkType, 20);
      parts.push(header);
      // the ledger: what the probe must report, from what was built
      const skips = new Array<number>(SKIP_REASONS.length).fill(0);
      const flows = new Map<string, { packets: number; octets: number }>();
      fuzzFrames(
        linkType,
        PROBE_FRAMES,
        seed,
        (frame, caplen, wirelen, i, expected) => {
          assert.ok(expected.known);
          const record = Buffer.alloc(16);
          record.writeUInt32LE(1767225600 + Math.floor(i / 1000), 0);
          record.writeUInt32LE((i % 1000) * 1000, 4);
          record.writeUInt32LE(caplen, 8);
          record.writeUInt32LE(wirelen, 12);
          parts.push(record, Buffer.from(frame.subarray(0, caplen)));
          skips[expected.result]!++;
          if (expected.result !== DecodeResult.ok) return;
          const [src, dst] =
            expected.family === 6 ? [ipv6String(expected.src6), ipv6String(expected.dst6)] : [ipv4String(expected.srcAddr), ipv4String(expected.dstAddr)];
          // nfdump 1.7.1 stores an IPFIX record's destination port as 0 for SCTP and UDP-Lite
          // (it takes the ICMP type/code element there); tshark checks the wire carries it (v9-ipfix-interop)
          const dstPort = expected.protocol === 132 || expected.protocol === 136 ? 0 : expected.dstPort;
          const key = `${src} ${dst} ${expected.protocol} ${expected.srcPort} ${dstPort}`;
          const flow = flows.get(key) ?? { packets: 0, octets: 0 };
          flow.packets++;
          flow.octets += expected.ipLength;
          flows.set(key, flow);
        },
        { chaos: 0 },
      );
      writeFileSync(path, Buffer.concat(parts));
      const counted = skips[DecodeResult.ok]!;
      assert.ok(counted > 0 && counted < PROBE_FRAMES, `${counted} of the frames were built to be counted`);

      const capinfos = await run('capinfos', ['-c', '-M', path]);
      assert.equal(Number(/Number of packets:\s+(\d+)/.exec(capinfos.stdout)?.[1]), PROBE_FRAMES, capinfos.stdout + capinfos.stderr);

      const nfcapd = await Nfcapd.start();
      try {
        // IPFIX: both families reach the collector
        const result = await runProbe(['-r', path, '-n', `127.0.0.1:${nfcapd.port}/10`]);
        assert.equal(result.code, 0, result.stderr);
        assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
        await nfcapd.stop();
        const summary = summaryText(result.stderr);
        const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
        const skipped = Number(/packets skipped: (\d+)/.exec(summary)?.[1]);
        assert.equal(captured, PROBE_FRAMES, summary);
        assert.equal(skipped, PROBE_FRAMES - counted, summary);
        for (let r = 1; r < SKIP_REASONS.length; r++) {
          const m = new RegExp(`\\b${SKIP_REASONS[r]} (\\d+) \\(`).exec(summary);
          assert.equal(Number(m?.[1] ?? 0), skips[r], `${SKIP_REASONS[r]}\n${summary}`);
        }
        const stored = await nfcapd.totals();
        const sorted = (m: Map<string, { packets: number; octets: number }>): [string, { packets: number; octets: number }][] =>
          [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        assert.deepEqual(sorted(stored), sorted(flows), 'nfcapd holds, per 5-tuple, the packets and octets built to be counted');
      } finally {
        await nfcapd.dispose();
      }
    });
  }
});
