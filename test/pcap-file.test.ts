/**
 * flowprobe's own reader of classic pcap files (src/capture/pcap-file.ts) against
 * libpcap, the reference: the same file read both ways must give the same flows and
 * the same counts. A BPF filter that passes everything ("len >= 0") makes the
 * probe read a file with libpcap; without one it takes classic files itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ClassicPcapReader, PcapFileReadError } from '../src/capture/pcap-file.js';
import { LinkType } from '../src/capture/link-type.js';
import { FIXTURE_FILES, fixture } from './helpers/fixtures.js';
import { logRecords, runProbe, type RunResult } from './helpers/processes.js';
import { udpFrame } from './helpers/pcap-writer.js';
import { prng } from './helpers/synthetic-pcap.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-pcap-file-'));
after(() => rmSync(work, { recursive: true, force: true }));
const PASS_ALL = 'len >= 0';

interface Reading {
  result: RunResult;
  reader: unknown;
  statistics: Record<string, unknown> | undefined;
}

async function readWith(path: string, filter: string[]): Promise<Reading> {
  const result = await runProbe(['-r', path, ...filter]);
  const records = logRecords(result.stderr);
  const statistics = records.find((r) => r.msg.startsWith('statistics:'))?.['statistics'] as Record<string, unknown> | undefined;
  // the read time is the one figure that may differ
  if (statistics !== undefined) delete statistics['readMilliseconds'];
  return { result, reader: records.find((r) => r.msg.startsWith('reading '))?.['reader'], statistics };
}

/** Read `path` both ways and check they agree; returns the reader's run. */
async function assertSameBothWays(path: string, expectedReader: 'classic-pcap' | 'libpcap' = 'classic-pcap'): Promise<Reading> {
  const own = await readWith(path, []);
  const libpcap = await readWith(path, [PASS_ALL]);
  assert.equal(own.reader, expectedReader, own.result.stderr);
  assert.equal(libpcap.reader, 'libpcap', libpcap.result.stderr);
  assert.equal(own.result.code, libpcap.result.code, `${own.result.stderr}\n---\n${libpcap.result.stderr}`);
  assert.equal(own.result.stdout, libpcap.result.stdout, 'the same flow records, in the same order');
  assert.deepEqual(own.statistics, libpcap.statistics);
  return own;
}

describe('classic pcap files: flowprobe reads them itself, exactly as libpcap does', () => {
  // classic files small enough to read twice (bigflow.pcap is read in the interop tests)
  const classicFixtures = FIXTURE_FILES.filter((name) => name.endsWith('.pcap') && name !== 'bigflow.pcap');
  for (const name of classicFixtures) {
    it(`${name}: same flows and counts`, async () => {
      const own = await assertSameBothWays(fixture(name));
      assert.equal(own.result.code, 0, own.result.stderr);
      assert.ok(own.result.stdout.split('\n').length > 3, 'flows were printed');
    });
  }

  it('pcapng, stdin and BPF filters go to libpcap', async () => {
    assert.equal((await readWith(fixture('mixed.pcapng'), [])).reader, 'libpcap');
    assert.equal((await readWith(fixture('basic.pcap'), ['udp'])).reader, 'libpcap');
    const stdin = await runProbe(['-r', '-'], { prefix: ['sh', '-c', `exec "$@" < ${fixture('basic.pcap')}`, 'sh'] });
    assert.equal(logRecords(stdin.stderr).find((r) => r.msg.startsWith('reading '))?.['reader'], 'libpcap');
  });
});

