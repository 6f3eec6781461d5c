/**
 * NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export: pure encoding of the
 * batches the capture workers produce (record-batch.ts) into datagrams.
 *
 * Templates (ids fixed per encoder):
 *   256 IPv4, 257 IPv6, 258 IPv4 + vlanId, 259 IPv6 + vlanId (a record takes the
 *   vlan template iff its attribute's VLAN id is not 0), 260 the options template
 *   (v9: scope System; IPFIX: scope observationDomainId) whose one data record
 *   carries systemInitTimeMilliseconds (160).
 *
 * Every template, the options template and the options data record go at the
 * front of the first datagram ever and again at the front of the first datagram
 * after a refresh became due: `templateRefreshPackets` datagrams went out since
 * (the one carrying them included: 1 means every datagram), or
 * `templateRefreshMs` ms passed since. Data records follow in sets, one set per
 * run of records with the same template; a record is never split and no
 * datagram exceeds `maxDatagramBytes`. v9 FlowSets are padded to 4 bytes
 * (padding counted in the FlowSet length); IPFIX sets are not padded.
 *
 * Times: v9 records carry FIRST_SWITCHED / LAST_SWITCHED as sys_uptime ms
 * against the header's sysUptime; IPFIX records carry absolute unix ms
 * (flowStartMilliseconds / flowEndMilliseconds: nfdump 1.7.1 swaps IPFIX's
 * 21/22, so those are never used there). The v9 header only has unix seconds:
 * a collector deriving boot time as unixSecs·1000 − sysUptime places v9 flows
 * up to 999 ms early (the fraction of the batch's second), inherent to v9.
 */
import type { EncodedDatagram } from './exporter.js';
import type { RecordBatch } from './record-batch.js';
import { IPV6_RECORD_BYTES, Ipv6RecordOffset } from './flow-records.js';
import { V5_RECORD_BYTES } from './v5.js';
import { ExpiryReason } from '../cache/flow-cache.js';

export interface TemplateExportSettings {
  version: 9 | 10;
  /** v9 source id / IPFIX observation domain id (uint32) */
  sourceId: number;
  /** a whole datagram (UDP payload) never exceeds this; default 1400 elsewhere */
  maxDatagramBytes: number;
  /** templates (and options) are sent again once this many datagrams went out since they were last sent (0: never by count) */
  templateRefreshPackets: number;
  /** ... and once this many ms passed since (0: never by time) */
  templateRefreshMs: number;
  /** unix ms the exporter started: options data systemInitTimeMilliseconds (160) */
  systemInitUnixMs: number;
}

export type { EncodedDatagram } from './exporter.js';

export const V9_HEADER_BYTES = 20;
export const IPFIX_HEADER_BYTES = 16;
export const SET_HEADER_BYTES = 4;

export const TemplateId = {
  ipv4: 256,
  ipv6: 257,
  ipv4Vlan: 258,
  ipv6Vlan: 259,
  options: 260,
} as const;

/** Information element ids (RFC 3954 field types share them below 128). */
export const Ie = {
  octetDeltaCount: 1,
  packetDeltaCount: 2,
  protocolIdentifier: 4,
  ipClassOfService: 5,
  tcpControlBits: 6,
  sourceTransportPort: 7,
  sourceIPv4Address: 8,
  ingressInterface: 10,
  destinationTransportPort: 11,
  destinationIPv4Address: 12,
  egressInterface: 14,
  /** v9 LAST_SWITCHED */
  flowEndSysUpTime: 21,
  /** v9 FIRST_SWITCHED */
  flowStartSysUpTime: 22,
  sourceIPv6Address: 27,
  destinationIPv6Address: 28,
  flowLabelIPv6: 31,
  /** v9 ICMP_TYPE */
  icmpTypeCodeIPv4: 32,
  vlanId: 58,
  ipVersion: 60,
  flowEndReason: 136,
  icmpTypeCodeIPv6: 139,
  observationDomainId: 149,
  flowStartMilliseconds: 152,
  flowEndMilliseconds: 153,
  systemInitTimeMilliseconds: 160,
} as const;

