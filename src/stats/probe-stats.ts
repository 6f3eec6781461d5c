/**
 * One read of every figure the probe keeps: the data plane's shared counters and
 * the exporter's and collectors' own. The summary, the status line, the progress
 * bar and /metrics all print the same snapshot, so they cannot disagree.
 */
import { AccountingStat } from '../accounting/table.js';
import { EXPIRY_REASONS, FlowCacheStat } from '../cache/flow-cache.js';
import {
  DataPlaneCounter,
  PORTS_UNAVAILABLE_REASONS,
  SourceCounter,
  sourceCounterBase,
} from '../counters/data-plane.js';
import { FIRST_MALFORMED_RESULT, SKIP_REASONS, type SkipReason } from '../decode/decode.js';

export type ExpiryReasonName = (typeof EXPIRY_REASONS)[number];
export type PortsUnavailableReason = (typeof PORTS_UNAVAILABLE_REASONS)[number];

export interface SourceStats {
  label: string;
  live: boolean;
  packets: number;
  /** wire length of every frame read */
  bytes: number;
  /**
   * libpcap's pcap_stats as the worker last refreshed them, totals over every
   * handle the source had (a reopen starts a handle at 0; the worker adds each
   * handle's 32-bit figures up across wraps): only ever growing; 0 for a file
   */
  pcapReceived: number;
  pcapDropped: number;
  pcapInterfaceDropped: number;
  /**
   * packets libpcap received (and did not drop) that were never read, left in
   * its buffer when a handle closed; not counted on "any" (see PcapHandleFigures)
   */
  pcapUnprocessed: number;
  /** packets whose input ifIndex was above 65535, sent cut to its low 16 bits (NetFlow v5's field) */
  ifIndexCut: number;
  /** times the interface went away and was waited for (--on-interface-loss retry) */
  interfaceLosses: number;
}

export interface CollectorStats {
  label: string;
  /** datagrams and records the kernel accepted for this collector */
  datagrams: number;
  records: number;
  /** failed sends by errno code */
  errors: Record<string, number>;
  /** its name resolved (always true for an address) */
  resolved: boolean;
  /** lookups of its name that failed */
  failedLookups: number;
}

export interface ExportStats {
  /** records and datagrams built (sent to every collector, or dropped on a full queue) */
  datagrams: number;
  records: number;
  flowSequence: number;
  queuedDatagrams: number;
  queueCapacity: number;
  droppedDatagrams: number;
  droppedRecords: number;
  /** not sent: a second signal stopped the final flush */
  abandonedDatagrams: number;
  abandonedRecords: number;
  collectors: CollectorStats[];
  /** records printed to stdout (no collector given); undefined when exporting */
  printedRecords: number | undefined;
  /** flows exported nowhere, by reason (IPv6 with only NetFlow v5 collectors) */
  notExported: Record<NotExportedReason, number>;
}

export const NOT_EXPORTED_REASONS = ['ipv6_needs_v9_or_ipfix'] as const;
export type NotExportedReason = (typeof NOT_EXPORTED_REASONS)[number];

export type FamilyName = 'ipv4' | 'ipv6';
export const FAMILY_NAMES: readonly FamilyName[] = ['ipv4', 'ipv6'];

export interface FamilyStats {
  packets: number;
  /** IP octets (IPv4 total length, IPv6 payload length + 40) */
  octets: number;
  flowsCreated: number;
  flowsCached: number;
  flowsExpired: number;
}

/** IPCAD's accounting table (flowprobe ipcad only). */
export interface AccountingStats {
  entries: number;
  checkpointEntries: number;
  entriesMade: number;
  packets: number;
  bytes: number;
  /** what found the table full */
  unaccountedPackets: number;
  unaccountedBytes: number;
  memoryUsed: number;
  memoryLimit: number;
}

/** The rsh server's outcomes and commands (flowprobe ipcad with rsh enabled). */
export interface RshStats {
  connections: Record<string, number>;
  commands: Record<string, number>;
}

export interface ProbeStats {
  sources: SourceStats[];
  packets: number;
  bytes: number;
  skipped: Record<SkipReason, { packets: number; bytes: number }>;
  skippedPackets: number;
  malformedPackets: number;
  portsUnavailable: Record<PortsUnavailableReason, number>;
  outOfOrder: number;
  /** ms the worker spent reading a file (0 live): packets / this = the steady-state rate */
  readMilliseconds: number;
  /** both families' caches together; capacity is per family */
  flows: {
    created: number;
    cached: number;
    capacity: number;
    expired: Record<ExpiryReasonName, number>;
  };
  /** decoded packets, their IP octets and flows, per address family */
  families: Record<FamilyName, FamilyStats>;
  export: ExportStats;
  accounting?: AccountingStats;
  rsh?: RshStats;
}

