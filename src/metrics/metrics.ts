/**
 * Prometheus metrics. The only module that imports prom-client: the data plane
 * bumps plain counters in shared memory and this reads them at scrape time.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { EXPIRY_REASONS } from '../cache/flow-cache.js';
import { PORTS_UNAVAILABLE_REASONS } from '../counters/data-plane.js';
import { SKIP_REASONS } from '../decode/decode.js';
import { SEND_ERROR_REASONS, sendErrorReason, type SendErrorReason } from '../export/collector.js';
import { FAMILY_NAMES, NOT_EXPORTED_REASONS, type ProbeStats } from '../stats/probe-stats.js';

const PREFIX = 'flowprobe_';

/** prom-client's `_total` gauges, which promtool rightly flags; the same figures remain without the suffix. */
const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

type Series<L extends string> = [labels: Record<L, string>, value: number];

export interface ProbeMetricsOptions {
  version: string;
  /** the figures now; undefined until the capture has opened */
  read: () => ProbeStats | undefined;
}

/**
 * The probe's registry. Every labelled series is present (at 0) from the first
 * scrape after the capture opened, so dashboards and alerts see it before the
 * first event.
 */
export class ProbeMetrics {
  readonly registry = new Registry();
  /** one snapshot per scrape, so families agree with each other */
  private snapshot: ProbeStats | undefined;

  constructor(private readonly options: ProbeMetricsOptions) {
    collectDefaultMetrics({ register: this.registry });
    for (const name of DROPPED_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    this.defineCapture();
    this.defineDecode();
    this.defineFlows();
    this.defineExport();
    this.defineIpcad();
    const build = new Gauge({
      name: `${PREFIX}build_info`,
      help: 'Always 1; the labels say which flowprobe and Node.js are running.',
      labelNames: ['version', 'nodejs_version'] as const,
      registers: [this.registry],
    });
    build.set({ version: options.version, nodejs_version: process.version }, 1);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, from one fresh snapshot. */
  scrape(): Promise<string> {
    // kept after the scrape: a concurrent one only ever sees a fresher snapshot
    this.snapshot = this.options.read();
    return this.registry.metrics();
  }

  /** A counter set from the snapshot at every scrape (the probe keeps the count, not prom-client). */
  private mirror<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    series: (stats: ProbeStats) => Series<L>[],
  ): void {
    const counter: Counter<L> = new Counter<L>({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect: () => {
        const stats = this.snapshot;
        if (stats === undefined) return;
        counter.reset();
        for (const [labels, value] of series(stats)) counter.inc(labels, value);
      },
    });
  }

  private gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    series: (stats: ProbeStats) => Series<L>[],
  ): void {
    const gauge: Gauge<L> = new Gauge<L>({
      name: PREFIX + name,
      help,
      labelNames,
      registers: [this.registry],
      collect: () => {
        const stats = this.snapshot;
        if (stats === undefined) return;
        gauge.reset();
        for (const [labels, value] of series(stats)) gauge.set(labels, value);
      },
    });
  }

  private defineCapture(): void {
    this.mirror('capture_packets_total', 'Packets read from the capture (the probe\'s own count).', ['interface'], (s) =>
      s.sources.map((src) => [{ interface: src.label }, src.packets]),
    );
    this.mirror('capture_bytes_total', 'Bytes read from the capture, by wire length.', ['interface'], (s) =>
      s.sources.map((src) => [{ interface: src.label }, src.bytes]),
    );
    // libpcap's own figures are 32-bit and restart with each handle: the worker keeps running totals
    this.mirror(
      'capture_dropped_packets_total',
      'Packets libpcap reports dropped: stage "kernel" (ps_drop, the capture buffer was full) or "interface" (ps_ifdrop, kept in promiscuous mode only).',
      ['interface', 'stage'],
      (s) =>
        s.sources.flatMap((src): Series<'interface' | 'stage'>[] => [
          [{ interface: src.label, stage: 'kernel' }, src.pcapDropped],
          [{ interface: src.label, stage: 'interface' }, src.pcapInterfaceDropped],
        ]),
    );
    this.mirror(
      'capture_unprocessed_packets_total',
      'Packets libpcap received (and did not drop) that were never processed: left in its buffer when the capture closed (not counted on "any").',
      ['interface'],
      (s) => s.sources.map((src) => [{ interface: src.label }, src.pcapUnprocessed]),
    );
    this.mirror(
      'capture_ifindex_cut_packets_total',
      'Packets whose input ifIndex was above 65535: NetFlow v5 carries 16 bits, their records carry the low 16.',
      ['interface'],
      (s) => s.sources.map((src) => [{ interface: src.label }, src.ifIndexCut]),
    );
    this.mirror(
      'capture_out_of_order_packets_total',
      'Packets whose timestamp went back in time (counted at the latest time).',
      [],
      (s) => [[{}, s.outOfOrder]],
    );
  }

