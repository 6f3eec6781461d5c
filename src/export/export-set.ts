import type { Collector } from './collector.js';
import type { EncodedDatagram, Exporter, ExporterStats, RecordsDone } from './exporter.js';
import type { RecordBatch } from './record-batch.js';
import type { ExportVersion } from '../config/options.js';
import type { NotExportedReason } from '../stats/probe-stats.js';

/** Turns a batch into whole datagrams (v9, IPFIX: template-export.ts). */
export interface DatagramEncoder {
  encode(batch: RecordBatch, nowMs: number): EncodedDatagram[];
}

/** The collectors of one export version, and what sends to them. */
export interface ExportChannel {
  version: ExportVersion;
  collectors: readonly Collector[];
  exporter: Exporter;
  /** v9/IPFIX; v5 batches go to the exporter as they are */
  encoder: DatagramEncoder | undefined;
}

/**
 * Every export channel (one per version in use): each batch goes to each
 * channel that can carry its family, and the capture worker hears a batch is
 * done once every channel is done with it. IPv6 flows with only v5 channels
 * are counted as not exported (v5 has no field for them), and said once.
 */
export class ExportSet {
  readonly notExported: Record<NotExportedReason, number> = { ipv6_needs_v9_or_ipfix: 0 };
  private saidIpv6NeedsTemplates = false;

  constructor(
    readonly channels: readonly ExportChannel[],
    private readonly say: (message: string) => void,
  ) {}

  enqueue(batch: RecordBatch, done: RecordsDone): void {
    const targets = this.channels.filter((c) => batch.family === 4 || c.version !== 5);
    if (targets.length === 0) {
      this.notExported.ipv6_needs_v9_or_ipfix += batch.count;
      if (!this.saidIpv6NeedsTemplates) {
        this.saidIpv6NeedsTemplates = true;
        this.say(
          'IPv6 flows are not exported: NetFlow v5 carries IPv4 only; give --export-version 9 or 10 ' +
            '(or HOST:PORT/9, /10 for a collector) to export them (counted as flows not exported, reason ipv6_needs_v9_or_ipfix)',
        );
      }
      done(batch.count);
      return;
    }
    // each channel reports its records done; the batch is done when all have
    let waiting = targets.length * batch.count;
    const channelDone: RecordsDone =
      targets.length === 1
        ? done
        : (records) => {
            waiting -= records;
            if (waiting === 0) done(batch.count);
          };
    const nowMs = performance.now();
    for (const channel of targets) {
      if (channel.encoder === undefined) channel.exporter.enqueue(batch, channelDone);
      else channel.exporter.enqueueDatagrams(channel.encoder.encode(batch, nowMs), channelDone);
    }
  }

  /** What every channel built, dropped and abandoned, added up. */
  get stats(): ExporterStats {
    const sum: ExporterStats = {
      datagramsBuilt: 0,
      recordsBuilt: 0,
      datagramsDropped: 0,
      recordsDropped: 0,
      datagramsAbandoned: 0,
      recordsAbandoned: 0,
    };
    for (const { exporter } of this.channels) {
      for (const key of Object.keys(sum) as (keyof ExporterStats)[]) sum[key] += exporter.stats[key];
    }
    return sum;
  }

  /** The v5 channel's flow_sequence (0 without one). */
  get flowSequence(): number {
    return this.channels.find((c) => c.version === 5)?.exporter.flowSequence ?? 0;
  }

  get queuedDatagrams(): number {
    return this.channels.reduce((sum, c) => sum + c.exporter.queuedDatagrams, 0);
  }

  /** datagrams per second, each channel paced on its own */
  get rate(): number {
    return this.channels[0]?.exporter.rate ?? 1;
  }

  keepEverything(): void {
    for (const { exporter } of this.channels) exporter.keepEverything();
  }

  abandon(): { datagrams: number; records: number } {
    let datagrams = 0;
    let records = 0;
    for (const { exporter } of this.channels) {
      const left = exporter.abandon();
      datagrams += left.datagrams;
      records += left.records;
    }
    return { datagrams, records };
  }

  async drain(): Promise<void> {
    await Promise.all(this.channels.map((c) => c.exporter.drain()));
  }
}
