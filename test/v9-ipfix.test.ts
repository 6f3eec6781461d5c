/**
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) encoding of record batches.
 *
 * v9 header (20):    0 version 9  2 count  4 sysUptime  8 unixSecs  12 sequence (packets)  16 source id
 * IPFIX header (16): 0 version 10  2 length  4 exportTime  8 sequence (data records)  12 observation domain
 * Sets: 2-byte id (v9: 0 templates, 1 options templates; IPFIX: 2, 3; ≥ 256 data), 2-byte length.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiryReason } from '../src/cache/flow-cache.js';
import { TemplateEncoder, type EncodedDatagram, type TemplateExportSettings } from '../src/export/template-export.js';
import { MessageReader, buildBatch, type DecodedMessage, type FlowSpec } from './helpers/flow-batches.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const UNIX_MS = 1_767_225_600_250; // 2026-01-01T00:00:00.250Z
const INIT_MS = 1_767_225_000_000; // 10 minutes before

function settings(version: 9 | 10, more: Partial<TemplateExportSettings> = {}): TemplateExportSettings {
  return { version, sourceId: 0x01020304, maxDatagramBytes: 1400, templateRefreshPackets: 0, templateRefreshMs: 0, systemInitUnixMs: INIT_MS, ...more };
}

const TCP_FLOW: FlowSpec = {
  src: '10.1.2.3',
  dst: '192.0.2.10',
  srcPort: 49152,
  dstPort: 443,
  protocol: 6,
  tcpFlags: 0x1b,
  tos: 0x10,
  packets: 2_000_000,
  octets: 3_000_000_000,
  first: 1000,
  last: 2500,
  input: 5,
  vlan: 0,
  reason: ExpiryReason.tcpFin,
};

const V6_FLOW: FlowSpec = {
  ...TCP_FLOW,
  src: '2001:db8::1',
  dst: 'fe80::1:2',
  protocol: 17,
  tcpFlags: 0,
  flowLabel: 0xabcde,
};

function flows(base: FlowSpec, n: number, vary: (f: FlowSpec, i: number) => Partial<FlowSpec> = () => ({})): FlowSpec[] {
  return Array.from({ length: n }, (_, i) => ({ ...base, srcPort: 1024 + i, ...vary(base, i) }));
}

function decodeAll(datagrams: readonly EncodedDatagram[], reader = new MessageReader()): DecodedMessage[] {
  return datagrams.map((d) => reader.read(d.bytes));
}

/** What the reader got back for one flow, comparable with FlowSpec (times as encoded). */
function fieldsOf(m: DecodedMessage, index: number): Map<number, bigint | string> {
  const r = m.records[index];
  assert.ok(r !== undefined, `record ${index}`);
  return r.fields;
}

