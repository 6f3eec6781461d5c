import type { AccountingView, AggregationRules } from '../accounting/table.js';
import type { FlowTimeouts } from '../cache/flow-cache.js';
import type { RecordBatch } from '../export/record-batch.js';

/** What a capture worker is told to open. */
export type CaptureSourceSpec =
  | {
      kind: 'live';
      /** '' for libpcap's default device */
      device: string;
      /** ifIndex written in records (0: unknown, or looked up for the default device) */
      ifIndex: number;
      promiscuous: boolean;
      snapLength: number;
      bufferSize: number;
      /** this interface's own BPF filter (ipcad.conf), instead of the global one */
      filter?: string;
    }
  | { kind: 'file'; path: string; ifIndex: number };

export interface CaptureWorkerConfig {
  /**
   * Every source runs in this one worker: the `pcap` addon is not context-aware,
   * so only one thread per process can load it. Several live interfaces share the
   * flow cache (the key holds the ifIndex); a file is always the only source.
   */
  sources: CaptureSourceSpec[];
  /** a live interface that goes away: finish (exit, for the supervisor) or wait for it to come back */
  onInterfaceLoss: 'exit' | 'retry';
  /** BPF filter, already combined with the exclusion of our own export traffic */
  filter: string;
  maxFlows: number;
  timeouts: FlowTimeouts;
  /** unix ms of sys_uptime 0; null: the first packet's time (file mode) */
  bootMs: number | null;
  /** shared counters (DataPlaneCounter layout, then one SourceCounter block per source) */
  counters: Float64Array;
  /** shared control words (ControlWord layout) */
  control: Int32Array;
  /** reading a file pauses while more records than this wait to be sent */
  maxPendingRecords: number;
  /** live mode: how often timeouts are checked and batches flushed when idle */
  tickMs: number;
  /** the IPCAD accounting table, a second consumer of the decoded packets; undefined: none */
  accounting?: AccountingConfig | undefined;
}

export interface AccountingConfig {
  /** bytes for both tables (active and checkpoint) together */
  memoryLimit: number;
  /** per source: account per (src, dst, ports, protocol, interface) rather than per (src, dst) */
  capturePorts: boolean[];
  rules: AggregationRules;
}

/** What the control plane asks the data plane for; answered between two polls. */
export type DataPlaneRequest =
  | { op: 'accounting'; view: AccountingView }
  /** the active accounting table becomes the checkpoint */
  | { op: 'clear' }
  /** rows (SnapshotField layout) added to the active table, which `replace` empties first */
  | { op: 'restore'; replace: boolean; rows: ArrayBuffer }
  /** the flow cache's flows (FlowField layout), oldest first, at most `limit` */
  | { op: 'cache'; limit: number };

export type DataPlaneReply =
  | { op: 'accounting'; rows: ArrayBuffer }
  | { op: 'clear'; checkpointEntries: number }
  | { op: 'restore'; added: number; dropped: number }
  /** flows: in both caches; ipv4Flows: in IPv4's (IPCAD's views are IPv4's) */
  | { op: 'cache'; rows: ArrayBuffer; flows: number; ipv4Flows: number; clockMs: number }
  | { op: 'error'; message: string };

/** A flow in a cache snapshot: 21 float64, in this order (IPv6: src and dst 0, the addresses as words 13-20). */
export const FlowField = {
  src: 0,
  dst: 1,
  srcPort: 2,
  dstPort: 3,
  protocol: 4,
  tos: 5,
  ifIndex: 6,
  packets: 7,
  octets: 8,
  /** ms on the data plane's clock (unix ms live) */
  first: 9,
  last: 10,
  tcpFlags: 11,
  /** 4 or 6 */
  family: 12,
  /** IPv6: the source address as four 32-bit words (13-16), then the destination (17-20) */
  src6: 13,
  dst6: 17,
} as const;
export const FLOW_FIELDS = 21;

export type CaptureWorkerMessage =
  | {
      type: 'opened';
      sources: {
        name: string;
        linkType: number;
        linkTypeName: string;
        /** who reads it: libpcap, or flowprobe's own reader of classic pcap files (pcap-file.ts) */
        reader: 'libpcap' | 'classic-pcap';
      }[];
    }
  | { type: 'failed'; code: string; message: string }
  | { type: 'warning'; message: string }
  /** something the operator should read (an interface lost or back) */
  | { type: 'notice'; message: string }
  | { type: 'records'; batch: RecordBatch }
  | { type: 'reply'; id: number; reply: DataPlaneReply }
  /** the active accounting table as the data plane ends (for the dump saved on exit) */
  | { type: 'accounting-final'; rows: ArrayBuffer }
  | { type: 'finished'; outcome: 'end_of_file' | 'stopped' | 'read_error'; message?: string };

export type CaptureWorkerCommand = { type: 'stop' } | { type: 'request'; id: number; request: DataPlaneRequest };
