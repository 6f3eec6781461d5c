/**
 * The probe over NetFlow v9 and IPFIX against real parts, both address families.
 * Every reference is independent of flowprobe: tshark's per-5-tuple totals of the
 * capture (test/helpers/tshark.ts, IPv4 ∪ IPv6) are what the readers must show.
 *
 *  1. Every fixture through `flowprobe -r … -n HOST:PORT/9` and `/10` into a real
 *     nfcapd: nfdump's packets and IP bytes per 5-tuple equal tshark's, exactly.
 *  2. Second readers of the very datagrams the probe sent (a UDP sink writes them
 *     to a file): libfixbuf's ipfixDump reads the IPFIX messages, tshark dissects
 *     both versions from a pcap of them; both show every record, per 5-tuple as
 *     tshark counts the capture; tshark has no expert info (no data set without
 *     its template, no unexpected sequence) and ipfixDump no sequence warning.
 *  3. Template refresh: by count (--template-refresh-packets 3, small datagrams:
 *     exactly every 3rd datagram carries the templates), and by time
 *     (--template-refresh-seconds 1, live on a veth pair: templates again after
 *     ≥ 1 s, never before).
 *  4. A restart: two runs to one nfcapd with the same source id; the second run
 *     sends templates at once and starts its sequence at 0; nfdump has both runs'
 *     flows.
 *  5. NetFlow v5 beside IPv6: v5 gets exactly the IPv4 flows, the IPv6 flows are
 *     counted as not exported and warned about once; v5, v9 and IPFIX collectors
 *     in one run each get their share, exactly.
 *  6. Live IPv6: two fixtures replayed with tcpreplay over a veth pair between
 *     network namespaces, the probe exporting IPFIX to nfcapd inside one of them.
 *     IPv6 is disabled on the veth pair (sysctl in both namespaces before the pair
 *     is made), so the kernel adds no link-local traffic of its own (neighbour and
 *     router solicitation, MLD): nfdump must hold the fixtures' flows and nothing
 *     else, compared unfiltered.
 *
 * Quirks of the tools (asserted, so a change shows up):
 *  - nfdump 1.7.1 stores destination port 0 for SCTP (132) and UDP-Lite (136) from
 *    IPFIX; from NetFlow v9 it keeps the port (ipv6.pcap's SCTP flow shows both).
 *  - nfdump 1.7.1 counts the IPFIX sequence number in flow records only, so each
 *    message carrying the options data record (with the templates) but the last
 *    is followed by one "sequence error"; tshark and ipfixDump count per RFC 7011
 *    and are silent.
 *  - nfcapd is stopped only once its socket's receive queue is empty (stopDrained):
 *    the v5 case below once stored nothing at all, the probe's datagram most likely
 *    still queued when SIGTERM ended nfcapd's loop (seen twice early on, not since).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIXTURE_FILES, IPV6_FIXTURE_FILES, fixture } from './helpers/fixtures.js';
import { MessageReader, ipv6ToBytes, type DecodedMessage } from './helpers/flow-batches.js';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair, namespaceForSuite } from './helpers/netns.js';
import { pcapBytes, udpFrame, type TimedFrame } from './helpers/pcap-writer.js';
import { freeUdpPort, logRecords, run, runProbe, start, startProbe, stopped, summaryText, waitFor, type RunResult, type Running } from './helpers/processes.js';
import { needsRoot, needsTool } from './helpers/requirements.js';
import { tsharkFlowTotals, tsharkFlowTotals6, tsharkPacketCount } from './helpers/tshark.js';
import { udpPcapBytes } from './helpers/udp-pcap.js';

type Totals = Map<string, { packets: number; octets: number }>;
type Version = 9 | 10;

const ALL_FIXTURES = [...FIXTURE_FILES, ...IPV6_FIXTURE_FILES];
const CFLOW_PORT = 2055;

const toolsSkip = needsTool('nfcapd', 'nfdump') || needsTool('tshark', 'tshark') || needsTool('ipfixDump', 'libfixbuf-tools');

// ---------------------------------------------------------------- references

const tsharkCache = new Map<string, Promise<{ v4: Totals; v6: Totals }>>();

/** tshark's totals of a capture, per family (computed once per file). */
function reference(path: string): Promise<{ v4: Totals; v6: Totals }> {
  let cached = tsharkCache.get(path);
  if (cached === undefined) {
    cached = Promise.all([tsharkFlowTotals(path), tsharkFlowTotals6(path)]).then(([v4, v6]) => ({ v4, v6 }));
    tsharkCache.set(path, cached);
  }
  return cached;
}

/** Totals summed per key over several maps. */
function merged(...maps: Totals[]): Totals {
  const out: Totals = new Map();
  for (const map of maps) {
    for (const [key, t] of map) {
      const have = out.get(key) ?? { packets: 0, octets: 0 };
      out.set(key, { packets: have.packets + t.packets, octets: have.octets + t.octets });
    }
  }
  return out;
}

/** What nfdump 1.7.1 stores from IPFIX: destination port 0 for SCTP and UDP-Lite (module comment). */
function asNfdumpStores(totals: Totals, version: Version | 5): Totals {
  if (version !== 10) return totals;
  const out: Totals = new Map();
  for (const [key, t] of totals) {
    const [src, dst, proto, sport] = key.split(' ');
    const k = proto === '132' || proto === '136' ? `${src} ${dst} ${proto} ${sport} 0` : key;
    const have = out.get(k) ?? { packets: 0, octets: 0 };
    out.set(k, { packets: have.packets + t.packets, octets: have.octets + t.octets });
  }
  return out;
}