describe('NetFlow v9: layout', () => {
  it('first datagram: header, template FlowSet, options template, options data, data (byte by byte)', () => {
    const enc = new TemplateEncoder(settings(9));
    const [d, ...rest] = enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    assert.equal(rest.length, 0);
    assert.ok(d !== undefined);
    assert.equal(d.flowRecords, 1);
    const b = d.bytes;
    assert.equal(b.readUInt16BE(0), 9);
    assert.equal(b.readUInt16BE(2), 4 + 1 + 1 + 1, 'count: 4 templates, options template, options data, 1 flow');
    assert.equal(b.readUInt32BE(4), 3000);
    assert.equal(b.readUInt32BE(8), 1_767_225_600);
    assert.equal(b.readUInt32BE(12), 0);
    assert.equal(b.readUInt32BE(16), 0x01020304);
    // template FlowSet
    let o = 20;
    assert.equal(b.readUInt16BE(o), 0);
    const templatesLength = b.readUInt16BE(o + 2);
    const expected: [number, [number, number][]][] = [
      [256, V9_V4],
      [257, V9_V6],
      [258, [...V9_V4, [58, 2]]],
      [259, [...V9_V6, [58, 2]]],
    ];
    let p = o + 4;
    for (const [id, fields] of expected) {
      assert.equal(b.readUInt16BE(p), id);
      assert.equal(b.readUInt16BE(p + 2), fields.length);
      p += 4;
      for (const [fid, len] of fields) {
        assert.deepEqual([b.readUInt16BE(p), b.readUInt16BE(p + 2)], [fid, len], `template ${id} at ${p}`);
        p += 4;
      }
    }
    assert.equal(templatesLength, p - o);
    assert.equal(templatesLength % 4, 0);
    o = p;
    // options template FlowSet: padded from 18 to 20
    assert.equal(hex(b.subarray(o, o + 20)), '0001' + '0014' + '0104' + '0004' + '0004' + '0001' + '0004' + '00a0' + '0008' + '0000');
    o += 20;
    // options data FlowSet: System scope (source id), systemInitTimeMilliseconds
    assert.equal(hex(b.subarray(o, o + 16)), '0104' + '0010' + '01020304' + '0000019b76d18040');
    o += 16;
    assert.equal(b.readUInt16BE(o), 256);
    assert.equal(b.readUInt16BE(o + 2), 56, '4 + 51-byte record + 1 byte padding');
    assert.equal(o + 56, b.length);
    assert.equal(b[b.length - 1], 0);
  });

  it('golden: a datagram after the templates (one IPv4 record)', () => {
    const enc = new TemplateEncoder(settings(9));
    enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    const [d] = enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    const golden = [
      '0009', //          version 9
      '0001', //          count 1
      '00000bb8', //      sysUptime 3000
      '6955b900', //      unixSecs 1767225600
      '00000001', //      sequence: one packet before
      '01020304', //      source id
      '0100', //          FlowSet 256
      '0038', //          length 56 = 4 + 51 + 1 padding
      '0a010203', //      IP_SRC_ADDR 10.1.2.3
      'c000020a', //      IP_DST_ADDR 192.0.2.10
      'c000', //          L4_SRC_PORT 49152
      '01bb', //          L4_DST_PORT 443
      '06', //            PROTOCOL
      '1b', //            TCP_FLAGS
      '10', //            TOS
      '00000000b2d05e00', // IN_BYTES 3,000,000,000
      '00000000001e8480', // IN_PKTS 2,000,000
      '00000005', //      INPUT_SNMP
      '00000000', //      OUTPUT_SNMP
      '04', //            IP_PROTOCOL_VERSION
      '000003e8', //      FIRST_SWITCHED 1000
      '000009c4', //      LAST_SWITCHED 2500
      '0000', //          ICMP_TYPE (not ICMP)
      '03', //            flowEndReason end of flow (FIN)
      '00', //            padding
    ].join('');
    assert.ok(d !== undefined);
    assert.equal(hex(d.bytes), golden);
  });

  it('IPv6 record: 16-byte addresses, ICMPv6 type/code in ICMP_TYPE, 3-byte flow label', () => {
    const enc = new TemplateEncoder(settings(9));
    const icmp6: FlowSpec = { ...V6_FLOW, protocol: 58, srcPort: 0, dstPort: 0x8000 };
    const [m] = decodeAll(enc.encode(buildBatch(6, [V6_FLOW, icmp6], UNIX_MS, 3000), 0));
    assert.ok(m !== undefined);
    const f = fieldsOf(m, 0);
    assert.equal(f.get(27), '20010db8000000000000000000000001');
    assert.equal(f.get(28), 'fe800000000000000000000000010002');
    assert.equal(f.get(31), 0xabcden);
    assert.equal(f.get(32), 0n);
    assert.equal(f.get(60), 6n);
    assert.equal(fieldsOf(m, 1).get(32), 0x8000n);
    assert.equal(m.records[0]?.setId, 257);
  });
});