/** basic.pcap's records rewritten in another byte order and/or with nanosecond timestamps. */
function rewrite(source: Buffer, options: { bigEndian: boolean; nanoseconds: boolean; snaplen?: number }): Buffer {
  const out = Buffer.alloc(source.length);
  const u16 = (v: number, at: number): number => (options.bigEndian ? out.writeUInt16BE(v, at) : out.writeUInt16LE(v, at));
  const u32 = (v: number, at: number): number => (options.bigEndian ? out.writeUInt32BE(v, at) : out.writeUInt32LE(v, at));
  u32(options.nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(2, 4);
  u16(4, 6);
  u32(options.snaplen ?? source.readUInt32LE(16), 16);
  u32(source.readUInt32LE(20), 20);
  const random = prng(7);
  for (let at = 24; at < source.length; ) {
    const caplen = source.readUInt32LE(at + 8);
    u32(source.readUInt32LE(at), at);
    // a nanosecond file carries digits below the microsecond: libpcap drops them
    const micro = source.readUInt32LE(at + 4);
    u32(options.nanoseconds ? micro * 1000 + Math.floor(random() * 1000) : micro, at + 4);
    u32(caplen, at + 8);
    u32(source.readUInt32LE(at + 12), at + 12);
    source.copy(out, at + 16, at + 16, at + 16 + caplen);
    at += 16 + caplen;
  }
  return out;
}

describe('classic pcap variants, each read both ways', () => {
  const basic = readFileSync(fixture('basic.pcap'));
  const original = async (): Promise<string> => (await runProbe(['-r', fixture('basic.pcap')])).stdout;

  for (const [label, options] of [
    ['big-endian, microseconds', { bigEndian: true, nanoseconds: false }],
    ['little-endian, nanoseconds', { bigEndian: false, nanoseconds: true }],
    ['big-endian, nanoseconds', { bigEndian: true, nanoseconds: true }],
  ] as const) {
    it(`${label}: the flows of the original file`, async () => {
      const path = join(work, `${label.replace(/[^a-z]+/g, '-')}.pcap`);
      writeFileSync(path, rewrite(basic, options));
      const own = await assertSameBothWays(path);
      assert.equal(own.result.stdout, await original());
    });
  }

  it('records longer than the snapshot length are cut to it (ports lost at 36 bytes)', async () => {
    const path = join(work, 'over-snaplen.pcap');
    writeFileSync(path, rewrite(basic, { bigEndian: false, nanoseconds: false, snaplen: 36 }));
    const own = await assertSameBothWays(path);
    const portsUnavailable = (own.statistics?.['portsUnavailable'] as Record<string, number>)['snaplen'];
    assert.ok(portsUnavailable !== undefined && portsUnavailable > 100, `snaplen: ${portsUnavailable}`);
  });

  it('snapshot length 0 means the maximum', async () => {
    const path = join(work, 'snaplen-0.pcap');
    writeFileSync(path, rewrite(basic, { bigEndian: false, nanoseconds: false, snaplen: 0 }));
    const own = await assertSameBothWays(path);
    assert.equal(own.result.stdout, await original());
  });

  it('a cut inside a record, or inside a record header: the same packets, then exit 1', async () => {
    // record boundaries of basic.pcap
    const ends: number[] = [];
    for (let at = 24; at < basic.length; at += 16 + basic.readUInt32LE(at + 8)) ends.push(at);
    for (const [label, cut] of [
      ['record', ends[100]! + 16 + 10],
      ['header', ends[100]! + 7],
    ] as const) {
      const path = join(work, `cut-in-${label}.pcap`);
      writeFileSync(path, basic.subarray(0, cut));
      const own = await assertSameBothWays(path);
      assert.equal(own.result.code, 1);
      assert.equal((own.statistics?.['packets']), 100, 'the 100 whole records before the cut');
      assert.match(own.result.stderr, /read error after 100 packets \(truncated or corrupt capture file\): truncated dump file/);
    }
  });

  it('a captured length beyond 256 KiB is a corrupt file, as libpcap says', async () => {
    const path = join(work, 'corrupt-caplen.pcap');
    const bad = Buffer.from(basic);
    let at = 24;
    for (let i = 0; i < 50; i++) at += 16 + bad.readUInt32LE(at + 8);
    bad.writeUInt32LE(300_000, at + 8);
    writeFileSync(path, bad);
    const own = await assertSameBothWays(path);
    assert.equal(own.result.code, 1);
    assert.match(own.result.stderr, /read error after 50 packets .*invalid packet capture length 300000/);
  });

  it('other versions and link-type fields with FCS bits are left to libpcap', async () => {
    const old = Buffer.from(basic);
    old.writeUInt16LE(3, 6); // 2.3
    writeFileSync(join(work, 'v23.pcap'), old);
    assert.equal((await readWith(join(work, 'v23.pcap'), [])).reader, 'libpcap');
    const fcs = Buffer.from(basic);
    fcs.writeUInt32LE(1 | 0x1000_0000 | 0x0400_0000, 20); // FCS present, 4 bytes
    writeFileSync(join(work, 'fcs.pcap'), fcs);
    assert.equal((await readWith(join(work, 'fcs.pcap'), [])).reader, 'libpcap');
  });
});

describe('ClassicPcapReader', () => {
  it('records straddling its read chunks, up to 256 KiB each, arrive whole and in order', () => {
    const random = prng(11);
    const sizes: number[] = [];
    let total = 0;
    // a few MiB: jumbo records (up to the maximum) between small ones
    while (total < 5 * 1024 * 1024) {
      const size = random() < 0.02 ? 200_000 + Math.floor(random() * 62_145) : 60 + Math.floor(random() * 1400);
      sizes.push(size);
      total += 16 + size;
    }
    const file = Buffer.alloc(24 + total);
    file.writeUInt32LE(0xa1b2c3d4, 0);
    file.writeUInt16LE(2, 4);
    file.writeUInt16LE(4, 6);
    file.writeUInt32LE(262_144, 16);
    file.writeUInt32LE(1, 20);
    let at = 24;
    sizes.forEach((size, i) => {
      file.writeUInt32LE(1_700_000_000 + i, at);
      file.writeUInt32LE(i % 1_000_000, at + 4);
      file.writeUInt32LE(size, at + 8);
      file.writeUInt32LE(size + 4, at + 12);
      // each record's bytes name its index, first and last
      file.writeUInt32LE(i, at + 16);
      file.writeUInt32LE(i, at + 16 + size - 4);
      at += 16 + size;
    });
    const path = join(work, 'chunks.pcap');
    writeFileSync(path, file);

    const reader = ClassicPcapReader.open(path);
    assert.ok(reader);
    assert.equal(reader.linkType, LinkType.ethernet);
    let index = 0;
    const outcome = reader.readAll((data, start, caplen, wirelen, seconds, microseconds) => {
      const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      assert.equal(caplen, sizes[index]);
      assert.equal(wirelen, caplen + 4);
      assert.equal(view.readUInt32LE(start), index);
      assert.equal(view.readUInt32LE(start + caplen - 4), index);
      assert.equal(seconds >>> 0, 1_700_000_000 + index);
      assert.equal(microseconds, index % 1_000_000);
      index++;
      return true;
    });
    reader.close();
    assert.equal(outcome, 'end_of_file');
    assert.equal(index, sizes.length);
  });

  it('stops when the sink says so, and throws PcapFileReadError on a cut', () => {
    const frames = Array.from({ length: 20 }, (_, i) => udpFrame('10.0.0.1', '10.0.0.2', 1000 + i, 53, 20));
    const parts = [Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex')];
    for (const frame of frames) {
      const header = Buffer.alloc(16);
      header.writeUInt32LE(frame.length, 8);
      header.writeUInt32LE(frame.length, 12);
      parts.push(header, Buffer.from(frame));
    }
    const whole = Buffer.concat(parts);
    writeFileSync(join(work, 'small.pcap'), whole);
    const reader = ClassicPcapReader.open(join(work, 'small.pcap'))!;
    let seen = 0;
    assert.equal(
      reader.readAll(() => ++seen < 5),
      'stopped',
    );
    assert.equal(seen, 5);
    reader.close();

    writeFileSync(join(work, 'small-cut.pcap'), whole.subarray(0, whole.length - 3));
    const cut = ClassicPcapReader.open(join(work, 'small-cut.pcap'))!;
    seen = 0;
    assert.throws(
      () => cut.readAll(() => (++seen, true)),
      (error: unknown) => error instanceof PcapFileReadError && /only got/.test(error.message),
    );
    assert.equal(seen, 19);
    cut.close();
  });

  it('declines what is not a classic pcap file (libpcap will say what it is)', () => {
    writeFileSync(join(work, 'empty.pcap'), '');
    assert.equal(ClassicPcapReader.open(join(work, 'empty.pcap')), undefined);
    assert.equal(ClassicPcapReader.open(fixture('mixed.pcapng')), undefined);
    assert.equal(ClassicPcapReader.open(join(work, 'does-not-exist.pcap')), undefined);
    assert.equal(ClassicPcapReader.open(work), undefined);
  });
});
