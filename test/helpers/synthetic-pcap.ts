import { closeSync, openSync, writeSync } from 'node:fs';

/**
 * Writes large pcap files of Ethernet/IPv4 UDP and TCP packets quickly, from a
 * seeded PRNG, for load, shutdown and benchmark runs. Each packet is 64 bytes on
 * the wire (IP total length 50, or 46 + 4 bytes of payload).
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
}

export interface SyntheticCaptureTotals {
  packets: number;
  /** sum of IP total lengths */
  octets: number;
  flows: number;
  /** capture-time span, µs */
  spanMicros: number;
  /** packets written per flow index (see flowTuple); every packet has IP length IP_LENGTH */
  perFlowPackets: Uint32Array;
  /** with keepFlowOrder: the flow index of packet n (captured at start + n × gapMicros) */
  flowOfPacket?: Uint32Array;
}

/** IP total length of every synthetic packet */
export const SYNTHETIC_IP_LENGTH = 50;

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

export function flowTuple(index: number): { src: number; dst: number; sport: number; dport: number; proto: number } {
  // 10.0.0.0/8 sources, 172.16.0.0/12 destinations: unique per index up to 2^24 flows
  const src = (0x0a000000 | (index & 0xffffff)) >>> 0;
  const dst = (0xac100000 | ((index * 7) & 0xfffff)) >>> 0;
  return { src, dst, sport: 1024 + (index % 50000), dport: 53 + (index % 7), proto: index % 3 === 0 ? 6 : 17 };
}

export function writeSyntheticCapture(spec: SyntheticCaptureSpec): SyntheticCaptureTotals {
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
    flows: Math.min(spec.flows, spec.packets),
    spanMicros: spec.packets * gap,
    perFlowPackets,
    ...(flowOfPacket !== undefined ? { flowOfPacket } : {}),
  };
}