/** The data templates' fields as the brief gives them (not taken from the encoder). */
const V9_V4: [number, number][] = [
  [8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [6, 1], [5, 1], [1, 8], [2, 8], [10, 4], [14, 4], [60, 1], [22, 4], [21, 4], [32, 2], [136, 1],
];
const V9_V6: [number, number][] = [
  [27, 16], [28, 16], [7, 2], [11, 2], [4, 1], [6, 1], [5, 1], [1, 8], [2, 8], [10, 4], [14, 4], [60, 1], [22, 4], [21, 4], [32, 2], [136, 1], [31, 3],
];
const IPFIX_V4: [number, number][] = [
  [8, 4], [12, 4], [7, 2], [11, 2], [4, 1], [6, 1], [5, 1], [1, 8], [2, 8], [10, 4], [14, 4], [60, 1], [152, 8], [153, 8], [32, 2], [136, 1],
];
const IPFIX_V6: [number, number][] = [
  [27, 16], [28, 16], [7, 2], [11, 2], [4, 1], [6, 1], [5, 1], [1, 8], [2, 8], [10, 4], [14, 4], [60, 1], [152, 8], [153, 8], [139, 2], [136, 1], [31, 4],
];

describe('IPFIX: layout', () => {
  it('first message: header, template set, options template set, options data, data (byte by byte)', () => {
    const enc = new TemplateEncoder(settings(10));
    const [d] = enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    assert.ok(d !== undefined);
    const b = d.bytes;
    assert.equal(b.readUInt16BE(0), 10);
    assert.equal(b.readUInt16BE(2), b.length);
    assert.equal(b.readUInt32BE(4), 1_767_225_600);
    assert.equal(b.readUInt32BE(8), 0);
    assert.equal(b.readUInt32BE(12), 0x01020304);
    let o = 16;
    assert.equal(b.readUInt16BE(o), 2);
    const expected: [number, [number, number][]][] = [
      [256, IPFIX_V4],
      [257, IPFIX_V6],
      [258, [...IPFIX_V4, [58, 2]]],
      [259, [...IPFIX_V6, [58, 2]]],
    ];
    let p = o + 4;
    for (const [id, fields] of expected) {
      assert.equal(b.readUInt16BE(p), id);
      assert.equal(b.readUInt16BE(p + 2), fields.length);
      p += 4;
      for (const [fid, len] of fields) {
        assert.deepEqual([b.readUInt16BE(p), b.readUInt16BE(p + 2)], [fid, len], `template ${id} at ${p}`);
        p += 4;
      }
    }
    assert.equal(b.readUInt16BE(o + 2), p - o);
    o = p;
    // options template set, 18 bytes, unpadded: id 260, 2 fields, 1 scope field
    assert.equal(hex(b.subarray(o, o + 18)), '0003' + '0012' + '0104' + '0002' + '0001' + '0095' + '0004' + '00a0' + '0008');
    o += 18;
    assert.equal(hex(b.subarray(o, o + 16)), '0104' + '0010' + '01020304' + '0000019b76d18040');
    o += 16;
    assert.equal(b.readUInt16BE(o), 256);
    assert.equal(b.readUInt16BE(o + 2), 4 + 59, 'unpadded');
    assert.equal(o + 63, b.length);
    for (const fields of [IPFIX_V4, IPFIX_V6]) assert.ok(!fields.some(([id]) => id === 21 || id === 22), 'never 21/22 in IPFIX');
  });

  it('golden: a message after the templates (one IPv4 record)', () => {
    const enc = new TemplateEncoder(settings(10));
    enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    const [d] = enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    const golden = [
      '000a', //          version 10
      '004f', //          length 79 = 16 + 4 + 59
      '6955b900', //      exportTime 1767225600
      '00000002', //      sequence: 1 flow + 1 options data record before
      '01020304', //      observation domain
      '0100', //          set 256
      '003f', //          length 63, no padding
      '0a010203', //      sourceIPv4Address
      'c000020a', //      destinationIPv4Address
      'c000', //          sourceTransportPort 49152
      '01bb', //          destinationTransportPort 443
      '06', //            protocolIdentifier
      '1b', //            tcpControlBits
      '10', //            ipClassOfService
      '00000000b2d05e00', // octetDeltaCount
      '00000000001e8480', // packetDeltaCount
      '00000005', //      ingressInterface
      '00000000', //      egressInterface
      '04', //            ipVersion
      '0000019b76daa12a', // flowStartMilliseconds 1767225598250 = 1767225600250 − (3000 − 1000)
      '0000019b76daa706', // flowEndMilliseconds 1767225599750 = 1767225600250 − (3000 − 2500)
      '0000', //          icmpTypeCodeIPv4
      '03', //            flowEndReason end of flow
    ].join('');
    assert.ok(d !== undefined);
    assert.equal(hex(d.bytes), golden);
  });

  it('IPv6 record: icmpTypeCodeIPv6 (139) for ICMPv6, 4-byte flow label', () => {
    const enc = new TemplateEncoder(settings(10));
    const icmp6: FlowSpec = { ...V6_FLOW, protocol: 58, srcPort: 0, dstPort: 0x8000 };
    const udpTo58: FlowSpec = { ...V6_FLOW, protocol: 17, dstPort: 0x8000 };
    const [m] = decodeAll(enc.encode(buildBatch(6, [icmp6, udpTo58], UNIX_MS, 3000), 0));
    assert.ok(m !== undefined);
    assert.equal(fieldsOf(m, 0).get(139), 0x8000n);
    assert.equal(fieldsOf(m, 1).get(139), 0n, 'not ICMPv6: 0');
    assert.equal(fieldsOf(m, 0).get(31), 0xabcden);
    assert.equal(fieldsOf(m, 0).has(32), false);
  });
});

describe('packing', () => {
  for (const version of [9, 10] as const) {
    for (const max of [1400, 512]) {
      it(`v${version}, ${max} bytes: many records of both families, in order, every datagram within the limit and full`, () => {
        const enc = new TemplateEncoder(settings(version, { maxDatagramBytes: max }));
        const reader = new MessageReader();
        for (const [family, base] of [[4, TCP_FLOW], [6, V6_FLOW], [4, TCP_FLOW]] as const) {
          // runs of vlan and no vlan: sets change within datagrams
          const input = flows(base, 500, (_, i) => ({ vlan: Math.floor(i / 7) % 3 === 0 ? 100 + i : 0, packets: i + 1 }));
          const out = enc.encode(buildBatch(family, input, UNIX_MS, 3000), 0);
          assert.equal(out.reduce((s, d) => s + d.flowRecords, 0), input.length);
          const got: FlowSpec[] = [];
          for (const d of out) {
            assert.ok(d.bytes.length <= max, `${d.bytes.length} > ${max}`);
            const m = reader.read(d.bytes);
            assert.equal(m.records.length, d.flowRecords);
            // one set per run of records of one template
            const dataSets = m.sets.filter((s) => s.id >= 256 && s.id !== 260);
            let runs = 0;
            m.records.forEach((r, i) => {
              if (i === 0 || m.records[i - 1]!.setId !== r.setId) runs++;
            });
            assert.equal(dataSets.length, runs);
            if (version === 9) {
              assert.ok(m.sets.every((s) => s.length % 4 === 0), 'v9 FlowSets padded to 4');
              assert.ok(m.padding.every((x) => x === 0));
              assert.equal(m.count, m.records.length + m.optionsRecords.length + m.templatesDefined.length + m.optionsTemplatesDefined.length);
            }
            for (const r of m.records) {
              assert.equal(r.setId, (family === 4 ? 256 : 257) + ((r.fields.get(58) ?? 0n) !== 0n ? 2 : 0));
              got.push({ ...base, srcPort: Number(r.fields.get(7)), packets: Number(r.fields.get(2)), vlan: Number(r.fields.get(58) ?? 0n) });
            }
          }
          assert.deepEqual(got, input);
          // greedy: every datagram but the last had no room for the next record
          const recordBytes = (vlan: boolean): number =>
            (version === 9 ? (family === 4 ? 51 : 78) : family === 4 ? 59 : 87) + (vlan ? 2 : 0);
          let next = 0;
          for (const d of out.slice(0, -1)) {
            next += d.flowRecords;
            const n = input[next]!;
            // room for a new set with it (and v9's worst padding) would have taken it
            assert.ok(d.bytes.length + 4 + recordBytes(n.vlan !== 0) + (version === 9 ? 3 : 0) > max, `datagram of ${d.bytes.length} had room for the next record`);
          }
        }
      });
    }
  }

  it('templates alone when the first record does not fit after them; refresh on every packet does not loop', () => {
    for (const version of [9, 10] as const) {
      const probe = new TemplateEncoder(settings(version));
      const [first] = probe.encode(buildBatch(6, [V6_FLOW], UNIX_MS, 3000), 0);
      assert.ok(first !== undefined);
      const templatesOnly = first.bytes.length - (version === 9 ? 4 + 80 : 4 + 87); // header + templates
      const enc = new TemplateEncoder(settings(version, { maxDatagramBytes: templatesOnly + 10, templateRefreshPackets: 1 }));
      const out = enc.encode(buildBatch(6, flows(V6_FLOW, 3), UNIX_MS, 3000), 0);
      // templates alone, then the records (without templates: that datagram must carry data)
      assert.deepEqual(out.map((d) => d.flowRecords), [0, 3]);
      out.push(...enc.encode(buildBatch(6, flows(V6_FLOW, 3), UNIX_MS, 3000), 0));
      assert.deepEqual(out.map((d) => d.flowRecords), [0, 3, 0, 3]);
      for (const d of out) assert.ok(d.bytes.length <= templatesOnly + 10);
    }
  });

  it('an empty batch encodes to nothing and counts nothing', () => {
    const enc = new TemplateEncoder(settings(9));
    assert.deepEqual(enc.encode(buildBatch(4, [], UNIX_MS, 3000), 0), []);
    assert.equal(enc.sequence, 0);
    const [d] = enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0);
    assert.ok(d !== undefined && d.bytes.readUInt16BE(2) === 7, 'templates still go with the first datagram');
  });
});

