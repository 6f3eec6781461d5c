import type { ExpiredFlowSink, ExpiryReason, FlowCache } from '../cache/flow-cache.js';
import { V5_RECORD_BYTES, writeV5Record } from './v5.js';

/** A batch of expired flows, as v5 records, crossing from a capture worker to the exporter. */
export interface RecordBatch {
  /** count × 48-byte v5 records (first/last already in sys_uptime ms) */
  records: ArrayBuffer;
  count: number;
  /** the clock when the batch was closed: unix time in ms */
  unixMs: number;
  /** the same instant as ms since the exporter's boot (not wrapped) */
  uptimeMs: number;
}

/** Where batches go: a worker posts them to the main thread; tests collect them. */
export type RecordBatchConsumer = (batch: RecordBatch) => void;

/** The clock the data plane runs on (capture time for files, wall time live). */
export interface DataPlaneClock {
  /** unix ms, never decreasing */
  now: number;
  /** unix ms of the exporter's boot (sys_uptime 0) */
  boot: number;
}

/**
 * Turns expired flows into v5 records in a fresh buffer per batch: the buffer is
 * transferred to the exporter, so nothing in flight is ever overwritten.
 */
export class RecordBatcher implements ExpiredFlowSink {
  private buffer: ArrayBuffer;
  private view: DataView;
  private count = 0;

  constructor(
    private readonly clock: DataPlaneClock,
    private readonly consume: RecordBatchConsumer,
    private readonly recordsPerBatch = 1024,
  ) {
    this.buffer = new ArrayBuffer(recordsPerBatch * V5_RECORD_BYTES);
    this.view = new DataView(this.buffer);
  }

  get pending(): number {
    return this.count;
  }

  expired(cache: FlowCache, id: number, _reason: ExpiryReason): void {
    const boot = this.clock.boot;
    writeV5Record(
      this.view,
      this.count * V5_RECORD_BYTES,
      cache.srcAddr(id),
      cache.dstAddr(id),
      cache.ifIndex(id),
      cache.packets(id),
      cache.octets(id),
      Math.floor(cache.firstSeen(id) - boot) % 0x1_0000_0000,
      Math.floor(cache.lastSeen(id) - boot) % 0x1_0000_0000,
      cache.srcPort(id),
      cache.dstPort(id),
      cache.tcpFlags(id),
      cache.protocol(id),
      cache.tos(id),
    );
    if (++this.count === this.recordsPerBatch) this.flush();
  }

  /** Hand over what has accumulated, if anything. */
  flush(): void {
    if (this.count === 0) return;
    const batch: RecordBatch = {
      records: this.buffer,
      count: this.count,
      unixMs: this.clock.now,
      uptimeMs: this.clock.now - this.clock.boot,
    };
    this.buffer = new ArrayBuffer(this.recordsPerBatch * V5_RECORD_BYTES);
    this.view = new DataView(this.buffer);
    this.count = 0;
    this.consume(batch);
  }
}