/** What the snapshot is read from; each part keeps counting on its own. */
export interface StatsInputs {
  /** the worker's shared counters (DataPlaneCounter, then SourceCounter blocks) */
  counters: Float64Array;
  sources: readonly { label: string; live: boolean }[];
  flowCacheCapacity: number;
  export: () => ExportStats;
  /** the accounting table is on (its figures follow the data plane's in the counters) */
  accounting?: boolean;
  rsh?: () => RshStats | undefined;
}

export function readProbeStats(inputs: StatsInputs): ProbeStats {
  const c = (index: number): number => inputs.counters[index]!;
  const sources = inputs.sources.map((source, i): SourceStats => {
    const base = sourceCounterBase(i);
    return {
      label: source.label,
      live: source.live,
      packets: c(base + SourceCounter.packets),
      bytes: c(base + SourceCounter.bytes),
      pcapReceived: c(base + SourceCounter.pcapReceived),
      pcapDropped: c(base + SourceCounter.pcapDropped),
      pcapInterfaceDropped: c(base + SourceCounter.pcapInterfaceDropped),
      pcapUnprocessed: c(base + SourceCounter.pcapUnprocessed),
      ifIndexCut: c(base + SourceCounter.ifIndexCut),
      interfaceLosses: c(base + SourceCounter.interfaceLosses),
    };
  });
  const skipped = {} as Record<SkipReason, { packets: number; bytes: number }>;
  let skippedPackets = 0;
  let malformedPackets = 0;
  SKIP_REASONS.forEach((reason, r) => {
    if (reason === 'ok') return;
    const packets = c(DataPlaneCounter.skippedPacketsBase + r);
    skipped[reason] = { packets, bytes: c(DataPlaneCounter.skippedBytesBase + r) };
    skippedPackets += packets;
    if (r >= FIRST_MALFORMED_RESULT) malformedPackets += packets;
  });
  const portsUnavailable = {} as Record<PortsUnavailableReason, number>;
  PORTS_UNAVAILABLE_REASONS.forEach((reason, k) => (portsUnavailable[reason] = c(DataPlaneCounter.portsUnavailableBase + k)));
  const expired = {} as Record<ExpiryReasonName, number>;
  const expiredOf = (base: number, r: number): number => c(base + FlowCacheStat.expiredBase + r);
  EXPIRY_REASONS.forEach(
    (reason, r) => (expired[reason] = expiredOf(DataPlaneCounter.flowCacheBase, r) + expiredOf(DataPlaneCounter.flowCache6Base, r)),
  );
  const family = (packets: number, octets: number, cacheBase: number): FamilyStats => ({
    packets: c(packets),
    octets: c(octets),
    flowsCreated: c(cacheBase + FlowCacheStat.created),
    flowsCached: c(cacheBase + FlowCacheStat.cached),
    flowsExpired: EXPIRY_REASONS.reduce((sum, _reason, r) => sum + expiredOf(cacheBase, r), 0),
  });
  const families: Record<FamilyName, FamilyStats> = {
    ipv4: family(DataPlaneCounter.ipv4Packets, DataPlaneCounter.ipv4Octets, DataPlaneCounter.flowCacheBase),
    ipv6: family(DataPlaneCounter.ipv6Packets, DataPlaneCounter.ipv6Octets, DataPlaneCounter.flowCache6Base),
  };
  return {
    sources,
    packets: sources.reduce((sum, s) => sum + s.packets, 0),
    bytes: sources.reduce((sum, s) => sum + s.bytes, 0),
    skipped,
    skippedPackets,
    malformedPackets,
    portsUnavailable,
    outOfOrder: c(DataPlaneCounter.clockBackwards),
    readMilliseconds: c(DataPlaneCounter.readMilliseconds),
    flows: {
      created: families.ipv4.flowsCreated + families.ipv6.flowsCreated,
      cached: families.ipv4.flowsCached + families.ipv6.flowsCached,
      capacity: inputs.flowCacheCapacity,
      expired,
    },
    families,
    export: inputs.export(),
    ...(inputs.accounting === true ? { accounting: readAccounting(c) } : {}),
    ...rshPart(inputs.rsh?.()),
  };
}

function rshPart(rsh: RshStats | undefined): { rsh?: RshStats } {
  return rsh === undefined ? {} : { rsh };
}

function readAccounting(c: (index: number) => number): AccountingStats {
  return accountingStatsFrom((field) => c(DataPlaneCounter.accountingBase + field));
}

/** The accounting figures, from a reader of AccountingStat fields. */
export function accountingStatsFrom(a: (field: number) => number): AccountingStats {
  return {
    entries: a(AccountingStat.activeEntries),
    checkpointEntries: a(AccountingStat.checkpointEntries),
    entriesMade: a(AccountingStat.entriesMade),
    packets: a(AccountingStat.packets),
    bytes: a(AccountingStat.bytes),
    unaccountedPackets: a(AccountingStat.unaccountedPackets),
    unaccountedBytes: a(AccountingStat.unaccountedBytes),
    memoryUsed: a(AccountingStat.memoryUsed),
    memoryLimit: a(AccountingStat.memoryLimit),
  };
}
