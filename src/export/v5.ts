/**
 * NetFlow v5 wire format: a 24-byte header and up to 30 records of 48 bytes,
 * all big-endian. Pure functions over caller-owned buffers.
 */

export const V5_VERSION = 5;
export const V5_HEADER_BYTES = 24;
export const V5_RECORD_BYTES = 48;
/** flow-tools rejects more; every collector expects at most this many */
export const V5_MAX_RECORDS = 30;
export const V5_MAX_DATAGRAM_BYTES = V5_HEADER_BYTES + V5_RECORD_BYTES * V5_MAX_RECORDS;

export interface V5HeaderFields {
  count: number;
  /** ms since the exporter's boot, modulo 2^32 */
  sysUptime: number;
  unixSecs: number;
  unixNsecs: number;
  /** records exported before this datagram, modulo 2^32 */
  flowSequence: number;
  engineType: number;
  engineId: number;
  samplingInterval: number;
}

export function writeV5Header(view: DataView, offset: number, h: V5HeaderFields): void {
  view.setUint16(offset, V5_VERSION);
  view.setUint16(offset + 2, h.count);
  view.setUint32(offset + 4, h.sysUptime >>> 0);
  view.setUint32(offset + 8, h.unixSecs >>> 0);
  view.setUint32(offset + 12, h.unixNsecs >>> 0);
  view.setUint32(offset + 16, h.flowSequence >>> 0);
  view.setUint8(offset + 20, h.engineType);
  view.setUint8(offset + 21, h.engineId);
  view.setUint16(offset + 22, h.samplingInterval);
}

/**
 * Write one 48-byte record. Positional arguments keep the per-flow path free of
 * allocation; fields a probe does not know (next hop, output, AS, masks) are zero.
 */
export function writeV5Record(
  view: DataView,
  offset: number,
  srcAddr: number,
  dstAddr: number,
  inputIfIndex: number,
  packets: number,
  octets: number,
  firstUptime: number,
  lastUptime: number,
  srcPort: number,
  dstPort: number,
  tcpFlags: number,
  protocol: number,
  tos: number,
): void {
  view.setUint32(offset, srcAddr);
  view.setUint32(offset + 4, dstAddr);
  view.setUint32(offset + 8, 0); // nexthop
  view.setUint16(offset + 12, inputIfIndex & 0xffff);
  view.setUint16(offset + 14, 0); // output
  view.setUint32(offset + 16, packets);
  view.setUint32(offset + 20, octets);
  view.setUint32(offset + 24, firstUptime >>> 0);
  view.setUint32(offset + 28, lastUptime >>> 0);
  view.setUint16(offset + 32, srcPort);
  view.setUint16(offset + 34, dstPort);
  view.setUint8(offset + 36, 0); // pad1
  view.setUint8(offset + 37, tcpFlags);
  view.setUint8(offset + 38, protocol);
  view.setUint8(offset + 39, tos);
  view.setUint32(offset + 40, 0); // src_as, dst_as
  view.setUint32(offset + 44, 0); // src_mask, dst_mask, pad2
}

/** A record read back (tests, the stdout printer). */
export interface V5Record {
  srcAddr: number;
  dstAddr: number;
  nextHop: number;
  input: number;
  output: number;
  packets: number;
  octets: number;
  first: number;
  last: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  protocol: number;
  tos: number;
}

export function readV5Record(view: DataView, offset: number): V5Record {
  return {
    srcAddr: view.getUint32(offset),
    dstAddr: view.getUint32(offset + 4),
    nextHop: view.getUint32(offset + 8),
    input: view.getUint16(offset + 12),
    output: view.getUint16(offset + 14),
    packets: view.getUint32(offset + 16),
    octets: view.getUint32(offset + 20),
    first: view.getUint32(offset + 24),
    last: view.getUint32(offset + 28),
    srcPort: view.getUint16(offset + 32),
    dstPort: view.getUint16(offset + 34),
    tcpFlags: view.getUint8(offset + 37),
    protocol: view.getUint8(offset + 38),
    tos: view.getUint8(offset + 39),
  };
}

export function readV5Header(view: DataView, offset = 0): V5HeaderFields & { version: number } {
  return {
    version: view.getUint16(offset),
    count: view.getUint16(offset + 2),
    sysUptime: view.getUint32(offset + 4),
    unixSecs: view.getUint32(offset + 8),
    unixNsecs: view.getUint32(offset + 12),
    flowSequence: view.getUint32(offset + 16),
    engineType: view.getUint8(offset + 20),
    engineId: view.getUint8(offset + 21),
    samplingInterval: view.getUint16(offset + 22),
  };
}

export function ipv4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}
