/**
 * The v9 / IPFIX encoder against real decoders:
 *  (a) tshark (Wireshark 4.x, `-d udp.port==P,cflow`) dissects the datagrams as
 *      UDP frames in a pcap: every record decoded with its template, every field
 *      as encoded, no expert info (template not found, malformed, unexpected
 *      sequence);
 *  (b) nfcapd/nfdump 1.7.1 receive them over UDP on 127.0.0.1 and store every
 *      flow exactly (addresses, ports, protocol, packets, bytes, input, TCP flags,
 *      first/last to the ms);
 *  (c) IPFIX: libfixbuf's ipfixDump reads the messages from a file and shows every
 *      record and field, without complaining about sequence numbers.
 *
 * Quirks found (the first three asserted below, so a change in the tools shows up):
 *  - nfdump derives a v9 exporter's boot time as unixSecs·1000 − sysUptime: the
 *    v9 header has no sub-second part, so nfdump places v9 flows early by the
 *    batch clock's milliseconds (unixMs mod 1000). The IPFIX records carry
 *    absolute ms and nfdump stores them exactly.
 *  - nfdump 1.7.1 counts only flow data records in the IPFIX sequence number, not
 *    options data records: after each message carrying the options data record
 *    it logs one sequence error. RFC 7011 §3.1 counts all Data Records (options
 *    data included); tshark and libfixbuf agree with the RFC, and both are
 *    asserted silent here. nfdump's count is asserted to be exactly those jumps.
 *  - nfdump 1.7.1 handles v9 FIRST_SWITCHED from before a sys_uptime wrap
 *    (first > sysUptime) correctly (the last batches cross the wrap).
 *  - Not asserted: nfdump 1.7.1 does not store flowEndReason from v9 (end reason
 *    0x00; from IPFIX it does) and shows TCP flags only for TCP; tshark decodes IPFIX icmpTypeCodeIPv6 (139) as
 *    two one-byte fields (type, code) and v9's ICMP_TYPE (32) as one uint16 for
 *    both families.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExpiryReason } from '../src/cache/flow-cache.js';
import { TemplateEncoder, flowEndReason, type EncodedDatagram } from '../src/export/template-export.js';
import { buildBatch, ipv6ToBytes, type FlowSpec } from './helpers/flow-batches.js';
import { Nfcapd } from './helpers/nfcapd.js';
import { run } from './helpers/processes.js';
import { needsTool } from './helpers/requirements.js';
import { udpPcapBytes } from './helpers/udp-pcap.js';

const SOURCE_ID = 4242;
const INIT_MS = 1_767_000_000_000;
const CFLOW_PORT = 2055;

/** One flow as a decoder should show it: the FlowSpec plus the times it must carry. */
interface Expected {
  family: 4 | 6;
  flow: FlowSpec;
  /** v9: FIRST/LAST_SWITCHED (sys_uptime ms); IPFIX: unix ms */
  start: number;
  end: number;
  /** what nfdump stores (unix ms) */
  nfdumpStart: number;
  nfdumpEnd: number;
}

interface Scenario {
  version: 9 | 10;
  datagrams: EncodedDatagram[];
  expected: Expected[];
}

/** A deterministic pseudo-random sequence (xorshift32). */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const REASONS = Object.values(ExpiryReason);

