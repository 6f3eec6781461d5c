import { LinkType } from '../capture/link-type.js';

/** Why a frame was not turned into a flow update. `ok` (0) means it was. */
export const DecodeResult = {
  ok: 0,
  arp: 1,
  ipv6: 2,
  mpls: 3,
  pppoe: 4,
  otherEthertype: 5,
  truncatedLink: 6,
  truncatedIp: 7,
  badVersion: 8,
  badHeaderLength: 9,
  badTotalLength: 10,
} as const;
export type DecodeResult = (typeof DecodeResult)[keyof typeof DecodeResult];

/** Label of each skip reason, indexed by DecodeResult (index 0 unused). */
export const SKIP_REASONS = [
  'ok',
  'arp',
  'ipv6',
  'mpls',
  'pppoe',
  'other_ethertype',
  'truncated_link_header',
  'truncated_ip_header',
  'bad_ip_version',
  'bad_ip_header_length',
  'bad_ip_total_length',
] as const;
export type SkipReason = Exclude<(typeof SKIP_REASONS)[number], 'ok'>;

/** Results from this one on are malformed frames; those before it are frames that are not IPv4. */
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
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;

/**
 * Fields of one decoded IPv4 packet. One instance is reused for every packet:
 * decoding writes into it and allocates nothing.
 */
export class DecodedPacket {
  srcAddr = 0;
  dstAddr = 0;
  srcPort = 0;
  dstPort = 0;
  protocol = 0;
  tos = 0;
  tcpFlags = 0;
  /** IPv4 total length: the octets a router counts. */
  ipLength = 0;
  /** Interface index carried by the link header (SLL2), else 0. */
  linkIfIndex = 0;
  portsUnavailable: PortsUnavailable = PortsUnavailable.none;
}

function classifyEthertype(type: number): DecodeResult {
  switch (type) {
    case ETHERTYPE_ARP:
      return DecodeResult.arp;
    case ETHERTYPE_IPV6:
      return DecodeResult.ipv6;
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

/**
 * A link header's type is not IPv4: step over the VLAN tags that may follow it
 * (each a TCI and the next type, at `offset`), as on Ethernet. Linux cooked
 * captures (`-i any`) carry them the same way: the TPID in the protocol field,
 * the tags at the start of the payload. Returns the IPv4 header's offset, or
 * the negated reason the frame is skipped (a number, so nothing is allocated).
 */
function ipv4AfterTags(frame: Uint8Array, start: number, caplen: number, type: number, offset: number): number {
  let tags = 0;
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
    if (caplen < offset + 4 || ++tags > MAX_VLAN_TAGS) return -DecodeResult.truncatedLink;
    type = (frame[start + offset + 2]! << 8) | frame[start + offset + 3]!;
    offset += 4;
  }
  return type === ETHERTYPE_IPV4 ? offset : -classifyEthertype(type);
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
  switch (linkType) {
    // Untagged IPv4 costs one comparison; anything else goes through the tags.
    case LinkType.ethernet: {
      if (caplen < 14) return DecodeResult.truncatedLink;
      const type = (frame[start + 12]! << 8) | frame[start + 13]!;
      offset = 14;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipv4AfterTags(frame, start, caplen, type, offset);
        if (offset < 0) return -offset as DecodeResult;
      }
      break;
    }
    case LinkType.linuxSll: {
      if (caplen < 16) return DecodeResult.truncatedLink;
      const type = (frame[start + 14]! << 8) | frame[start + 15]!;
      offset = 16;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipv4AfterTags(frame, start, caplen, type, offset);
        if (offset < 0) return -offset as DecodeResult;
      }
      return decodeCookedIpv4(frame, start, caplen, wirelen, offset, out);
    }
    case LinkType.linuxSll2: {
      if (caplen < 20) return DecodeResult.truncatedLink;
      const type = (frame[start]! << 8) | frame[start + 1]!;
      offset = 20;
      if (type !== ETHERTYPE_IPV4) {
        offset = ipv4AfterTags(frame, start, caplen, type, offset);
        if (offset < 0) return -offset as DecodeResult;
      }
      out.linkIfIndex =
        ((frame[start + 4]! << 24) | (frame[start + 5]! << 16) | (frame[start + 6]! << 8) | frame[start + 7]!) >>> 0;
      return decodeCookedIpv4(frame, start, caplen, wirelen, offset, out);
    }
    case LinkType.raw: {
      if (caplen < 1) return DecodeResult.truncatedLink;
      const version = frame[start]! >> 4;
      if (version === 6) return DecodeResult.ipv6;
      offset = 0;
      break;
    }
    case LinkType.ipv4:
      offset = 0;
      break;
    default:
      // The capture layer refuses other link types at open.
      return DecodeResult.otherEthertype;
  }
  return decodeIpv4(frame, start + offset, start + caplen, wirelen - offset, out);
}

/**
 * IPv4 at `offset` of a Linux cooked capture. Of a double-tagged frame, Linux (seen
 * on 6.18) puts the innermost protocol, IPv4, in the protocol field but leaves the
 * inner tag in the payload, and libpcap puts back only the outer one: SLL shows
 * TPID, TCI, 0x0800, then the inner TCI and type; SLL2 shows 0x0800 and the inner
 * TCI and type. So where a cooked frame's IPv4 header is bad (version, header
 * length or total length: a TCI can start with 0x4) and reads as a tag in front of
 * IPv4 that decodes, that packet is the one counted; anything else keeps its reason.
 */
function decodeCookedIpv4(frame: Uint8Array, start: number, caplen: number, wirelen: number, offset: number, out: DecodedPacket): DecodeResult {
  const result = decodeIpv4(frame, start + offset, start + caplen, wirelen - offset, out);
  if (result === DecodeResult.ok || result === DecodeResult.truncatedIp) return result;
  const inner = ipv4AfterTags(frame, start, caplen, ETHERTYPE_VLAN, offset);
  if (inner < 0 || decodeIpv4(frame, start + inner, start + caplen, wirelen - inner, out) !== DecodeResult.ok) return result;
  return DecodeResult.ok;
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

  const l4 = offset + headerLength;
  const ipEnd = offset + totalLength;
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