/** v9 options scope field type System */
export const V9_SCOPE_SYSTEM = 1;

/** IPFIX flowEndReason values (RFC 5102) */
export const FlowEndReason = {
  idleTimeout: 1,
  activeTimeout: 2,
  endOfFlow: 3,
  forcedEnd: 4,
  lackOfResources: 5,
} as const;

/** ExpiryReason (index) → flowEndReason */
const END_REASON: readonly number[] = (() => {
  const table: number[] = [];
  table[ExpiryReason.inactive] = FlowEndReason.idleTimeout;
  table[ExpiryReason.active] = FlowEndReason.activeTimeout;
  table[ExpiryReason.tcpFin] = FlowEndReason.endOfFlow;
  table[ExpiryReason.tcpRst] = FlowEndReason.endOfFlow;
  table[ExpiryReason.shutdown] = FlowEndReason.forcedEnd;
  table[ExpiryReason.counterLimit] = FlowEndReason.forcedEnd;
  table[ExpiryReason.cacheFull] = FlowEndReason.lackOfResources;
  return table;
})();

export function flowEndReason(reason: number): number {
  return END_REASON[reason] ?? 0;
}

export type TemplateField = readonly [id: number, length: number];

/**
 * The fields of the four data templates, in wire order. The record writers below
 * follow the same order: change both together (the unit test reads every field back
 * through these lists).
 */
export function dataTemplateFields(version: 9 | 10, family: 4 | 6, vlan: boolean): TemplateField[] {
  const fields: TemplateField[] = [];
  if (family === 4) fields.push([Ie.sourceIPv4Address, 4], [Ie.destinationIPv4Address, 4]);
  else fields.push([Ie.sourceIPv6Address, 16], [Ie.destinationIPv6Address, 16]);
  fields.push(
    [Ie.sourceTransportPort, 2],
    [Ie.destinationTransportPort, 2],
    [Ie.protocolIdentifier, 1],
    [Ie.tcpControlBits, 1],
    [Ie.ipClassOfService, 1],
    [Ie.octetDeltaCount, 8],
    [Ie.packetDeltaCount, 8],
    [Ie.ingressInterface, 4],
    [Ie.egressInterface, 4],
    [Ie.ipVersion, 1],
  );
  if (version === 9) {
    fields.push([Ie.flowStartSysUpTime, 4], [Ie.flowEndSysUpTime, 4], [Ie.icmpTypeCodeIPv4, 2]);
  } else {
    fields.push(
      [Ie.flowStartMilliseconds, 8],
      [Ie.flowEndMilliseconds, 8],
      [family === 4 ? Ie.icmpTypeCodeIPv4 : Ie.icmpTypeCodeIPv6, 2],
    );
  }
  fields.push([Ie.flowEndReason, 1]);
  if (family === 6) fields.push([Ie.flowLabelIPv6, version === 9 ? 3 : 4]);
  if (vlan) fields.push([Ie.vlanId, 2]);
  return fields;
}

function recordLength(fields: readonly TemplateField[]): number {
  return fields.reduce((sum, [, length]) => sum + length, 0);
}

/** Bytes of each data template's records, by template id − 256 (0..3) */
function dataRecordLengths(version: 9 | 10): [number, number, number, number] {
  return [
    recordLength(dataTemplateFields(version, 4, false)),
    recordLength(dataTemplateFields(version, 6, false)),
    recordLength(dataTemplateFields(version, 4, true)),
    recordLength(dataTemplateFields(version, 6, true)),
  ];
}

const pad4 = (n: number): number => (n + 3) & ~3;

const UINT32 = 0x1_0000_0000;

