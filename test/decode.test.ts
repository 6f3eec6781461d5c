/**
 * Decoder tests on frames built byte by byte. Every builder below writes the
 * header fields in wire order with a comment per field, so a failing case can be
 * read against the packet format (RFC 791, RFC 793, RFC 768, RFC 792, IEEE 802.1Q,
 * the Linux cooked capture v1/v2 headers).
 */
import { describe, it } from 'node:test';
import { prng } from './helpers/synthetic-pcap.js';
import assert from 'node:assert/strict';
import { LinkType } from '../src/capture/link-type.js';
import { DecodeResult, DecodedPacket, PortsUnavailable, decodeFrame } from '../src/decode/decode.js';

// ---------------------------------------------------------------------------
// Byte helpers

const u8 = (v: number): number[] => [v & 0xff];
const u16 = (v: number): number[] => [(v >>> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const ip = (dotted: string): number =>
  dotted.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);

// ---------------------------------------------------------------------------
// Transport headers

interface TcpFields {
  srcPort: number;
  dstPort: number;
  flags?: number;
}
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;

/** 20-byte TCP header, no options. */
function tcp(f: TcpFields): number[] {
  return [
    ...u16(f.srcPort), //    0  source port
    ...u16(f.dstPort), //    2  destination port
    ...u32(0x01020304), //   4  sequence number
    ...u32(0x05060708), //   8  acknowledgment number
    ...u8(5 << 4), //       12  data offset 5 (20 bytes), reserved 0
    ...u8(f.flags ?? 0), // 13  flags: CWR ECE URG ACK PSH RST SYN FIN
    ...u16(0xffff), //      14  window
    ...u16(0xbeef), //      16  checksum (not verified)
    ...u16(0), //           18  urgent pointer
  ];
}

/** 8-byte UDP header. */
function udp(srcPort: number, dstPort: number, payloadLength = 0): number[] {
  return [
    ...u16(srcPort), //             0  source port
    ...u16(dstPort), //             2  destination port
    ...u16(8 + payloadLength), //   4  length
    ...u16(0), //                   6  checksum (none)
  ];
}

/** 8-byte ICMP header (echo-style rest of header). */
function icmp(type: number, code: number): number[] {
  return [
    ...u8(type), //      0  type
    ...u8(code), //      1  code
    ...u16(0xabcd), //   2  checksum
    ...u32(0x00010002), // 4  rest of header (identifier, sequence)
  ];
}

// ---------------------------------------------------------------------------
// IPv4

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_GRE = 47;
const PROTO_SCTP = 132;
const IP_FLAG_DF = 0x2;
const IP_FLAG_MF = 0x1;

interface Ipv4Fields {
  version?: number;
  /** header length in 32-bit words; default 5 + options/4 */
  ihl?: number;
  tos?: number;
  /** default: header + payload */
  totalLength?: number;
  /** 3 bits: reserved, DF, MF */
  flags?: number;
  /** in 8-byte units */
  fragmentOffset?: number;
  protocol: number;
  src: string;
  dst: string;
  /** raw option bytes, a multiple of 4 */
  options?: number[];
  payload?: number[];
}

function ipv4(f: Ipv4Fields): number[] {
  const options = f.options ?? [];
  const payload = f.payload ?? [];
  const ihl = f.ihl ?? 5 + options.length / 4;
  const totalLength = f.totalLength ?? 20 + options.length + payload.length;
  return [
    ...u8(((f.version ?? 4) << 4) | (ihl & 0x0f)), //                           0  version, IHL
    ...u8(f.tos ?? 0), //                                                        1  type of service
    ...u16(totalLength), //                                                      2  total length
    ...u16(0x1234), //                                                           4  identification
    ...u16(((f.flags ?? 0) << 13) | ((f.fragmentOffset ?? 0) & 0x1fff)), //     6  flags, fragment offset
    ...u8(64), //                                                                8  TTL
    ...u8(f.protocol), //                                                        9  protocol
    ...u16(0), //                                                               10  header checksum (not verified)
    ...u32(ip(f.src)), //                                                       12  source address
    ...u32(ip(f.dst)), //                                                       16  destination address
    ...options, //                                                              20  options
    ...payload,
  ];
}

// ---------------------------------------------------------------------------
// Link layers

// ---------------------------------------------------------------------------
// IPv6

const SRC6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

interface Ipv6Fields {
  trafficClass?: number;
  flowLabel?: number;
  /** extension headers, each built with its next-header byte as 0 (filled in here): [type, bytes] */
  headers?: [number, number[]][];
  /** the upper-layer protocol after the headers */
  protocol: number;
  payload: number[];
  /** written as is instead of the real one */
  payloadLength?: number;
}

function ipv6Packet(f: Ipv6Fields): number[] {
  const headers = f.headers ?? [];
  const chain: number[] = [];
  headers.forEach(([, bytes], i) => {
    const next = i + 1 < headers.length ? headers[i + 1]![0] : f.protocol;
    chain.push(next, ...bytes.slice(1));
  });
  const payload = [...chain, ...f.payload];
  const tc = f.trafficClass ?? 0;
  const label = f.flowLabel ?? 0;
  return [
    ...u32((6 << 28) | (tc << 20) | label),
    ...u16(f.payloadLength ?? payload.length),
    ...u8(headers.length > 0 ? headers[0]![0] : f.protocol),
    ...u8(64),
    ...SRC6,
    ...DST6,
    ...payload,
  ];
}

/** hop-by-hop (0) with one PadN option: 8 bytes */
function hopByHop(): [number, number[]] {
  return [0, [0, 0, 1, 4, 0, 0, 0, 0]];
}
/** destination options (60) of (units + 1) * 8 bytes */
function destinationOptions(units: number): [number, number[]] {
  const bytes = new Array<number>((units + 1) * 8).fill(0);
  bytes[1] = units;
  bytes[2] = 1; // PadN over the rest
  bytes[3] = bytes.length - 4;
  return [60, bytes];
}
/** routing header (43), type 4, one segment: 24 bytes */
function routingHeader(): [number, number[]] {
  return [43, [0, 2, 4, 1, 0, 0, 0, 0, ...DST6]];
}
/** fragment header (44) with the offset in 8-byte units */
function fragmentHeader(offsetUnits: number, more: boolean): [number, number[]] {
  return [44, [0, 0, ...u16((offsetUnits << 3) | (more ? 1 : 0)), ...u32(0x1234)]];
}
/** AH (51): 12 bytes of header + 12 of ICV, payload length field (24 / 4) - 2 = 4 */
function authenticationHeader(): [number, number[]] {
  return [51, [0, 4, 0, 0, ...u32(0x100), ...u32(1), ...new Array<number>(12).fill(0xab)]];
}

function udp6Packet(): number[] {
  return ipv6Packet({ protocol: PROTO_UDP, trafficClass: 0xb8, flowLabel: 0x12345, payload: udp(5353, 53, 12) });
}

const ETH_IPV4 = 0x0800;
const ETH_ARP = 0x0806;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_QINQ_OLD = 0x9100;
const ETH_MPLS = 0x8847;
const ETH_MPLS_MC = 0x8848;
const ETH_PPPOE_DISC = 0x8863;
const ETH_PPPOE_SESS = 0x8864;

/** Ethernet II, optionally with 802.1Q-style tags (each: TPID, TCI). */
function ethernet(ethertype: number, payload: number[], tags: { tpid: number; vid: number }[] = []): number[] {
  return [
    ...[0x00, 0x11, 0x22, 0x33, 0x44, 0x55], // 0  destination MAC
    ...[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb], // 6  source MAC
    ...tags.flatMap((t) => [
      ...u16(t.tpid), //                        12 + 4k  tag protocol identifier
      ...u16(t.vid & 0x0fff), //                14 + 4k  PCP 0, DEI 0, VLAN id
    ]),
    ...u16(ethertype), //                       12 + 4·tags  ethertype
    ...payload,
  ];
}

/** Linux cooked capture v1: 16 bytes. */
function sll(protocol: number, payload: number[]): number[] {
  return [
    ...u16(0), //       0  packet type (0 = to us)
    ...u16(1), //       2  ARPHRD type (1 = Ethernet)
    ...u16(6), //       4  link-layer address length
    ...[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00], // 6  link-layer address (8 bytes, padded)
    ...u16(protocol), // 14  protocol (ethertype)
    ...payload,
  ];
}

/** Linux cooked capture v2: 20 bytes. */
function sll2(protocol: number, ifIndex: number, payload: number[]): number[] {
  return [
    ...u16(protocol), // 0  protocol (ethertype)
    ...u16(0), //        2  reserved
    ...u32(ifIndex), //  4  interface index
    ...u16(1), //        8  ARPHRD type
    ...u8(4), //        10  packet type (4 = outgoing)
    ...u8(6), //        11  link-layer address length
    ...[0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x00, 0x00], // 12  link-layer address
    ...payload,
  ];
}

// ---------------------------------------------------------------------------
// Decoding

interface Decoded {
  result: DecodeResult;
  p: DecodedPacket;
}

/** Decode `bytes`; caplen defaults to all of them, wirelen to caplen. */
function decode(bytes: number[] | Uint8Array, linkType: number, caplen?: number, wirelen?: number): Decoded {
  const frame = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
  const cap = caplen ?? frame.length;
  const p = new DecodedPacket();
  const result = decodeFrame(frame, cap, wirelen ?? frame.length, linkType, p);
  return { result, p };
}

/** A plain TCP packet 10.0.0.1:40000 → 192.168.1.2:443, 100 bytes of payload. */
function tcpPacket(overrides: Partial<Ipv4Fields> = {}, flags = TCP_ACK | TCP_PSH): number[] {
  return ipv4({
    protocol: PROTO_TCP,
    tos: 0x28,
    src: '10.0.0.1',
    dst: '192.168.1.2',
    payload: [...tcp({ srcPort: 40000, dstPort: 443, flags }), ...new Array<number>(100).fill(0x5a)],
    ...overrides,
  });
}

function assertOk(d: Decoded): void {
  assert.equal(d.result, DecodeResult.ok, `expected ok, got ${d.result}`);
}

// ---------------------------------------------------------------------------

describe('decodeFrame: Ethernet IPv4', () => {
  it('decodes TCP: addresses, ports, flags, tos, protocol; ipLength is the IP total length', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket({}, TCP_SYN | TCP_ACK));
    assert.equal(frame.length, 14 + 20 + 20 + 100);
    const d = decode(frame, LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcAddr, ip('10.0.0.1'));
    assert.equal(d.p.dstAddr, ip('192.168.1.2'));
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.protocol, PROTO_TCP);
    assert.equal(d.p.tos, 0x28);
    assert.equal(d.p.tcpFlags, TCP_SYN | TCP_ACK);
    assert.equal(d.p.ipLength, 140, 'IP total length, not the 154-byte frame');
    assert.equal(d.p.linkIfIndex, 0);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.none);
  });

  it('addresses with the top bit set come out unsigned', () => {
    const d = decode(ethernet(ETH_IPV4, tcpPacket({ src: '255.254.253.252', dst: '200.1.2.3' })), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcAddr, 0xfffefdfc);
    assert.equal(d.p.dstAddr, 0xc8010203);
  });

  it('ignores Ethernet padding: 60-byte frame with a 40-byte IP packet has ipLength 40', () => {
    const packet = ipv4({ protocol: PROTO_TCP, src: '10.0.0.1', dst: '10.0.0.2', payload: tcp({ srcPort: 1, dstPort: 2, flags: TCP_ACK }) });
    assert.equal(packet.length, 40);
    const frame = [...ethernet(ETH_IPV4, packet), ...new Array<number>(6).fill(0)]; // 6 bytes of padding
    assert.equal(frame.length, 60);
    const d = decode(frame, LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.ipLength, 40);
    assert.equal(d.p.srcPort, 1);
    assert.equal(d.p.dstPort, 2);
    assert.equal(d.p.tcpFlags, TCP_ACK);
  });

  it('skips one 802.1Q tag', () => {
    const d = decode(ethernet(ETH_IPV4, tcpPacket(), [{ tpid: ETH_VLAN, vid: 100 }]), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.ipLength, 140);
  });

  it('skips QinQ: 0x88a8 outer + 0x8100 inner', () => {
    const tags = [
      { tpid: ETH_QINQ, vid: 10 },
      { tpid: ETH_VLAN, vid: 20 },
    ];
    const d = decode(ethernet(ETH_IPV4, tcpPacket(), tags), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.tcpFlags, TCP_ACK | TCP_PSH);
  });

  it('skips old-style QinQ: 0x9100 outer + 0x8100 inner', () => {
    const tags = [
      { tpid: ETH_QINQ_OLD, vid: 10 },
      { tpid: ETH_VLAN, vid: 20 },
    ];
    const d = decode(ethernet(ETH_IPV4, tcpPacket(), tags), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.dstAddr, ip('192.168.1.2'));
    assert.equal(d.p.dstPort, 443);
  });

  it('accepts 8 stacked tags but rejects 9 (truncatedLink)', () => {
    const tags = (n: number): { tpid: number; vid: number }[] =>
      Array.from({ length: n }, (_, i) => ({ tpid: ETH_VLAN, vid: i + 1 }));
    assertOk(decode(ethernet(ETH_IPV4, tcpPacket(), tags(8)), LinkType.ethernet));
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket(), tags(9)), LinkType.ethernet).result, DecodeResult.truncatedLink);
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket(), tags(40)), LinkType.ethernet).result, DecodeResult.truncatedLink);
  });

  it('a tag cut in the middle is truncatedLink', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket(), [{ tpid: ETH_VLAN, vid: 100 }]);
    // 12 MAC bytes + TPID 0x8100 + 2 of the 4 tag bytes (TCI) — the inner ethertype is missing
    for (const caplen of [14, 15, 16, 17]) {
      assert.equal(decode(frame, LinkType.ethernet, caplen).result, DecodeResult.truncatedLink, `caplen ${caplen}`);
    }
    // the whole tag but no IP header: an IP problem, not a link one
    assert.equal(decode(frame, LinkType.ethernet, 18).result, DecodeResult.truncatedIp);
  });

  it('reads ports after IPv4 options (IHL 7)', () => {
    const options = [
      ...[0x01, 0x01, 0x01, 0x01], // NOP ×4
      ...[0x94, 0x04, 0x00, 0x00], // router alert
    ];
    const packet = ipv4({
      protocol: PROTO_UDP,
      src: '10.1.1.1',
      dst: '10.2.2.2',
      options,
      payload: [...udp(5353, 53, 4), 1, 2, 3, 4],
    });
    assert.equal(packet[0], 0x47, 'version 4, IHL 7');
    const d = decode(ethernet(ETH_IPV4, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 5353);
    assert.equal(d.p.dstPort, 53);
    assert.equal(d.p.ipLength, 28 + 12);
  });

  it('reads TCP flags after IPv4 options', () => {
    const packet = ipv4({
      protocol: PROTO_TCP,
      src: '10.1.1.1',
      dst: '10.2.2.2',
      options: [0x01, 0x01, 0x01, 0x00], // NOP NOP NOP EOL
      payload: tcp({ srcPort: 22, dstPort: 50000, flags: TCP_FIN | TCP_ACK }),
    });
    const d = decode(ethernet(ETH_IPV4, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 22);
    assert.equal(d.p.dstPort, 50000);
    assert.equal(d.p.tcpFlags, TCP_FIN | TCP_ACK);
  });

  it('decodes UDP ports with tcpFlags 0', () => {
    const packet = ipv4({ protocol: PROTO_UDP, tos: 0xb8, src: '172.16.0.1', dst: '172.16.0.2', payload: [...udp(123, 65535, 48), ...new Array<number>(48).fill(0)] });
    const d = decode(ethernet(ETH_IPV4, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.protocol, PROTO_UDP);
    assert.equal(d.p.srcPort, 123);
    assert.equal(d.p.dstPort, 65535);
    assert.equal(d.p.tcpFlags, 0);
    assert.equal(d.p.tos, 0xb8);
    assert.equal(d.p.ipLength, 20 + 8 + 48);
  });

  it('decodes SCTP ports like UDP', () => {
    const packet = ipv4({ protocol: PROTO_SCTP, src: '1.1.1.1', dst: '2.2.2.2', payload: [...u16(2905), ...u16(2906), ...u32(0), ...u32(0)] });
    const d = decode(ethernet(ETH_IPV4, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 2905);
    assert.equal(d.p.dstPort, 2906);
  });

  it('ICMP: srcPort 0, dstPort = type·256 + code', () => {
    const unreachable = ipv4({ protocol: PROTO_ICMP, src: '10.0.0.254', dst: '10.0.0.1', payload: icmp(3, 1) });
    const d = decode(ethernet(ETH_IPV4, unreachable), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.protocol, PROTO_ICMP);
    assert.equal(d.p.srcPort, 0);
    assert.equal(d.p.dstPort, 3 * 256 + 1);
    assert.equal(d.p.tcpFlags, 0);

    const echo = ipv4({ protocol: PROTO_ICMP, src: '10.0.0.1', dst: '10.0.0.254', payload: icmp(8, 0) });
    const e = decode(ethernet(ETH_IPV4, echo), LinkType.ethernet);
    assertOk(e);
    assert.equal(e.p.dstPort, 0x0800);
  });

  it('other protocols (GRE 47): ports 0, ok', () => {
    const gre = ipv4({ protocol: PROTO_GRE, src: '10.0.0.1', dst: '10.0.0.2', payload: [...u16(0), ...u16(0x0800), 0x45, 0, 0, 0] });
    const d = decode(ethernet(ETH_IPV4, gre), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.protocol, PROTO_GRE);
    assert.equal(d.p.srcPort, 0);
    assert.equal(d.p.dstPort, 0);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.none);
  });

  it('first fragment (MF, offset 0) carries the ports', () => {
    const frag = tcpPacket({ flags: IP_FLAG_MF, fragmentOffset: 0 });
    const d = decode(ethernet(ETH_IPV4, frag), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.none);
  });

  it('DF alone does not make a fragment', () => {
    const d = decode(ethernet(ETH_IPV4, tcpPacket({ flags: IP_FLAG_DF })), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.dstPort, 443);
  });

  it('a non-first fragment (offset != 0) has ports 0: portsUnavailable fragment', () => {
    for (const [flags, fragmentOffset] of [
      [IP_FLAG_MF, 185], // middle fragment, offset 1480 bytes
      [0, 370], // last fragment
      [0, 0x1fff], // largest offset
    ] as const) {
      // The payload starts with what looks like a TCP header: it must not be read.
      const frag = tcpPacket({ flags, fragmentOffset });
      const d = decode(ethernet(ETH_IPV4, frag), LinkType.ethernet);
      assertOk(d);
      assert.equal(d.p.srcPort, 0);
      assert.equal(d.p.dstPort, 0);
      assert.equal(d.p.tcpFlags, 0);
      assert.equal(d.p.portsUnavailable, PortsUnavailable.fragment);
      assert.equal(d.p.ipLength, 140);
    }
  });

  it('snaplen cut before the ports (caplen 34): ok, ports 0, portsUnavailable snaplen', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket());
    const d = decode(frame, LinkType.ethernet, 34, frame.length);
    assertOk(d);
    assert.equal(d.p.srcPort, 0);
    assert.equal(d.p.dstPort, 0);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.snaplen);
    assert.equal(d.p.ipLength, 140, 'the wire length still counts');
    // 3 of the 4 port bytes: still snaplen
    const e = decode(frame, LinkType.ethernet, 37, frame.length);
    assertOk(e);
    assert.equal(e.p.portsUnavailable, PortsUnavailable.snaplen);
    assert.equal(e.p.srcPort, 0);
  });

  it('ICMP cut before type/code: snaplen', () => {
    const frame = ethernet(ETH_IPV4, ipv4({ protocol: PROTO_ICMP, src: '1.2.3.4', dst: '5.6.7.8', payload: icmp(11, 0) }));
    const d = decode(frame, LinkType.ethernet, 35, frame.length);
    assertOk(d);
    assert.equal(d.p.dstPort, 0);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.snaplen);
    const e = decode(frame, LinkType.ethernet, 36, frame.length);
    assertOk(e);
    assert.equal(e.p.dstPort, 11 * 256);
    assert.equal(e.p.portsUnavailable, PortsUnavailable.none);
  });

  it('TCP cut after the ports but before the flags: ports kept, flags 0', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket({}, TCP_SYN));
    // 14 link + 20 IP; ports end at 38, the flags byte is at 34 + 13 = 47
    for (let caplen = 38; caplen <= 47; caplen++) {
      const d = decode(frame, LinkType.ethernet, caplen, frame.length);
      assertOk(d);
      assert.equal(d.p.srcPort, 40000, `caplen ${caplen}`);
      assert.equal(d.p.dstPort, 443);
      assert.equal(d.p.tcpFlags, 0);
      assert.equal(d.p.portsUnavailable, PortsUnavailable.none);
    }
    const d = decode(frame, LinkType.ethernet, 48, frame.length);
    assert.equal(d.p.tcpFlags, TCP_SYN);
  });

  it('IP total length too short for the transport header: shortTransport', () => {
    // total length 22: a 20-byte header and 2 bytes of what should be a UDP header
    const packet = ipv4({ protocol: PROTO_UDP, src: '10.0.0.1', dst: '10.0.0.2', totalLength: 22, payload: udp(1000, 2000) });
    const frame = [...ethernet(ETH_IPV4, packet), ...new Array<number>(10).fill(0)];
    const d = decode(frame, LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 0);
    assert.equal(d.p.dstPort, 0);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.shortTransport);
    assert.equal(d.p.ipLength, 22);

    // ICMP with total length 21: only the type byte
    const i = decode(ethernet(ETH_IPV4, ipv4({ protocol: PROTO_ICMP, src: '1.1.1.1', dst: '2.2.2.2', totalLength: 21, payload: icmp(8, 0) })), LinkType.ethernet);
    assertOk(i);
    assert.equal(i.p.dstPort, 0);
    assert.equal(i.p.portsUnavailable, PortsUnavailable.shortTransport);
  });

  it('TCP whose total length ends before the flags keeps ports, flags 0', () => {
    // total length 20 + 10: ports present, byte 13 of TCP lies beyond the IP packet
    const packet = ipv4({ protocol: PROTO_TCP, src: '10.0.0.1', dst: '10.0.0.2', totalLength: 30, payload: tcp({ srcPort: 7, dstPort: 8, flags: TCP_RST }) });
    const d = decode(ethernet(ETH_IPV4, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.srcPort, 7);
    assert.equal(d.p.dstPort, 8);
    assert.equal(d.p.tcpFlags, 0);
  });

  it('resets ports and flags from the previous packet', () => {
    const p = new DecodedPacket();
    const a = Uint8Array.from(ethernet(ETH_IPV4, tcpPacket({}, TCP_SYN)));
    assert.equal(decodeFrame(a, a.length, a.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.tcpFlags, TCP_SYN);
    const b = Uint8Array.from(ethernet(ETH_IPV4, ipv4({ protocol: PROTO_GRE, src: '1.1.1.1', dst: '2.2.2.2', payload: [0, 0, 8, 0] })));
    assert.equal(decodeFrame(b, b.length, b.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.srcPort, 0);
    assert.equal(p.dstPort, 0);
    assert.equal(p.tcpFlags, 0);
    const c = Uint8Array.from(ethernet(ETH_IPV4, tcpPacket({ fragmentOffset: 100 })));
    assert.equal(decodeFrame(c, c.length, c.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.portsUnavailable, PortsUnavailable.fragment);
    assert.equal(decodeFrame(a, a.length, a.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.portsUnavailable, PortsUnavailable.none);
  });
});

describe('decodeFrame: other link types', () => {
  it('Linux SLL: protocol at offset 14, IP at 16', () => {
    const d = decode(sll(ETH_IPV4, tcpPacket()), LinkType.linuxSll);
    assertOk(d);
    assert.equal(d.p.srcAddr, ip('10.0.0.1'));
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.ipLength, 140);
    assert.equal(d.p.linkIfIndex, 0);
  });

  it('Linux SLL: non-IPv4 protocols and short headers', () => {
    assert.equal(decode(sll(ETH_ARP, new Array<number>(28).fill(0)), LinkType.linuxSll).result, DecodeResult.arp);
    assert.equal(decode(sll(ETH_IPV6, new Array<number>(40).fill(0)), LinkType.linuxSll).result, DecodeResult.badVersion);
    assertOk(decode(sll(ETH_IPV6, udp6Packet()), LinkType.linuxSll));
    const frame = sll(ETH_IPV4, tcpPacket());
    assert.equal(decode(frame, LinkType.linuxSll, 15).result, DecodeResult.truncatedLink);
    assert.equal(decode(frame, LinkType.linuxSll, 16).result, DecodeResult.truncatedIp);
    assert.equal(decode(frame, LinkType.linuxSll, 35).result, DecodeResult.truncatedIp);
    assertOk(decode(frame, LinkType.linuxSll, 36, frame.length));
  });

  it('Linux SLL2: protocol at 0, ifindex at 4 → linkIfIndex', () => {
    const d = decode(sll2(ETH_IPV4, 0x01020304, tcpPacket()), LinkType.linuxSll2);
    assertOk(d);
    assert.equal(d.p.linkIfIndex, 0x01020304);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.ipLength, 140);

    const big = decode(sll2(ETH_IPV4, 0xfffffffe, tcpPacket()), LinkType.linuxSll2);
    assertOk(big);
    assert.equal(big.p.linkIfIndex, 0xfffffffe, 'unsigned');
  });

  it('Linux SLL2: non-IPv4 protocols and short headers', () => {
    assert.equal(decode(sll2(ETH_ARP, 3, new Array<number>(28).fill(0)), LinkType.linuxSll2).result, DecodeResult.arp);
    assert.equal(decode(sll2(ETH_IPV6, 3, new Array<number>(40).fill(0)), LinkType.linuxSll2).result, DecodeResult.badVersion);
    assertOk(decode(sll2(ETH_IPV6, 3, udp6Packet()), LinkType.linuxSll2));
    const frame = sll2(ETH_IPV4, 3, tcpPacket());
    assert.equal(decode(frame, LinkType.linuxSll2, 19).result, DecodeResult.truncatedLink);
    assert.equal(decode(frame, LinkType.linuxSll2, 20).result, DecodeResult.truncatedIp);
  });

  describe('Linux SLL and SLL2 with VLAN tags (-i any: the TPID in the protocol field, the tags in the payload)', () => {
    /** Tags as they follow a TPID: each a TCI, then the next type (the last one the payload's). */
    const tagsThen = (vids: number[], innerTypes: number[], payload: number[]): number[] => [
      ...vids.flatMap((vid, k) => [
        ...u16((5 << 13) | (1 << 12) | vid), // 0 + 4k  TCI: PCP 5, DEI 1, VLAN id
        ...u16(innerTypes[k]!), //             2 + 4k  type of what follows
      ]),
      ...payload,
    ];
    const cooked: [string, number, (protocol: number, payload: number[]) => number[], number][] = [
      ['SLL', LinkType.linuxSll, (protocol, payload) => sll(protocol, payload), 16],
      ['SLL2', LinkType.linuxSll2, (protocol, payload) => sll2(protocol, 7, payload), 20],
    ];
    for (const [name, linkType, frameOf, header] of cooked) {
      it(`${name}: one 802.1Q tag, QinQ 0x88a8 + 0x8100, old QinQ 0x9100 + 0x8100 → the IPv4 packet inside`, () => {
        const stacks: [number, number[], number[]][] = [
          [ETH_VLAN, [100], [ETH_IPV4]],
          [ETH_QINQ, [10, 20], [ETH_VLAN, ETH_IPV4]],
          [ETH_QINQ_OLD, [4094, 1], [ETH_VLAN, ETH_IPV4]],
        ];
        for (const [tpid, vids, types] of stacks) {
          const d = decode(frameOf(tpid, tagsThen(vids, types, tcpPacket())), linkType);
          assertOk(d);
          assert.equal(d.p.srcAddr, ip('10.0.0.1'));
          assert.equal(d.p.dstAddr, ip('192.168.1.2'));
          assert.equal(d.p.protocol, PROTO_TCP);
          assert.equal(d.p.srcPort, 40000);
          assert.equal(d.p.dstPort, 443);
          assert.equal(d.p.tcpFlags, TCP_ACK | TCP_PSH);
          assert.equal(d.p.tos, 0x28);
          assert.equal(d.p.ipLength, 140);
          assert.equal(d.p.linkIfIndex, linkType === LinkType.linuxSll2 ? 7 : 0);
        }
      });

      it(`${name}: tagged ARP and MPLS are skipped by their own reason, tagged IPv6 decodes`, () => {
        assert.equal(decode(frameOf(ETH_VLAN, tagsThen([5], [ETH_ARP], new Array<number>(28).fill(0))), linkType).result, DecodeResult.arp);
        const v6 = decode(frameOf(ETH_QINQ, tagsThen([5, 6], [ETH_VLAN, ETH_IPV6], udp6Packet())), linkType);
        assertOk(v6);
        assert.equal(v6.p.family, 6);
        assert.equal(v6.p.vlanId, 5, 'the outer tag');
        assert.equal(v6.p.dstPort, 53);
        assert.equal(decode(frameOf(ETH_VLAN, tagsThen([5], [ETH_MPLS], tcpPacket())), linkType).result, DecodeResult.mpls);
        assert.equal(decode(frameOf(ETH_VLAN, tagsThen([5], [0x88cc], tcpPacket())), linkType).result, DecodeResult.otherEthertype);
      });

      it(`${name}: a tag cut short is truncatedLink, a cut IP header after it truncatedIp; the wire length counts the tag`, () => {
        const frame = frameOf(ETH_VLAN, tagsThen([100], [ETH_IPV4], tcpPacket()));
        for (let caplen = header; caplen < header + 4; caplen++) {
          assert.equal(decode(frame, linkType, caplen, frame.length).result, DecodeResult.truncatedLink, `caplen ${caplen}`);
        }
        assert.equal(decode(frame, linkType, header + 4 + 19, frame.length).result, DecodeResult.truncatedIp);
        const cut = decode(frame, linkType, header + 4 + 20, frame.length);
        assertOk(cut);
        assert.equal(cut.p.portsUnavailable, PortsUnavailable.snaplen);
        // IP total length 140 needs header + 4 + 140 bytes on the wire
        assertOk(decode(frame, linkType, header + 4 + 140, header + 4 + 140));
        assert.equal(decode(frame, linkType, header + 4 + 139, header + 4 + 139).result, DecodeResult.badTotalLength);
        const nine = frameOf(ETH_VLAN, tagsThen([1, 2, 3, 4, 5, 6, 7, 8, 9], [...new Array<number>(8).fill(ETH_VLAN), ETH_IPV4], tcpPacket()));
        assert.equal(decode(nine, linkType).result, DecodeResult.truncatedLink, 'more than 8 tags');
      });

      it(`${name}: QinQ as Linux 6.18 shows it: IPv4 named in front of the inner tag, the packet after that tag decoded`, () => {
        // SLL (libpcap put the outer tag back): 0x88a8, TCI, 0x0800, inner TCI, 0x0800, IPv4;
        // SLL2 (it does not): 0x0800, inner TCI, 0x0800, IPv4. PCP 5 makes the TCI start 0xb;
        // PCP 2 makes it start 0x4, which reads as IPv4 with a header or total length that cannot be.
        for (const pcp of [5, 2, 0]) {
          const innerTag = [...u16((pcp << 13) | 20), ...u16(ETH_IPV4)];
          const frames = [
            frameOf(ETH_QINQ, [...u16(100), ...u16(ETH_IPV4), ...innerTag, ...tcpPacket()]),
            frameOf(ETH_IPV4, [...innerTag, ...tcpPacket()]),
          ];
          for (const frame of frames) {
            const d = decode(frame, linkType);
            assertOk(d);
            assert.equal(d.p.srcAddr, ip('10.0.0.1'));
            assert.equal(d.p.dstPort, 443);
            assert.equal(d.p.ipLength, 140);
            assert.equal(d.p.tcpFlags, TCP_ACK | TCP_PSH);
          }
        }
      });

      it(`${name}: a bad IPv4 header that is no tag in front of IPv4 keeps its reason`, () => {
        assert.equal(decode(frameOf(ETH_IPV4, tcpPacket({ version: 6 })), linkType).result, DecodeResult.badVersion);
        assert.equal(decode(frameOf(ETH_IPV4, tcpPacket({ ihl: 3 })), linkType).result, DecodeResult.badHeaderLength);
        assert.equal(decode(frameOf(ETH_IPV4, tcpPacket({ totalLength: 9000 })), linkType).result, DecodeResult.badTotalLength);
        // a tag, then ARP: not IPv4 after all
        assert.equal(decode(frameOf(ETH_IPV4, [...u16(20), ...u16(ETH_ARP), ...new Array<number>(28).fill(0)]), linkType).result, DecodeResult.badVersion);
        // a tag, then a broken IPv4 header: the first reason stands
        assert.equal(decode(frameOf(ETH_IPV4, [...u16(20), ...u16(ETH_IPV4), ...tcpPacket({ version: 5 })]), linkType).result, DecodeResult.badVersion);
        // Ethernet shows tags as they are: no second reading there
        assert.equal(decode(ethernet(ETH_IPV4, [...u16(20), ...u16(ETH_IPV4), ...tcpPacket()]), LinkType.ethernet).result, DecodeResult.badVersion);
      });
    }
  });

  it('linkIfIndex goes back to 0 after an SLL2 frame', () => {
    const p = new DecodedPacket();
    const a = Uint8Array.from(sll2(ETH_IPV4, 9, tcpPacket()));
    assert.equal(decodeFrame(a, a.length, a.length, LinkType.linuxSll2, p), DecodeResult.ok);
    assert.equal(p.linkIfIndex, 9);
    const b = Uint8Array.from(ethernet(ETH_IPV4, tcpPacket()));
    assert.equal(decodeFrame(b, b.length, b.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.linkIfIndex, 0);
  });

  it('raw IP: version 4 and version 6 decode', () => {
    const d = decode(tcpPacket(), LinkType.raw);
    assertOk(d);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.ipLength, 140);

    const v6 = [
      ...u32(0x60000000), // version 6, traffic class, flow label
      ...u16(8), //          payload length
      ...u8(17), //          next header UDP
      ...u8(64), //          hop limit
      ...new Array<number>(32).fill(0), // addresses
      ...udp(1, 2),
    ];
    assertOk(decode(v6, LinkType.raw));
    assert.equal(decode(v6, LinkType.raw).p.family, 6);
    assert.equal(decode(v6, LinkType.raw, 1).result, DecodeResult.truncatedIp);
    assert.equal(decode(v6, LinkType.raw, 0).result, DecodeResult.truncatedLink);
  });

  it('raw IP: other versions are badVersion', () => {
    assert.equal(decode(tcpPacket({ version: 5 }), LinkType.raw).result, DecodeResult.badVersion);
  });

  it('LinkType.ipv4: IPv4 at offset 0', () => {
    const d = decode(ipv4({ protocol: PROTO_UDP, src: '9.9.9.9', dst: '8.8.8.8', payload: udp(53000, 53) }), LinkType.ipv4);
    assertOk(d);
    assert.equal(d.p.srcAddr, ip('9.9.9.9'));
    assert.equal(d.p.srcPort, 53000);
    assert.equal(d.p.dstPort, 53);
    assert.equal(d.p.ipLength, 28);
    assert.equal(decode(tcpPacket({ version: 6 }), LinkType.ipv4).result, DecodeResult.badVersion);
  });

  it('an unsupported link type is skipped, not decoded', () => {
    assert.equal(decode(tcpPacket(), 0).result, DecodeResult.otherEthertype);
  });
});

describe('decodeFrame: skips', () => {
  const cases: [string, number, DecodeResult][] = [
    ['ARP', ETH_ARP, DecodeResult.arp],
    ['MPLS unicast 0x8847', ETH_MPLS, DecodeResult.mpls],
    ['MPLS multicast 0x8848', ETH_MPLS_MC, DecodeResult.mpls],
    ['PPPoE discovery 0x8863', ETH_PPPOE_DISC, DecodeResult.pppoe],
    ['PPPoE session 0x8864', ETH_PPPOE_SESS, DecodeResult.pppoe],
    ['802.3 LLC (length field 0x0026 < 1536)', 0x0026, DecodeResult.otherEthertype],
    ['LLDP 0x88cc', 0x88cc, DecodeResult.otherEthertype],
  ];
  for (const [name, ethertype, expected] of cases) {
    it(`${name} → ${expected}`, () => {
      // the payload is a valid IPv4 packet: it must not be looked at
      assert.equal(decode(ethernet(ethertype, tcpPacket()), LinkType.ethernet).result, expected);
    });
  }

  it('IPv6 under 0x86dd whose version is not 6 is badVersion', () => {
    assert.equal(decode(ethernet(ETH_IPV6, new Array<number>(40).fill(0), [{ tpid: ETH_VLAN, vid: 5 }]), LinkType.ethernet).result, DecodeResult.badVersion);
  });

  it('a frame shorter than 14 bytes is truncatedLink', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket());
    for (let caplen = 0; caplen < 14; caplen++) {
      assert.equal(decode(frame.slice(0, caplen), LinkType.ethernet).result, DecodeResult.truncatedLink, `caplen ${caplen}`);
    }
  });

  it('fewer than 20 IP bytes captured is truncatedIp', () => {
    const frame = ethernet(ETH_IPV4, tcpPacket());
    for (let caplen = 14; caplen < 34; caplen++) {
      assert.equal(decode(frame, LinkType.ethernet, caplen, frame.length).result, DecodeResult.truncatedIp, `caplen ${caplen}`);
    }
    assert.equal(decode(tcpPacket().slice(0, 19), LinkType.ipv4).result, DecodeResult.truncatedIp);
    assert.equal(decode(tcpPacket().slice(0, 19), LinkType.raw).result, DecodeResult.truncatedIp);
  });

  it('version 6 inside ethertype 0x0800 is badVersion', () => {
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket({ version: 6 })), LinkType.ethernet).result, DecodeResult.badVersion);
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket({ version: 0 })), LinkType.ethernet).result, DecodeResult.badVersion);
  });

  it('IHL below 5 is badHeaderLength', () => {
    for (const ihl of [0, 1, 4]) {
      assert.equal(decode(ethernet(ETH_IPV4, tcpPacket({ ihl })), LinkType.ethernet).result, DecodeResult.badHeaderLength, `IHL ${ihl}`);
    }
  });

  it('total length 10 (below the header) is badTotalLength', () => {
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket({ totalLength: 10 })), LinkType.ethernet).result, DecodeResult.badTotalLength);
    assert.equal(decode(ethernet(ETH_IPV4, tcpPacket({ totalLength: 0 })), LinkType.ethernet).result, DecodeResult.badTotalLength);
  });

  it('total length below an options header (IHL 7, total 24) is badTotalLength', () => {
    const packet = ipv4({ protocol: PROTO_UDP, src: '1.1.1.1', dst: '2.2.2.2', options: new Array<number>(8).fill(1), totalLength: 24, payload: udp(1, 2) });
    assert.equal(decode(ethernet(ETH_IPV4, packet), LinkType.ethernet).result, DecodeResult.badTotalLength);
  });

  it('total length beyond the wire length is badTotalLength', () => {
    const packet = tcpPacket(); // total length 140
    const frame = ethernet(ETH_IPV4, packet);
    // the wire frame is one byte short of what the IP header claims
    assert.equal(decode(frame.slice(0, frame.length - 1), LinkType.ethernet).result, DecodeResult.badTotalLength);
    // a snaplen-cut capture of a frame whose wire length is right is fine
    assertOk(decode(frame, LinkType.ethernet, 64, frame.length));
    // a snaplen-cut capture whose wire length is too short is not
    assert.equal(decode(frame, LinkType.ethernet, 64, frame.length - 1).result, DecodeResult.badTotalLength);
    // the same through the other link types
    assert.equal(decode(packet, LinkType.raw, packet.length, 139).result, DecodeResult.badTotalLength);
    assert.equal(decode(packet, LinkType.ipv4, packet.length, 139).result, DecodeResult.badTotalLength);
    assert.equal(decode(sll(ETH_IPV4, packet), LinkType.linuxSll, 156, 155).result, DecodeResult.badTotalLength);
    assert.equal(decode(sll2(ETH_IPV4, 1, packet), LinkType.linuxSll2, 160, 159).result, DecodeResult.badTotalLength);
  });
});