/** Realistic flows: TCP, UDP, ICMP or ICMPv6, some tagged, counters up to the 32-bit limit. */
function makeFlows(family: 4 | 6, n: number, batch: number, uptime: number, rnd: () => number): FlowSpec[] {
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const out: FlowSpec[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 4; // 0 TCP, 1 UDP, 2 ICMP(v6), 3 TCP with a large count
    const icmp = family === 4 ? 1 : 58;
    const protocol = kind === 1 ? 17 : kind === 2 ? icmp : 6;
    const icmpTypes = family === 4 ? [0x0800, 0x0000, 0x0303, 0x0b00] : [0x8000, 0x8100, 0x8700, 0x0104];
    const packets = kind === 3 ? int(1_000_000, 4_000_000) : int(1, 5000);
    const octets = kind === 3 ? int(2 ** 31, 2 ** 32 - 1) : packets * int(40, 1500);
    const duration = int(0, 120_000);
    const last = uptime - int(0, 30_000);
    const host = batch * 1000 + i;
    out.push({
      src: family === 4 ? `10.${batch}.${(i >> 8) & 0xff}.${i & 0xff}` : `2001:db8:${batch.toString(16)}::${host.toString(16)}`,
      dst: family === 4 ? `192.0.2.${int(1, 254)}` : `fd00::${int(1, 0xffff).toString(16)}`,
      srcPort: protocol === icmp ? 0 : int(1024, 65535),
      dstPort: protocol === icmp ? icmpTypes[i % icmpTypes.length]! : [80, 443, 53, 123, 8080][i % 5]!,
      protocol,
      tcpFlags: protocol === 6 ? [0x02, 0x12, 0x1b, 0x14, 0x18][i % 5]! : 0,
      tos: [0, 0x10, 0xb8, 0x28][i % 4]!,
      packets,
      octets,
      first: last - duration,
      last,
      input: int(1, 65535),
      ...(family === 6 ? { flowLabel: int(0, 0xfffff) } : {}),
      vlan: i % 3 === 0 ? int(1, 4094) : 0,
      reason: REASONS[i % REASONS.length]!,
    });
  }
  return out;
}

/** Several batches of both families through one encoder, templates refreshed every 8 datagrams. */
function scenario(version: 9 | 10): Scenario {
  const enc = new TemplateEncoder({
    version,
    sourceId: SOURCE_ID,
    maxDatagramBytes: 1400,
    templateRefreshPackets: 8,
    templateRefreshMs: 0,
    systemInitUnixMs: INIT_MS,
  });
  const rnd = random(version * 7919);
  const datagrams: EncodedDatagram[] = [];
  const expected: Expected[] = [];
  const families: (4 | 6)[] = [4, 6, 4, 6, 6, 4, 4, 6];
  families.forEach((family, b) => {
    // a day up, batches a little apart; the last two after 49.7 days, sys_uptime wrapped (some flows began before)
    const uptimeMs = b < 6 ? 90_000_000 + b * 1_733 : 2 ** 32 + 20_000 + b * 1_733;
    const unixMs = INIT_MS + uptimeMs + 0; // the same clock line: boot at INIT_MS
    const flows = makeFlows(family, 60 + b * 17, b + 1, uptimeMs, rnd);
    datagrams.push(...enc.encode(buildBatch(family, flows, unixMs, uptimeMs), b * 1000));
    // what a v9 collector can know: the header has whole seconds only
    const v9Boot = Math.floor(unixMs / 1000) * 1000 - uptimeMs;
    for (const flow of flows) {
      // flow.first/last are unwrapped here; a v9 record carries them modulo 2^32
      const start = version === 9 ? flow.first % 2 ** 32 : unixMs - (uptimeMs - flow.first);
      const end = version === 9 ? flow.last % 2 ** 32 : unixMs - (uptimeMs - flow.last);
      expected.push({
        family,
        flow,
        start,
        end,
        nfdumpStart: version === 9 ? v9Boot + flow.first : start,
        nfdumpEnd: version === 9 ? v9Boot + flow.last : end,
      });
    }
  });
  return { version, datagrams, expected };
}

/** The batches' clocks above are not whole seconds: the v9 offset is real. */
const V9_OFFSET_CHECK = (s: Scenario): boolean => s.expected.some((e) => e.nfdumpStart !== INIT_MS + e.flow.first);
/** Some flows began before sys_uptime wrapped and ended after. */
const WRAP_CHECK = (s: Scenario): boolean => s.expected.some((e) => e.flow.first < 2 ** 32 && e.flow.last >= 2 ** 32);

// ---------------------------------------------------------------- field comparison

/** Normalised field values a decoder reports for one flow record (decimal strings; addresses as hex bytes). */
type Fields = Record<string, string>;

function addressKey(address: string): string {
  return address.includes(':') ? Buffer.from(ipv6ToBytes(address)).toString('hex') : address;
}

