import type { RecordBatch } from './record-batch.js';
import { IPV6_RECORD_BYTES, ipv6ToString, readIpv6Record } from './flow-records.js';
import { V5_RECORD_BYTES, ipv4ToString, readV5Record } from './v5.js';

const PROTOCOL_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 47: 'GRE', 50: 'ESP', 58: 'ICMP6', 132: 'SCTP' };
const TCP_FLAG_LETTERS = ['F', 'S', 'R', 'P', 'A', 'U', 'E', 'C'];

function tcpFlagsText(flags: number): string {
  // nfdump's order: CWR ECE URG ACK PSH RST SYN FIN
  let text = '';
  for (let bit = 7; bit >= 0; bit--) text += (flags & (1 << bit)) !== 0 ? TCP_FLAG_LETTERS[bit] : '.';
  return text;
}

function timestamp(unixMs: number): string {
  return new Date(unixMs).toISOString().replace('T', ' ').replace('Z', '');
}

export const FLOW_LINE_HEADER =
  'Date first seen          Duration Proto   Src IP Addr:Port       Dst IP Addr:Port      Flags      Packets        Bytes';

/** The fields a line shows, of either family's record. */
interface PrintedRecord {
  src: string;
  dst: string;
  first: number;
  last: number;
  srcPort: number;
  dstPort: number;
  protocol: number;
  tcpFlags: number;
  packets: number;
  octets: number;
}

function printedRecord(batch: RecordBatch, i: number): PrintedRecord {
  if (batch.family === 6) {
    const r = readIpv6Record(new Uint8Array(batch.records), i * IPV6_RECORD_BYTES);
    return { ...r, src: `[${ipv6ToString(r.srcAddr)}]`, dst: `[${ipv6ToString(r.dstAddr)}]` };
  }
  const r = readV5Record(new DataView(batch.records), i * V5_RECORD_BYTES);
  return { ...r, src: ipv4ToString(r.srcAddr), dst: ipv4ToString(r.dstAddr) };
}

/** One nfdump-like line per record, for use without a collector (IPv6 addresses in brackets). */
export function formatFlowLines(batch: RecordBatch): string {
  const uptimeNow = Math.floor(batch.uptimeMs) % 0x1_0000_0000;
  let out = '';
  for (let i = 0; i < batch.count; i++) {
    const r = printedRecord(batch, i);
    // sys_uptime is modulo 2^32: distances from "now" are exact even across a wrap
    const firstAgo = (uptimeNow - r.first + 0x1_0000_0000) % 0x1_0000_0000;
    const duration = ((r.last - r.first + 0x1_0000_0000) % 0x1_0000_0000) / 1000;
    const proto = PROTOCOL_NAMES[r.protocol] ?? String(r.protocol);
    const src = `${r.src}:${r.srcPort}`;
    const dst = r.protocol === 1 || r.protocol === 58 ? `${r.dst}:${r.dstPort >> 8}.${r.dstPort & 0xff}` : `${r.dst}:${r.dstPort}`;
    out +=
      `${timestamp(batch.unixMs - firstAgo)} ${duration.toFixed(3).padStart(8)} ${proto.padEnd(5)} ` +
      `${src.padStart(21)} -> ${dst.padEnd(21)} ${tcpFlagsText(r.tcpFlags)} ${String(r.packets).padStart(10)} ` +
      `${String(r.octets).padStart(12)}\n`;
  }
  return out;
}