// ---------------------------------------------------------------------------
// Robustness


const VALID_RESULTS = new Set<number>(Object.values(DecodeResult));
const LINK_TYPES = [LinkType.ethernet, LinkType.linuxSll, LinkType.linuxSll2, LinkType.raw, LinkType.ipv4, LinkType.ipv6] as const;

function snapshot(p: DecodedPacket): number[] {
  const v6 = p.family === 6 ? [...p.src6, ...p.dst6].map((w) => w >>> 0) : [];
  return [p.family, p.srcAddr, p.dstAddr, p.srcPort, p.dstPort, p.protocol, p.tos, p.tcpFlags, p.ipLength, p.linkIfIndex, p.portsUnavailable, p.flowLabel, p.vlanId, ...v6];
}

/** Decode and check the invariants every result must satisfy. */
function checkedDecode(frame: Uint8Array, caplen: number, wirelen: number, linkType: number, what: () => string): void {
  const p = new DecodedPacket();
  let result: DecodeResult;
  try {
    result = decodeFrame(frame, caplen, wirelen, linkType, p);
  } catch (error) {
    assert.fail(`${what()}: threw ${String(error)}`);
  }
  if (!VALID_RESULTS.has(result)) assert.fail(`${what()}: result ${String(result)}`);
  if (result !== DecodeResult.ok) return;
  const fields = snapshot(p);
  for (const v of fields) {
    if (!Number.isInteger(v) || v < 0) assert.fail(`${what()}: field value ${v} in ${fields.join(',')}`);
  }
  if (p.srcPort > 0xffff || p.dstPort > 0xffff || p.tos > 0xff || p.tcpFlags > 0xff || p.protocol > 0xff) {
    assert.fail(`${what()}: out of range ${fields.join(',')}`);
  }
  if (p.ipLength < (p.family === 6 ? 40 : 20) || p.ipLength > wirelen) assert.fail(`${what()}: ipLength ${p.ipLength} wirelen ${wirelen}`);
  if (p.portsUnavailable !== PortsUnavailable.none && (p.srcPort !== 0 || p.dstPort !== 0 || p.tcpFlags !== 0)) {
    assert.fail(`${what()}: ports without portsUnavailable none: ${fields.join(',')}`);
  }
  // Bytes beyond caplen were not captured: changing them must change nothing.
  const other = new Uint8Array(frame.length + 64);
  other.set(frame.subarray(0, caplen));
  for (let i = caplen; i < other.length; i++) other[i] = (frame[i] ?? 0) ^ 0xa5;
  const q = new DecodedPacket();
  const again = decodeFrame(other, caplen, wirelen, linkType, q);
  if (again !== result || snapshot(q).join() !== fields.join()) {
    assert.fail(`${what()}: depends on bytes beyond caplen ${caplen}`);
  }
}