function sorted(map: Totals): [string, { packets: number; octets: number }][] {
  return [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function sums(map: Totals): { packets: number; octets: number } {
  let packets = 0;
  let octets = 0;
  for (const t of map.values()) {
    packets += t.packets;
    octets += t.octets;
  }
  return { packets, octets };
}

/** One IPv6 address in one text form (RFC 5952 as WHATWG writes it), whatever the reader printed. */
function canonical(address: string): string {
  return address.includes(':') ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

// ---------------------------------------------------------------- the probe's summary

function summaryNumber(text: string, pattern: RegExp): number {
  const m = pattern.exec(text);
  assert.ok(m?.[1] !== undefined, `summary has ${pattern}:\n${text}`);
  return Number(m[1]);
}

/** "collector HOST:PORT: D datagrams, R records sent" */
function collectorLine(result: RunResult, label: string): { datagrams: number; records: number } {
  const summary = summaryText(result.stderr);
  const m = new RegExp(`collector ${label.replace(/[.[\]]/g, '\\$&')}: (\\d+) datagrams, (\\d+) records sent; send errors 0`).exec(summary);
  assert.ok(m, `summary line for collector ${label} without send errors:\n${summary}`);
  return { datagrams: Number(m[1]), records: Number(m[2]) };
}

/** The per-family lines agree with tshark's packets and IP bytes. */
function assertFamilyLines(result: RunResult, ref: { v4: Totals; v6: Totals }): void {
  const summary = summaryText(result.stderr);
  for (const [family, totals] of [
    ['IPv4', ref.v4],
    ['IPv6', ref.v6],
  ] as const) {
    const m = new RegExp(`  ${family}: (\\d+) packets \\((\\d+) IP bytes\\), (\\d+) flows`).exec(summary);
    assert.ok(m, `summary has an ${family} line:\n${summary}`);
    assert.deepEqual({ packets: Number(m[1]), octets: Number(m[2]) }, sums(totals), `${family} line`);
  }
}

// ---------------------------------------------------------------- a UDP sink

interface Received {
  bytes: Buffer;
  /** unix ms the sink read it */
  atMs: number;
}

/** Writes each datagram as [u32 length][f64 unix ms][bytes]; says "listening" on stderr once bound. */
const SINK_SCRIPT = `
const [port, file] = process.argv.slice(1);
const fs = require('node:fs');
const fd = fs.openSync(file, 'w');
const socket = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 16 << 20 });
socket.on('message', (m) => {
  const head = Buffer.alloc(12);
  head.writeUInt32BE(m.length, 0);
  head.writeDoubleBE(Date.now(), 4);
  fs.writeSync(fd, Buffer.concat([head, m]));
});
socket.bind(Number(port), '127.0.0.1', () => process.stderr.write('listening\\n'));
process.on('SIGTERM', () => { fs.closeSync(fd); process.exit(0); });
`;

/** A collector stand-in that keeps every datagram it gets, in order (on 127.0.0.1, or inside a namespace). */
class DatagramSink {
  private constructor(
    readonly port: number,
    private readonly file: string,
    private readonly dir: string,
    private readonly running: Running,
  ) {}

  static async start(options: { prefix?: string[]; port?: number } = {}): Promise<DatagramSink> {
    const port = options.port ?? (await freeUdpPort());
    const dir = mkdtempSync(join(tmpdir(), 'flowprobe-sink-'));
    const file = join(dir, 'datagrams.bin');
    const argv = [...(options.prefix ?? []), process.execPath, '-e', SINK_SCRIPT, String(port), file];
    const running = start(argv[0]!, argv.slice(1));
    try {
      await waitFor(() => running.child.exitCode !== null || running.stderrSoFar().includes('listening'), 15_000, `the sink on port ${port}`);
    } catch (error) {
      running.child.kill('SIGTERM');
      throw error;
    }
    if (running.child.exitCode !== null) throw new Error(`sink failed: ${running.stderrSoFar()}`);
    return new DatagramSink(port, file, dir, running);
  }

  received(): Received[] {
    const buffer = existsSync(this.file) ? readFileSync(this.file) : Buffer.alloc(0);
    const out: Received[] = [];
    for (let o = 0; o + 12 <= buffer.length; ) {
      const length = buffer.readUInt32BE(o);
      if (o + 12 + length > buffer.length) break;
      out.push({ bytes: Buffer.from(buffer.subarray(o + 12, o + 12 + length)), atMs: buffer.readDoubleBE(o + 4) });
      o += 12 + length;
    }
    return out;
  }

  /** Wait for `count` datagrams (what the probe says it sent), then stop; returns them. */
  async collect(count: number): Promise<Received[]> {
    await waitFor(() => this.received().length >= count, 15_000, `${count} datagrams at the sink`).catch(() => undefined);
    return this.dispose();
  }

  async dispose(): Promise<Received[]> {
    if (this.running.child.exitCode === null) this.running.child.kill('SIGTERM');
    await this.running.result.catch(() => undefined);
    const got = this.received();
    rmSync(this.dir, { recursive: true, force: true });
    return got;
  }
}

// ---------------------------------------------------------------- reading the datagrams

const carriesTemplates = (m: DecodedMessage): boolean => m.templatesDefined.length > 0;

/** The messages read in order by the independent reader (templates learnt from the stream itself). */
function readMessages(datagrams: readonly Received[]): DecodedMessage[] {
  const reader = new MessageReader();
  return datagrams.map((d) => reader.read(d.bytes));
}

/**
 * One run's messages, as RFC 3954 / 7011 want them: the first carries every
 * template (256–259, options 260 and its data record), the source id is the
 * one given, and the sequence starts at 0 and counts v9 packets / IPFIX data
 * records (options data included).
 */
function assertRunMessages(version: Version, messages: readonly DecodedMessage[], sourceId: number): void {
  assert.ok(messages.length > 0, 'datagrams were sent');
  let sequence = 0;
  messages.forEach((m, i) => {
    assert.equal(m.version, version, `datagram ${i} version`);
    assert.equal(m.sourceId, sourceId, `datagram ${i} source id`);
    assert.equal(m.sequence, sequence, `datagram ${i} sequence`);
    if (carriesTemplates(m)) {
      assert.deepEqual([...m.templatesDefined].sort(), [256, 257, 258, 259], `datagram ${i} templates`);
      assert.deepEqual(m.optionsTemplatesDefined, [260]);
      assert.equal(m.optionsRecords.length, 1);
    }
    sequence += version === 9 ? 1 : m.records.length + m.optionsRecords.length;
  });
  assert.ok(carriesTemplates(messages[0]!), 'the first datagram carries the templates');
}

function addressOf(value: bigint | string | undefined): string {
  if (value === undefined) return '?';
  if (typeof value === 'string') {
    const groups = value.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
    return canonical(groups.join(':'));
  }
  const n = Number(value);
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

/** Packets and octets per 5-tuple from the messages' data records. */
function messageTotals(messages: readonly DecodedMessage[]): Totals {
  const out: Totals = new Map();
  for (const m of messages) {
    for (const r of m.records) {
      const f = r.fields;
      const key = `${addressOf(f.get(8) ?? f.get(27))} ${addressOf(f.get(12) ?? f.get(28))} ${f.get(4)} ${f.get(7)} ${f.get(11)}`;
      const t = out.get(key) ?? { packets: 0, octets: 0 };
      out.set(key, { packets: t.packets + Number(f.get(2)), octets: t.octets + Number(f.get(1)) });
    }
  }
  return out;
}

/** Datagrams i with templates are exactly those with i % every === 0. */
function assertTemplatesEvery(messages: readonly DecodedMessage[], every: number): void {
  const carrying = messages.map((m, i) => [i, carriesTemplates(m)] as const).filter(([, c]) => c).map(([i]) => i);
  const expected = messages.map((_, i) => i).filter((i) => i % every === 0);
  assert.deepEqual(carrying, expected, `datagrams carrying templates (of ${messages.length})`);
}

// ---------------------------------------------------------------- ipfixDump

interface DumpRecord {
  tid: number;
  fields: Map<number, string>;
}

function parseIpfixDump(text: string): DumpRecord[] {
  const out: DumpRecord[] = [];
  let current: DumpRecord | undefined;
  for (const line of text.split('\n')) {
    if (/^--- data record \d+ ---$/.test(line)) {
      current = { tid: -1, fields: new Map() };
      out.push(current);
      continue;
    }
    if (line.startsWith('--- ')) {
      current = undefined;
      continue;
    }
    if (current === undefined) continue;
    const tid = /count:\s*\d+\s+tid:\s*(\d+)/.exec(line);
    if (tid) current.tid = Number(tid[1]);
    const field = /^\s*\((\d+)\)\s*(?:\(S\))?\s*\S+ : (.*)$/.exec(line);
    if (field) current.fields.set(Number(field[1]), field[2]!.trim());
  }
  return out;
}

interface DumpResult {
  totals: Totals;
  flowRecords: number;
  optionsRecords: number;
  messages: number;
  stderr: string;
}

async function ipfixDump(dir: string, datagrams: readonly Received[]): Promise<DumpResult> {
  const file = join(dir, 'messages.ipfix');
  writeFileSync(file, Buffer.concat(datagrams.map((d) => d.bytes)));
  const result = await run('ipfixDump', ['-i', file], { env: { ...process.env, TZ: 'UTC' } });
  assert.equal(result.code, 0, result.stderr);
  const records = parseIpfixDump(result.stdout);
  const totals: Totals = new Map();
  let flowRecords = 0;
  let optionsRecords = 0;
  for (const r of records) {
    if (r.tid === 260) {
      optionsRecords++;
      continue;
    }
    flowRecords++;
    const f = r.fields;
    const key = `${canonical(f.get(8) ?? f.get(27) ?? '?')} ${canonical(f.get(12) ?? f.get(28) ?? '?')} ${f.get(4)} ${f.get(7)} ${f.get(11)}`;
    const t = totals.get(key) ?? { packets: 0, octets: 0 };
    totals.set(key, { packets: t.packets + Number(f.get(2)), octets: t.octets + Number(f.get(1)) });
  }
  const stats = /(\d+) Messages, (\d+) Data Records/.exec(result.stdout);
  assert.ok(stats, `ipfixDump's statistics line:\n${result.stdout.slice(-500)}`);
  return { totals, flowRecords, optionsRecords, messages: Number(stats[1]), stderr: result.stderr };
}

// ---------------------------------------------------------------- tshark's cflow dissector

type Json = string | Json[] | { [key: string]: Json };

interface CflowResult {
  totals: Totals;
  flowRecords: number;
  /** data sets (id ≥ 256) tshark showed no record of: no template */
  undecodedSets: string[];
  /** expert infos and malformed markers, one line per frame that has any */
  experts: string[];
}

function writeDatagramPcap(dir: string, name: string, datagrams: readonly Received[]): string {
  const path = join(dir, name);
  writeFileSync(path, udpPcapBytes(datagrams.map((d) => d.bytes), { src: '127.0.0.1', dst: '127.0.0.1', sport: 40000, dport: CFLOW_PORT }));
  return path;
}

async function tsharkCflow(pcap: string): Promise<CflowResult> {
  const decode = ['-r', pcap, '-n', '-d', `udp.port==${CFLOW_PORT},cflow`];
  const [json, experts] = await Promise.all([
    run('tshark', [...decode, '-T', 'json', '-J', 'cflow', '--no-duplicate-keys']),
    run('tshark', [...decode, '-T', 'fields', '-E', 'occurrence=a', '-e', '_ws.expert.message', '-e', '_ws.malformed']),
  ]);
  assert.equal(json.code, 0, json.stderr);
  assert.equal(experts.code, 0, experts.stderr);
  const frames = JSON.parse(json.stdout) as { _source: { layers: { cflow?: Record<string, Json> } } }[];
  const out: CflowResult = { totals: new Map(), flowRecords: 0, undecodedSets: [], experts: experts.stdout.split('\n').filter((l) => l.trim() !== '') };
  frames.forEach((frame, n) => {
    const cflow = frame._source.layers.cflow;
    assert.ok(cflow !== undefined, `frame ${n + 1} dissected as cflow`);
    for (const [setName, set] of Object.entries(cflow)) {
      const id = /^(?:FlowSet|Set) \d+ \[id=(\d+)\]/.exec(setName)?.[1];
      if (id === undefined || Number(id) < 256 || Number(id) === 260 || typeof set !== 'object' || Array.isArray(set)) continue;
      const flows = Object.entries(set).filter(([k]) => /^Flow \d+$/.test(k));
      if (flows.length === 0) out.undecodedSets.push(`frame ${n + 1}: ${setName}`);
      for (const [, flow] of flows) {
        const f = flow as Record<string, Json>;
        const s = (k: string): string => (typeof f[k] === 'string' ? f[k] : '?');
        const src = canonical(f['cflow.srcaddr'] !== undefined ? s('cflow.srcaddr') : s('cflow.srcaddrv6'));
        const dst = canonical(f['cflow.dstaddr'] !== undefined ? s('cflow.dstaddr') : s('cflow.dstaddrv6'));
        const key = `${src} ${dst} ${s('cflow.protocol')} ${s('cflow.srcport')} ${s('cflow.dstport')}`;
        const t = out.totals.get(key) ?? { packets: 0, octets: 0 };
        out.totals.set(key, { packets: t.packets + Number(s('cflow.packets')), octets: t.octets + Number(s('cflow.octets')) });
        out.flowRecords++;
      }
    }
  });
  return out;
}

/**
 * Stop nfcapd once its socket has nothing left to read: on SIGTERM it ends its loop
 * whether or not a datagram still waits in the receive queue, and that one is lost.
 * The queue is /proc/net/udp's rx_queue for its port (in its namespace: `prefix`).
 */
async function stopDrained(nfcapd: Nfcapd, prefix: string[] = []): Promise<string> {
  const port = nfcapd.port.toString(16).toUpperCase().padStart(4, '0');
  const queued = async (): Promise<number> => {
    const argv = [...prefix, 'cat', '/proc/net/udp'];
    const table = (await run(argv[0]!, argv.slice(1))).stdout;
    let bytes = 0;
    for (const line of table.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${port}`)) bytes += parseInt(f[4]!.split(':')[1]!, 16);
    }
    return bytes;
  };
  await waitFor(async () => (await queued()) === 0, 10_000, `nfcapd on port ${nfcapd.port} to read every datagram`);
  return nfcapd.stop();
}

before(async () => {
  // bigflow.pcap (8 MB) is generated, not committed
  if (!existsSync(fixture('bigflow.pcap'))) {
    const made = await run('/usr/bin/python3', [fixture('generate.py'), 'bigflow']);
    assert.equal(made.code, 0, made.stderr);
  }
});

// ---------------------------------------------------------------- 1

describe('nfcapd receives over v9 and IPFIX what tshark counts, per 5-tuple, both families', { skip: toolsSkip }, () => {
  for (const version of [9, 10] as const) {
    for (const name of ALL_FIXTURES) {
      test(`${name} → nfcapd over ${version === 9 ? 'NetFlow v9' : 'IPFIX'}`, async () => {
        const nfcapd = await Nfcapd.start();
        try {
          const label = `127.0.0.1:${nfcapd.port}`;
          const result = await runProbe(['-r', fixture(name), '-n', `${label}/${version}`]);
          assert.equal(result.code, 0, result.stderr);
          const log = await stopDrained(nfcapd);
          const ref = await reference(fixture(name));
          const expected = merged(ref.v4, ref.v6);
          assert.ok(expected.size > 0, 'tshark found flows');
          assert.deepEqual(sorted(await nfcapd.totals()), sorted(asNfdumpStores(expected, version)));
          const sent = collectorLine(result, label);
          assert.equal((await nfcapd.stat())['Flows'], sent.records, 'nfdump stored what the probe says it sent');
          assertFamilyLines(result, ref);
          // with -r the refresh is by count (20) alone: templates in datagrams 0, 20, 40, …
          const templated = Math.ceil(sent.datagrams / 20);
          const jumps = version === 9 ? 0 : templated - ((sent.datagrams - 1) % 20 === 0 ? 1 : 0);
          assert.match(log, new RegExp(`Sequence Errors: ${jumps}, Bad Packets: 0`), log);
        } finally {
          await nfcapd.dispose();
        }
      });
    }
  }
});

// ---------------------------------------------------------------- 2

describe('second readers of the datagrams themselves: ipfixDump and tshark', { skip: toolsSkip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-readers-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const name of ALL_FIXTURES) {
    test(`${name}: every record read back as tshark counts the capture, no template missing, sequences as the RFCs count`, async () => {
      const sinks = { 9: await DatagramSink.start(), 10: await DatagramSink.start() };
      let result: RunResult;
      const got: Record<Version, Received[]> = { 9: [], 10: [] };
      try {
        result = await runProbe(['-r', fixture(name), '-n', `127.0.0.1:${sinks[9].port}/9`, '-n', `127.0.0.1:${sinks[10].port}/10`, '--source-id', '4242']);
        assert.equal(result.code, 0, result.stderr);
        for (const version of [9, 10] as const) got[version] = await sinks[version].collect(collectorLine(result, `127.0.0.1:${sinks[version].port}`).datagrams);
      } finally {
        await Promise.all([sinks[9].dispose(), sinks[10].dispose()]);
      }
      const ref = await reference(fixture(name));
      const expected = merged(ref.v4, ref.v6);
      assert.ok(expected.size > 0, 'tshark found flows');
      const dir = mkdtempSync(join(work, 'run-'));
      const dissections = {
        9: tsharkCflow(writeDatagramPcap(dir, 'v9.pcap', got[9])),
        10: tsharkCflow(writeDatagramPcap(dir, 'v10.pcap', got[10])),
      };
      for (const version of [9, 10] as const) {
        const sent = collectorLine(result, `127.0.0.1:${sinks[version].port}`);
        assert.equal(got[version].length, sent.datagrams, `v${version}: datagrams received`);
        // the test's own reader: headers, templates first, sequence numbers
        const messages = readMessages(got[version]);
        assertRunMessages(version, messages, 4242);
        assert.equal(messages.reduce((a, m) => a + m.records.length, 0), sent.records);
        // tshark: every data set decoded with its template, nothing to say about sequences
        const dissected = await dissections[version];
        assert.deepEqual(dissected.experts, [], `v${version}: tshark's expert info`);
        assert.deepEqual(dissected.undecodedSets, [], `v${version}: data sets tshark could not decode`);
        assert.equal(dissected.flowRecords, sent.records);
        assert.deepEqual(sorted(dissected.totals), sorted(expected), `v${version}: tshark's cflow totals`);
      }
      // ipfixDump (libfixbuf): every IPFIX record, no sequence complaint
      const dump = await ipfixDump(dir, got[10]);
      assert.equal(dump.stderr.trim(), '', 'ipfixDump said nothing on stderr (it warns on sequence numbers there)');
      assert.equal(dump.messages, got[10].length);
      assert.equal(dump.flowRecords, collectorLine(result, `127.0.0.1:${sinks[10].port}`).records);
      assert.equal(dump.optionsRecords, readMessages(got[10]).filter(carriesTemplates).length);
      assert.deepEqual(sorted(dump.totals), sorted(expected), "ipfixDump's totals");
    });
  }

  test('the checks can fail: a stream without its first datagram, or with one left out, is caught', async () => {
    const sink = await DatagramSink.start();
    let got: Received[];
    try {
      // 512-byte datagrams: mixed-v4v6.pcap's 24 flows take several
      const result = await runProbe(['-r', fixture('mixed-v4v6.pcap'), '-n', `127.0.0.1:${sink.port}/10`, '--export-max-bytes', '512']);
      assert.equal(result.code, 0, result.stderr);
      got = await sink.collect(collectorLine(result, `127.0.0.1:${sink.port}`).datagrams);
    } finally {
      await sink.dispose();
    }
    assert.ok(got.length >= 4, `${got.length} datagrams`);
    const dir = mkdtempSync(join(work, 'broken-'));
    // no templates: tshark cannot decode the data sets and says so
    const headless = await tsharkCflow(writeDatagramPcap(dir, 'headless.pcap', got.slice(1)));
    assert.ok(headless.undecodedSets.length > 0, 'undecoded sets seen');
    assert.ok(headless.experts.length > 0, 'expert info about the missing templates');
    // a datagram lost in the middle: tshark and ipfixDump see the sequence jump, and the totals differ
    const gap = [...got.slice(0, 2), ...got.slice(3)];
    const dissected = await tsharkCflow(writeDatagramPcap(dir, 'gap.pcap', gap));
    assert.ok(dissected.experts.some((line) => /sequence/i.test(line)), dissected.experts.join('\n'));
    const ref = await reference(fixture('mixed-v4v6.pcap'));
    assert.notDeepEqual(sorted(dissected.totals), sorted(merged(ref.v4, ref.v6)));
    const dump = await ipfixDump(dir, gap);
    assert.match(dump.stderr, /sequence/i);
    assert.throws(() => assertRunMessages(10, readMessages(gap), 0), /sequence/);
  });
});

// ---------------------------------------------------------------- 3 (by count)

/** An Ethernet + IPv6 + UDP frame with `payload` bytes of payload (UDP checksum left 0: no reader checks it). */
function udp6Frame(src: string, dst: string, sport: number, dport: number, payload: number): Uint8Array {
  const frame = Buffer.alloc(14 + 40 + 8 + payload);
  frame.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0);
  frame.writeUInt16BE(0x86dd, 12);
  frame.writeUInt32BE(0x60000000 | (sport & 0xfffff), 14);
  frame.writeUInt16BE(8 + payload, 18);
  frame[20] = 17;
  frame[21] = 64;
  frame.set(ipv6ToBytes(src), 22);
  frame.set(ipv6ToBytes(dst), 38);
  frame.writeUInt16BE(sport, 54);
  frame.writeUInt16BE(dport, 56);
  frame.writeUInt16BE(8 + payload, 58);
  return frame;
}