function expectedFields(version: 9 | 10, e: Expected): Fields {
  const f = e.flow;
  const icmp = (e.family === 4 && f.protocol === 1) || (e.family === 6 && f.protocol === 58) ? f.dstPort : 0;
  const out: Fields = {
    src: addressKey(f.src),
    dst: addressKey(f.dst),
    srcPort: String(f.srcPort),
    dstPort: String(f.dstPort),
    protocol: String(f.protocol),
    tcpFlags: String(f.tcpFlags),
    tos: String(f.tos),
    octets: String(f.octets),
    packets: String(f.packets),
    input: String(f.input),
    output: '0',
    ipVersion: String(e.family),
    start: String(e.start),
    end: String(e.end),
    icmp: String(icmp),
    endReason: String(flowEndReason(f.reason)),
  };
  if (e.family === 6) out['flowLabel'] = String(f.flowLabel ?? 0);
  if (f.vlan !== 0) out['vlan'] = String(f.vlan);
  void version;
  return out;
}

/** Field by field differences, in record order; [] when equal. */
function differences(version: 9 | 10, expected: readonly Expected[], got: readonly Fields[]): string[] {
  const diffs: string[] = [];
  if (got.length !== expected.length) diffs.push(`${got.length} records decoded, ${expected.length} encoded`);
  expected.forEach((e, i) => {
    const want = expectedFields(version, e);
    const have = got[i] ?? {};
    for (const key of new Set([...Object.keys(want), ...Object.keys(have)])) {
      if (want[key] !== have[key]) diffs.push(`record ${i} ${key}: encoded ${want[key]}, decoded ${have[key]}`);
    }
  });
  return diffs.slice(0, 20);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** tshark's "Dec 31, 2025 23:50:02.000000000 UTC" → unix ms */
function tsharkAbsoluteMs(text: string): number {
  const m = /^(\w{3})\s+(\d+), (\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{3})\d*\s+UTC$/.exec(text);
  assert.ok(m, `tshark absolute time ${JSON.stringify(text)}`);
  return Date.UTC(Number(m[3]), MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]));
}

// ---------------------------------------------------------------- tshark

interface TsharkResult {
  records: Fields[];
  /** per frame: the header's sequence */
  sequences: number[];
  /** options data records: [domain or scope, init ms] */
  options: [string, number][];
}

type Json = string | Json[] | { [key: string]: Json };

