import { writeFileSync } from 'node:fs';

export interface TimedFrame {
  /** unix seconds, fractional */
  time: number;
  frame: Uint8Array;
  /** bytes on the wire, when more than captured */
  wireLength?: number;
}

/** A classic pcap file (µs timestamps) from frames built in a test. */
export function pcapBytes(linkType: number, frames: readonly TimedFrame[], snaplen = 65535): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(snaplen, 16);
  header.writeUInt32LE(linkType, 20);
  parts.push(header);
  for (const f of frames) {
    const record = Buffer.alloc(16);
    const seconds = Math.floor(f.time);
    record.writeUInt32LE(seconds, 0);
    record.writeUInt32LE(Math.round((f.time - seconds) * 1e6), 4);
    record.writeUInt32LE(f.frame.length, 8);
    record.writeUInt32LE(f.wireLength ?? f.frame.length, 12);
    parts.push(record, Buffer.from(f.frame));
  }
  return Buffer.concat(parts);
}

export function writePcap(path: string, linkType: number, frames: readonly TimedFrame[]): void {
  writeFileSync(path, pcapBytes(linkType, frames));
}

/** Ethernet + IPv4 + UDP with `payload` bytes of payload. */
export function udpFrame(src: string, dst: string, sport: number, dport: number, payload: number): Uint8Array {
  const ipLength = 20 + 8 + payload;
  const frame = Buffer.alloc(14 + ipLength);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(ipLength, 16);
  frame[22] = 64;
  frame[23] = 17;
  Buffer.from(src.split('.').map(Number)).copy(frame, 26);
  Buffer.from(dst.split('.').map(Number)).copy(frame, 30);
  frame.writeUInt16BE(sport, 34);
  frame.writeUInt16BE(dport, 36);
  frame.writeUInt16BE(8 + payload, 38);
  return frame;
}