/** The templates, the options template and the options data record: constant per encoder. */
function templateBlock(s: TemplateExportSettings): { bytes: Buffer; records: number } {
  const v9 = s.version === 9;
  const templates: [number, TemplateField[]][] = [
    [TemplateId.ipv4, dataTemplateFields(s.version, 4, false)],
    [TemplateId.ipv6, dataTemplateFields(s.version, 6, false)],
    [TemplateId.ipv4Vlan, dataTemplateFields(s.version, 4, true)],
    [TemplateId.ipv6Vlan, dataTemplateFields(s.version, 6, true)],
  ];
  // v9 pads every FlowSet to 4 bytes (the padding inside its length); IPFIX never pads
  const setBytes = (content: number): number => (v9 ? pad4(SET_HEADER_BYTES + content) : SET_HEADER_BYTES + content);
  // template set: per template id, field count, fields (4 bytes each)
  const templateSetBytes = setBytes(templates.reduce((sum, [, f]) => sum + 4 + 4 * f.length, 0));
  // options template: v9: id, scope length, option length, scope (type, length), option (type, length);
  // IPFIX: id, field count, scope field count, scope (id, length), option (id, length)
  const optionsTemplateSetBytes = setBytes(6 + 8);
  // options data: the scope value (4 bytes), systemInitTimeMilliseconds (8)
  const optionsDataSetBytes = setBytes(4 + 8);
  const bytes = Buffer.alloc(templateSetBytes + optionsTemplateSetBytes + optionsDataSetBytes);
  let o = 0;
  bytes.writeUInt16BE(v9 ? 0 : 2, o);
  bytes.writeUInt16BE(templateSetBytes, o + 2);
  o += SET_HEADER_BYTES;
  for (const [id, fields] of templates) {
    bytes.writeUInt16BE(id, o);
    bytes.writeUInt16BE(fields.length, o + 2);
    o += 4;
    for (const [type, length] of fields) {
      bytes.writeUInt16BE(type, o);
      bytes.writeUInt16BE(length, o + 2);
      o += 4;
    }
  }
  o = templateSetBytes;
  bytes.writeUInt16BE(v9 ? 1 : 3, o);
  bytes.writeUInt16BE(optionsTemplateSetBytes, o + 2);
  bytes.writeUInt16BE(TemplateId.options, o + 4);
  if (v9) {
    bytes.writeUInt16BE(4, o + 6); // option scope length (bytes)
    bytes.writeUInt16BE(4, o + 8); // option length (bytes)
    bytes.writeUInt16BE(V9_SCOPE_SYSTEM, o + 10);
    bytes.writeUInt16BE(4, o + 12);
  } else {
    bytes.writeUInt16BE(2, o + 6); // field count
    bytes.writeUInt16BE(1, o + 8); // scope field count
    bytes.writeUInt16BE(Ie.observationDomainId, o + 10);
    bytes.writeUInt16BE(4, o + 12);
  }
  bytes.writeUInt16BE(Ie.systemInitTimeMilliseconds, o + 14);
  bytes.writeUInt16BE(8, o + 16);
  o += optionsTemplateSetBytes;
  bytes.writeUInt16BE(TemplateId.options, o);
  bytes.writeUInt16BE(optionsDataSetBytes, o + 2);
  bytes.writeUInt32BE(s.sourceId >>> 0, o + 4); // v9 System scope / IPFIX observationDomainId
  const init = Math.floor(s.systemInitUnixMs);
  bytes.writeUInt32BE(Math.floor(init / UINT32), o + 8);
  bytes.writeUInt32BE(init >>> 0, o + 12);
  o += optionsDataSetBytes;
  if (o !== bytes.length) throw new Error(`template block: wrote ${o} of ${bytes.length} bytes`);
  return { bytes, records: templates.length + 2 };
}

function checkSettings(s: TemplateExportSettings): void {
  if (s.version !== 9 && s.version !== 10) throw new RangeError(`template export: version must be 9 or 10, not ${String(s.version)}`);
  if (!Number.isInteger(s.sourceId) || s.sourceId < 0 || s.sourceId >= UINT32) {
    throw new RangeError(`template export: ${s.version === 9 ? 'source id' : 'observation domain id'} must be a uint32, not ${s.sourceId}`);
  }
  if (!Number.isInteger(s.maxDatagramBytes) || s.maxDatagramBytes < 1 || s.maxDatagramBytes > 0xffff) {
    throw new RangeError(`template export: maxDatagramBytes must be an integer from 1 to 65535, not ${s.maxDatagramBytes}`);
  }
  for (const [name, value] of [
    ['templateRefreshPackets', s.templateRefreshPackets],
    ['templateRefreshMs', s.templateRefreshMs],
    ['systemInitUnixMs', s.systemInitUnixMs],
  ] as const) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`template export: ${name} must be a number ≥ 0, not ${value}`);
  }
}