function tsharkRecord(version: 9 | 10, flow: Record<string, Json>): Fields {
  const str = (k: string): string | undefined => {
    const v = flow[k];
    return typeof v === 'string' ? v : undefined;
  };
  const times = (flow['cflow.timedelta_tree'] ?? {}) as Record<string, string>;
  const out: Fields = {};
  const put = (key: string, value: string | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  put('src', str('cflow.srcaddr') ?? (str('cflow.srcaddrv6') && addressKey(str('cflow.srcaddrv6')!)));
  put('dst', str('cflow.dstaddr') ?? (str('cflow.dstaddrv6') && addressKey(str('cflow.dstaddrv6')!)));
  put('srcPort', str('cflow.srcport'));
  put('dstPort', str('cflow.dstport'));
  put('protocol', str('cflow.protocol'));
  put('tcpFlags', str('cflow.tcpflags') && String(Number(str('cflow.tcpflags'))));
  put('tos', str('cflow.tos') && String(Number(str('cflow.tos'))));
  put('octets', str('cflow.octets'));
  put('packets', str('cflow.packets'));
  put('input', str('cflow.inputint'));
  put('output', str('cflow.outputint'));
  put('ipVersion', str('cflow.ip_version'));
  if (version === 9) {
    put('start', times['cflow.timestart'] && String(Math.round(Number(times['cflow.timestart']) * 1000)));
    put('end', times['cflow.timeend'] && String(Math.round(Number(times['cflow.timeend']) * 1000)));
  } else {
    put('start', times['cflow.abstimestart'] && String(tsharkAbsoluteMs(times['cflow.abstimestart'])));
    put('end', times['cflow.abstimeend'] && String(tsharkAbsoluteMs(times['cflow.abstimeend'])));
  }
  const icmp4 = str('cflow.icmp_type_code_ipv4');
  const [type6, code6] = [str('cflow.icmp_ipv6_type'), str('cflow.icmp_ipv6_code')];
  put('icmp', icmp4 !== undefined ? String(Number(icmp4)) : type6 !== undefined && code6 !== undefined ? String(Number(type6) * 256 + Number(code6)) : undefined);
  put('endReason', str('cflow.flow_end_reason'));
  put('flowLabel', str('cflow.ipv6flowlabel'));
  put('vlan', str('cflow.vlanid'));
  return out;
}

async function tsharkDissect(version: 9 | 10, pcap: string): Promise<TsharkResult> {
  const result = await run('tshark', ['-r', pcap, '-n', '-d', `udp.port==${CFLOW_PORT},cflow`, '-T', 'json', '-J', 'cflow', '--no-duplicate-keys']);
  assert.equal(result.code, 0, result.stderr);
  const frames = JSON.parse(result.stdout) as { _source: { layers: { cflow?: Record<string, Json> } } }[];
  const out: TsharkResult = { records: [], sequences: [], options: [] };
  for (const frame of frames) {
    const cflow = frame._source.layers.cflow;
    assert.ok(cflow !== undefined, 'every frame dissected as cflow');
    out.sequences.push(Number(cflow['cflow.sequence']));
    for (const [setName, set] of Object.entries(cflow)) {
      if (!/^(FlowSet|Set) \d+ \[id=(\d+)\]/.test(setName) || typeof set !== 'object' || Array.isArray(set)) continue;
      const id = Number(/\[id=(\d+)\]/.exec(setName)![1]);
      if (id < 256) continue;
      const flows = Object.entries(set).filter(([k]) => /^Flow \d+$/.test(k));
      assert.ok(flows.length > 0, `set ${setName} decoded with its template`);
      for (const [, flow] of flows) {
        const f = flow as Record<string, Json>;
        if (id === 260) {
          const init = f['cflow.sys_init_time'];
          // IPFIX: observationDomainId (decimal); v9: the System scope as bytes ("00:00:10:92")
          const od = f['cflow.od_id'];
          const system = f['cflow.scope_system'];
          const scope = typeof od === 'string' ? od : typeof system === 'string' ? String(parseInt(system.replace(/:/g, ''), 16)) : '';
          out.options.push([scope, typeof init === 'string' ? tsharkAbsoluteMs(init) : NaN]);
        } else {
          out.records.push(tsharkRecord(version, f));
        }
      }
    }
  }
  return out;
}

/** Expert infos and malformed markers over all frames ("" when silent). */
async function tsharkExperts(pcap: string): Promise<string[]> {
  const result = await run('tshark', ['-r', pcap, '-n', '-d', `udp.port==${CFLOW_PORT},cflow`, '-T', 'fields', '-E', 'occurrence=a', '-e', '_ws.expert.message', '-e', '_ws.malformed']);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

function writeScenarioPcap(dir: string, s: Scenario, datagrams = s.datagrams): string {
  const path = join(dir, `v${s.version}.pcap`);
  writeFileSync(path, udpPcapBytes(datagrams.map((d) => d.bytes), { src: '127.0.0.1', dst: '127.0.0.1', sport: 40000, dport: CFLOW_PORT }));
  return path;
}

function expectedSequences(s: Scenario): number[] {
  const out: number[] = [];
  let sequence = 0;
  for (const d of s.datagrams) {
    out.push(sequence);
    const withTemplates = d.bytes.readUInt16BE(s.version === 9 ? 20 : 16) === (s.version === 9 ? 0 : 2);
    sequence += s.version === 9 ? 1 : d.flowRecords + (withTemplates ? 1 : 0);
  }
  return out;
}

const carriesTemplates = (s: Scenario, d: EncodedDatagram): boolean => d.bytes.readUInt16BE(s.version === 9 ? 20 : 16) === (s.version === 9 ? 0 : 2);

describe('tshark dissects every record with its template, every field as encoded', { skip: needsTool('tshark', 'tshark') }, () => {
  for (const version of [9, 10] as const) {
    it(`NetFlow v${version === 9 ? '9' : '10 (IPFIX)'}`, async () => {
      const s = scenario(version);
      assert.ok(s.datagrams.length > 10 && s.datagrams.filter((d) => carriesTemplates(s, d)).length >= 3, 'several datagrams, templates refreshed');
      const dir = mkdtempSync(join(tmpdir(), 'flowprobe-cflow-'));
      try {
        const pcap = writeScenarioPcap(dir, s);
        const [dissected, experts] = await Promise.all([tsharkDissect(version, pcap), tsharkExperts(pcap)]);
        assert.deepEqual(experts, [], 'no expert info: templates found, nothing malformed, sequence as expected');
        assert.deepEqual(differences(version, s.expected, dissected.records), []);
        assert.deepEqual(dissected.sequences, expectedSequences(s));
        const templated = s.datagrams.filter((d) => carriesTemplates(s, d)).length;
        assert.equal(dissected.options.length, templated);
        for (const [scope, init] of dissected.options) {
          assert.equal(init, INIT_MS);
          assert.equal(Number(scope), SOURCE_ID);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('the checks can fail: a corrupted field and a sequence gap are caught', async () => {
    const s = scenario(10);
    const dir = mkdtempSync(join(tmpdir(), 'flowprobe-cflow-'));
    try {
      // the 2nd datagram: bump a byte inside its first data record's octet count (after the header and set header)
      const broken = s.datagrams.map((d) => ({ ...d, bytes: Buffer.from(d.bytes) }));
      const second = broken[1]!.bytes;
      assert.ok(second.readUInt16BE(16) >= 256, 'the 2nd datagram starts with data');
      const octetsLow = 16 + 4 + (second.readUInt16BE(16) === 256 || second.readUInt16BE(16) === 258 ? 8 : 32) + 7 + 7;
      second[octetsLow] = second[octetsLow]! ^ 0x01;
      second.writeUInt32BE(second.readUInt32BE(8) + 1, 8); // and its sequence number
      const pcap = writeScenarioPcap(dir, s, broken);
      const [dissected, experts] = await Promise.all([tsharkDissect(10, pcap), tsharkExperts(pcap)]);
      const diffs = differences(10, s.expected, dissected.records);
      assert.equal(diffs.length, 1, diffs.join('\n'));
      assert.match(diffs[0]!, /octets/);
      assert.ok(experts.some((line) => /Unexpected flow sequence/.test(line)), experts.join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- nfcapd / nfdump

async function sendAll(port: number, datagrams: readonly EncodedDatagram[]): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) => socket.send(d.bytes, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** nfdump's TCP flag text: CEUAPRSF, '.' for unset */
function nfdumpFlags(flags: number): string {
  return 'CEUAPRSF'.split('').map((c, i) => ((flags >> (7 - i)) & 1 ? c : '.')).join('');
}

describe('nfcapd stores every flow exactly', { skip: needsTool('nfcapd', 'nfdump') }, () => {
  for (const version of [9, 10] as const) {
    it(`NetFlow v${version === 9 ? '9' : '10 (IPFIX)'}: both families, times to the ms`, async () => {
      const s = scenario(version);
      const nfcapd = await Nfcapd.start();
      try {
        await sendAll(nfcapd.port, s.datagrams);
        const log = await nfcapd.stop();
        const rows = await nfcapd.records();
        const key = (e: Expected): string => `${e.flow.src} ${e.flow.dst} ${e.flow.protocol} ${e.flow.srcPort} ${e.flow.dstPort}`;
        const want = s.expected
          .map((e) => ({
            key: key(e),
            packets: e.flow.packets,
            octets: e.flow.octets,
            tcpFlags: e.flow.protocol === 6 ? nfdumpFlags(e.flow.tcpFlags) : '........',
            input: e.flow.input,
            first: e.nfdumpStart / 1000,
            last: e.nfdumpEnd / 1000,
          }))
          .sort((a, b) => a.key.localeCompare(b.key));
        assert.deepEqual([...rows].sort((a, b) => a.key.localeCompare(b.key)), want);
        assert.equal(new Set(want.map((w) => w.key)).size, want.length, 'keys unique');
        if (version === 9) assert.ok(V9_OFFSET_CHECK(s), 'the v9 sub-second offset is exercised');
        assert.ok(WRAP_CHECK(s), 'flows across the sys_uptime wrap are exercised');
        const stat = await nfcapd.stat();
        assert.equal(stat['Flows'], s.expected.length);
        // nfdump counts IPFIX sequence numbers in flow records only (see the module comment):
        // one failure after every message that carried the options data record, but the last
        const nfdumpJumps = version === 9 ? 0 : s.datagrams.slice(0, -1).filter((d) => carriesTemplates(s, d)).length;
        assert.equal(stat['Sequence failures'], nfdumpJumps);
        assert.match(log, new RegExp(`Sequence Errors: ${nfdumpJumps}, Bad Packets: 0`), log);
      } finally {
        await nfcapd.dispose();
      }
    });
  }
});

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
    if (/^--- /.test(line)) {
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

/** "2025-12-31 23:50:02.000" (UTC) → unix ms */
function dumpTimeMs(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text.replace(' ', 'T') + 'Z');
  return Number.isNaN(ms) ? `unparsed ${text}` : String(ms);
}

function dumpRecordFields(r: DumpRecord): Fields {
  const f = r.fields;
  const out: Fields = {};
  const put = (key: string, value: string | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  put('src', f.get(8) ?? (f.has(27) ? addressKey(f.get(27)!) : undefined));
  put('dst', f.get(12) ?? (f.has(28) ? addressKey(f.get(28)!) : undefined));
  put('srcPort', f.get(7));
  put('dstPort', f.get(11));
  put('protocol', f.get(4));
  put('tcpFlags', f.get(6));
  put('tos', f.get(5));
  put('octets', f.get(1));
  put('packets', f.get(2));
  put('input', f.get(10));
  put('output', f.get(14));
  put('ipVersion', f.get(60));
  put('start', dumpTimeMs(f.get(152)));
  put('end', dumpTimeMs(f.get(153)));
  put('icmp', f.get(32) ?? f.get(139));
  put('endReason', f.get(136));
  put('flowLabel', f.get(31));
  put('vlan', f.get(58));
  return out;
}

describe('ipfixDump (libfixbuf) reads every IPFIX record and field', { skip: needsTool('ipfixDump', 'libfixbuf-tools') }, () => {
  it('IPFIX messages in a file', async () => {
    const s = scenario(10);
    const dir = mkdtempSync(join(tmpdir(), 'flowprobe-ipfix-'));
    try {
      const file = join(dir, 'messages.ipfix');
      writeFileSync(file, Buffer.concat(s.datagrams.map((d) => d.bytes)));
      const result = await run('ipfixDump', ['-i', file], { env: { ...process.env, TZ: 'UTC' } });
      assert.equal(result.code, 0, result.stderr);
      // libfixbuf checks sequence numbers as RFC 7011 counts them (options data included) and warns on stderr
      assert.equal(result.stderr.trim(), '', result.stderr);
      const records = parseIpfixDump(result.stdout);
      const flows = records.filter((r) => r.tid !== 260);
      const options = records.filter((r) => r.tid === 260);
      assert.deepEqual(differences(10, s.expected, flows.map(dumpRecordFields)), []);
      assert.equal(options.length, s.datagrams.filter((d) => carriesTemplates(s, d)).length);
      for (const o of options) {
        assert.equal(o.fields.get(149), String(SOURCE_ID));
        assert.equal(dumpTimeMs(o.fields.get(160)), String(INIT_MS));
      }
      const stats = /(\d+) Messages, (\d+) Data Records, (\d+) Template Records/.exec(result.stdout);
      assert.ok(stats, 'file statistics');
      assert.deepEqual(stats.slice(1).map(Number), [s.datagrams.length, s.expected.length + options.length, 5 * options.length]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
