/**
 * The benches' UDP sink, in a process of its own (`node --import tsx bench/sink.ts`):
 * binds an ephemeral port on 127.0.0.1, prints it as the first line of stdout, then
 * counts what arrives. For each line `report` read on stdin it waits until nothing
 * arrived for QUIET_MS (the probe that just exited may have datagrams in flight or
 * still queued in the socket buffer), prints one JSON line (SinkCounts) with the
 * counts since the last report, and starts counting afresh.
 *
 * Flow records are counted per version:
 * - NetFlow v5: the header's count.
 * - NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): records in data (Flow)Sets, by the
 *   record length of the set's template; templates are learnt from template sets per
 *   exporter (source address and port, version, source id / observation domain), so
 *   two probes using the same template ids do not mix. Records of options templates
 *   are counted apart (optionRecords), as are data sets whose template was never
 *   seen (unknownSets: lost or reordered template datagrams).
 *   The v5 header's count is the number of flow records; a v9 header's count is
 *   every record including templates, and IPFIX has no count at all, hence the walk.
 * The walk must keep up with an unpaced exporter (softflowd's flush: ~10^5 datagrams/s),
 * so templates sit in per-exporter maps keyed by number, the last exporter cached.
 * Datagrams the kernel dropped because the socket's receive buffer was full (the
 * buffer is capped by net.core.rmem_max, whatever is asked) are read from the
 * socket's `drops` column in /proc/net/udp, so a shortfall can be told from loss.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface SinkCounts {
  datagrams: number;
  bytes: number;
  /** flow data records (v5 records; v9 / IPFIX data records of non-options templates) */
  flowRecords: number;
  /** v9 / IPFIX data records of options templates */
  optionRecords: number;
  /** template and options template records received */
  templateRecords: number;
  /** v9 / IPFIX data sets whose template the exporter had not sent */
  unknownSets: number;
  /** datagrams cut short or with a set running past their end */
  malformed: number;
  /** datagrams per header version */
  versions: Record<string, number>;
  /** datagrams the kernel dropped at the sink's socket (receive buffer full); -1: unknown */
  socketDrops: number;
}

/** A template: a fixed record length, or its field lengths when one is variable (65535). */
interface Template {
  options: boolean;
  recordLength: number;
  /** field lengths, kept only when one of them is variable */
  fields: number[] | undefined;
}

const QUIET_MS = 150;
const VARIABLE = 0xffff;

function emptyCounts(): SinkCounts {
  return { datagrams: 0, bytes: 0, flowRecords: 0, optionRecords: 0, templateRecords: 0, unknownSets: 0, malformed: 0, versions: {}, socketDrops: 0 };
}

let counts = emptyCounts();
/** exporter key → template id → template */
const exporters = new Map<string, Map<number, Template>>();
let lastExporterPort = -1;
let lastExporterVersion = -1;
let lastExporterDomain = -1;
let lastAddress = '';
let lastTemplates = new Map<number, Template>();
let lastArrival = performance.now();

function templatesOf(address: string, port: number, version: number, domain: number): Map<number, Template> {
  if (port === lastExporterPort && version === lastExporterVersion && domain === lastExporterDomain && address === lastAddress) {
    return lastTemplates;
  }
  const key = `${address}:${port}/${version}/${domain}`;
  let found = exporters.get(key);
  if (found === undefined) {
    found = new Map();
    exporters.set(key, found);
  }
  lastExporterPort = port;
  lastExporterVersion = version;
  lastExporterDomain = domain;
  lastAddress = address;
  lastTemplates = found;
  return found;
}

/** The `drops` column of this socket's line in /proc/net/udp; -1 when not found. */
function socketDrops(port: number): number {
  try {
    const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields[1] === local) return Number(fields[fields.length - 1]);
    }
  } catch {
    // not Linux
  }
  return -1;
}

/** Records of variable-length template `fields` in data[start, end): stops at padding. */
function countVariable(data: Buffer, start: number, end: number, fields: number[]): number {
  let records = 0;
  let p = start;
  for (;;) {
    let q = p;
    for (const length of fields) {
      if (length !== VARIABLE) {
        q += length;
        continue;
      }
      if (q + 1 > end) return records;
      let n = data[q]!;
      q += 1;
      if (n === 255) {
        if (q + 2 > end) return records;
        n = data.readUInt16BE(q);
        q += 2;
      }
      q += n;
    }
    if (q > end || q === p) return records;
    records++;
    p = q;
  }
}

/**
 * Walk a v9 (headerBytes 20, template set ids 0 / 1) or IPFIX (16, set ids 2 / 3)
 * message from its first set.
 */
