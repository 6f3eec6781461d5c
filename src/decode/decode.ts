import { LinkType } from '../capture/link-type.js';

/** Why a frame was not turned into a flow update. `ok` (0) means it was. */
export const DecodeResult = {
  ok: 0,
  arp: 1,
  mpls: 2,
  pppoe: 3,
  otherEthertype: 4,
  truncatedLink: 5,
  truncatedIp: 6,
  badVersion: 7,
  badHeaderLength: 8,
  badTotalLength: 9,
  ipv6Jumbogram: 10,
  badIpv6PayloadLength: 11,
  truncatedIpv6ExtensionHeader: 12,
} as const;
export type DecodeResult = (typeof DecodeResult)[keyof typeof DecodeResult];

/** Label of each skip reason, indexed by DecodeResult (index 0 unused). */
export const SKIP_REASONS = [
  'ok',
  'arp',
  'mpls',
  'pppoe',
  'other_ethertype',
  'truncated_link_header',
  'truncated_ip_header',
  'bad_ip_version',
  'bad_ip_header_length',
  'bad_ip_total_length',
  'ipv6_jumbogram',
  'bad_ipv6_payload_length',
  'truncated_ipv6_extension_header',
] as const;
export type SkipReason = Exclude<(typeof SKIP_REASONS)[number], 'ok'>;

/** Results from this one on are malformed frames; those before it are frames that are not IP. */
export const FIRST_MALFORMED_RESULT = DecodeResult.truncatedLink;

/** Packets that were counted, but whose transport ports are reported as 0. */
export const PortsUnavailable = {
  none: 0,
  /** a fragment with a non-zero offset carries no transport header */
  fragment: 1,
  /** the capture's snapshot length cut the packet before its ports */
  snaplen: 2,
  /** the IP packet itself is too short to hold the transport header */
  shortTransport: 3,
} as const;
export type PortsUnavailable = (typeof PortsUnavailable)[keyof typeof PortsUnavailable];

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
const ETHERTYPE_MPLS_UC = 0x8847;
const ETHERTYPE_MPLS_MC = 0x8848;
const ETHERTYPE_PPPOE_DISC = 0x8863;
const ETHERTYPE_PPPOE_SESS = 0x8864;
/** More tags than this is not a real frame. */
const MAX_VLAN_TAGS = 8;

const PROTO_ICMP = 1;
const PROTO_ICMPV6 = 58;
const PROTO_HOP_BY_HOP = 0;
const PROTO_ROUTING = 43;
const PROTO_FRAGMENT = 44;
const PROTO_AH = 51;
const PROTO_NO_NEXT_HEADER = 59;
const PROTO_DESTINATION_OPTIONS = 60;
/** More extension headers than this ends the walk (the next one's value is the protocol). */
const MAX_IPV6_EXTENSION_HEADERS = 16;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;

/**
 * Fields of one decoded IPv4 or IPv6 packet. One instance is reused for every
 * packet: decoding writes into it and allocates nothing.
 */
export class DecodedPacket {
  /** 4 or 6 */
  family = 4;
  /** IPv4 addresses (IPv6: 0) */
  srcAddr = 0;
  dstAddr = 0;
  /** IPv6 addresses as four big-endian 32-bit words each (as int32); IPv4 leaves them as they were */
  readonly src6 = new Int32Array(4);
  readonly dst6 = new Int32Array(4);
  /** IPv6 flow label (20 bits); IPv4: 0 */
  flowLabel = 0;
  /** the first (outermost) VLAN tag's id seen in the frame, 0 without one */
  vlanId = 0;
  srcPort = 0;
  dstPort = 0;
  protocol = 0;
  tos = 0;
  tcpFlags = 0;
  /** IPv4 total length, IPv6 payload length + 40: the octets a router counts. IPv6: traffic class in `tos`. */
  ipLength = 0;
  /** Interface index carried by the link header (SLL2), else 0. */
  linkIfIndex = 0;
  portsUnavailable: PortsUnavailable = PortsUnavailable.none;
}

function classifyEthertype(type: number): DecodeResult {
  switch (type) {
    case ETHERTYPE_ARP:
      return DecodeResult.arp;
    case ETHERTYPE_MPLS_UC:
    case ETHERTYPE_MPLS_MC:
      return DecodeResult.mpls;
    case ETHERTYPE_PPPOE_DISC:
    case ETHERTYPE_PPPOE_SESS:
      return DecodeResult.pppoe;
    default:
      return DecodeResult.otherEthertype;
  }
}

/** Set by ipAfterTags: the ethertype found behind the tags (IPv4 or IPv6). */
let typeAfterTags = 0;

