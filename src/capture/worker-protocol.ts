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
    }
  | { kind: 'file'; path: string; ifIndex: number };

export interface CaptureWorkerConfig {
  /**
   * Every source runs in this one worker: the `pcap` addon is not context-aware,
   * so only one thread per process can load it. Several live interfaces share the
   * flow cache (the key holds the ifIndex); a file is always the only source.
   */
  sources: CaptureSourceSpec[];
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
}

export type CaptureWorkerMessage =
  | { type: 'opened'; sources: { name: string; linkType: number; linkTypeName: string }[] }
  | { type: 'failed'; code: string; message: string }
  | { type: 'warning'; message: string }
  | { type: 'records'; batch: RecordBatch }
  | { type: 'finished'; outcome: 'end_of_file' | 'stopped' | 'read_error'; message?: string };

export type CaptureWorkerCommand = { type: 'stop' };
