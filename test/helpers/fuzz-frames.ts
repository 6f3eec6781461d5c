/**
 * Seeded fuzz frames for every link type the decoder knows, each with the outcome
 * the generator knows it must have: its ledger.
 *
 * Most frames are built from fields the generator chooses first (link header,
 * 0–10 VLAN tags with random TPIDs, ethertype, IPv4 header with random options,
 * TCP/UDP/UDP-Lite/SCTP/ICMP/other transport, padding, wire length), then given at
 * most one defect: cut by the snapshot length, short on the wire, a bad version,
 * header length or total length, a fragment offset, another protocol, another
 * ethertype, and in cooked frames an inner tag left in front of IPv4 (QinQ as Linux
 * 6.18 shows it). The expected result and fields follow from those choices and the
 * packet formats (`expectedOutcome`); the frame's bytes are never read back, so the
 * decoder is checked against what was built, not against itself.
 *
 * The rest are chaos frames (pure noise, or a built frame with bytes overwritten
 * anywhere): nobody knows what they must decode to, only that decoding must not
 * throw. They go only to the in-process fuzz, never to the probe-level checks.
 *
 * One reused buffer and one reused expectation: a visitor must not keep either.
 */
import { LinkType } from '../../src/capture/link-type.js';
import { DecodeResult, PortsUnavailable } from '../../src/decode/decode.js';
import { prng } from './synthetic-pcap.js';

/** The link types fuzzed, with the number a pcap file's header gives each. */
export const FUZZ_LINK_TYPES = [
  { linkType: LinkType.ethernet, fileLinkType: 1, name: 'ethernet' },
  { linkType: LinkType.linuxSll, fileLinkType: 113, name: 'sll' },
  { linkType: LinkType.linuxSll2, fileLinkType: 276, name: 'sll2' },
  { linkType: LinkType.raw, fileLinkType: 101, name: 'raw' },
  { linkType: LinkType.ipv4, fileLinkType: 228, name: 'ipv4' },
] as const;

/** link header 20 + 10 tags + IPv4 60 + TCP 20 + payload 23 + padding 8 fit */
export const MAX_FUZZ_FRAME = 192;

/** What a frame must decode to, as far as the generator knows. */
export interface FuzzExpectation {
  /** false for chaos frames: nothing is known but that decoding must not throw */
  known: boolean;
  result: DecodeResult;
  /** the fields below are meaningful when result is ok */
  srcAddr: number;
  dstAddr: number;
  protocol: number;
  tos: number;
  ipLength: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  portsUnavailable: PortsUnavailable;
  linkIfIndex: number;
  /** what the generator did to the frame (for failure messages) */
  defect: string;
}

export interface FuzzVisitor {
  (frame: Uint8Array, caplen: number, wirelen: number, index: number, expected: FuzzExpectation): void;
}

export interface FuzzOptions {
  /** share of chaos frames (default 0.2); 0 for files whose every outcome must be known */
  chaos?: number;
}

// --- packet formats (IEEE 802.1Q, Linux cooked v1/v2, RFC 791/793/768/792/4960/3828)

const ETH_IPV4 = 0x0800;
const TPIDS = [0x8100, 0x88a8, 0x9100];
/** Ethertypes that are not IPv4, with the reason the probe gives for each. */
const NON_IPV4: readonly (readonly [number, DecodeResult])[] = [
  [0x0806, DecodeResult.arp],
  [0x86dd, DecodeResult.ipv6],
  [0x8847, DecodeResult.mpls],
  [0x8848, DecodeResult.mpls],
  [0x8863, DecodeResult.pppoe],
  [0x8864, DecodeResult.pppoe],
];
const KNOWN_TYPES = new Set([ETH_IPV4, ...TPIDS, ...NON_IPV4.map(([t]) => t)]);
/** The probe stops looking for IPv4 under more tags than this. */
const MAX_TAGS = 8;