/**
 * A link header's type is not IPv4: step over the VLAN tags that may follow it
 * (each a TCI and the next type, at `offset`), as on Ethernet. Linux cooked
 * captures (`-i any`) carry them the same way: the TPID in the protocol field,
 * the tags at the start of the payload. Returns the IP header's offset (its
 * ethertype in typeAfterTags), or the negated reason the frame is skipped (a
 * number, so nothing is allocated). The first tag's VLAN id goes to `out`.
 */
function ipAfterTags(frame: Uint8Array, start: number, caplen: number, type: number, offset: number, out: DecodedPacket): number {
  let tags = 0;
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
    if (caplen < offset + 4 || ++tags > MAX_VLAN_TAGS) return -DecodeResult.truncatedLink;
    if (tags === 1) out.vlanId = ((frame[start + offset]! & 0x0f) << 8) | frame[start + offset + 1]!;
    type = (frame[start + offset + 2]! << 8) | frame[start + offset + 3]!;
    offset += 4;
  }
  typeAfterTags = type;
  return type === ETHERTYPE_IPV4 || type === ETHERTYPE_IPV6 ? offset : -classifyEthertype(type);
}

/**
 * Decode one captured frame into `out`.
 * @param frame   the bytes holding the frame (a reused buffer, or a file's read chunk)
 * @param caplen  bytes captured
 * @param wirelen bytes on the wire (the frame's real length)
 * @param start   where the frame begins in `frame`
 */
export function decodeFrame(
  frame: Uint8Array,
  caplen: number,
  wirelen: number,
  linkType: number,
  out: DecodedPacket,
  start = 0,
): DecodeResult {
  let offset: number;
  out.linkIfIndex = 0;
  out.vlanId = 0;
  switch (linkType) {
    // Untagged IPv4 costs one comparison; anything else goes through the tags.
    case LinkType.ethernet: {
      if (caplen < 14) return DecodeResult.truncatedLink;
      const type = (frame[start + 12]! << 8) | frame[start + 13]!;
      offset = 14;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipAfterTags(frame, start, caplen, type, offset, out);
        if (offset < 0) return -offset as DecodeResult;
        if (typeAfterTags === ETHERTYPE_IPV6) return decodeIpv6(frame, start + offset, start + caplen, wirelen - offset, out);
      }
      break;
    }
    case LinkType.linuxSll: {
      if (caplen < 16) return DecodeResult.truncatedLink;
      const type = (frame[start + 14]! << 8) | frame[start + 15]!;
      offset = 16;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipAfterTags(frame, start, caplen, type, offset, out);
        if (offset < 0) return -offset as DecodeResult;
        if (typeAfterTags === ETHERTYPE_IPV6) return decodeCooked(frame, start, caplen, wirelen, offset, out, true);
      }
      return decodeCooked(frame, start, caplen, wirelen, offset, out, false);
    }
    case LinkType.linuxSll2: {
      if (caplen < 20) return DecodeResult.truncatedLink;
      const type = (frame[start]! << 8) | frame[start + 1]!;
      offset = 20;
      out.linkIfIndex =
        ((frame[start + 4]! << 24) | (frame[start + 5]! << 16) | (frame[start + 6]! << 8) | frame[start + 7]!) >>> 0;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipAfterTags(frame, start, caplen, type, offset, out);
        if (offset < 0) return -offset as DecodeResult;
        if (typeAfterTags === ETHERTYPE_IPV6) return decodeCooked(frame, start, caplen, wirelen, offset, out, true);
      }
      return decodeCooked(frame, start, caplen, wirelen, offset, out, false);
    }
    case LinkType.raw: {
      if (caplen < 1) return DecodeResult.truncatedLink;
      if (frame[start]! >> 4 === 6) return decodeIpv6(frame, start, start + caplen, wirelen, out);
      offset = 0;
      break;
    }
    case LinkType.ipv4:
      offset = 0;
      break;
    case LinkType.ipv6:
      return decodeIpv6(frame, start, start + caplen, wirelen, out);
    default:
      // The capture layer refuses other link types at open.
      return DecodeResult.otherEthertype;
  }
  return decodeIpv4(frame, start + offset, start + caplen, wirelen - offset, out);
}

/**
 * IP at `offset` of a Linux cooked capture. Of a double-tagged frame, Linux (seen
 * on 6.18) puts the innermost protocol in the protocol field but leaves the inner
 * tag in the payload, and libpcap puts back only the outer one: SLL shows TPID,
 * TCI, 0x0800, then the inner TCI and type; SLL2 shows 0x0800 and the inner TCI
 * and type. So where a cooked frame's IP header is bad (version, header or
 * payload length: a TCI can start with 0x4 or 0x6) and reads as a tag in front
 * of IP that decodes, that packet is the one counted; anything else keeps its reason.
 */