  private defineDecode(): void {
    const reasons = SKIP_REASONS.filter((r) => r !== 'ok');
    this.mirror('decode_skipped_packets_total', 'Packets not counted in any flow, by reason (not IP, or malformed).', ['reason'], (s) =>
      reasons.map((reason) => [{ reason }, s.skipped[reason].packets]),
    );
    this.mirror('decode_skipped_bytes_total', 'Wire bytes of the packets not counted in any flow, by reason.', ['reason'], (s) =>
      reasons.map((reason) => [{ reason }, s.skipped[reason].bytes]),
    );
    this.mirror(
      'decode_ports_unavailable_packets_total',
      'Packets counted with ports 0 because their transport header is absent, by reason.',
      ['reason'],
      (s) => PORTS_UNAVAILABLE_REASONS.map((reason) => [{ reason }, s.portsUnavailable[reason]]),
    );
  }

  private defineFlows(): void {
    this.mirror('flows_created_total', 'Flows created in the flow cache.', [], (s) => [[{}, s.flows.created]]);
    this.mirror('flows_expired_total', 'Flows exported from the cache, by reason.', ['reason'], (s) =>
      EXPIRY_REASONS.map((reason) => [{ reason }, s.flows.expired[reason]]),
    );
    this.gauge('flow_cache_flows', 'Flows in the cache now.', [], (s) => [[{}, s.flows.cached]]);
    this.gauge('flow_cache_capacity_flows', 'Flows each family\'s cache can hold (--max-flows).', [], (s) => [[{}, s.flows.capacity]]);
    this.mirror('family_packets_total', 'Packets decoded and counted in a flow, per address family.', ['family'], (s) =>
      FAMILY_NAMES.map((family) => [{ family }, s.families[family].packets]),
    );
    this.mirror('family_octets_total', 'IP bytes counted in flows (IPv4 total length, IPv6 payload length + 40), per address family.', ['family'], (s) =>
      FAMILY_NAMES.map((family) => [{ family }, s.families[family].octets]),
    );
    this.mirror('family_flows_created_total', 'Flows created, per address family.', ['family'], (s) =>
      FAMILY_NAMES.map((family) => [{ family }, s.families[family].flowsCreated]),
    );
    this.mirror('family_flows_expired_total', 'Flows expired from the cache (any reason), per address family.', ['family'], (s) =>
      FAMILY_NAMES.map((family) => [{ family }, s.families[family].flowsExpired]),
    );
    this.gauge('family_flow_cache_flows', 'Flows in the cache now, per address family.', ['family'], (s) =>
      FAMILY_NAMES.map((family) => [{ family }, s.families[family].flowsCached]),
    );
  }

  /** flowprobe ipcad: the accounting table and the rsh server (no samples otherwise). */
  private defineIpcad(): void {
    const a = (s: ProbeStats, pick: (a: NonNullable<ProbeStats['accounting']>) => number): Series<never>[] =>
      s.accounting === undefined ? [] : [[{}, pick(s.accounting)]];
    this.gauge('accounting_entries', 'Entries in the IPCAD accounting table, by table (active, checkpoint).', ['table'], (s) =>
      s.accounting === undefined
        ? []
        : [
            [{ table: 'active' }, s.accounting.entries],
            [{ table: 'checkpoint' }, s.accounting.checkpointEntries],
          ],
    );
    this.mirror('accounting_entries_made_total', 'Entries created in the accounting table.', [], (s) => a(s, (x) => x.entriesMade));
    this.mirror('accounting_packets_total', 'Packets accounted in the accounting table.', [], (s) => a(s, (x) => x.packets));
    this.mirror('accounting_bytes_total', 'IP bytes accounted in the accounting table.', [], (s) => a(s, (x) => x.bytes));
    this.mirror('accounting_unaccounted_packets_total', 'Packets that found the accounting table full (memory_limit).', [], (s) =>
      a(s, (x) => x.unaccountedPackets),
    );
    this.mirror('accounting_unaccounted_bytes_total', 'IP bytes of the packets that found the accounting table full.', [], (s) =>
      a(s, (x) => x.unaccountedBytes),
    );
    this.gauge('accounting_memory_bytes', 'Bytes of memory_limit the accounting entries stand for.', [], (s) => a(s, (x) => x.memoryUsed));
    this.gauge('accounting_memory_limit_bytes', 'memory_limit of the accounting table.', [], (s) => a(s, (x) => x.memoryLimit));
    this.mirror('rsh_connections_total', 'rsh connections, by outcome (served, denied, busy, timeout, …).', ['outcome'], (s) =>
      Object.entries(s.rsh?.connections ?? {}).map(([outcome, n]) => [{ outcome }, n]),
    );
    this.mirror('rsh_commands_total', 'rsh commands run, by command; invalid, refused (level) and failed ones too.', ['command'], (s) =>
      Object.entries(s.rsh?.commands ?? {}).map(([command, n]) => [{ command }, n]),
    );
  }