function countSets(m: Buffer, length: number, version: 9 | 10, templates: Map<number, Template>): void {
  const templateSet = version === 9 ? 0 : 2;
  const optionsSet = version === 9 ? 1 : 3;
  let o = version === 9 ? 20 : 16;
  while (o + 4 <= length) {
    const setId = m.readUInt16BE(o);
    const setLength = m.readUInt16BE(o + 2);
    if (setLength < 4 || o + setLength > length) {
      counts.malformed++;
      return;
    }
    const end = o + setLength;
    let p = o + 4;
    if (setId === templateSet || setId === optionsSet) {
      // Template records until fewer bytes than a record header remain (padding)
      while (p + 4 <= end) {
        const templateId = m.readUInt16BE(p);
        let fieldCount: number;
        if (setId === templateSet) {
          fieldCount = m.readUInt16BE(p + 2);
          p += 4;
        } else if (version === 9) {
          // options template: scope length and option length, in bytes (4 per field)
          if (p + 6 > end) break;
          fieldCount = (m.readUInt16BE(p + 2) + m.readUInt16BE(p + 4)) / 4;
          p += 6;
        } else {
          // options template: field count, then the scope field count (0 here: a withdrawal)
          fieldCount = m.readUInt16BE(p + 2);
          p += fieldCount === 0 ? 4 : 6;
        }
        if (templateId < 256) break; // padding (zeros) or not a template
        if (fieldCount === 0) {
          templates.delete(templateId); // IPFIX withdrawal
          continue;
        }
        const lengths: number[] = [];
        let ok = true;
        for (let i = 0; i < fieldCount; i++) {
          if (p + 4 > end) {
            ok = false;
            break;
          }
          const ie = m.readUInt16BE(p);
          lengths.push(m.readUInt16BE(p + 2));
          p += 4;
          if (version === 10 && (ie & 0x8000) !== 0) p += 4; // enterprise number
        }
        if (!ok || p > end) {
          counts.malformed++;
          return;
        }
        const variable = lengths.includes(VARIABLE);
        templates.set(templateId, {
          options: setId === optionsSet,
          recordLength: variable ? 0 : lengths.reduce((a, b) => a + b, 0),
          fields: variable ? lengths : undefined,
        });
        counts.templateRecords++;
      }
    } else if (setId >= 256) {
      const template = templates.get(setId);
      if (template === undefined) {
        counts.unknownSets++;
      } else {
        // fixed length: whatever is left under one record length is padding
        const records =
          template.fields !== undefined
            ? countVariable(m, p, end, template.fields)
            : template.recordLength > 0
              ? Math.floor((end - p) / template.recordLength)
              : 0;
        if (template.options) counts.optionRecords += records;
        else counts.flowRecords += records;
      }
    }
    o = end;
  }
}

function onMessage(m: Buffer, rinfo: RemoteInfo): void {
  lastArrival = performance.now();
  counts.datagrams++;
  counts.bytes += m.length;
  if (m.length < 4) {
    counts.malformed++;
    return;
  }
  const version = m.readUInt16BE(0);
  counts.versions[version] = (counts.versions[version] ?? 0) + 1;
  if (version === 5) {
    counts.flowRecords += m.readUInt16BE(2);
  } else if (version === 9 && m.length >= 20) {
    countSets(m, m.length, 9, templatesOf(rinfo.address, rinfo.port, 9, m.readUInt32BE(16)));
  } else if (version === 10 && m.length >= 16) {
    const length = m.readUInt16BE(2);
    if (length > m.length) counts.malformed++;
    countSets(m, Math.min(length, m.length), 10, templatesOf(rinfo.address, rinfo.port, 10, m.readUInt32BE(12)));
  } else {
    counts.malformed++;
  }
}

const socket = createSocket({ type: 'udp4', recvBufferSize: 64 << 20 });
socket.on('message', onMessage);
let dropsReported = 0;
socket.bind(0, '127.0.0.1', () => {
  dropsReported = Math.max(0, socketDrops(socket.address().port));
  console.log(socket.address().port);
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'report') return;
  const asked = performance.now();
  const poll = (): void => {
    const now = performance.now();
    if (now - lastArrival < QUIET_MS || now - asked < QUIET_MS) {
      setTimeout(poll, 20);
      return;
    }
    const drops = socketDrops(socket.address().port);
    counts.socketDrops = drops < 0 ? -1 : drops - dropsReported;
    dropsReported = Math.max(drops, dropsReported);
    console.log(JSON.stringify(counts));
    counts = emptyCounts();
  };
  poll();
});
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