function validFrame(linkType: number, family: 4 | 6 = 4): number[] {
  const packet =
    family === 6 || linkType === LinkType.ipv6
      ? ipv6Packet({ headers: [hopByHop(), fragmentHeader(0, true), destinationOptions(1)], protocol: PROTO_TCP, payload: tcp({ srcPort: 40000, dstPort: 443, flags: TCP_SYN }) })
      : tcpPacket({ options: [1, 1, 1, 1] });
  const type = family === 6 ? ETH_IPV6 : ETH_IPV4;
  switch (linkType) {
    case LinkType.ethernet:
      return ethernet(type, packet, [{ tpid: ETH_QINQ, vid: 1 }, { tpid: ETH_VLAN, vid: 2 }]);
    case LinkType.linuxSll:
      return sll(type, packet);
    case LinkType.linuxSll2:
      return sll2(type, 42, packet);
    default:
      return packet;
  }
}

describe('decodeFrame: never throws', () => {
  it('every prefix of a valid frame, with the wire length of the full frame and of the prefix', () => {
    for (const [linkType, family] of [...LINK_TYPES.map((l) => [l, 4] as const), ...LINK_TYPES.filter((l) => l !== LinkType.ipv4).map((l) => [l, 6] as const)]) {
      const frame = Uint8Array.from(validFrame(linkType, family));
      assertOk(decode(frame, linkType));
      for (let caplen = 0; caplen <= frame.length; caplen++) {
        const prefix = frame.slice(0, caplen);
        checkedDecode(frame, caplen, frame.length, linkType, () => `link ${linkType} caplen ${caplen}/${frame.length}`);
        checkedDecode(prefix, caplen, frame.length, linkType, () => `link ${linkType} prefix ${caplen}`);
        checkedDecode(prefix, caplen, caplen, linkType, () => `link ${linkType} prefix ${caplen} wirelen ${caplen}`);
      }
    }
  });

  it('100k random and mutated frames per link type', () => {
    const random = prng(0x5eed1234);
    const int = (n: number): number => Math.floor(random() * n);
    let ok = 0;
    for (const linkType of LINK_TYPES) {
      for (let i = 0; i < 100_000; i++) {
        const template = validFrame(linkType, linkType !== LinkType.ipv4 && i % 4 === 1 ? 6 : 4);
        let frame: Uint8Array;
        if (i % 2 === 0) {
          // pure noise of a random length
          frame = new Uint8Array(int(120));
          for (let j = 0; j < frame.length; j++) frame[j] = int(256);
        } else {
          // a valid frame with a few bytes flipped: reaches the deep paths
          frame = Uint8Array.from(template);
          const flips = 1 + int(4);
          for (let k = 0; k < flips; k++) frame[int(frame.length)] = int(256);
        }
        const caplen = int(frame.length + 1);
        const wirelen = random() < 0.5 ? caplen : caplen + int(2000);
        checkedDecode(frame, caplen, wirelen, linkType, () => `link ${linkType} #${i} [${Array.from(frame).join(',')}] caplen ${caplen} wirelen ${wirelen}`);
        const p = new DecodedPacket();
        if (decodeFrame(frame, caplen, wirelen, linkType, p) === DecodeResult.ok) ok++;
      }
    }
    assert.ok(ok > 10_000, `the mutated frames should often decode (${ok})`);
  });
});

