import { closeSync, openSync, writeSync } from 'node:fs';
import { ipv6ToString } from '../../src/export/flow-records.js';

/**
 * Writes large pcap files of Ethernet/IPv4 (or, with `family: 6`, Ethernet/IPv6)
 * UDP and TCP packets quickly, from a seeded PRNG, for load, shutdown and benchmark
 * runs. IPv4: each packet is 64 bytes on the wire (IP total length 50: a 20-byte
 * header and 30 bytes of UDP or TCP). IPv6: the same 30 bytes of UDP or TCP behind a
 * 40-byte header, 84 bytes on the wire (payload length 30, IP length 70). Both
 * families draw the same flow index for packet n from the same seed, so an IPv6
 * capture has its IPv4 twin's packet and flow counts and per-flow packet counts.
 */
export interface SyntheticCaptureSpec {
  path: string;
  packets: number;
  /** distinct 5-tuples; packets are spread over them in a seeded random order */
  flows: number;
  seed: number;
  /** capture time of the first packet, unix seconds */
  startSeconds?: number;
  /** µs between packets */
  gapMicros?: number;
  /** also return each packet's flow index (flowOfPacket) */
  keepFlowOrder?: boolean;
  /** 4 (default): Ethernet/IPv4, flowTuple; 6: Ethernet/IPv6 (ethertype 0x86dd), flowTuple6 */
  family?: 4 | 6;
}

export interface SyntheticCaptureTotals {
  packets: number;
  /** sum of IP lengths (IPv4 total length; IPv6 payload length + 40) */
  octets: number;
  /** every packet's IP length: SYNTHETIC_IP_LENGTH (IPv4) or SYNTHETIC_IPV6_LENGTH */
  ipLength: number;
  flows: number;
  /** capture-time span, µs */
  spanMicros: number;
  /** packets written per flow index (see flowTuple / flowTuple6); every packet has IP length ipLength */
  perFlowPackets: Uint32Array;
  /** with keepFlowOrder: the flow index of packet n (captured at start + n × gapMicros) */
  flowOfPacket?: Uint32Array;
}

/** IP total length of every synthetic IPv4 packet */
export const SYNTHETIC_IP_LENGTH = 50;
/** IP length (payload length + 40) of every synthetic IPv6 packet */
export const SYNTHETIC_IPV6_LENGTH = 70;

