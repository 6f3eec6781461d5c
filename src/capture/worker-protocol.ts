import type { FlowTimeouts } from '../cache/flow-cache.js';
import type { RecordBatch } from '../export/record-batch.js';

/** What a capture worker is told to open. */
export type CaptureSourceSpec =
  | {
      kind: 'live';
      device: string;
      /** ifIndex written in records (0 when unknown) */
      ifIndex: number;
      promiscuous: boolean;
      snapLength: number;
      bufferSize: number;
    }
  | { kind: 'file'; path: string; ifIndex: number };

export interface CaptureWorkerConfig {
  source: CaptureSourceSpec;
  /** BPF filter, already combined with the exclusion of our own export traffic */
  filter: string;
  maxFlows: number;
  timeouts: FlowTimeouts;
  /** unix ms of sys_uptime 0; null: the first packet's time (file mode) */
  bootMs: number | null;
  /** shared counters (DataPlaneCounter layout) */
  counters: Float64Array;
  /** shared control words (ControlWord layout) */
  control: Int32Array;
  /** file mode: reading pauses while more records than this wait to be sent */
  maxPendingRecords: number;
  /** live mode: how often timeouts are checked and batches flushed when idle */
  tickMs: number;
}

export type CaptureWorkerMessage =
  | { type: 'opened'; linkType: number; linkTypeName: string }
  | { type: 'failed'; code: string; message: string }
  | { type: 'warning'; message: string }
  | { type: 'records'; batch: RecordBatch }
  | { type: 'finished'; outcome: 'end_of_file' | 'stopped' | 'read_error'; message?: string };

export type CaptureWorkerCommand = { type: 'stop' };