  private defineExport(): void {
    this.mirror('export_datagrams_total', 'Export datagrams (NetFlow v5, v9 or IPFIX) the kernel accepted, per collector.', ['collector'], (s) =>
      s.export.collectors.map((c) => [{ collector: c.label }, c.datagrams]),
    );
    this.mirror(
      'export_records_total',
      'Flow records sent, per collector ("stdout" when printing flows).',
      ['collector'],
      (s) =>
        s.export.printedRecords !== undefined
          ? [[{ collector: 'stdout' }, s.export.printedRecords]]
          : s.export.collectors.map((c) => [{ collector: c.label }, c.records]),
    );
    this.mirror('export_errors_total', 'Datagram sends that failed, per collector and reason.', ['collector', 'reason'], (s) =>
      s.export.collectors.flatMap((c) => {
        const byReason = new Map<SendErrorReason, number>(SEND_ERROR_REASONS.map((r) => [r, 0]));
        for (const [code, n] of Object.entries(c.errors)) byReason.set(sendErrorReason(code), byReason.get(sendErrorReason(code))! + n);
        return [...byReason].map(([reason, n]): Series<'collector' | 'reason'> => [{ collector: c.label, reason }, n]);
      }),
    );
    this.gauge('export_collector_resolved', 'Whether the collector\'s name resolved (1) or lookups are still being retried (0).', ['collector'], (s) =>
      s.export.collectors.map((c) => [{ collector: c.label }, c.resolved ? 1 : 0]),
    );
    this.mirror('export_collector_failed_lookups_total', 'Lookups of the collector\'s name that failed (retried with backoff).', ['collector'], (s) =>
      s.export.collectors.map((c) => [{ collector: c.label }, c.failedLookups]),
    );
    this.gauge(
      'export_flow_sequence',
      'The NetFlow v5 flow_sequence of the next datagram (records exported, modulo 2^32).',
      [],
      (s) => [[{}, s.export.flowSequence]],
    );
    this.mirror(
      'export_queue_dropped_datagrams_total',
      'Datagrams dropped because the send queue was full (live only; flow_sequence still advances).',
      [],
      (s) => [[{}, s.export.droppedDatagrams]],
    );
    this.mirror('export_queue_dropped_records_total', 'Records in the datagrams dropped on a full send queue.', [], (s) => [
      [{}, s.export.droppedRecords],
    ]);
    this.mirror(
      'export_abandoned_datagrams_total',
      'Datagrams not sent because a second SIGINT or SIGTERM stopped the final flush (flow_sequence still advances).',
      [],
      (s) => [[{}, s.export.abandonedDatagrams]],
    );
    this.mirror('export_abandoned_records_total', 'Records in the datagrams the stopped final flush did not send.', [], (s) => [
      [{}, s.export.abandonedRecords],
    ]);
    this.mirror(
      'export_not_exported_flows_total',
      'Flows no collector could be sent, by reason (ipv6_needs_v9_or_ipfix: IPv6 with only NetFlow v5 collectors).',
      ['reason'],
      (s) => NOT_EXPORTED_REASONS.map((reason) => [{ reason }, s.export.notExported[reason]]),
    );
    this.gauge('export_queue_datagrams', 'Datagrams waiting to be sent.', [], (s) => [[{}, s.export.queuedDatagrams]]);
    this.gauge('export_queue_capacity_datagrams', 'Datagrams that may wait to be sent (--export-queue).', [], (s) => [
      [{}, s.export.queueCapacity],
    ]);
  }
}