describe('sequence numbers', () => {
  it('v9: export packets sent before this one, per encoder', () => {
    const enc = new TemplateEncoder(settings(9, { maxDatagramBytes: 512, templateRefreshPackets: 4 }));
    const other = new TemplateEncoder(settings(9, { sourceId: 9 }));
    const seen: number[] = [];
    for (let k = 0; k < 3; k++) {
      for (const d of enc.encode(buildBatch(4, flows(TCP_FLOW, 25), UNIX_MS, 3000), 0)) seen.push(d.bytes.readUInt32BE(12));
    }
    assert.deepEqual(seen, seen.map((_, i) => i));
    assert.equal(enc.sequence, seen.length);
    assert.equal(other.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0)[0]?.bytes.readUInt32BE(12), 0, 'its own count');
  });

  it('IPFIX: data records (flow and options data) sent before this message', () => {
    const enc = new TemplateEncoder(settings(10, { maxDatagramBytes: 512, templateRefreshPackets: 3 }));
    const reader = new MessageReader();
    let expected = 0;
    for (let k = 0; k < 3; k++) {
      for (const d of enc.encode(buildBatch(k === 1 ? 6 : 4, flows(k === 1 ? V6_FLOW : TCP_FLOW, 20), UNIX_MS, 3000), 0)) {
        const m = reader.read(d.bytes);
        assert.equal(m.sequence, expected);
        expected += m.records.length + m.optionsRecords.length;
      }
    }
    assert.equal(enc.sequence, expected);
    assert.ok(expected > 60, 'options data records counted');
  });
  it('modulo 2^32 in the header and in `sequence`', () => {
    for (const version of [9, 10] as const) {
      const enc = new TemplateEncoder(settings(version));
      // start just below the wrap (the counter is private: set it as 2^32 − 1 sends would have)
      (enc as unknown as { sent: number }).sent = 2 ** 32 - 1;
      const out = [...enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0), ...enc.encode(buildBatch(4, [TCP_FLOW], UNIX_MS, 3000), 0)];
      const at = version === 9 ? 12 : 8;
      assert.deepEqual(out.map((d) => d.bytes.readUInt32BE(at)), version === 9 ? [0xffffffff, 0] : [0xffffffff, 1]);
      assert.equal(enc.sequence, version === 9 ? 1 : 2);
    }
  });
});