function decodeCooked(
  frame: Uint8Array,
  start: number,
  caplen: number,
  wirelen: number,
  offset: number,
  out: DecodedPacket,
  ipv6: boolean,
): DecodeResult {
  const result = ipv6
    ? decodeIpv6(frame, start + offset, start + caplen, wirelen - offset, out)
    : decodeIpv4(frame, start + offset, start + caplen, wirelen - offset, out);
  if (result === DecodeResult.ok || result === DecodeResult.truncatedIp) return result;
  const vlanId = out.vlanId;
  // the tag left in the payload is the inner one: the first seen stays the outer (if any)
  const inner = ipAfterTags(frame, start, caplen, ETHERTYPE_VLAN, offset, out);
  const innerFirst = out.vlanId;
  if (inner >= 0) {
    const innerResult =
      typeAfterTags === ETHERTYPE_IPV6
        ? decodeIpv6(frame, start + inner, start + caplen, wirelen - inner, out)
        : decodeIpv4(frame, start + inner, start + caplen, wirelen - inner, out);
    if (innerResult === DecodeResult.ok) {
      out.vlanId = vlanId !== 0 ? vlanId : innerFirst;
      return DecodeResult.ok;
    }
  }
  out.vlanId = vlanId;
  return result;
}

function decodeIpv4(
  frame: Uint8Array,
  offset: number,
  /** index in `frame` just past the captured bytes */
  captureEnd: number,
  wireBytes: number,
  out: DecodedPacket,
): DecodeResult {
  if (captureEnd < offset + 20) return DecodeResult.truncatedIp;
  const b0 = frame[offset]!;
  if (b0 >> 4 !== 4) return DecodeResult.badVersion;
  const headerLength = (b0 & 0x0f) << 2;
  if (headerLength < 20) return DecodeResult.badHeaderLength;
  const totalLength = (frame[offset + 2]! << 8) | frame[offset + 3]!;
  // A total length beyond the frame is a lie: the packet on the wire was shorter.
  if (totalLength < headerLength || totalLength > wireBytes) return DecodeResult.badTotalLength;

  out.family = 4;
  out.flowLabel = 0;
  out.tos = frame[offset + 1]!;
  out.ipLength = totalLength;
  const protocol = frame[offset + 9]!;
  out.protocol = protocol;
  out.srcAddr =
    ((frame[offset + 12]! << 24) | (frame[offset + 13]! << 16) | (frame[offset + 14]! << 8) | frame[offset + 15]!) >>>
    0;
  out.dstAddr =
    ((frame[offset + 16]! << 24) | (frame[offset + 17]! << 16) | (frame[offset + 18]! << 8) | frame[offset + 19]!) >>>
    0;
  out.srcPort = 0;
  out.dstPort = 0;
  out.tcpFlags = 0;
  out.portsUnavailable = PortsUnavailable.none;

  const fragmentOffset = ((frame[offset + 6]! & 0x1f) << 8) | frame[offset + 7]!;
  if (fragmentOffset !== 0) {
    out.portsUnavailable = PortsUnavailable.fragment;
    return DecodeResult.ok;
  }

  return decodeTransport(frame, protocol, PROTO_ICMP, offset + headerLength, offset + totalLength, captureEnd, out);
}

/**
 * Ports (or ICMP type and code) and TCP flags of the transport header at `l4`,
 * inside an IP packet ending at `ipEnd`. Ports and flags were reset by the caller.
 */
function decodeTransport(
  frame: Uint8Array,
  protocol: number,
  /** the family's own ICMP: 1 in IPv4, 58 in IPv6 (each is meaningless in the other) */
  icmp: number,
  l4: number,
  ipEnd: number,
  captureEnd: number,
  out: DecodedPacket,
): DecodeResult {
  switch (protocol) {
    case PROTO_TCP:
    case PROTO_UDP:
    case PROTO_SCTP:
    case PROTO_UDPLITE:
      if (l4 + 4 > ipEnd) {
        out.portsUnavailable = PortsUnavailable.shortTransport;
      } else if (l4 + 4 > captureEnd) {
        out.portsUnavailable = PortsUnavailable.snaplen;
      } else {
        out.srcPort = (frame[l4]! << 8) | frame[l4 + 1]!;
        out.dstPort = (frame[l4 + 2]! << 8) | frame[l4 + 3]!;
        // TCP flags sit 13 bytes in; a cut before them leaves the ports usable.
        if (protocol === PROTO_TCP && l4 + 14 <= captureEnd && l4 + 14 <= ipEnd) out.tcpFlags = frame[l4 + 13]!;
      }
      break;
    case PROTO_ICMP:
    case PROTO_ICMPV6:
      if (protocol !== icmp) break;
      if (l4 + 2 > ipEnd) {
        out.portsUnavailable = PortsUnavailable.shortTransport;
      } else if (l4 + 2 > captureEnd) {
        out.portsUnavailable = PortsUnavailable.snaplen;
      } else {
        // NetFlow's convention: type and code in the destination port.
        out.dstPort = (frame[l4]! << 8) | frame[l4 + 1]!;
      }
      break;
    default:
      break;
  }
  return DecodeResult.ok;
}

