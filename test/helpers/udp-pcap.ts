/**
 * Datagrams (UDP payloads) as Ethernet/IPv4/UDP frames in a classic pcap file,
 * so tshark can dissect what an exporter would have sent. Checksums: the IPv4
 * header checksum is computed; the UDP checksum is 0 (none, legal for IPv4).
 */
import { pcapBytes, type TimedFrame } from './pcap-writer.js';

export const LINKTYPE_ETHERNET = 1;

export interface UdpEndpoints {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

function ipv4Bytes(address: string): number[] {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${address}`);
  return parts;
}

/** One Ethernet II + IPv4 + UDP frame around `payload`. */
export function udpFrameWith(payload: Uint8Array, ends: UdpEndpoints, ipId = 0): Buffer {
  const ipLength = 20 + 8 + payload.length;
  if (ipLength > 0xffff) throw new RangeError(`UDP payload of ${payload.length} bytes does not fit an IPv4 packet`);
  const frame = Buffer.alloc(14 + ipLength);
  frame.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1], 0); // dst, src MAC (locally administered)
  frame.writeUInt16BE(0x0800, 12);
  const ip = 14;
  frame[ip] = 0x45;
  frame.writeUInt16BE(ipLength, ip + 2);
  frame.writeUInt16BE(ipId & 0xffff, ip + 4);
  frame.writeUInt16BE(0x4000, ip + 6); // don't fragment
  frame[ip + 8] = 64;
  frame[ip + 9] = 17;
  frame.set(ipv4Bytes(ends.src), ip + 12);
  frame.set(ipv4Bytes(ends.dst), ip + 16);
  let sum = 0;
  for (let k = 0; k < 20; k += 2) sum += frame.readUInt16BE(ip + k);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  frame.writeUInt16BE(~sum & 0xffff, ip + 10);
  const udp = ip + 20;
  frame.writeUInt16BE(ends.sport, udp);
  frame.writeUInt16BE(ends.dport, udp + 2);
  frame.writeUInt16BE(8 + payload.length, udp + 4);
  frame.set(payload, udp + 8);
  return frame;
}

/** A pcap file's bytes: each datagram one frame, `startSeconds` + 1 ms apart. */
export function udpPcapBytes(datagrams: readonly Uint8Array[], ends: UdpEndpoints, startSeconds = 1_767_225_600): Buffer {
  const frames: TimedFrame[] = datagrams.map((d, i) => ({ time: startSeconds + i / 1000, frame: udpFrameWith(d, ends, i) }));
  return pcapBytes(LINKTYPE_ETHERNET, frames);
}