describe('template refresh', () => {
  const carriesTemplates = (d: EncodedDatagram, version: 9 | 10): boolean => d.bytes.readUInt16BE(version === 9 ? 20 : 16) === (version === 9 ? 0 : 2);

  it('by count: again once N datagrams went out since (the one with them included)', () => {
    for (const version of [9, 10] as const) {
      const enc = new TemplateEncoder(settings(version, { maxDatagramBytes: 512, templateRefreshPackets: 3 }));
      const out = [...enc.encode(buildBatch(4, flows(TCP_FLOW, 40), UNIX_MS, 3000), 0), ...enc.encode(buildBatch(6, flows(V6_FLOW, 20), UNIX_MS, 3000), 0)];
      assert.ok(out.length >= 9);
      assert.deepEqual(out.map((d) => carriesTemplates(d, version)), out.map((_, i) => i % 3 === 0));
    }
  });

  it('by time: the first datagram once the interval passed; 0 disables either trigger', () => {
    for (const version of [9, 10] as const) {
      const enc = new TemplateEncoder(settings(version, { templateRefreshMs: 1000 }));
      const batch = (): ReturnType<typeof buildBatch> => buildBatch(4, [TCP_FLOW], UNIX_MS, 3000);
      const at = (ms: number): boolean => {
        const out = enc.encode(batch(), ms);
        return carriesTemplates(out[0]!, version);
      };
      assert.deepEqual([at(5000), at(5500), at(5999), at(6000), at(6001), at(6999), at(7000)], [true, false, false, true, false, false, true]);
      const never = new TemplateEncoder(settings(version));
      const flags = [0, 1e9, 2e9].map((ms) => carriesTemplates(never.encode(batch(), ms)[0]!, version));
      assert.deepEqual(flags, [true, false, false]);
    }
  });
});

