import type { ProbeStats } from './probe-stats.js';

/** The periodic live status, ipcad's `stat` in spirit: rates since the previous line. */
export interface StatusFields {
  packetsPerSecond: number;
  bitsPerSecond: number;
  /** libpcap drops (kernel and interface) since the previous line (the figures are running totals) */
  dropped: number;
  flows: number;
  /** of which IPv6 */
  ipv6Flows: number;
  flowsCreatedPerSecond: number;
  recordsPerSecond: number;
  datagramsPerSecond: number;
  exportErrors: number;
}

interface Sample {
  at: number;
  packets: number;
  bytes: number;
  drops: number[];
  created: number;
  records: number;
  datagrams: number;
  errors: number;
}

export class StatusLine {
  private previous: Sample;

  constructor(
    start: ProbeStats,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.previous = this.sample(start);
  }

  /** The status since the previous call (or the start). */
  next(stats: ProbeStats): { message: string; fields: StatusFields } {
    const current = this.sample(stats);
    const before = this.previous;
    this.previous = current;
    const seconds = Math.max(1e-3, (current.at - before.at) / 1000);
    const rate = (now: number, then: number): number => Math.round((now - then) / seconds);
    let dropped = 0;
    current.drops.forEach((d, i) => (dropped += d - (before.drops[i] ?? 0)));
    const fields: StatusFields = {
      packetsPerSecond: rate(current.packets, before.packets),
      bitsPerSecond: rate(current.bytes * 8, before.bytes * 8),
      dropped,
      flows: stats.flows.cached,
      ipv6Flows: stats.families.ipv6.flowsCached,
      flowsCreatedPerSecond: rate(current.created, before.created),
      recordsPerSecond: rate(current.records, before.records),
      datagramsPerSecond: rate(current.datagrams, before.datagrams),
      exportErrors: current.errors - before.errors,
    };
    const parts = [
      `${fields.packetsPerSecond} packets/s (${formatBits(fields.bitsPerSecond)})`,
      `${fields.dropped} dropped`,
      `${fields.flows} flows (${fields.ipv6Flows} IPv6; ${fields.flowsCreatedPerSecond} new/s)`,
      stats.export.printedRecords === undefined
        ? `${fields.datagramsPerSecond} datagrams/s (${fields.recordsPerSecond} records/s)`
        : `${fields.recordsPerSecond} records/s printed`,
    ];
    if (fields.exportErrors > 0) parts.push(`${fields.exportErrors} send errors`);
    return { message: `status: ${parts.join(', ')}`, fields };
  }

  private sample(stats: ProbeStats): Sample {
    let errors = 0;
    for (const c of stats.export.collectors) for (const n of Object.values(c.errors)) errors += n;
    return {
      at: this.now(),
      packets: stats.packets,
      bytes: stats.bytes,
      drops: stats.sources.flatMap((s) => [s.pcapDropped, s.pcapInterfaceDropped]),
      created: stats.flows.created,
      records: stats.export.printedRecords ?? stats.export.records,
      datagrams: stats.export.datagrams,
      errors,
    };
  }
}

export function formatBits(bitsPerSecond: number): string {
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let value = bitsPerSecond;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
