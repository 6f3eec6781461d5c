/**
 * Record batches built from plain flow descriptions (as a capture worker would
 * post them), and an independent reader of NetFlow v9 / IPFIX messages for the
 * encoder's tests: it learns templates from the messages themselves and decodes
 * data records with them, field by field.
 */
import type { ExpiryReason } from '../../src/cache/flow-cache.js';
import { IPV6_RECORD_BYTES, Ipv6RecordOffset, flowAttributes } from '../../src/export/flow-records.js';
import type { RecordBatch } from '../../src/export/record-batch.js';
import { V5_RECORD_BYTES, writeV5Record } from '../../src/export/v5.js';

export interface FlowSpec {
  src: string;
  dst: string;
  srcPort: number;
  /** ICMP / ICMPv6: type * 256 + code */
  dstPort: number;
  protocol: number;
  tcpFlags: number;
  tos: number;
  packets: number;
  octets: number;
  /** sys_uptime ms (modulo 2^32) */
  first: number;
  last: number;
  input: number;
  /** IPv6 only */
  flowLabel?: number;
  vlan: number;
  reason: ExpiryReason;
}

export function ipv4ToNumber(address: string): number {
  const p = address.split('.').map(Number);
  if (p.length !== 4) throw new Error(`not IPv4: ${address}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** 16 bytes of an IPv6 address in text (with at most one "::", no embedded IPv4). */
export function ipv6ToBytes(address: string): Uint8Array {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (s: string | undefined): number[] => (s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8 || all.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) throw new Error(`not IPv6: ${address}`);
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/** A batch of one family's flows, closed at `unixMs` / `uptimeMs`. */
export function buildBatch(family: 4 | 6, flows: readonly FlowSpec[], unixMs: number, uptimeMs: number): RecordBatch {
  const stride = family === 4 ? V5_RECORD_BYTES : IPV6_RECORD_BYTES;
  const records = new ArrayBuffer(Math.max(1, flows.length) * stride);
  const view = new DataView(records);
  const attributes = new Uint32Array(Math.max(1, flows.length));
  flows.forEach((f, i) => {
    const at = i * stride;
    if (family === 4) {
      writeV5Record(view, at, ipv4ToNumber(f.src), ipv4ToNumber(f.dst), f.input, f.packets, f.octets, f.first, f.last, f.srcPort, f.dstPort, f.tcpFlags, f.protocol, f.tos);
    } else {
      const o = Ipv6RecordOffset;
      const bytes = new Uint8Array(records);
      bytes.set(ipv6ToBytes(f.src), at + o.srcAddr);
      bytes.set(ipv6ToBytes(f.dst), at + o.dstAddr);
      view.setUint32(at + o.packets, f.packets);
      view.setUint32(at + o.octets, f.octets);
      view.setUint32(at + o.first, f.first >>> 0);
      view.setUint32(at + o.last, f.last >>> 0);
      view.setUint16(at + o.srcPort, f.srcPort);
      view.setUint16(at + o.dstPort, f.dstPort);
      view.setUint8(at + o.tcpFlags, f.tcpFlags);
      view.setUint8(at + o.protocol, f.protocol);
      view.setUint8(at + o.trafficClass, f.tos);
      view.setUint16(at + o.inputIfIndex, f.input);
      view.setUint32(at + o.flowLabel, f.flowLabel ?? 0);
    }
    attributes[i] = flowAttributes(f.vlan, f.reason);
  });
  return { family, records, attributes: attributes.buffer, count: flows.length, unixMs, uptimeMs };
}

/** A field's value: integers up to 8 bytes as bigint, longer fields (IPv6 addresses) as hex. */
export type FieldValue = bigint | string;

export interface DecodedRecord {
  setId: number;
  /** field id → value, in template order */
  fields: Map<number, FieldValue>;
}

export interface DecodedSet {
  id: number;
  /** the length field */
  length: number;
  /** byte offset of the set in the message */
  offset: number;
}

export interface DecodedMessage {
  version: number;
  /** v9 count; IPFIX: undefined */
  count?: number;
  /** IPFIX length; v9: undefined */
  length?: number;
  /** v9 sysUptime */
  sysUptime?: number;
  /** v9 unixSecs / IPFIX exportTime */
  seconds: number;
  sequence: number;
  sourceId: number;
  sets: DecodedSet[];
  /** template and options template records (id → fields) defined in this message */
  templatesDefined: number[];
  optionsTemplatesDefined: number[];
  records: DecodedRecord[];
  /** data records of options templates */
  optionsRecords: DecodedRecord[];
  /** v9: the padding bytes (all must be 0) */
  padding: number[];
}

export interface TemplateDef {
  fields: [id: number, length: number][];
  options: boolean;
}

/** Reads messages in order; templates persist across messages (one stream). */
export class MessageReader {
  readonly templates = new Map<number, TemplateDef>();

  read(bytes: Uint8Array): DecodedMessage {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const version = view.getUint16(0);
    const v9 = version === 9;
    if (!v9 && version !== 10) throw new Error(`version ${version}`);
    const m: DecodedMessage = v9
      ? { version, count: view.getUint16(2), sysUptime: view.getUint32(4), seconds: view.getUint32(8), sequence: view.getUint32(12), sourceId: view.getUint32(16), sets: [], templatesDefined: [], optionsTemplatesDefined: [], records: [], optionsRecords: [], padding: [] }
      : { version, length: view.getUint16(2), seconds: view.getUint32(4), sequence: view.getUint32(8), sourceId: view.getUint32(12), sets: [], templatesDefined: [], optionsTemplatesDefined: [], records: [], optionsRecords: [], padding: [] };
    if (!v9 && m.length !== bytes.length) throw new Error(`IPFIX length ${m.length} ≠ ${bytes.length}`);
    let o = v9 ? 20 : 16;
    while (o < bytes.length) {
      if (o + 4 > bytes.length) throw new Error(`set header cut at ${o}`);
      const id = view.getUint16(o);
      const length = view.getUint16(o + 2);
      if (length < 4 || o + length > bytes.length) throw new Error(`set ${id} at ${o}: length ${length} past the end ${bytes.length}`);
      m.sets.push({ id, length, offset: o });
      const end = o + length;
      let p = o + 4;
      const templateSet = v9 ? 0 : 2;
      const optionsSet = v9 ? 1 : 3;
      if (id === templateSet) {
        while (end - p >= 4) {
          const tid = view.getUint16(p);
          const n = view.getUint16(p + 2);
          p += 4;
          const fields: [number, number][] = [];
          for (let k = 0; k < n; k++, p += 4) fields.push([view.getUint16(p), view.getUint16(p + 2)]);
          this.templates.set(tid, { fields, options: false });
          m.templatesDefined.push(tid);
        }
      } else if (id === optionsSet) {
        while (end - p >= 6 + 4) {
          const tid = view.getUint16(p);
          const fields: [number, number][] = [];
          if (v9) {
            const scopeBytes = view.getUint16(p + 2);
            const optionBytes = view.getUint16(p + 4);
            p += 6;
            for (let k = 0; k < (scopeBytes + optionBytes) / 4; k++, p += 4) fields.push([view.getUint16(p), view.getUint16(p + 2)]);
          } else {
            const n = view.getUint16(p + 2);
            p += 6;
            for (let k = 0; k < n; k++, p += 4) fields.push([view.getUint16(p), view.getUint16(p + 2)]);
          }
          this.templates.set(tid, { fields, options: true });
          m.optionsTemplatesDefined.push(tid);
        }
      } else if (id >= 256) {
        const t = this.templates.get(id);
        if (t === undefined) throw new Error(`data set ${id} without its template`);
        const size = t.fields.reduce((s, [, l]) => s + l, 0);
        while (end - p >= size) {
          const fields = new Map<number, FieldValue>();
          for (const [fid, l] of t.fields) {
            if (l <= 8) {
              let v = 0n;
              for (let k = 0; k < l; k++) v = (v << 8n) | BigInt(bytes[p + k]!);
              fields.set(fid, v);
            } else {
              fields.set(fid, Buffer.from(bytes.subarray(p, p + l)).toString('hex'));
            }
            p += l;
          }
          (t.options ? m.optionsRecords : m.records).push({ setId: id, fields });
        }
      } else {
        throw new Error(`unexpected set id ${id}`);
      }
      if (!v9 && p !== end) throw new Error(`IPFIX set ${id} with ${end - p} trailing bytes`);
      for (; p < end; p++) m.padding.push(bytes[p]!);
      o = end;
    }
    return m;
  }
}