describe('times and fields', () => {
  it('IPFIX: absolute unix ms, across a sys_uptime wrap; v9: sys_uptime ms, header sysUptime modulo 2^32', () => {
    const uptime = 2 ** 32 + 5000; // the exporter has run 49.7 days
    const old: FlowSpec = { ...TCP_FLOW, first: 2 ** 32 - 300, last: 4000 }; // started before the wrap
    const ipfix = decodeAll(new TemplateEncoder(settings(10)).encode(buildBatch(4, [old], UNIX_MS, uptime), 0))[0]!;
    assert.equal(fieldsOf(ipfix, 0).get(152), BigInt(UNIX_MS - 5300));
    assert.equal(fieldsOf(ipfix, 0).get(153), BigInt(UNIX_MS - 1000));
    assert.equal(ipfix.seconds, Math.floor(UNIX_MS / 1000));
    const v9 = decodeAll(new TemplateEncoder(settings(9)).encode(buildBatch(4, [old], UNIX_MS, uptime), 0))[0]!;
    assert.equal(v9.sysUptime, 5000);
    assert.equal(fieldsOf(v9, 0).get(22), BigInt(2 ** 32 - 300));
    assert.equal(fieldsOf(v9, 0).get(21), 4000n);
    assert.ok(!fieldsOf(v9, 0).has(152) && !fieldsOf(ipfix, 0).has(22));
  });

  it('fractional batch clocks: header and times in whole ms, consistent', () => {
    const m = decodeAll(new TemplateEncoder(settings(10)).encode(buildBatch(4, [TCP_FLOW], UNIX_MS + 0.7, 3000.4), 0))[0]!;
    // at sys_uptime 3000 the wall clock read UNIX_MS + 0.3
    assert.equal(fieldsOf(m, 0).get(152), BigInt(UNIX_MS - 2000));
    const v9 = decodeAll(new TemplateEncoder(settings(9)).encode(buildBatch(4, [TCP_FLOW], UNIX_MS + 0.7, 3000.4), 0))[0]!;
    assert.equal(v9.sysUptime, 3000);
  });

  it('flowEndReason from the expiry reason', () => {
    const reasons: [ExpiryReason, number][] = [
      [ExpiryReason.inactive, 1],
      [ExpiryReason.active, 2],
      [ExpiryReason.tcpFin, 3],
      [ExpiryReason.tcpRst, 3],
      [ExpiryReason.shutdown, 4],
      [ExpiryReason.counterLimit, 4],
      [ExpiryReason.cacheFull, 5],
    ];
    for (const version of [9, 10] as const) {
      const input = reasons.map(([reason]) => ({ ...TCP_FLOW, reason }));
      const m = decodeAll(new TemplateEncoder(settings(version)).encode(buildBatch(4, input, UNIX_MS, 3000), 0))[0]!;
      assert.deepEqual(m.records.map((r) => Number(r.fields.get(136))), reasons.map(([, v]) => v));
    }
  });

  it('the vlan templates only for records whose VLAN id is not 0', () => {
    for (const version of [9, 10] as const) {
      for (const [family, base] of [[4, TCP_FLOW], [6, V6_FLOW]] as const) {
        const input = [0, 1, 4095, 0, 0, 7].map((vlan) => ({ ...base, vlan }));
        const m = decodeAll(new TemplateEncoder(settings(version)).encode(buildBatch(family, input, UNIX_MS, 3000), 0))[0]!;
        const plain = family === 4 ? 256 : 257;
        assert.deepEqual(m.records.map((r) => r.setId), [plain, plain + 2, plain + 2, plain, plain, plain + 2]);
        assert.deepEqual(m.records.map((r) => r.fields.get(58)), [undefined, 1n, 4095n, undefined, undefined, 7n]);
        assert.equal(m.sets.filter((s) => s.id >= 256 && s.id < 260).length, 4);
      }
    }
  });

  it('ICMP type/code for ICMP only; counters as 64 bits; ifIndex, ToS, flags, ip version', () => {
    for (const version of [9, 10] as const) {
      const input: FlowSpec[] = [
        { ...TCP_FLOW, protocol: 1, srcPort: 0, dstPort: 0x0303, tcpFlags: 0, octets: 0xffffffff, packets: 0xfffffffe, input: 65535, tos: 0xb8 },
        { ...TCP_FLOW, protocol: 17, dstPort: 0x0303 },
      ];
      const m = decodeAll(new TemplateEncoder(settings(version)).encode(buildBatch(4, input, UNIX_MS, 3000), 0))[0]!;
      const [a, b] = [fieldsOf(m, 0), fieldsOf(m, 1)];
      assert.equal(a.get(32), 0x0303n);
      assert.equal(b.get(32), 0n);
      assert.equal(a.get(11), 0x0303n);
      assert.equal(a.get(1), 0xffffffffn);
      assert.equal(a.get(2), 0xfffffffen);
      assert.equal(a.get(10), 65535n);
      assert.equal(a.get(14), 0n);
      assert.equal(a.get(5), 0xb8n);
      assert.equal(a.get(60), 4n);
      assert.equal(b.get(6), 0x1bn);
      assert.equal(a.get(8), 0x0a010203n);
    }
  });
});

