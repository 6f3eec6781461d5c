/**
 * Decoder fuzz: over a million seeded mutated and random frames per run (more with
 * FUZZ_FRAMES), zero exceptions, every frame accounted for (decoded +
 * skipped by reason = total). Then the same kind of frames through the real probe
 * (`flowprobe -r` into a real nfcapd): the summary's skip counts equal the
 * decoder's, captured = counted + skipped, and nfcapd holds exactly the counted
 * packets; capinfos (Wireshark) agrees on the number of frames in each file.
 *
 * A frame that ever makes decodeFrame throw goes into fuzz-regressions.json (the
 * failure prints its entry) and is decoded on every run from then on.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DecodeResult, DecodedPacket, SKIP_REASONS, decodeFrame } from '../src/decode/decode.js';
import { FUZZ_LINK_TYPES, fuzzFrames } from './helpers/fuzz-frames.js';
import { Nfcapd } from './helpers/nfcapd.js';
import { PROJECT_ROOT, run, runProbe, summaryText } from './helpers/processes.js';

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

/** Decode every frame, counting results; an exception is collected, never lost. */
function decodeAll(
  linkType: number,
  count: number,
  seed: number,
): { counts: number[]; crashes: Regression[]; total: number } {
  const counts = new Array<number>(SKIP_REASONS.length).fill(0);
  const crashes: Regression[] = [];
  const out = new DecodedPacket();
  let total = 0;
  fuzzFrames(linkType, count, seed, (frame, caplen, wirelen) => {
    total++;
    try {
      const result = decodeFrame(frame, caplen, wirelen, linkType, out);
      counts[result] = (counts[result] ?? 0) + 1;
      if (result === DecodeResult.ok && (out.ipLength < 20 || out.ipLength > wirelen || out.srcPort > 0xffff || out.dstPort > 0xffff)) {
        throw new Error(`impossible fields: ipLength ${out.ipLength}, ports ${out.srcPort}/${out.dstPort}`);
      }
    } catch (error) {
      if (crashes.length < 10) {
        crashes.push({ linkType, caplen, wirelen, hex: Buffer.from(frame.subarray(0, caplen)).toString('hex'), note: String(error) });
      }
    }
  });
  return { counts, crashes, total };
}

describe('decoder fuzz', () => {
  test(`${FRAMES} mutated and random frames: no exception, decoded + skipped by reason = total`, () => {
    const perType = Math.ceil(FRAMES / FUZZ_LINK_TYPES.length);
    let all = 0;
    let decoded = 0;
    const crashes: Regression[] = [];
    FUZZ_LINK_TYPES.forEach(({ linkType, name }, t) => {
      const { counts, crashes: found, total } = decodeAll(linkType, perType, SEED + t);
      crashes.push(...found);
      const accounted = counts.reduce((a, b) => a + b, 0);
      assert.equal(accounted + found.length, total, `${name}: every frame has a result`);
      assert.ok(counts[DecodeResult.ok]! > total / 20, `${name}: mutated frames often still decode (${counts[DecodeResult.ok]})`);
      // the fuzz reaches the malformed paths, not only the happy one
      for (const reason of [DecodeResult.truncatedIp, DecodeResult.badVersion, DecodeResult.badHeaderLength, DecodeResult.badTotalLength]) {
        assert.ok(counts[reason]! > 0, `${name}: no ${SKIP_REASONS[reason]} reached`);
      }
      all += total;
      decoded += counts[DecodeResult.ok]!;
    });
    assert.ok(all >= FRAMES, `${all} frames`);
    assert.deepEqual(
      crashes,
      [],
      `decodeFrame threw; add these to test/fixtures/fuzz-regressions.json:\n${JSON.stringify(crashes, null, 2)}`,
    );
    process.stdout.write(`fuzz: ${all} frames, ${decoded} decoded, ${all - decoded} skipped by reason, 0 exceptions (seed ${SEED})\n`);
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

describe('fuzz frames through the probe', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-fuzz-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const [t, { linkType, fileLinkType, name }] of FUZZ_LINK_TYPES.entries()) {
    test(`${name}: ${PROBE_FRAMES} fuzz frames via flowprobe -r: summary = decoder counts, captured = counted + skipped = nfcapd + skipped`, async () => {
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
      fuzzFrames(linkType, PROBE_FRAMES, seed, (frame, caplen, wirelen, i) => {
        const record = Buffer.alloc(16);
        record.writeUInt32LE(1767225600 + Math.floor(i / 1000), 0);
        record.writeUInt32LE((i % 1000) * 1000, 4);
        record.writeUInt32LE(caplen, 8);
        record.writeUInt32LE(wirelen, 12);
        parts.push(record, Buffer.from(frame.subarray(0, caplen)));
      });
      writeFileSync(path, Buffer.concat(parts));
      const expected = decodeAll(linkType, PROBE_FRAMES, seed);

      const capinfos = await run('capinfos', ['-c', '-M', path]);
      assert.equal(Number(/Number of packets:\s+(\d+)/.exec(capinfos.stdout)?.[1]), PROBE_FRAMES, capinfos.stdout + capinfos.stderr);

      const nfcapd = await Nfcapd.start();
      try {
        const result = await runProbe(['-r', path, '-n', `127.0.0.1:${nfcapd.port}`]);
        assert.equal(result.code, 0, result.stderr);
        assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
        await nfcapd.stop();
        const summary = summaryText(result.stderr);
        const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
        const skipped = Number(/packets skipped: (\d+)/.exec(summary)?.[1]);
        assert.equal(captured, PROBE_FRAMES, summary);
        for (let r = 1; r < SKIP_REASONS.length; r++) {
          const m = new RegExp(`\\b${SKIP_REASONS[r]} (\\d+) \\(`).exec(summary);
          assert.equal(Number(m?.[1] ?? 0), expected.counts[r], `${SKIP_REASONS[r]}\n${summary}`);
        }
        const counted = expected.counts[DecodeResult.ok]!;
        assert.equal(counted + skipped, captured, 'captured = counted + skipped');
        const stat = await nfcapd.stat();
        assert.equal(stat['Packets'], counted, 'nfcapd holds exactly the counted packets');
      } finally {
        await nfcapd.dispose();
      }
    });
  }
});