/**
 * IPv6 at `offset`: the fixed header, then the extension headers up to the
 * transport header. A header that runs past the payload is malformed; one the
 * snapshot length cut is counted with its own value as the protocol, ports 0.
 */
function decodeIpv6(
  frame: Uint8Array,
  offset: number,
  /** index in `frame` just past the captured bytes */
  captureEnd: number,
  wireBytes: number,
  out: DecodedPacket,
): DecodeResult {
  if (captureEnd < offset + 40) return DecodeResult.truncatedIp;
  const b0 = frame[offset]!;
  if (b0 >> 4 !== 6) return DecodeResult.badVersion;
  const payloadLength = (frame[offset + 4]! << 8) | frame[offset + 5]!;
  let next = frame[offset + 6]!;
  if (payloadLength === 0 && next !== PROTO_NO_NEXT_HEADER) {
    // RFC 2675: a jumbogram's length is in a hop-by-hop option; no link captured here carries one
    return next === PROTO_HOP_BY_HOP ? DecodeResult.ipv6Jumbogram : DecodeResult.badIpv6PayloadLength;
  }
  // A payload beyond the frame is a lie: the packet on the wire was shorter.
  if (payloadLength + 40 > wireBytes) return DecodeResult.badIpv6PayloadLength;

  out.family = 6;
  out.srcAddr = 0;
  out.dstAddr = 0;
  const src6 = out.src6;
  const dst6 = out.dst6;
  for (let i = 0; i < 4; i++) {
    const s = offset + 8 + 4 * i;
    src6[i] = (frame[s]! << 24) | (frame[s + 1]! << 16) | (frame[s + 2]! << 8) | frame[s + 3]!;
    const d = s + 16;
    dst6[i] = (frame[d]! << 24) | (frame[d + 1]! << 16) | (frame[d + 2]! << 8) | frame[d + 3]!;
  }
  out.tos = ((b0 & 0x0f) << 4) | (frame[offset + 1]! >> 4);
  out.flowLabel = ((frame[offset + 1]! & 0x0f) << 16) | (frame[offset + 2]! << 8) | frame[offset + 3]!;
  out.ipLength = payloadLength + 40;
  out.srcPort = 0;
  out.dstPort = 0;
  out.tcpFlags = 0;
  out.portsUnavailable = PortsUnavailable.none;

  const ipEnd = offset + 40 + payloadLength;
  let at = offset + 40;
  for (let headers = 0; ; headers++) {
    let length: number;
    switch (next) {
      case PROTO_HOP_BY_HOP:
      case PROTO_ROUTING:
      case PROTO_DESTINATION_OPTIONS:
      case PROTO_AH:
      case PROTO_FRAGMENT:
        if (headers === MAX_IPV6_EXTENSION_HEADERS) {
          out.protocol = next;
          return DecodeResult.ok;
        }
        break;
      default:
        out.protocol = next;
        return decodeTransport(frame, next, PROTO_ICMPV6, at, ipEnd, captureEnd, out);
    }
    if (next === PROTO_FRAGMENT) {
      length = 8;
    } else {
      // hop-by-hop, routing, destination options: 8-byte units past the first 8; AH: 4-byte units past the first 8
      if (at + 2 > ipEnd) return DecodeResult.truncatedIpv6ExtensionHeader;
      if (at + 2 > captureEnd) return cutExtensionHeader(next, out);
      length = next === PROTO_AH ? (frame[at + 1]! + 2) << 2 : (frame[at + 1]! + 1) << 3;
    }
    if (at + length > ipEnd) return DecodeResult.truncatedIpv6ExtensionHeader;
    if (at + length > captureEnd) return cutExtensionHeader(next, out);
    if (next === PROTO_FRAGMENT && (((frame[at + 2]! << 8) | frame[at + 3]!) & 0xfff8) !== 0) {
      // a later fragment: no transport header (the same rule as IPv4)
      out.protocol = frame[at]!;
      out.portsUnavailable = PortsUnavailable.fragment;
      return DecodeResult.ok;
    }
    next = frame[at]!;
    at += length;
  }
}

/** The snapshot length cut an extension header: counted, with its own value as the protocol. */
function cutExtensionHeader(header: number, out: DecodedPacket): DecodeResult {
  out.protocol = header;
  out.portsUnavailable = PortsUnavailable.snaplen;
  return DecodeResult.ok;
}