/** Many short UDP flows of both families, interleaved: many datagrams of both data templates. */
function manyFlowsCapture(path: string, flows: number): void {
  const frames: TimedFrame[] = [];
  for (let i = 0; i < flows; i++) {
    const time = 1_767_225_600 + i / 100;
    frames.push({ time, frame: udpFrame(`10.1.${i >> 8}.${i & 0xff}`, '192.0.2.9', 10_000 + i, 53, 20 + (i % 50)) });
    frames.push({ time: time + 0.001, frame: udp6Frame(`2001:db8:1::${(i + 1).toString(16)}`, '2001:db8:2::9', 20_000 + i, 443, 30 + (i % 70)) });
  }
  writeFileSync(path, pcapBytes(1, frames));
}

describe('template refresh by count, end to end', { skip: toolsSkip }, () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-refresh-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('--template-refresh-packets 3, --export-max-bytes 512: templates in exactly every 3rd datagram, v9 and IPFIX', async () => {
    const capture = join(work, 'many.pcap');
    manyFlowsCapture(capture, 300);
    const sinks = { 9: await DatagramSink.start(), 10: await DatagramSink.start() };
    const got: Record<Version, Received[]> = { 9: [], 10: [] };
    let result: RunResult;
    try {
      result = await runProbe([
        '-r', capture, '-n', `127.0.0.1:${sinks[9].port}/9`, '-n', `127.0.0.1:${sinks[10].port}/10`,
        '--template-refresh-packets', '3', '--export-max-bytes', '512', '--source-id', '7',
      ]);
      assert.equal(result.code, 0, result.stderr);
      for (const version of [9, 10] as const) got[version] = await sinks[version].collect(collectorLine(result, `127.0.0.1:${sinks[version].port}`).datagrams);
    } finally {
      await Promise.all([sinks[9].dispose(), sinks[10].dispose()]);
    }
    const ref = await reference(capture);
    assert.equal(ref.v4.size, 300);
    assert.equal(ref.v6.size, 300);
    for (const version of [9, 10] as const) {
      const datagrams = got[version];
      assert.ok(datagrams.length >= 60, `v${version}: ${datagrams.length} datagrams`);
      for (const d of datagrams) assert.ok(d.bytes.length <= 512, `a ${d.bytes.length}-byte datagram`);
      const messages = readMessages(datagrams);
      assertRunMessages(version, messages, 7);
      assertTemplatesEvery(messages, 3);
      assert.deepEqual(sorted(messageTotals(messages)), sorted(merged(ref.v4, ref.v6)));
      const dissected = await tsharkCflow(writeDatagramPcap(work, `v${version}.pcap`, datagrams));
      assert.deepEqual(dissected.experts, []);
      assert.deepEqual(sorted(dissected.totals), sorted(merged(ref.v4, ref.v6)));
    }
  });

  test('the every-3rd check fails on a stream with a datagram left out', () => {
    const messages = Array.from({ length: 9 }, (_, i) => ({ templatesDefined: i % 3 === 0 ? [256] : [] }) as unknown as DecodedMessage);
    assertTemplatesEvery(messages, 3);
    assert.throws(() => assertTemplatesEvery([...messages.slice(0, 4), ...messages.slice(5)], 3), /templates/);
  });
});