export class TemplateEncoder {
  private readonly settings: TemplateExportSettings;
  private readonly v9: boolean;
  private readonly headerBytes: number;
  private readonly templates: Buffer;
  private readonly templateRecords: number;
  /** record bytes by template id − 256 */
  private readonly recordBytes: [number, number, number, number];
  /** v9: packets sent; IPFIX: data records sent (both unwrapped) */
  private sent = 0;
  /** datagrams since (and including) the last one that carried templates; -1: never sent */
  private datagramsSinceTemplates = -1;
  private templatesAtMs = 0;
  /** the last datagram carried templates and no data: the next one must carry data */
  private templatesOnly = false;

  constructor(settings: TemplateExportSettings) {
    checkSettings(settings);
    this.settings = { ...settings };
    this.v9 = settings.version === 9;
    this.headerBytes = this.v9 ? V9_HEADER_BYTES : IPFIX_HEADER_BYTES;
    const block = templateBlock(settings);
    this.templates = block.bytes;
    this.templateRecords = block.records;
    this.recordBytes = dataRecordLengths(settings.version);
    const max = settings.maxDatagramBytes;
    const withTemplates = this.headerBytes + this.templates.length;
    if (withTemplates > max) {
      throw new RangeError(
        `template export: maxDatagramBytes ${max} cannot hold the templates (a ${withTemplates}-byte datagram for ${this.v9 ? 'NetFlow v9' : 'IPFIX'})`,
      );
    }
    // the template datagram is always the larger; kept so a longer record layout cannot slip through
    const largest = Math.max(...this.recordBytes);
    const withRecord = this.headerBytes + SET_HEADER_BYTES + (this.v9 ? pad4(largest) : largest);
    if (withRecord > max) {
      throw new RangeError(
        `template export: maxDatagramBytes ${max} cannot hold one flow record (a ${withRecord}-byte datagram for ${this.v9 ? 'NetFlow v9' : 'IPFIX'})`,
      );
    }
  }

  /** v9: export packets sent; IPFIX: data records (flow + options) sent: the next header's sequence number. */
  get sequence(): number {
    return this.sent % UINT32;
  }

  private refreshDue(nowMs: number): boolean {
    if (this.datagramsSinceTemplates < 0) return true;
    if (this.templatesOnly) return false;
    const { templateRefreshPackets: packets, templateRefreshMs: ms } = this.settings;
    if (packets > 0 && this.datagramsSinceTemplates >= packets) return true;
    return ms > 0 && nowMs - this.templatesAtMs >= ms;
  }

