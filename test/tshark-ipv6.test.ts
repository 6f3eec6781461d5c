/**
 * Two independent sources of truth for the IPv6 fixtures agree: what generate.py
 * built (its ledger, `<stem>.flows.json`: per family and 5-tuple, the packets and
 * octets built to be counted) and what tshark dissects in the file
 * (test/helpers/tshark.ts: tsharkFlowTotals6 for IPv6, tsharkFlowTotals for the
 * IPv4 packets some of the files carry too). The decoder is not involved.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { IPV6_FIXTURE_FILES, fixture, flowsLedgerOf } from './helpers/fixtures.js';
import { needsTool } from './helpers/requirements.js';
import { type FlowTotals, parseFieldsLine6, tsharkFlowTotals, tsharkFlowTotals6, tsharkPacketCount } from './helpers/tshark.js';

type Ledger = Record<'ipv4' | 'ipv6', Record<string, FlowTotals>>;

function sorted(m: Map<string, FlowTotals> | Record<string, FlowTotals>): [string, FlowTotals][] {
  const entries = m instanceof Map ? [...m] : Object.entries(m);
  return entries.map(([k, v]): [string, FlowTotals] => [k, { packets: v.packets, octets: v.octets }]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const sum = (entries: [string, FlowTotals][]): number => entries.reduce((n, [, t]) => n + t.packets, 0);

describe('IPv6 fixtures: tshark counts what generate.py built', { skip: needsTool('tshark', 'tshark') }, () => {
  for (const name of IPV6_FIXTURE_FILES) {
    it(`${name}: per 5-tuple packets and octets, both families`, async () => {
      const ledger = JSON.parse(readFileSync(flowsLedgerOf(name), 'utf8')) as Ledger;
      const [v6, v4] = await Promise.all([tsharkFlowTotals6(fixture(name)), tsharkFlowTotals(fixture(name))]);
      assert.ok(Object.keys(ledger.ipv6).length > 0 && v6.size > 0, 'IPv6 flows in the file');
      assert.deepEqual(sorted(v6), sorted(ledger.ipv6), 'IPv6');
      assert.deepEqual(sorted(v4), sorted(ledger.ipv4), 'IPv4');
    });
  }

  it('ipv6-malformed.pcap: the reasons ledger adds up with the flows ledger and the frames in the file', async () => {
    const expected = JSON.parse(readFileSync(fixture('ipv6-malformed.expected.json'), 'utf8')) as {
      ipv6_valid_packets: number;
      malformed: number;
      reasons: Record<string, number>;
    };
    const ledger = JSON.parse(readFileSync(flowsLedgerOf('ipv6-malformed.pcap'), 'utf8')) as Ledger;
    assert.equal(sum(sorted(ledger.ipv6)), expected.ipv6_valid_packets);
    assert.equal(Object.values(expected.reasons).reduce((a, b) => a + b, 0), expected.malformed);
    assert.deepEqual(Object.keys(expected.reasons).sort(), [
      'bad_ip_version',
      'bad_ipv6_payload_length',
      'ipv6_jumbogram',
      'truncated_ip_header',
      'truncated_ipv6_extension_header',
    ]);
    assert.equal(await tsharkPacketCount(fixture('ipv6-malformed.pcap')), expected.ipv6_valid_packets + expected.malformed);
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('ipv6-malformed.pcap')))), expected.ipv6_valid_packets);
  });

  it('the older fixtures: no IPv6 where there is none, the few IPv6 packets where there are', async () => {
    assert.equal((await tsharkFlowTotals6(fixture('basic.pcap'))).size, 0);
    assert.equal((await tsharkFlowTotals6(fixture('ipv4.pcap'))).size, 0, 'LINKTYPE_IPV4 carries none');
    // malformed.pcap: 3 IPv6 frames under 0x86dd; the IPv4 version-6 frames under 0x0800 are not IPv6
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('malformed.pcap')))), 3);
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('rawip.pcap')))), 2);
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('sll.pcap')))), 6);
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('mixed.pcapng')))), 8);
    assert.equal(sum(sorted(await tsharkFlowTotals6(fixture('sll-vlan.pcap')))), 3, 'QinQ-tagged IPv6 in a cooked capture');
  });
});

describe('parseFieldsLine6 (no tshark needed)', () => {
  const line = (fields: Partial<Record<string, string>>): string =>
    [
      'ipv6.src', 'ipv6.dst', 'ipv6.nxt', 'ipv6.plen', 'frame.protocols', 'ipv6.hopopts.nxt', 'ipv6.routing.nxt', 'ipv6.dstopts.nxt',
      'ipv6.fraghdr.nxt', 'ipv6.fraghdr.offset', 'ah.next_header', 'tcp.srcport', 'tcp.dstport', 'udp.srcport', 'udp.dstport',
      'sctp.srcport', 'sctp.dstport', 'icmpv6.type', 'icmpv6.code', '_ws.malformed', '_ws.short',
    ].map((f) => fields[f] ?? '').join('\t');
  const base = { 'ipv6.src': '2001:db8::1', 'ipv6.dst': '2001:db8::2' };

  it('walks hop-by-hop, AH and a first fragment to UDP ports', () => {
    const r = parseFieldsLine6(line({
      ...base, 'ipv6.nxt': '0', 'ipv6.plen': '100', 'frame.protocols': 'eth:ethertype:ipv6:ipv6.hopopts:ah:ipv6.fraghdr:udp:data',
      'ipv6.hopopts.nxt': '51', 'ah.next_header': '44', 'ipv6.fraghdr.nxt': '17', 'ipv6.fraghdr.offset': '0', 'udp.srcport': '1', 'udp.dstport': '2',
    }));
    assert.deepEqual(r, { key: '2001:db8::1 2001:db8::2 17 1 2', octets: 140 });
  });

  it('a non-first fragment: the fragment header\'s next header, no ports', () => {
    const r = parseFieldsLine6(line({
      ...base, 'ipv6.nxt': '44', 'ipv6.plen': '16', 'frame.protocols': 'eth:ethertype:ipv6:ipv6.fraghdr:data',
      'ipv6.fraghdr.nxt': '58', 'ipv6.fraghdr.offset': '181',
    }));
    assert.equal(r?.key, '2001:db8::1 2001:db8::2 58 0 0');
  });

  it('the 17th extension header ends the walk', () => {
    const n = 17;
    const r = parseFieldsLine6(line({
      ...base, 'ipv6.nxt': '60', 'ipv6.plen': String(8 * n + 8), 'frame.protocols': `ipv6:${Array<string>(n).fill('ipv6.dstopts').join(':')}:udp`,
      'ipv6.dstopts.nxt': [...Array<string>(n - 1).fill('60'), '17'].join(';'), 'udp.srcport': '1', 'udp.dstport': '2',
    }));
    assert.equal(r?.key, '2001:db8::1 2001:db8::2 60 0 0');
  });

  it('a header cut by the snapshot length: the value naming it, no ports', () => {
    const r = parseFieldsLine6(line({
      ...base, 'ipv6.nxt': '0', 'ipv6.plen': '100', 'frame.protocols': 'sll:ethertype:ipv6:ipv6.hopopts:ipv6.dstopts',
      'ipv6.hopopts.nxt': '60', 'ipv6.dstopts.nxt': '6', '_ws.short': '[Packet size limited during capture: IPv6 Destination truncated]',
    }));
    assert.equal(r?.key, '2001:db8::1 2001:db8::2 60 0 0');
  });

  it('malformed in an IPv6 layer is not counted; malformed further up is', () => {
    const hbh = { ...base, 'ipv6.nxt': '0', 'ipv6.plen': '16', 'frame.protocols': 'eth:ethertype:ipv6:ipv6.hopopts', 'ipv6.hopopts.nxt': '17' };
    assert.equal(parseFieldsLine6(line({ ...hbh, '_ws.malformed': '[Malformed Packet: IPv6 Hop-by-Hop];_ws.malformed' })), undefined);
    const icmp = { ...base, 'ipv6.nxt': '58', 'ipv6.plen': '2', 'frame.protocols': 'eth:ethertype:ipv6:icmpv6', 'icmpv6.type': '128', 'icmpv6.code': '0' };
    assert.equal(parseFieldsLine6(line({ ...icmp, '_ws.malformed': '[Malformed Packet: ICMPv6];_ws.malformed' }))?.key, '2001:db8::1 2001:db8::2 58 0 32768');
  });
});