describe('settings', () => {
  it('RangeError when the templates cannot fit (a record, smaller, then never fits either), or a value is out of range', () => {
    for (const version of [9, 10] as const) {
      assert.throws(() => new TemplateEncoder(settings(version, { maxDatagramBytes: 300 })), { name: 'RangeError', message: /cannot hold the templates/ });
      assert.throws(() => new TemplateEncoder(settings(version, { maxDatagramBytes: 60 })), RangeError);
      assert.throws(() => new TemplateEncoder(settings(version, { maxDatagramBytes: 65536 })), RangeError);
      assert.throws(() => new TemplateEncoder(settings(version, { sourceId: 2 ** 32 })), RangeError);
      assert.throws(() => new TemplateEncoder(settings(version, { sourceId: -1 })), RangeError);
      assert.throws(() => new TemplateEncoder(settings(version, { templateRefreshMs: -1 })), RangeError);
    }
    assert.throws(() => new TemplateEncoder({ ...settings(9), version: 5 as 9 }), RangeError);
    // the smallest datagram that holds the templates is accepted
    const v9Templates = 20 + 292 + 20 + 16;
    const ipfixTemplates = 16 + 292 + 18 + 16;
    assert.doesNotThrow(() => new TemplateEncoder(settings(9, { maxDatagramBytes: v9Templates })));
    assert.throws(() => new TemplateEncoder(settings(9, { maxDatagramBytes: v9Templates - 1 })), /cannot hold the templates/);
    assert.doesNotThrow(() => new TemplateEncoder(settings(10, { maxDatagramBytes: ipfixTemplates })));
    assert.throws(() => new TemplateEncoder(settings(10, { maxDatagramBytes: ipfixTemplates - 1 })), /cannot hold the templates/);
  });
});
