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
 * About 30% of the frames on links that carry either family (all on LINKTYPE_IPV6,
 * none on LINKTYPE_IPV4) are IPv6 (ethertype 0x86dd after the tags, version 6 on a
 * raw link): random traffic class, flow label and addresses, 0–18 extension headers
 * (hop-by-hop, routing, destination options, AH, fragment: some with a non-zero
 * offset) and an upper layer (TCP, UDP, UDP-Lite, SCTP, ICMPv6, ESP, 59, others),
 * then at most one defect: cut by the snapshot length, short on the wire, a version
 * other than 6, a payload length beyond the wire or shorter than built (an
 * extension header or the transport no longer fits), payload length 0 (a
 * jumbogram's next header 0, 59, or another), another ethertype. The expectation
 * follows the decoder's IPv6 rules in `expectedOutcome6`.
 *
 * The rest are chaos frames (pure noise, or a built frame with bytes overwritten
 * anywhere): nobody knows what they must decode to, only that decoding must not
 * throw. They go only to the in-process fuzz, never to the probe-level checks.
 *
 * One reused buffer and one reused expectation: a visitor must not keep either.
 */
import { LinkType } from '../../src/capture/link-type.js';
import { DecodeResult, PortsUnavailable, SKIP_REASONS } from '../../src/decode/decode.js';
import { prng } from './synthetic-pcap.js';
import { ipv6ToString } from '../../src/export/flow-records.js';

/** The link types fuzzed, with the number a pcap file's header gives each. */
export const FUZZ_LINK_TYPES = [
  { linkType: LinkType.ethernet, fileLinkType: 1, name: 'ethernet' },
  { linkType: LinkType.linuxSll, fileLinkType: 113, name: 'sll' },
  { linkType: LinkType.linuxSll2, fileLinkType: 276, name: 'sll2' },
  { linkType: LinkType.raw, fileLinkType: 101, name: 'raw' },
  { linkType: LinkType.ipv4, fileLinkType: 228, name: 'ipv4' },
  { linkType: LinkType.ipv6, fileLinkType: 229, name: 'ipv6' },
] as const;

/** link header 20 + 10 tags + IPv6 40 + 18 extension headers (at most 240 bytes) + TCP 20 + payload 23 + padding 8 fit */
export const MAX_FUZZ_FRAME = 512;

/** What a frame must decode to, as far as the generator knows. */
export interface FuzzExpectation {
  /** false for chaos frames: nothing is known but that decoding must not throw */
  known: boolean;
  result: DecodeResult;
  /** the fields below are meaningful when result is ok */
  family: 4 | 6;
  /** IPv4 only (0 for IPv6) */
  srcAddr: number;
  dstAddr: number;
  /** IPv6 only: the addresses as four big-endian 32-bit words, as int32 (DecodedPacket's src6 / dst6) */
  src6: Int32Array;
  dst6: Int32Array;
  /** IPv6 only: 20 bits */
  flowLabel: number;
  /** the first (outermost) VLAN tag's VID in the frame, 0 without tags; both families */
  vlanId: number;
  protocol: number;
  /** IPv4 type of service, IPv6 traffic class */
  tos: number;
  /** IPv4 total length, IPv6 payload length + 40 */
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
const ETH_IPV6 = 0x86dd;
const TPIDS = [0x8100, 0x88a8, 0x9100];
/** Ethertypes that are not IP, with the reason the probe gives for each. */
const NON_IPV4: readonly (readonly [number, DecodeResult])[] = [
  [0x0806, DecodeResult.arp],
  [0x8847, DecodeResult.mpls],
  [0x8848, DecodeResult.mpls],
  [0x8863, DecodeResult.pppoe],
  [0x8864, DecodeResult.pppoe],
];
const KNOWN_TYPES = new Set([ETH_IPV4, ETH_IPV6, ...TPIDS, ...NON_IPV4.map(([t]) => t)]);

/**
 * A result by its label (SKIP_REASONS), so the IPv6 reasons are found whatever
 * DecodeResult calls them; -1 (never a result) while the decoder lacks the label.
 */
function resultLabelled(label: string): DecodeResult {
  return (SKIP_REASONS as readonly string[]).indexOf(label) as DecodeResult;
}
/** hop-by-hop (0) with payload length 0: RFC 2675's jumbogram, not counted */
export const IPV6_JUMBOGRAM = resultLabelled('ipv6_jumbogram');
/** payload length 0 (next header not 59) or beyond the frame on the wire */
export const BAD_IPV6_PAYLOAD_LENGTH = resultLabelled('bad_ipv6_payload_length');
/** an extension header running past the payload length */
export const TRUNCATED_IPV6_EXTENSION_HEADER = resultLabelled('truncated_ipv6_extension_header');

// RFC 8200: extension headers the decoder walks, and its limit
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AH = 51;
const DESTINATION_OPTIONS = 60;
const EXTENSION_HEADERS = [HOP_BY_HOP, ROUTING, FRAGMENT, AH, DESTINATION_OPTIONS];
const MAX_EXTENSION_HEADERS = 16;
const ICMPV6 = 58;
const NO_NEXT_HEADER = 59;
/** upper layers without ports under IPv6 (ICMP for IPv4 is one here; ESP, no next header, unassigned) */
const PORTLESS_PROTOCOLS6 = [1, 2, 4, 41, 47, 50, 59, 89, 103, 112, 253, 255];
/** more than this many extension headers are never built */
const MAX_BUILT_EXTENSION_HEADERS = 18;
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
const TRANSPORT_BYTES6: Record<number, number> = { [TCP]: 20, [UDP]: 8, [UDPLITE]: 8, [SCTP]: 12, [ICMPV6]: 8 };

/** RFC 5952 text of an address held as four big-endian 32-bit words (as the decoder keeps it). */
export function ipv6String(words: ArrayLike<number>): string {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  for (let k = 0; k < 4; k++) view.setUint32(4 * k, words[k]! >>> 0);
  return ipv6ToString(bytes);
}

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
  /** the reason a non-IP ethertype gets, or ok for IPv4 / IPv6 */
  payloadClass: DecodeResult;
  ifIndex: number;
  /** the first tag's VID (0 without tags) */
  vlanId: number;
  family: 4 | 6;
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
  // IPv6 (tos is the traffic class, protocol the upper layer built, fragmentOffset unused)
  flowLabel: number;
  payloadLength: number;
  /** the fixed header's next header */
  nextHeader: number;
  src6: Int32Array;
  dst6: Int32Array;
  /** extension headers built, in order: each one's type (the value naming it), length and fragment offset */
  extensions: number;
  extType: Int32Array;
  extBytes: Int32Array;
  extFragmentOffset: Int32Array;
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
  }
  e.vlanId = d.vlanId;
  e.family = d.family;
  if (d.family === 6) {
    expectedOutcome6(d, ipStart, caplen, wirelen, e);
    return;
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
  e.src6.fill(0);
  e.dst6.fill(0);
  e.flowLabel = 0;
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
 * The outcome of an IPv6 packet built from `d` at `ipStart` (the link header and tags
 * already passed): the 40-byte header captured, version 6; payload length 0 only
 * with next header 59 (0 is a jumbogram, anything else a bad payload length); the
 * payload within what the wire held. Then the walk over at most 16 extension
 * headers: each header's first 2 bytes (8 for a fragment header), then its whole
 * length, must lie inside the payload (else malformed) and be captured (else
 * counted with the value naming it as protocol, ports 0, snaplen); a fragment with
 * a non-zero offset ends it (its next header, ports 0). Ports as for IPv4.
 */
function expectedOutcome6(d: FrameDescription, ipStart: number, caplen: number, wirelen: number, e: FuzzExpectation): void {
  const captured = caplen - ipStart;
  // on a raw link a version other than 6 (never 4: see defect6) is read as IPv4: 20 bytes decide it
  if (d.linkType === LinkType.raw && d.version !== 6) {
    e.result = captured < 20 ? DecodeResult.truncatedIp : DecodeResult.badVersion;
    return;
  }
  if (captured < 40) {
    e.result = DecodeResult.truncatedIp;
    return;
  }
  if (d.version !== 6) {
    e.result = DecodeResult.badVersion;
    return;
  }
  if (d.payloadLength === 0 && d.nextHeader !== NO_NEXT_HEADER) {
    e.result = d.nextHeader === HOP_BY_HOP ? IPV6_JUMBOGRAM : BAD_IPV6_PAYLOAD_LENGTH;
    return;
  }
  const end = d.payloadLength + 40;
  if (end > wirelen - ipStart) {
    e.result = BAD_IPV6_PAYLOAD_LENGTH;
    return;
  }
  e.srcAddr = 0;
  e.dstAddr = 0;
  e.src6.set(d.src6);
  e.dst6.set(d.dst6);
  e.flowLabel = d.flowLabel;
  e.tos = d.tos;
  e.ipLength = end;
  e.linkIfIndex = d.linkType === LinkType.linuxSll2 ? d.ifIndex : 0;
  e.srcPort = 0;
  e.dstPort = 0;
  e.tcpFlags = 0;
  e.portsUnavailable = PortsUnavailable.none;
  let protocol = d.nextHeader;
  let at = 40;
  for (let k = 0; EXTENSION_HEADERS.includes(protocol); k++) {
    // the chain is built consistently: header k is the one `protocol` names
    if (k === MAX_EXTENSION_HEADERS || k >= d.extensions) {
      // a 17th header ends the walk as itself
      e.protocol = protocol;
      return;
    }
    const first = protocol === FRAGMENT ? 8 : 2;
    const size = d.extBytes[k]!;
    if (at + first > end) {
      e.result = TRUNCATED_IPV6_EXTENSION_HEADER;
      return;
    }
    if (at + first > captured) {
      e.protocol = protocol;
      e.portsUnavailable = PortsUnavailable.snaplen;
      return;
    }
    if (at + size > end) {
      e.result = TRUNCATED_IPV6_EXTENSION_HEADER;
      return;
    }
    if (at + size > captured) {
      e.protocol = protocol;
      e.portsUnavailable = PortsUnavailable.snaplen;
      return;
    }
    const next = k + 1 < d.extensions ? d.extType[k + 1]! : d.protocol;
    if (protocol === FRAGMENT && d.extFragmentOffset[k] !== 0) {
      e.protocol = next;
      e.portsUnavailable = PortsUnavailable.fragment;
      return;
    }
    protocol = next;
    at += size;
  }
  e.protocol = protocol;
  const ports = PORT_PROTOCOLS.includes(protocol);
  const needed = ports ? 4 : protocol === ICMPV6 ? 2 : 0;
  if (needed === 0) return;
  const inPacket = end - at;
  const inCapture = captured - at;
  if (inPacket < needed) {
    e.portsUnavailable = PortsUnavailable.shortTransport;
  } else if (inCapture < needed) {
    e.portsUnavailable = PortsUnavailable.snaplen;
  } else if (ports) {
    e.srcPort = d.srcPort;
    e.dstPort = d.dstPort;
    if (protocol === TCP && inPacket >= 14 && inCapture >= 14) e.tcpFlags = d.tcpFlags;
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
    linkType, linkHeader, tags: 0, innerTag: false, payloadClass: DecodeResult.ok, ifIndex: 0, vlanId: 0, family: 4, version: 4, ihl: 5, tos: 0,
    totalLength: 0, fragmentOffset: 0, protocol: 0, srcAddr: 0, dstAddr: 0, srcPort: 0, dstPort: 0, tcpFlags: 0, icmpType: 0, icmpCode: 0,
    flowLabel: 0, payloadLength: 0, nextHeader: 0, src6: new Int32Array(4), dst6: new Int32Array(4), extensions: 0,
    extType: new Int32Array(MAX_BUILT_EXTENSION_HEADERS), extBytes: new Int32Array(MAX_BUILT_EXTENSION_HEADERS),
    extFragmentOffset: new Int32Array(MAX_BUILT_EXTENSION_HEADERS),
  };
  const e: FuzzExpectation = {
    known: false, result: DecodeResult.ok, family: 4, srcAddr: 0, dstAddr: 0, src6: new Int32Array(4), dst6: new Int32Array(4), flowLabel: 0,
    vlanId: 0, protocol: 0, tos: 0, ipLength: 0, srcPort: 0, dstPort: 0, tcpFlags: 0, portsUnavailable: PortsUnavailable.none, linkIfIndex: 0,
    defect: '',
  };
  /** which family a frame carries: the link decides for LINKTYPE_IPV4 / IPV6, else 30% IPv6 */
  const chooseFamily = (): 4 | 6 =>
    linkType === LinkType.ipv4 ? 4 : linkType === LinkType.ipv6 ? 6 : random() < 0.3 ? 6 : 4;

  /** Write the type field that follows the link header or tag `k` (k = -1: the header's own). */
  const typeFieldOf = (k: number): number => (k < 0 ? typeFieldAt(linkType) : linkHeader + 4 * k + 2);

  /** Build a frame from fresh random choices into `frame` and `d`; returns its length. */
  const build = (): number => {
    let at = 0;
    d.tags = 0;
    d.innerTag = false;
    d.payloadClass = DecodeResult.ok;
    d.ifIndex = 0;
    d.vlanId = 0;
    d.family = chooseFamily();
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
      if (d.tags > 0) d.vlanId = ((frame[linkHeader]! & 0x0f) << 8) | frame[linkHeader + 1]!;
      at = linkHeader + 4 * d.tags;
      let type = d.family === 6 ? ETH_IPV6 : ETH_IPV4;
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
    return at + (d.family === 6 ? buildIpv6(at) : buildIpv4(at));
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

  /** The extension header to build next: its type and length in bytes (RFC 8200, RFC 4302 for AH). */
  const extension = (k: number, type: number): void => {
    d.extType[k] = type;
    d.extFragmentOffset[k] = 0;
    if (type === FRAGMENT) {
      d.extBytes[k] = 8;
      // mostly first fragments (or atomic ones); some later fragments
      if (random() < 0.15) d.extFragmentOffset[k] = 1 + int(0x1fff);
    } else if (type === AH) {
      d.extBytes[k] = (1 + int(6) + 2) * 4;
    } else {
      d.extBytes[k] = (int(3) + 1) * 8;
    }
  };

  /** An IPv6 packet at `at`: fixed header, 0–18 extension headers, an upper layer, a payload, sometimes padding. */
  const buildIpv6 = (at: number): number => {
    d.version = 6;
    d.tos = int(256);
    d.flowLabel = int(0x100000);
    for (let k = 0; k < 4; k++) {
      d.src6[k] = int(2 ** 32) | 0;
      d.dst6[k] = int(2 ** 32) | 0;
    }
    const r = random();
    d.extensions = r < 0.45 ? 0 : r < 0.75 ? 1 + int(3) : r < 0.93 ? 4 + int(5) : 15 + int(4);
    const long = d.extensions > 8;
    for (let k = 0; k < d.extensions; k++) {
      extension(k, pick(EXTENSION_HEADERS));
      // long chains of short headers, so that they fit
      if (long && d.extType[k] !== FRAGMENT) {
        d.extType[k] = DESTINATION_OPTIONS;
        d.extBytes[k] = 8;
      }
    }
    const u = random();
    d.protocol = u < 0.3 ? TCP : u < 0.55 ? UDP : u < 0.7 ? ICMPV6 : u < 0.78 ? SCTP : u < 0.84 ? UDPLITE : pick(PORTLESS_PROTOCOLS6);
    d.srcPort = int(0x10000);
    d.dstPort = int(0x10000);
    d.tcpFlags = int(256);
    d.icmpType = int(256);
    d.icmpCode = int(256);
    d.nextHeader = d.extensions > 0 ? d.extType[0]! : d.protocol;
    let headers = 0;
    for (let k = 0; k < d.extensions; k++) headers += d.extBytes[k]!;
    const transport = TRANSPORT_BYTES6[d.protocol] ?? int(24);
    d.payloadLength = headers + transport + int(24);
    if (d.payloadLength === 0 && d.protocol !== NO_NEXT_HEADER) d.payloadLength = 1; // 0 is a defect of its own
    noise(at, at + 40 + d.payloadLength); // hop limit, options, transport, payload
    frame[at] = 0x60 | (d.tos >>> 4);
    frame[at + 1] = ((d.tos & 0x0f) << 4) | (d.flowLabel >>> 16);
    put16(at + 2, d.flowLabel & 0xffff);
    put16(at + 4, d.payloadLength);
    frame[at + 6] = d.nextHeader;
    for (let k = 0; k < 4; k++) {
      put32(at + 8 + 4 * k, d.src6[k]!);
      put32(at + 24 + 4 * k, d.dst6[k]!);
    }
    let h = at + 40;
    for (let k = 0; k < d.extensions; k++) {
      const type = d.extType[k]!;
      const size = d.extBytes[k]!;
      frame[h] = k + 1 < d.extensions ? d.extType[k + 1]! : d.protocol;
      if (type === FRAGMENT) {
        // offset (13 bits), reserved, M at random; identification noise
        put16(h + 2, (d.extFragmentOffset[k]! << 3) | (frame[h + 3]! & 0x07));
      } else if (type === AH) {
        frame[h + 1] = size / 4 - 2;
      } else {
        frame[h + 1] = size / 8 - 1;
      }
      h += size;
    }
    if (PORT_PROTOCOLS.includes(d.protocol)) {
      put16(h, d.srcPort);
      put16(h + 2, d.dstPort);
      if (d.protocol === TCP) frame[h + 13] = d.tcpFlags;
    } else if (d.protocol === ICMPV6) {
      frame[h] = d.icmpType;
      frame[h + 1] = d.icmpCode;
    }
    let length = 40 + d.payloadLength;
    if (random() < 0.2) {
      const padding = 1 + int(8);
      noise(at + length, at + length + padding);
      length += padding;
    }
    return length;
  };

  /** Give the built IPv6 frame at most one defect (sizes as for IPv4). */
  const defect6 = (length: number, ipStart: number): void => {
    const ip = (k: number): number => ipStart + k;
    /** payload lengths that would read as a type a cooked capture steps over (a tag in front of IP) are avoided */
    const special = (v: number): boolean => v === ETH_IPV4 || v === ETH_IPV6 || TPIDS.includes(v);
    switch (int(10)) {
      case 0:
        e.defect = 'none';
        return;
      case 1:
        e.defect = 'snaplen cut';
        sizes.caplen = int(length);
        return;
      case 2:
        e.defect = 'short on the wire';
        sizes.caplen = sizes.wirelen = int(length);
        return;
      case 3: {
        e.defect = 'version';
        // on a raw link 4 would make it IPv4; elsewhere any other value
        do d.version = int(16);
        while (d.version === 6 || (linkType === LinkType.raw && d.version === 4));
        frame[ip(0)] = (d.version << 4) | (frame[ip(0)]! & 0x0f);
        return;
      }
      case 4: {
        const which = int(3);
        if (which === 0) {
          e.defect = 'payload length beyond the wire';
          const least = sizes.wirelen - ipStart - 40 + 1;
          do d.payloadLength = least + int(0x10000 - least);
          while (special(d.payloadLength));
        } else {
          // shorter than built: an extension header or the transport may no longer fit
          e.defect = 'payload length shorter than built';
          d.payloadLength = 1 + int(d.payloadLength);
        }
        put16(ip(4), d.payloadLength);
        return;
      }
      case 5: {
        e.defect = 'payload length 0';
        d.payloadLength = 0;
        const which = int(3);
        // a jumbogram (hop-by-hop first), no next header, or anything else
        if (which === 0) d.nextHeader = HOP_BY_HOP;
        else if (which === 1) d.nextHeader = NO_NEXT_HEADER;
        put16(ip(4), 0);
        frame[ip(6)] = d.nextHeader;
        if (which !== 2) d.extensions = 0; // what follows is not walked (59) or not read (0)
        return;
      }
      case 6: {
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
      default:
        e.defect = 'longer on the wire';
        sizes.wirelen = length + 1 + int(1600);
        return;
    }
  };

  /** Give the built frame (IPv4 inside) at most one defect; returns [caplen, wirelen] through `sizes`. */
  const sizes = { caplen: 0, wirelen: 0 };
  const defect = (length: number): void => {
    const ipStart = linkHeader + 4 * d.tags;
    const ip = (k: number): number => ipStart + k;
    sizes.caplen = length;
    sizes.wirelen = random() < 0.2 ? length + int(1600) : length;
    if (d.payloadClass === DecodeResult.ok && d.family === 6) {
      defect6(length, ipStart);
      return;
    }
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
        // on a raw link 6 would make it IPv6
        do d.version = (4 + 1 + int(15)) % 16;
        while (linkType === LinkType.raw && d.version === 6);
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
        // the frame's first tag when no tag came before it
        if (d.tags === 0) d.vlanId = ((frame[ipStart]! & 0x0f) << 8) | frame[ipStart + 1]!;
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