export function ipv4String(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** The "src dst proto sport dport" key nfdump and tshark helpers use. */
export function flowKeyOf(index: number): string {
  const t = flowTuple(index);
  return `${ipv4String(t.src)} ${ipv4String(t.dst)} ${t.proto} ${t.sport} ${t.dport}`;
}

/** mulberry32: small, fast, seeded */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FRAME = 64;
const IP_LENGTH = FRAME - 14;
if (IP_LENGTH !== 50) throw new Error('SYNTHETIC_IP_LENGTH out of date');
const RECORD = 16 + FRAME;
/** UDP or TCP header and data after the IP header, both families */
const TRANSPORT_BYTES = IP_LENGTH - 20;
const FRAME6 = 14 + 40 + TRANSPORT_BYTES;
if (FRAME6 - 14 !== SYNTHETIC_IPV6_LENGTH) throw new Error('SYNTHETIC_IPV6_LENGTH out of date');

export function flowTuple(index: number): { src: number; dst: number; sport: number; dport: number; proto: number } {
  // 10.0.0.0/8 sources, 172.16.0.0/12 destinations: unique per index up to 2^24 flows
  const src = (0x0a000000 | (index & 0xffffff)) >>> 0;
  const dst = (0xac100000 | ((index * 7) & 0xfffff)) >>> 0;
  return { src, dst, sport: 1024 + (index % 50000), dport: 53 + (index % 7), proto: index % 3 === 0 ? 6 : 17 };
}

/** A bijective 32-bit mix (murmur3's finaliser): spreads consecutive indexes over the word. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Source /64s (2001:db8::/32, a prime count) and destination /64s (2001:db8:8000::/33) */
const SRC_SUBNETS = 4093;
const DST_SUBNETS = 8191;

/**
 * IPv6 twin of flowTuple: the same ports and protocol, 16-byte addresses. The source's
 * /64 (one of 4,093 under 2001:db8::/33) comes from index mod 4093, its interface id
 * (scrambled) from index ÷ 4093; the destination's likewise from index mod 8191 (8,191
 * /64s under 2001:db8:8000::/33) and index ÷ 8191. Each address is unique per index up
 * to ~2^32 flows, but past 4,093 flows neither half of an address is: telling flows
 * apart takes all 128 bits (every 32-bit word varies across flows).
 */
export function flowTuple6(index: number): { src: Uint8Array; dst: Uint8Array; sport: number; dport: number; proto: number } {
  const t = flowTuple(index);
  const src = new Uint8Array(16);
  const dst = new Uint8Array(16);
  const s = new DataView(src.buffer);
  const d = new DataView(dst.buffer);
  // Subnet words: a bijective mix of the residue, then the /33's top bit forced (the
  // mixed residues of a few thousand subnets stay distinct in the other 31 bits).
  const srcSubnet = index % SRC_SUBNETS;
  const srcHost = Math.floor(index / SRC_SUBNETS);
  const dstSubnet = index % DST_SUBNETS;
  const dstHost = Math.floor(index / DST_SUBNETS);
  s.setUint32(0, 0x20010db8);
  s.setUint32(4, mix32(srcSubnet) & 0x7fffffff);
  s.setUint32(8, mix32(srcHost ^ 0x5bd1e995));
  s.setUint32(12, mix32(srcHost + 0x6a09e667));
  d.setUint32(0, 0x20010db8);
  d.setUint32(4, (mix32(dstSubnet + 0x10000) | 0x80000000) >>> 0);
  d.setUint32(8, mix32(dstHost + 0x9e3779b9));
  d.setUint32(12, mix32(dstHost ^ 0x27d4eb2f));
  return { src, dst, sport: t.sport, dport: t.dport, proto: t.proto };
}

/** RFC 5952 text (lower case, longest run of two or more zero words as ::). */
export function ipv6String(addr: Uint8Array): string {
  return ipv6ToString(addr);
}

/** flowKeyOf for flowTuple6 */
export function flowKeyOf6(index: number): string {
  const t = flowTuple6(index);
  return `${ipv6String(t.src)} ${ipv6String(t.dst)} ${t.proto} ${t.sport} ${t.dport}`;
}

export function writeSyntheticCapture(spec: SyntheticCaptureSpec): SyntheticCaptureTotals {
  if (spec.family === 6) return writeSyntheticCapture6(spec);
  const random = prng(spec.seed);
  const gap = spec.gapMicros ?? 1;
  let seconds = spec.startSeconds ?? 1767225600;
  let micros = 0;
  const fd = openSync(spec.path, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // Ethernet
  writeSync(fd, header);

  const chunkPackets = 8192;
  const chunk = Buffer.alloc(chunkPackets * RECORD);
  // Template frame: Ethernet + IPv4 (no options) + transport header
  for (let i = 0; i < chunkPackets; i++) {
    const o = i * RECORD + 16;
    chunk.writeUInt16BE(0x0800, o + 12);
    chunk[o + 14] = 0x45;
    chunk.writeUInt16BE(IP_LENGTH, o + 16);
    chunk[o + 22] = 64;
  }
  let inChunk = 0;
  const perFlowPackets = new Uint32Array(spec.flows);
  const flowOfPacket = spec.keepFlowOrder === true ? new Uint32Array(spec.packets) : undefined;
  for (let n = 0; n < spec.packets; n++) {
    // The first pass touches every flow once so all `flows` exist; then random.
    const index = n < spec.flows ? n : Math.floor(random() * spec.flows);
    perFlowPackets[index]! += 1;
    if (flowOfPacket !== undefined) flowOfPacket[n] = index;
    const t = flowTuple(index);
    const r = inChunk * RECORD;
    chunk.writeUInt32LE(seconds, r);
    chunk.writeUInt32LE(micros, r + 4);
    chunk.writeUInt32LE(FRAME, r + 8);
    chunk.writeUInt32LE(FRAME, r + 12);
    const o = r + 16;
    chunk[o + 23] = t.proto;
    chunk.writeUInt32BE(t.src, o + 26);
    chunk.writeUInt32BE(t.dst, o + 30);
    chunk.writeUInt16BE(t.sport, o + 34);
    chunk.writeUInt16BE(t.dport, o + 36);
    if (t.proto === 6) {
      chunk.writeUInt16BE(0, o + 38); // sequence number, high half
      chunk[o + 46] = 0x50; // data offset 5 words (a TCP header cut short by the 64-byte frame)
      chunk[o + 47] = 0x10; // ACK
    } else {
      chunk.writeUInt16BE(IP_LENGTH - 20, o + 38); // UDP length
      chunk[o + 46] = 0;
      chunk[o + 47] = 0;
    }
    if (++inChunk === chunkPackets) {
      writeSync(fd, chunk);
      inChunk = 0;
    }
    micros += gap;
    while (micros >= 1_000_000) {
      micros -= 1_000_000;
      seconds++;
    }
  }
  if (inChunk > 0) writeSync(fd, chunk, 0, inChunk * RECORD);
  closeSync(fd);
  return {
    packets: spec.packets,
    octets: spec.packets * IP_LENGTH,
    ipLength: IP_LENGTH,
    flows: Math.min(spec.flows, spec.packets),
    spanMicros: spec.packets * gap,
    perFlowPackets,
    ...(flowOfPacket !== undefined ? { flowOfPacket } : {}),
  };
}

/**
 * writeSyntheticCapture with `family: 6`: the IPv4 writer's loop (same PRNG draws,
 * same flow order, times and per-flow counts) writing Ethernet/IPv6 frames of FRAME6
 * bytes: version 6, traffic class and flow label 0, payload length 30, next header
 * 6 or 17, hop limit 64, then the IPv4 frame's UDP or TCP bytes, except that UDP
 * carries its checksum (mandatory over IPv6); TCP's is 0 as over IPv4.
 */
function writeSyntheticCapture6(spec: SyntheticCaptureSpec): SyntheticCaptureTotals {
  const random = prng(spec.seed);
  const gap = spec.gapMicros ?? 1;
  let seconds = spec.startSeconds ?? 1767225600;
  let micros = 0;
  const record = 16 + FRAME6;
  // Every flow's two addresses, 32 bytes per flow, copied into each of its packets,
  // and its UDP checksum (the data bytes are zeros, so it depends on the flow only)
  const addresses = Buffer.alloc(spec.flows * 32);
  const udpChecksums = new Uint16Array(spec.flows);
  for (let index = 0; index < spec.flows; index++) {
    const t = flowTuple6(index);
    addresses.set(t.src, index * 32);
    addresses.set(t.dst, index * 32 + 16);
    if (t.proto === 17) {
      // pseudo-header (addresses, upper-layer length, next header) + the UDP header
      let sum = TRANSPORT_BYTES + 17 + t.sport + t.dport + TRANSPORT_BYTES;
      for (let i = 0; i < 32; i += 2) sum += addresses.readUInt16BE(index * 32 + i);
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      udpChecksums[index] = ~sum & 0xffff || 0xffff;
    }
  }
  const fd = openSync(spec.path, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // Ethernet
  writeSync(fd, header);

  const chunkPackets = 8192;
  const chunk = Buffer.alloc(chunkPackets * record);
  // Template frame: Ethernet + IPv6 (no extension headers) + transport header
  for (let i = 0; i < chunkPackets; i++) {
    const o = i * record + 16;
    chunk.writeUInt16BE(0x86dd, o + 12);
    chunk[o + 14] = 0x60;
    chunk.writeUInt16BE(TRANSPORT_BYTES, o + 18); // payload length
    chunk[o + 21] = 64; // hop limit
  }
  let inChunk = 0;
  const perFlowPackets = new Uint32Array(spec.flows);
  const flowOfPacket = spec.keepFlowOrder === true ? new Uint32Array(spec.packets) : undefined;
  for (let n = 0; n < spec.packets; n++) {
    const index = n < spec.flows ? n : Math.floor(random() * spec.flows);
    perFlowPackets[index]! += 1;
    if (flowOfPacket !== undefined) flowOfPacket[n] = index;
    const t = flowTuple(index); // ports and protocol; flowTuple6 shares them
    const r = inChunk * record;
    chunk.writeUInt32LE(seconds, r);
    chunk.writeUInt32LE(micros, r + 4);
    chunk.writeUInt32LE(FRAME6, r + 8);
    chunk.writeUInt32LE(FRAME6, r + 12);
    const o = r + 16;
    chunk[o + 20] = t.proto; // next header
    addresses.copy(chunk, o + 22, index * 32, index * 32 + 32);
    const l4 = o + 54;
    chunk.writeUInt16BE(t.sport, l4);
    chunk.writeUInt16BE(t.dport, l4 + 2);
    if (t.proto === 6) {
      chunk.writeUInt32BE(0, l4 + 4); // sequence number (a UDP checksum may sit in its low half)
      chunk[l4 + 12] = 0x50; // data offset 5 words
      chunk[l4 + 13] = 0x10; // ACK
    } else {
      chunk.writeUInt16BE(TRANSPORT_BYTES, l4 + 4); // UDP length
      chunk.writeUInt16BE(udpChecksums[index]!, l4 + 6);
      chunk[l4 + 12] = 0;
      chunk[l4 + 13] = 0;
    }
    if (++inChunk === chunkPackets) {
      writeSync(fd, chunk);
      inChunk = 0;
    }
    micros += gap;
    while (micros >= 1_000_000) {
      micros -= 1_000_000;
      seconds++;
    }
  }
  if (inChunk > 0) writeSync(fd, chunk, 0, inChunk * record);
  closeSync(fd);
  return {
    packets: spec.packets,
    octets: spec.packets * SYNTHETIC_IPV6_LENGTH,
    ipLength: SYNTHETIC_IPV6_LENGTH,
    flows: Math.min(spec.flows, spec.packets),
    spanMicros: spec.packets * gap,
    perFlowPackets,
    ...(flowOfPacket !== undefined ? { flowOfPacket } : {}),
  };
}
