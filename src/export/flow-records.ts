/**
 * The records expired flows cross the thread boundary in, per address family.
 * IPv4 flows travel as NetFlow v5 records (v5.ts): the v5 exporter sends them as
 * they are. IPv6 flows travel as the 64-byte records below. Both are big-endian,
 * with times as sys_uptime ms (modulo 2^32) against the batch's uptimeMs; what
 * v5 has no field for (VLAN, why the flow ended) rides beside them, one uint32
 * per record in host order (the batch's `attributes`).
 */
import type { ExpiryReason } from '../cache/flow-cache.js';

export type AddressFamily = 4 | 6;

export const IPV6_RECORD_BYTES = 64;
/** IPv6 record: byte offsets */
export const Ipv6RecordOffset = {
  /** 16 bytes */
  srcAddr: 0,
  /** 16 bytes */
  dstAddr: 16,
  packets: 32,
  octets: 36,
  /** sys_uptime ms of the first packet */
  first: 40,
  last: 44,
  /** uint16 each; ICMPv6: type * 256 + code in dstPort */
  srcPort: 48,
  dstPort: 50,
  /** one byte, always 0 (as v5's pad1) */
  pad: 52,
  tcpFlags: 53,
  protocol: 54,
  /** IPv6 traffic class */
  trafficClass: 55,
  /** uint16 input ifIndex, then uint16 output (0) */
  inputIfIndex: 56,
  outputIfIndex: 58,
  /** uint32, the low 20 bits */
  flowLabel: 60,
} as const;

/** VLAN id 0: no tag was seen. */
export function flowAttributes(vlanId: number, reason: ExpiryReason): number {
  return ((vlanId & 0xfff) << 8) | reason;
}
export function attributeVlanId(attributes: number): number {
  return (attributes >>> 8) & 0xfff;
}
export function attributeReason(attributes: number): ExpiryReason {
  return (attributes & 0xff) as ExpiryReason;
}

/** An IPv6 record read back (encoders, the stdout printer, tests). */
export interface Ipv6Record {
  srcAddr: Uint8Array;
  dstAddr: Uint8Array;
  packets: number;
  octets: number;
  first: number;
  last: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  protocol: number;
  trafficClass: number;
  input: number;
  flowLabel: number;
}

export function readIpv6Record(bytes: Uint8Array, offset: number): Ipv6Record {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = Ipv6RecordOffset;
  return {
    srcAddr: bytes.slice(offset + o.srcAddr, offset + o.srcAddr + 16),
    dstAddr: bytes.slice(offset + o.dstAddr, offset + o.dstAddr + 16),
    packets: view.getUint32(offset + o.packets),
    octets: view.getUint32(offset + o.octets),
    first: view.getUint32(offset + o.first),
    last: view.getUint32(offset + o.last),
    srcPort: view.getUint16(offset + o.srcPort),
    dstPort: view.getUint16(offset + o.dstPort),
    tcpFlags: view.getUint8(offset + o.tcpFlags),
    protocol: view.getUint8(offset + o.protocol),
    trafficClass: view.getUint8(offset + o.trafficClass),
    input: view.getUint16(offset + o.inputIfIndex),
    flowLabel: view.getUint32(offset + o.flowLabel) & 0xfffff,
  };
}

/** RFC 5952 text of a 16-byte address: lower case, longest run of zero groups as "::". */
export function ipv6ToString(addr: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((addr[offset + 2 * i]! << 8) | addr[offset + 2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