// ---------------------------------------------------------------- 4

describe('a probe restart: both runs stored by one nfcapd', { skip: toolsSkip }, () => {
  for (const version of [9, 10] as const) {
    test(`${version === 9 ? 'NetFlow v9' : 'IPFIX'}: same source id, templates at once, sequence from 0 again; nfdump has both runs' flows`, async () => {
      const nfcapd = await Nfcapd.start();
      const runs = ['mixed-v4v6.pcap', 'ipv6.pcap', 'mixed-v4v6.pcap'];
      try {
        const perRun: DecodedMessage[][] = [];
        for (const name of runs) {
          const sink = await DatagramSink.start();
          try {
            const result = await runProbe(['-r', fixture(name), '-n', `127.0.0.1:${nfcapd.port}/${version}`, '-n', `127.0.0.1:${sink.port}/${version}`, '--source-id', '99']);
            assert.equal(result.code, 0, result.stderr);
            const sent = collectorLine(result, `127.0.0.1:${sink.port}`);
            assert.deepEqual(collectorLine(result, `127.0.0.1:${nfcapd.port}`), sent, 'both collectors were sent the same');
            // the sink sees what nfcapd was sent: each run starts with templates, sequence 0
            const messages = readMessages(await sink.collect(sent.datagrams));
            assert.equal(messages.length, sent.datagrams);
            assertRunMessages(version, messages, 99);
            perRun.push(messages);
          } finally {
            await sink.dispose();
          }
        }
        const log = await stopDrained(nfcapd);
        const refs = await Promise.all(runs.map((name) => reference(fixture(name))));
        const expected = merged(...refs.flatMap((r) => [r.v4, r.v6]));
        assert.deepEqual(sorted(await nfcapd.totals()), sorted(asNfdumpStores(expected, version)));
        const stat = await nfcapd.stat();
        assert.equal(stat['Flows'], perRun.flat().reduce((a, m) => a + m.records.length, 0));
        assert.match(log, /Bad Packets: 0/, log);
      } finally {
        await nfcapd.dispose();
      }
    });
  }
});