  /** Encode a batch's records into datagrams; `nowMs` (any monotonic ms) drives the time-based refresh. */
  encode(batch: RecordBatch, nowMs: number): EncodedDatagram[] {
    const count = batch.count;
    const out: EncodedDatagram[] = [];
    if (count <= 0) return out;
    const family = batch.family;
    const stride = family === 4 ? V5_RECORD_BYTES : IPV6_RECORD_BYTES;
    const source = new DataView(batch.records, 0, count * stride);
    const attributes = new Uint32Array(batch.attributes, 0, count);
    const familyTemplate = family === 4 ? 0 : 1;
    const templateOf = (i: number): number => familyTemplate + (((attributes[i]! >>> 8) & 0xfff) !== 0 ? 2 : 0);
    const max = this.settings.maxDatagramBytes;
    const v9 = this.v9;
    const uptimeFloor = Math.floor(batch.uptimeMs);
    const sysUptime = uptimeFloor % UINT32;
    const unixSecs = Math.floor(batch.unixMs / 1000);
    /** unix ms at the instant sys_uptime was `sysUptime` */
    const unixAtUptime = Math.floor(batch.unixMs - (batch.uptimeMs - uptimeFloor));

    let next = 0;
    while (next < count) {
      const withTemplates = this.refreshDue(nowMs);
      // plan: which records fit, and the datagram's size
      let size = this.headerBytes + (withTemplates ? this.templates.length : 0);
      let closed = size; // bytes up to the end of the last closed set
      let setContent = -1; // record bytes of the open set; -1: none open
      let setTemplate = -1;
      let end = next;
      while (end < count) {
        const t = templateOf(end);
        const length = this.recordBytes[t]!;
        let grown: number;
        if (t === setTemplate) {
          grown = closed + SET_HEADER_BYTES + (v9 ? pad4(setContent + length) : setContent + length);
        } else {
          const closing = setContent < 0 ? closed : closed + SET_HEADER_BYTES + (v9 ? pad4(setContent) : setContent);
          grown = closing + SET_HEADER_BYTES + (v9 ? pad4(length) : length);
        }
        if (grown > max) break;
        if (t !== setTemplate) {
          if (setContent >= 0) closed += SET_HEADER_BYTES + (v9 ? pad4(setContent) : setContent);
          setTemplate = t;
          setContent = 0;
        }
        setContent += length;
        size = grown;
        end++;
      }
      const records = end - next;
      const bytes = Buffer.alloc(size);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      let o = this.headerBytes;
      if (withTemplates) {
        this.templates.copy(bytes, o);
        o += this.templates.length;
      }
      // header
      const sequence = this.sent % UINT32;
      if (v9) {
        view.setUint16(0, 9);
        view.setUint16(2, records + (withTemplates ? this.templateRecords : 0));
        view.setUint32(4, sysUptime);
        view.setUint32(8, unixSecs >>> 0);
        view.setUint32(12, sequence);
        view.setUint32(16, this.settings.sourceId);
      } else {
        view.setUint16(0, 10);
        view.setUint16(2, size);
        view.setUint32(4, unixSecs >>> 0);
        view.setUint32(8, sequence);
        view.setUint32(12, this.settings.sourceId);
      }
      // data sets
      let i = next;
      while (i < end) {
        const t = templateOf(i);
        const setStart = o;
        o += SET_HEADER_BYTES;
        while (i < end && templateOf(i) === t) {
          const at = i * stride;
          if (family === 4) o = this.writeIpv4(view, o, source, at, attributes[i]!, sysUptime, unixAtUptime, t === 2);
          else o = this.writeIpv6(view, o, source, at, attributes[i]!, sysUptime, unixAtUptime, t === 3);
          i++;
        }
        if (v9) o = pad4(o); // the padding is already zero
        view.setUint16(setStart, TemplateId.ipv4 + t);
        view.setUint16(setStart + 2, o - setStart);
      }
      if (o !== size) throw new Error(`template export: wrote ${o} of ${size} bytes`);

      this.sent += v9 ? 1 : records + (withTemplates ? 1 : 0);
      if (withTemplates) {
        this.datagramsSinceTemplates = 1;
        this.templatesAtMs = nowMs;
        this.templatesOnly = records === 0;
      } else {
        this.datagramsSinceTemplates++;
        this.templatesOnly = false;
      }
      out.push({ bytes, flowRecords: records });
      next = end;
    }
    return out;
  }

  /** Writes the fields common to both families after the addresses; returns the offset after ipVersion. */
  private writeCommon(
    view: DataView,
    o: number,
    srcPort: number,
    dstPort: number,
    protocol: number,
    tcpFlags: number,
    tos: number,
    octets: number,
    packets: number,
    input: number,
    ipVersion: number,
  ): number {
    view.setUint16(o, srcPort);
    view.setUint16(o + 2, dstPort);
    view.setUint8(o + 4, protocol);
    view.setUint8(o + 5, tcpFlags);
    view.setUint8(o + 6, tos);
    view.setUint32(o + 7, 0); // octets, high word
    view.setUint32(o + 11, octets);
    view.setUint32(o + 15, 0); // packets, high word
    view.setUint32(o + 19, packets);
    view.setUint32(o + 23, input);
    view.setUint32(o + 27, 0); // output ifIndex
    view.setUint8(o + 31, ipVersion);
    return o + 32;
  }