const TCP = 6;
const UDP = 17;
const ICMP = 1;
const SCTP = 132;
const UDPLITE = 136;
/** protocols whose first four transport bytes are the ports */
const PORT_PROTOCOLS = [TCP, UDP, SCTP, UDPLITE];
/** protocols carrying no ports, as nfdump names them (test/helpers/nfcapd.ts) or prints their number */
const PORTLESS_PROTOCOLS = [2, 47, 50, 51, 0, 4, 41, 89, 103, 112, 253, 255];
/** transport header bytes written for each protocol (others: random bytes) */
const TRANSPORT_BYTES: Record<number, number> = { [TCP]: 20, [UDP]: 8, [UDPLITE]: 8, [SCTP]: 12, [ICMP]: 8 };

function linkHeaderBytes(linkType: number): number {
  switch (linkType) {
    case LinkType.ethernet:
      return 14;
    case LinkType.linuxSll:
      return 16;
    case LinkType.linuxSll2:
      return 20;
    default:
      return 0;
  }
}

/** Where the first type field sits in the link header. */
function typeFieldAt(linkType: number): number {
  return linkType === LinkType.ethernet ? 12 : linkType === LinkType.linuxSll ? 14 : 0;
}

/** A frame as built: the generator's choices, from which the outcome follows. */
interface FrameDescription {
  linkType: number;
  /** bytes of the link header without tags */
  linkHeader: number;
  tags: number;
  /** a cooked frame as Linux 6.18 shows QinQ: IPv4 named in front of an inner tag left in the payload */
  innerTag: boolean;
  /** the reason a non-IPv4 ethertype gets, or ok for IPv4 */
  payloadClass: DecodeResult;
  ifIndex: number;
  /** IPv4 (or, on raw links, the packet's version nibble) */
  version: number;
  ihl: number;
  tos: number;
  totalLength: number;
  fragmentOffset: number;
  protocol: number;
  srcAddr: number;
  dstAddr: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  icmpType: number;
  icmpCode: number;
}

/**
 * The outcome a frame built from `d` must have when `caplen` bytes of it were
 * captured and it was `wirelen` bytes long on the wire: the link header and every
 * tag must be captured; IPv4 needs its first 20 bytes, version 4, a header length
 * of at least 20, a total length from the header length to what the wire held;
 * ports need the transport bytes both in the packet and in the capture.
 */
function expectedOutcome(d: FrameDescription, caplen: number, wirelen: number, e: FuzzExpectation): void {
  e.known = true;
  e.result = DecodeResult.ok;
  let ipStart = 0;
  if (d.linkHeader > 0) {
    ipStart = d.linkHeader + 4 * d.tags;
    if (caplen < ipStart || d.tags > MAX_TAGS) {
      e.result = DecodeResult.truncatedLink;
      return;
    }
    if (d.payloadClass !== DecodeResult.ok) {
      e.result = d.payloadClass;
      return;
    }
    // the inner tag is stepped over only when the packet after it decodes: this defect comes alone, on a whole frame
    if (d.innerTag) ipStart += 4;
  } else if (d.linkType === LinkType.raw) {
    if (caplen < 1) {
      e.result = DecodeResult.truncatedLink;
      return;
    }
    if (d.version === 6) {
      e.result = DecodeResult.ipv6;
      return;
    }
  }
  const capturedIp = caplen - ipStart;
  const headerBytes = d.ihl * 4;
  if (capturedIp < 20) e.result = DecodeResult.truncatedIp;
  else if (d.version !== 4) e.result = DecodeResult.badVersion;
  else if (d.ihl < 5) e.result = DecodeResult.badHeaderLength;
  else if (d.totalLength < headerBytes || d.totalLength > wirelen - ipStart) e.result = DecodeResult.badTotalLength;
  if (e.result !== DecodeResult.ok) return;

  e.srcAddr = d.srcAddr;
  e.dstAddr = d.dstAddr;
  e.protocol = d.protocol;
  e.tos = d.tos;
  e.ipLength = d.totalLength;
  e.linkIfIndex = d.linkType === LinkType.linuxSll2 ? d.ifIndex : 0;
  e.srcPort = 0;
  e.dstPort = 0;
  e.tcpFlags = 0;
  e.portsUnavailable = PortsUnavailable.none;
  if (d.fragmentOffset !== 0) {
    e.portsUnavailable = PortsUnavailable.fragment;
    return;
  }
  const ports = PORT_PROTOCOLS.includes(d.protocol);
  const needed = ports ? 4 : d.protocol === ICMP ? 2 : 0;
  if (needed === 0) return;
  const inPacket = d.totalLength - headerBytes;
  const captured = capturedIp - headerBytes;
  if (inPacket < needed) {
    e.portsUnavailable = PortsUnavailable.shortTransport;
  } else if (captured < needed) {
    e.portsUnavailable = PortsUnavailable.snaplen;
  } else if (ports) {
    e.srcPort = d.srcPort;
    e.dstPort = d.dstPort;
    // the flags are the 14th TCP byte: both the packet and the capture must hold it
    if (d.protocol === TCP && inPacket >= 14 && captured >= 14) e.tcpFlags = d.tcpFlags;
  } else {
    e.dstPort = d.icmpType * 256 + d.icmpCode;
  }
}

