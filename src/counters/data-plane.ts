import { ACCOUNTING_STATS_LENGTH } from '../accounting/table.js';
import { FLOW_CACHE_STATS_LENGTH } from '../cache/flow-cache.js';
import { SKIP_REASONS } from '../decode/decode.js';

/**
 * Where each data-plane counter sits in the Float64Array the capture worker
 * shares with the main thread. Only the worker writes; the main thread (summary,
 * metrics, status) reads without messages. Float64 keeps counts exact past 2^32.
 *
 * Layout: the global block below, then one SourceCounter block per capture source.
 */
export const DataPlaneCounter = {
  /** packets whose timestamp went back in time (counted at the current time) */
  clockBackwards: 0,
  /** records handed to the main thread for export */
  recordsPosted: 1,
  /** ms the worker spent reading (opening excluded): the steady-state rate */
  readMilliseconds: 2,
  /** packets and IP octets decoded, per address family (each packet counts in one) */
  ipv4Packets: 3,
  ipv6Packets: 4,
  ipv4Octets: 5,
  ipv6Octets: 6,
  /** packets counted with ports 0: [0] fragment, [1] snaplen, [2] short transport header */
  portsUnavailableBase: 8,
  skippedPacketsBase: 16,
  skippedBytesBase: 32,
  flowCacheBase: 48,
  /** the IPCAD accounting table's figures (AccountingStat layout) */
  accountingBase: 64,
  /** the IPv6 flow cache's figures (FlowCacheStat layout); flowCacheBase's are IPv4's */
  flowCache6Base: 80,
  /** IPv6 addresses held for the IPv6 cache's flows (AddressTable) */
  ipv6Addresses: 96,
} as const;

const GLOBAL_LENGTH = DataPlaneCounter.ipv6Addresses + 1;
if (
  DataPlaneCounter.flowCacheBase + FLOW_CACHE_STATS_LENGTH > DataPlaneCounter.accountingBase ||
  DataPlaneCounter.accountingBase + ACCOUNTING_STATS_LENGTH > DataPlaneCounter.flowCache6Base ||
  DataPlaneCounter.flowCache6Base + FLOW_CACHE_STATS_LENGTH > DataPlaneCounter.ipv6Addresses
) {
  throw new Error('counter layout: blocks overlap');
}

/** Per capture source (interface or file), at sourceCounterBase(i) + field. */
export const SourceCounter = {
  packets: 0,
  /** wire length of every frame read */
  bytes: 1,
  /**
   * libpcap's pcap_stats (live only), refreshed by the worker: totals over every
   * handle the source had, each handle's 32-bit figures added up across wraps
   * (see PcapHandleFigures)
   */
  pcapReceived: 2,
  pcapDropped: 3,
  pcapInterfaceDropped: 4,
  /** times the interface went away (--on-interface-loss retry) */
  interfaceLosses: 5,
  /** packets libpcap received and did not drop that were never read: left in its buffer when a handle closed */
  pcapUnprocessed: 6,
  /** packets whose input ifIndex was above 65535: their records carry its low 16 bits (v5's field) */
  ifIndexCut: 7,
} as const;
const SOURCE_LENGTH = 8;

export function sourceCounterBase(source: number): number {
  return GLOBAL_LENGTH + source * SOURCE_LENGTH;
}

if (SKIP_REASONS.length > DataPlaneCounter.skippedBytesBase - DataPlaneCounter.skippedPacketsBase) {
  throw new Error('counter layout: too many skip reasons');
}

export const PORTS_UNAVAILABLE_REASONS = ['fragment', 'snaplen', 'short_transport_header'] as const;

export function createDataPlaneCounters(sources: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(sourceCounterBase(sources) * 8));
}

/** Control words shared between the main thread and the worker (Int32Array, Atomics). */
export const ControlWord = {
  /** main sets 1: stop capturing, flush, finish */
  stop: 0,
  /** records posted by the worker and not yet sent by the main thread */
  pendingRecords: 1,
} as const;
const CONTROL_WORDS = 2;

export function createControlWords(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
}