// ---------------------------------------------------------------- 5

describe('NetFlow v5 beside IPv6', { skip: toolsSkip }, () => {
  test('-n A (v5 by default): A has exactly the IPv4 flows; the IPv6 flows are counted as not exported, warned about once', async () => {
    const nfcapd = await Nfcapd.start();
    try {
      const result = await runProbe(['-r', fixture('mixed-v4v6.pcap'), '-n', `127.0.0.1:${nfcapd.port}`]);
      assert.equal(result.code, 0, result.stderr);
      const log = await stopDrained(nfcapd);
      assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
      const ref = await reference(fixture('mixed-v4v6.pcap'));
      assert.ok(ref.v4.size > 0 && ref.v6.size > 0, 'both families in the fixture');
      const summary = summaryText(result.stderr);
      assert.deepEqual(sorted(await nfcapd.totals()), sorted(ref.v4), `${log}\n${summary}`);
      assert.deepEqual(collectorLine(result, `127.0.0.1:${nfcapd.port}`).records, ref.v4.size);
      assert.equal(summaryNumber(summary, /flows not exported: ipv6_needs_v9_or_ipfix (\d+) \(/), ref.v6.size, summary);
      assert.equal(summaryNumber(summary, / {2}IPv6: \d+ packets \(\d+ IP bytes\), (\d+) flows/), ref.v6.size);
      assertFamilyLines(result, ref);
      const warnings = logRecords(result.stderr).filter((r) => r.level === 40 && /IPv6/.test(r.msg));
      assert.equal(warnings.length, 1, warnings.map((w) => w.msg).join('\n'));
      assert.match(warnings[0]!.msg, /--export-version 9 or 10/);
    } finally {
      await nfcapd.dispose();
    }
  });

  test('-n A/5 -n B/9 -n C/10 at once: A has the IPv4 flows, B and C both families, all exact', async () => {
    const nfcapd = { 5: await Nfcapd.start(), 9: await Nfcapd.start(), 10: await Nfcapd.start() };
    try {
      const result = await runProbe(['-r', fixture('mixed-v4v6.pcap'), ...([5, 9, 10] as const).flatMap((v) => ['-n', `127.0.0.1:${nfcapd[v].port}/${v}`])]);
      assert.equal(result.code, 0, result.stderr);
      const ref = await reference(fixture('mixed-v4v6.pcap'));
      for (const version of [5, 9, 10] as const) {
        const log = await stopDrained(nfcapd[version]);
        assert.match(log, /Sequence Errors: \d+, Bad Packets: 0/, log);
        if (version !== 10) assert.match(log, /Sequence Errors: 0,/, log);
        const expected = version === 5 ? ref.v4 : merged(ref.v4, ref.v6);
        assert.deepEqual(sorted(await nfcapd[version].totals()), sorted(asNfdumpStores(expected, version)), `collector /${version}`);
        const sent = collectorLine(result, `127.0.0.1:${nfcapd[version].port}`);
        assert.equal((await nfcapd[version].stat())['Flows'], sent.records, `collector /${version}: records sent`);
      }
      assertFamilyLines(result, ref);
    } finally {
      await Promise.all(Object.values(nfcapd).map((n) => n.dispose()));
    }
  });
});

// ---------------------------------------------------------------- 3 (by time) and 6: live, on a veth pair

/** Scrape the probe's metrics from inside the namespace. */
async function scrape(ns: string, address: string): Promise<string> {
  const script = `fetch('http://${address}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t), () => {})`;
  return (await run('ip', ['netns', 'exec', ns, process.execPath, '-e', script])).stdout;
}

describe('live, IPv6 and IPFIX over a veth pair between network namespaces', { skip: needsRoot('network namespaces') || needsTool('tcpreplay', 'tcpreplay') || toolsSkip }, () => {
  const net = new VethPair('6');
  namespaceForSuite(net, 'live-v6');
  before(() => {
    // IPv6 off in both namespaces before the pair is made again: the kernel sends no
    // neighbour / router solicitation or MLD of its own, so every captured flow is the fixtures'
    execFileSync('ip', ['-n', net.nsA, 'link', 'del', net.ifA]);
    for (const ns of [net.nsA, net.nsB]) {
      for (const scope of ['all', 'default']) execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${scope}.disable_ipv6=1`]);
    }
    net.link();
  });

  test('the veth pair has no IPv6 of its own', async () => {
    for (const [ns, dev] of [
      [net.nsA, net.ifA],
      [net.nsB, net.ifB],
    ] as const) {
      const shown = await run('ip', ['-n', ns, '-6', 'addr', 'show', 'dev', dev]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal(shown.stdout.trim(), '', `${dev} has no IPv6 address`);
    }
  });

  test('ipv6.pcap and mixed-v4v6.pcap replayed: nfcapd (IPFIX) holds every flow tshark counts in the files, and no other', async () => {
    const files = ['ipv6.pcap', 'mixed-v4v6.pcap'].map(fixture);
    const frames = (await Promise.all(files.map(tsharkPacketCount))).reduce((a, b) => a + b, 0);
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB), port: 2055 });
    const metrics = '127.0.0.1:9464';
    const probe = startProbe(['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}/10`, '--metrics-listen', metrics, '--status-interval', '0'], { prefix: net.exec(net.nsB) });
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 30_000, 'the probe to open the capture');
      const replay = await run('ip', ['netns', 'exec', net.nsA, 'tcpreplay', '-q', '-i', net.ifA, ...files]);
      assert.equal(replay.code, 0, replay.stderr);
      const captured = new RegExp(`^flowprobe_capture_packets_total\\{interface="${net.ifB}"\\} (\\d+)`, 'm');
      await waitFor(async () => Number(captured.exec(await scrape(net.nsB, metrics))?.[1] ?? 0) >= frames, 60_000, `the probe to count ${frames} frames`);
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      const log = await stopDrained(nfcapd, net.exec(net.nsB));
      assert.match(log, /Bad Packets: 0/, log);
      const refs = await Promise.all(files.map(reference));
      const expected = merged(...refs.flatMap((r) => [r.v4, r.v6]));
      assert.ok([...expected.keys()].some((k) => k.startsWith('fe80:')), 'link-local flows in the fixtures too (neighbour discovery)');
      assert.deepEqual(sorted(await nfcapd.totals()), sorted(asNfdumpStores(expected, 10)));
      assert.equal(summaryNumber(summaryText(result.stderr), /packets captured: (\d+)/), frames, 'nothing else was captured');
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
    }
  });

  test('--template-refresh-seconds 1: the templates again once a second has passed, never sooner (v9 and IPFIX)', async () => {
    const sinks = { 9: await DatagramSink.start({ prefix: net.exec(net.nsB), port: 2056 }), 10: await DatagramSink.start({ prefix: net.exec(net.nsB), port: 2057 }) };
    const probe = startProbe(
      [
        '-i', net.ifB, '-n', `127.0.0.1:${sinks[9].port}/9`, '-n', `127.0.0.1:${sinks[10].port}/10`, '--metrics-listen', 'off', '--status-interval', '0',
        '--template-refresh-seconds', '1', '--template-refresh-packets', '1000000', '--inactive-timeout', '1',
      ],
      { prefix: net.exec(net.nsB) },
    );
    const got: Record<Version, Received[]> = { 9: [], 10: [] };
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on'), 30_000, 'the probe to open the capture');
      // a new flow every 150 ms for 4.5 s: flows end (1 s idle) and go out all along
      const sender = `
        const s = require('node:dgram').createSocket('udp4');
        s.bind(0, '${net.addrA}', async () => {
          for (let i = 0; i < 30; i++) {
            await new Promise((r) => s.send(Buffer.alloc(40), 6000 + i, '${net.addrB}', r));
            await new Promise((r) => setTimeout(r, 150));
          }
          s.close();
        });`;
      const sent = await run('ip', ['netns', 'exec', net.nsA, process.execPath, '-e', sender]);
      assert.equal(sent.code, 0, sent.stderr);
      await new Promise((r) => setTimeout(r, 2500)); // the last flows time out and go
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      for (const version of [9, 10] as const) got[version] = await sinks[version].collect(collectorLine(result, `127.0.0.1:${sinks[version].port}`).datagrams);
    } finally {
      await stopped(probe);
      await Promise.all([sinks[9].dispose(), sinks[10].dispose()]);
    }
    for (const version of [9, 10] as const) {
      const datagrams = got[version];
      const messages = readMessages(datagrams);
      assertRunMessages(version, messages, 0);
      const keys = [...messageTotals(messages).keys()].filter((k) => k.startsWith(`${net.addrA} ${net.addrB} 17 `));
      assert.equal(keys.length, 30, `v${version}: the 30 flows`);
      // the sink's clock: a few ms after the probe's; 100 ms either way is left for that
      let last = datagrams[0]!.atMs;
      let refreshes = 0;
      messages.forEach((m, i) => {
        if (i === 0) return;
        const since = datagrams[i]!.atMs - last;
        if (carriesTemplates(m)) {
          assert.ok(since >= 900, `v${version} datagram ${i}: templates again after ${since} ms`);
          last = datagrams[i]!.atMs;
          refreshes++;
        } else {
          assert.ok(since < 1100, `v${version} datagram ${i}: ${since} ms after the templates, without them`);
        }
      });
      assert.ok(refreshes >= 2, `v${version}: ${refreshes} refreshes in ${datagrams.length} datagrams over ${Math.round(datagrams.at(-1)!.atMs - datagrams[0]!.atMs)} ms`);
    }
  });
});