/**
 * Call `visit` for `count` seeded fuzz frames of one link type. The frame array is
 * MAX_FUZZ_FRAME bytes and reused; caplen says how much of it is the frame.
 */
export function fuzzFrames(linkType: number, count: number, seed: number, visit: FuzzVisitor, options: FuzzOptions = {}): void {
  const chaos = options.chaos ?? 0.2;
  const random = prng(seed);
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(values: readonly T[]): T => values[int(values.length)]!;
  const frame = new Uint8Array(MAX_FUZZ_FRAME);
  const put16 = (at: number, v: number): void => {
    frame[at] = v >>> 8;
    frame[at + 1] = v & 0xff;
  };
  const put32 = (at: number, v: number): void => {
    put16(at, v >>> 16);
    put16(at + 2, v & 0xffff);
  };
  const noise = (from: number, to: number): void => {
    for (let j = from; j < to; j++) frame[j] = int(256);
  };
  const linkHeader = linkHeaderBytes(linkType);
  const d: FrameDescription = {
    linkType, linkHeader, tags: 0, innerTag: false, payloadClass: DecodeResult.ok, ifIndex: 0, version: 4, ihl: 5, tos: 0, totalLength: 0,
    fragmentOffset: 0, protocol: 0, srcAddr: 0, dstAddr: 0, srcPort: 0, dstPort: 0, tcpFlags: 0, icmpType: 0, icmpCode: 0,
  };
  const e: FuzzExpectation = {
    known: false, result: DecodeResult.ok, srcAddr: 0, dstAddr: 0, protocol: 0, tos: 0, ipLength: 0, srcPort: 0, dstPort: 0,
    tcpFlags: 0, portsUnavailable: PortsUnavailable.none, linkIfIndex: 0, defect: '',
  };

  /** Write the type field that follows the link header or tag `k` (k = -1: the header's own). */
  const typeFieldOf = (k: number): number => (k < 0 ? typeFieldAt(linkType) : linkHeader + 4 * k + 2);

  /** Build a frame from fresh random choices into `frame` and `d`; returns its length. */
  const build = (): number => {
    let at = 0;
    d.tags = 0;
    d.innerTag = false;
    d.payloadClass = DecodeResult.ok;
    d.ifIndex = 0;
    if (linkHeader > 0) {
      const r = random();
      d.tags = r < 0.5 ? 0 : r < 0.75 ? 1 : r < 0.9 ? 2 : 3 + int(8);
      noise(0, linkHeader);
      if (linkType === LinkType.linuxSll) {
        put16(0, int(5)); // packet type
        put16(2, 1); //      ARPHRD_ETHER
        put16(4, 6); //      address length
      } else if (linkType === LinkType.linuxSll2) {
        put16(2, 0); //      reserved
        d.ifIndex = int(2 ** 32);
        put32(4, d.ifIndex);
      }
      for (let k = 0; k < d.tags; k++) {
        put16(typeFieldOf(k - 1), pick(TPIDS));
        noise(linkHeader + 4 * k, linkHeader + 4 * k + 2); // TCI: PCP, DEI, VLAN id
      }
      at = linkHeader + 4 * d.tags;
      let type = ETH_IPV4;
      if (random() < 0.15) {
        const [nonIpv4, reason] = random() < 0.8 ? pick(NON_IPV4) : [otherEthertype(), DecodeResult.otherEthertype];
        type = nonIpv4;
        d.payloadClass = reason;
      }
      put16(typeFieldOf(d.tags - 1), type);
    }
    if (d.payloadClass !== DecodeResult.ok) {
      // what follows is never looked at
      const length = at + int(60);
      noise(at, length);
      return length;
    }
    if (linkType === LinkType.raw && random() < 0.1) {
      // an IPv6 packet on a raw link
      d.version = 6;
      const length = at + 40 + int(20);
      noise(at, length);
      frame[at] = 0x60 | (frame[at]! & 0x0f);
      return length;
    }
    return at + buildIpv4(at);
  };

  const otherEthertype = (): number => {
    for (;;) {
      const t = int(0x10000);
      if (!KNOWN_TYPES.has(t)) return t;
    }
  };

  /** An IPv4 packet at `at`: header with random options, a transport header, a payload, sometimes padding. */
  const buildIpv4 = (at: number): number => {
    d.version = 4;
    d.ihl = random() < 0.8 ? 5 : 6 + int(10);
    d.tos = int(256);
    const r = random();
    d.protocol = r < 0.3 ? TCP : r < 0.55 ? UDP : r < 0.7 ? ICMP : r < 0.78 ? SCTP : r < 0.84 ? UDPLITE : pick(PORTLESS_PROTOCOLS);
    d.srcAddr = int(2 ** 32);
    d.dstAddr = int(2 ** 32);
    d.srcPort = int(0x10000);
    d.dstPort = int(0x10000);
    d.tcpFlags = int(256);
    d.icmpType = int(256);
    d.icmpCode = int(256);
    d.fragmentOffset = 0;
    const headerBytes = d.ihl * 4;
    const transport = TRANSPORT_BYTES[d.protocol] ?? int(24);
    d.totalLength = headerBytes + transport + int(24);
    noise(at, at + d.totalLength); // identification, TTL, checksum, options, transport, payload
    frame[at] = 0x40 | d.ihl;
    frame[at + 1] = d.tos;
    put16(at + 2, d.totalLength);
    // flags: reserved, DF, MF at random; fragment offset 0 (a first fragment carries its ports)
    frame[at + 6] = frame[at + 6]! & 0xe0;
    frame[at + 7] = 0;
    frame[at + 9] = d.protocol;
    put32(at + 12, d.srcAddr);
    put32(at + 16, d.dstAddr);
    const l4 = at + headerBytes;
    if (PORT_PROTOCOLS.includes(d.protocol)) {
      put16(l4, d.srcPort);
      put16(l4 + 2, d.dstPort);
      if (d.protocol === TCP) frame[l4 + 13] = d.tcpFlags;
    } else if (d.protocol === ICMP) {
      frame[l4] = d.icmpType;
      frame[l4 + 1] = d.icmpCode;
    }
    let length = d.totalLength;
    if (random() < 0.2) {
      // Ethernet-style padding after the packet, captured
      const padding = 1 + int(8);
      noise(at + length, at + length + padding);
      length += padding;
    }
    return length;
  };

  /** Give the built frame (IPv4 inside) at most one defect; returns [caplen, wirelen] through `sizes`. */
  const sizes = { caplen: 0, wirelen: 0 };
  const defect = (length: number): void => {
    const ipStart = linkHeader + 4 * d.tags;
    const ip = (k: number): number => ipStart + k;
    sizes.caplen = length;
    sizes.wirelen = random() < 0.2 ? length + int(1600) : length;
    const isIpv4 = d.payloadClass === DecodeResult.ok && d.version === 4;
    const r = int(isIpv4 ? 12 : 3);
    switch (r) {
      case 0:
        e.defect = 'none';
        return;
      case 1:
        // the snapshot length cut it anywhere
        e.defect = 'snaplen cut';
        sizes.caplen = int(length);
        return;
      case 2:
        // the frame was this short on the wire too
        e.defect = 'short on the wire';
        sizes.caplen = sizes.wirelen = int(length);
        return;
      case 3: {
        e.defect = 'version';
        d.version = (4 + 1 + int(15)) % 16;
        frame[ip(0)] = (d.version << 4) | d.ihl;
        return;
      }
      case 4:
        e.defect = 'header length below 20';
        d.ihl = int(5);
        frame[ip(0)] = 0x40 | d.ihl;
        return;
      case 5: {
        // a header longer than the whole packet (only possible for short packets)
        const least = Math.floor(d.totalLength / 4) + 1;
        if (least > 15) {
          e.defect = 'none';
          return;
        }
        e.defect = 'header length beyond the total length';
        d.ihl = least + int(16 - least);
        frame[ip(0)] = 0x40 | d.ihl;
        return;
      }
      case 6: {
        const headerBytes = d.ihl * 4;
        const which = int(3);
        if (which === 0) {
          e.defect = 'total length below the header';
          d.totalLength = int(headerBytes);
        } else if (which === 1) {
          e.defect = 'total length beyond the wire';
          // not 0x0800 or a TPID: in a cooked frame those would read as a tag in front of IPv4
          do d.totalLength = sizes.wirelen - ipStart + 1 + int(0x10000 - (sizes.wirelen - ipStart + 1));
          while (d.totalLength === ETH_IPV4 || TPIDS.includes(d.totalLength));
        } else {
          // shorter than what was built: the rest is padding; the transport header may no longer fit
          e.defect = 'total length shorter than built';
          d.totalLength = headerBytes + int(d.totalLength - headerBytes + 1);
        }
        put16(ip(2), d.totalLength);
        return;
      }
      case 7:
        e.defect = 'fragment offset';
        d.fragmentOffset = 1 + int(0x1fff);
        frame[ip(6)] = (frame[ip(6)]! & 0xe0) | (d.fragmentOffset >>> 8);
        frame[ip(7)] = d.fragmentOffset & 0xff;
        return;
      case 8:
        e.defect = 'a protocol without ports';
        d.protocol = pick(PORTLESS_PROTOCOLS);
        frame[ip(9)] = d.protocol;
        return;
      case 9: {
        if (linkHeader === 0) {
          e.defect = 'none';
          return;
        }
        e.defect = 'ethertype';
        const [type, reason] = random() < 0.8 ? pick(NON_IPV4) : [otherEthertype(), DecodeResult.otherEthertype];
        put16(typeFieldOf(d.tags - 1), type);
        d.payloadClass = reason;
        return;
      }
      case 10: {
        if (linkType !== LinkType.linuxSll && linkType !== LinkType.linuxSll2) {
          e.defect = 'none';
          return;
        }
        // QinQ in a cooked capture of Linux 6.18: the header names IPv4, the inner tag (TCI, 0x0800) comes first
        e.defect = 'inner tag left in front of IPv4';
        frame.copyWithin(ipStart + 4, ipStart, length);
        put16(ipStart, int(0x10000));
        put16(ipStart + 2, ETH_IPV4);
        d.innerTag = true;
        sizes.caplen += 4;
        sizes.wirelen += 4;
        return;
      }
      default:
        e.defect = 'longer on the wire';
        sizes.wirelen = length + 1 + int(1600);
        return;
    }
  };

  for (let i = 0; i < count; i++) {
    const length = build();
    defect(length);
    if (random() < chaos) {
      e.known = false;
      if (random() < 0.5) {
        e.defect = 'chaos: noise';
        sizes.caplen = int(MAX_FUZZ_FRAME + 1);
        noise(0, sizes.caplen);
      } else {
        e.defect = 'chaos: bytes overwritten';
        const flips = 1 + int(4);
        for (let k = 0; k < flips; k++) frame[int(length)] = int(256);
      }
      sizes.wirelen = random() < 0.7 ? sizes.caplen : sizes.caplen + int(1600);
    } else {
      expectedOutcome(d, sizes.caplen, sizes.wirelen, e);
    }
    visit(frame, sizes.caplen, sizes.wirelen, i, e);
  }
}