  /** first/last, ICMP type/code, end reason: returns the offset after flowEndReason. */
  private writeTimes(
    view: DataView,
    o: number,
    first: number,
    last: number,
    icmp: number,
    attribute: number,
    sysUptime: number,
    unixAtUptime: number,
  ): number {
    if (this.v9) {
      view.setUint32(o, first);
      view.setUint32(o + 4, last);
      o += 8;
    } else {
      const start = unixAtUptime - ((sysUptime - first) >>> 0);
      const end = unixAtUptime - ((sysUptime - last) >>> 0);
      view.setUint32(o, Math.floor(start / UINT32));
      view.setUint32(o + 4, start >>> 0);
      view.setUint32(o + 8, Math.floor(end / UINT32));
      view.setUint32(o + 12, end >>> 0);
      o += 16;
    }
    view.setUint16(o, icmp);
    view.setUint8(o + 2, END_REASON[attribute & 0xff] ?? 0);
    return o + 3;
  }

  private writeIpv4(
    view: DataView,
    o: number,
    src: DataView,
    at: number,
    attribute: number,
    sysUptime: number,
    unixAtUptime: number,
    vlan: boolean,
  ): number {
    // v5 record: 0 src, 4 dst, 12 input, 16 packets, 20 octets, 24 first, 28 last,
    // 32 srcport, 34 dstport, 37 tcp flags, 38 protocol, 39 tos
    view.setUint32(o, src.getUint32(at));
    view.setUint32(o + 4, src.getUint32(at + 4));
    const protocol = src.getUint8(at + 38);
    const dstPort = src.getUint16(at + 34);
    o = this.writeCommon(
      view,
      o + 8,
      src.getUint16(at + 32),
      dstPort,
      protocol,
      src.getUint8(at + 37),
      src.getUint8(at + 39),
      src.getUint32(at + 20),
      src.getUint32(at + 16),
      src.getUint16(at + 12),
      4,
    );
    o = this.writeTimes(view, o, src.getUint32(at + 24), src.getUint32(at + 28), protocol === 1 ? dstPort : 0, attribute, sysUptime, unixAtUptime);
    if (vlan) {
      view.setUint16(o, (attribute >>> 8) & 0xfff);
      o += 2;
    }
    return o;
  }

  private writeIpv6(
    view: DataView,
    o: number,
    src: DataView,
    at: number,
    attribute: number,
    sysUptime: number,
    unixAtUptime: number,
    vlan: boolean,
  ): number {
    const r = Ipv6RecordOffset;
    for (let k = 0; k < 32; k += 4) view.setUint32(o + k, src.getUint32(at + r.srcAddr + k)); // src then dst
    const protocol = src.getUint8(at + r.protocol);
    const dstPort = src.getUint16(at + r.dstPort);
    o = this.writeCommon(
      view,
      o + 32,
      src.getUint16(at + r.srcPort),
      dstPort,
      protocol,
      src.getUint8(at + r.tcpFlags),
      src.getUint8(at + r.trafficClass),
      src.getUint32(at + r.octets),
      src.getUint32(at + r.packets),
      src.getUint16(at + r.inputIfIndex),
      6,
    );
    o = this.writeTimes(
      view,
      o,
      src.getUint32(at + r.first),
      src.getUint32(at + r.last),
      protocol === 58 ? dstPort : 0,
      attribute,
      sysUptime,
      unixAtUptime,
    );
    const label = src.getUint32(at + r.flowLabel) & 0xfffff;
    if (this.v9) {
      view.setUint8(o, label >>> 16);
      view.setUint16(o + 1, label & 0xffff);
      o += 3;
    } else {
      view.setUint32(o, label);
      o += 4;
    }
    if (vlan) {
      view.setUint16(o, (attribute >>> 8) & 0xfff);
      o += 2;
    }
    return o;
  }
}