describe('decodeFrame: IPv6', () => {
  const words = (bytes: number[]): number[] => [0, 4, 8, 12].map((i) => ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0);

  it('UDP on Ethernet: addresses, ports, traffic class, flow label; octets are payload length + 40', () => {
    const packet = udp6Packet();
    const d = decode(ethernet(ETH_IPV6, packet), LinkType.ethernet);
    assertOk(d);
    assert.equal(d.p.family, 6);
    assert.deepEqual([...d.p.src6].map((w) => w >>> 0), words(SRC6));
    assert.deepEqual([...d.p.dst6].map((w) => w >>> 0), words(DST6));
    assert.equal(d.p.srcPort, 5353);
    assert.equal(d.p.dstPort, 53);
    assert.equal(d.p.protocol, PROTO_UDP);
    assert.equal(d.p.tos, 0xb8);
    assert.equal(d.p.flowLabel, 0x12345);
    assert.equal(d.p.ipLength, packet.length);
    assert.equal(d.p.vlanId, 0);
  });

  it('Ethernet padding and a longer wire length do not count', () => {
    const packet = ipv6Packet({ protocol: PROTO_TCP, payload: tcp({ srcPort: 1, dstPort: 2, flags: TCP_ACK }) });
    const frame = ethernet(ETH_IPV6, [...packet, ...new Array<number>(6).fill(0)]);
    const d = decode(frame, LinkType.ethernet, frame.length, frame.length + 4);
    assertOk(d);
    assert.equal(d.p.ipLength, 60);
    assert.equal(d.p.tcpFlags, TCP_ACK);
  });

  it('walks hop-by-hop, routing, destination options and AH to the transport header', () => {
    const packet = ipv6Packet({
      headers: [hopByHop(), routingHeader(), destinationOptions(2), authenticationHeader()],
      protocol: PROTO_TCP,
      payload: tcp({ srcPort: 40000, dstPort: 443, flags: TCP_SYN }),
    });
    const d = decode(packet, LinkType.ipv6);
    assertOk(d);
    assert.equal(d.p.protocol, PROTO_TCP);
    assert.equal(d.p.srcPort, 40000);
    assert.equal(d.p.dstPort, 443);
    assert.equal(d.p.tcpFlags, TCP_SYN);
    assert.equal(d.p.ipLength, packet.length);
  });

  it('ESP, no next header and unknown headers end the walk: that value is the protocol, ports 0', () => {
    for (const protocol of [50, 59, 253]) {
      const d = decode(ipv6Packet({ headers: [hopByHop()], protocol, payload: [1, 2, 3, 4, 5, 6, 7, 8] }), LinkType.ipv6);
      assertOk(d);
      assert.equal(d.p.protocol, protocol);
      assert.equal(d.p.srcPort, 0);
      assert.equal(d.p.dstPort, 0);
      assert.equal(d.p.portsUnavailable, PortsUnavailable.none);
    }
  });

  it('fragments: the first carries ports, a later one does not (its next header is the protocol)', () => {
    const first = decode(ipv6Packet({ headers: [fragmentHeader(0, true)], protocol: PROTO_UDP, payload: udp(1000, 2000, 40) }), LinkType.ipv6);
    assertOk(first);
    assert.equal(first.p.srcPort, 1000);
    const later = decode(ipv6Packet({ headers: [fragmentHeader(6, false)], protocol: PROTO_UDP, payload: new Array<number>(40).fill(7) }), LinkType.ipv6);
    assertOk(later);
    assert.equal(later.p.protocol, PROTO_UDP);
    assert.equal(later.p.srcPort, 0);
    assert.equal(later.p.portsUnavailable, PortsUnavailable.fragment);
  });

  it('ICMPv6: type * 256 + code in the destination port', () => {
    const d = decode(ipv6Packet({ protocol: 58, payload: [128, 0, 0x12, 0x34, 0, 1, 0, 1] }), LinkType.ipv6);
    assertOk(d);
    assert.equal(d.p.protocol, 58);
    assert.equal(d.p.dstPort, 128 * 256);
    assert.equal(d.p.srcPort, 0);
  });

  it('malformed: jumbogram, zero or too large payload length, truncated fixed or extension header', () => {
    const jumbo = ipv6Packet({ headers: [[0, [0, 0, 0xc2, 4, 0, 1, 0, 0]]], protocol: PROTO_UDP, payload: udp(1, 2, 60000), payloadLength: 0 });
    assert.equal(decode(jumbo, LinkType.ipv6).result, DecodeResult.ipv6Jumbogram);
    assert.equal(decode(ipv6Packet({ protocol: PROTO_TCP, payload: [], payloadLength: 0 }), LinkType.ipv6).result, DecodeResult.badIpv6PayloadLength);
    const none = decode(ipv6Packet({ protocol: 59, payload: [] }), LinkType.ipv6);
    assertOk(none);
    assert.equal(none.p.ipLength, 40);
    const long = ipv6Packet({ protocol: PROTO_UDP, payload: udp(1, 2, 4), payloadLength: 100 });
    assert.equal(decode(long, LinkType.ipv6).result, DecodeResult.badIpv6PayloadLength);
    assert.equal(decode(udp6Packet(), LinkType.ipv6, 39).result, DecodeResult.truncatedIp);
    // a destination options header claiming 24 bytes in a 16-byte payload
    const cut = ipv6Packet({ headers: [destinationOptions(2)], protocol: PROTO_UDP, payload: [] });
    const short = cut.slice(0, 40 + 16);
    short[5] = 16;
    assert.equal(decode(short, LinkType.ipv6).result, DecodeResult.truncatedIpv6ExtensionHeader);
  });

  it('a snapshot length inside the extension headers: counted, the cut header as protocol, ports 0', () => {
    const packet = ipv6Packet({ headers: [hopByHop(), routingHeader()], protocol: PROTO_TCP, payload: tcp({ srcPort: 1, dstPort: 2 }) });
    const d = decode(packet, LinkType.ipv6, 40 + 8 + 10, packet.length);
    assertOk(d);
    assert.equal(d.p.protocol, 43);
    assert.equal(d.p.portsUnavailable, PortsUnavailable.snaplen);
    assert.equal(d.p.ipLength, packet.length);
  });

  it('more than 16 extension headers ends the walk at the 17th', () => {
    const headers = Array.from({ length: 17 }, () => destinationOptions(0));
    const d = decode(ipv6Packet({ headers, protocol: PROTO_UDP, payload: udp(1, 2) }), LinkType.ipv6);
    assertOk(d);
    assert.equal(d.p.protocol, 60);
    assert.equal(d.p.srcPort, 0);
  });

  it('LinkType.ipv6 takes only version 6; LinkType.ipv4 only version 4', () => {
    assert.equal(decode(tcpPacket(), LinkType.ipv6).result, DecodeResult.badVersion);
    assert.equal(decode(udp6Packet(), LinkType.ipv4).result, DecodeResult.badVersion);
  });

  it('SLL2: the ifindex and a cooked QinQ inner tag left in front of IPv6', () => {
    const d = decode(sll2(ETH_IPV6, 9, udp6Packet()), LinkType.linuxSll2);
    assertOk(d);
    assert.equal(d.p.linkIfIndex, 9);
    // Linux's cooked QinQ: the protocol field says IPv6, the inner TCI and type come first
    const stray = decode(sll2(ETH_IPV6, 9, [...u16(0x0064), ...u16(ETH_IPV6), ...udp6Packet()]), LinkType.linuxSll2);
    assertOk(stray);
    assert.equal(stray.p.family, 6);
    assert.equal(stray.p.vlanId, 100);
    assert.equal(stray.p.dstPort, 53);
  });

  it('IPv4 after IPv6 leaves no IPv6 fields behind', () => {
    const p = new DecodedPacket();
    const v6 = Uint8Array.from(ethernet(ETH_IPV6, udp6Packet(), [{ tpid: ETH_VLAN, vid: 7 }]));
    assert.equal(decodeFrame(v6, v6.length, v6.length, LinkType.ethernet, p), DecodeResult.ok);
    const v4 = Uint8Array.from(ethernet(ETH_IPV4, tcpPacket()));
    assert.equal(decodeFrame(v4, v4.length, v4.length, LinkType.ethernet, p), DecodeResult.ok);
    assert.equal(p.family, 4);
    assert.equal(p.flowLabel, 0);
    assert.equal(p.vlanId, 0);
  });
});
