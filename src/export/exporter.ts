import type { Collector } from './collector.js';
import type { RecordBatch } from './record-batch.js';
import { V5_HEADER_BYTES, V5_MAX_DATAGRAM_BYTES, V5_MAX_RECORDS, V5_RECORD_BYTES, writeV5Header } from './v5.js';

export interface ExporterOptions {
  engineType: number;
  engineId: number;
  /** datagrams per second, across the burst of a large flush */
  rateLimit: number;
  /** datagrams waiting to be sent; beyond this live mode drops (counted), file mode never gets there */
  maxQueuedDatagrams: number;
  /** live mode drops on overflow (until the final flush: keepEverything); file mode relies on the worker pausing */
  dropWhenFull: boolean;
}

/** Called when records the worker posted have been sent or dropped. */
export type RecordsDone = (records: number) => void;

export interface ExporterStats {
  datagramsBuilt: number;
  recordsBuilt: number;
  /** datagrams dropped because the send queue was full (live mode) */
  datagramsDropped: number;
  recordsDropped: number;
  /** datagrams not sent because the final flush was stopped at once (abandon: a second signal) */
  datagramsAbandoned: number;
  recordsAbandoned: number;
}

const MAX_POOLED_BUFFERS = 1024;

/** A datagram buffer and its header view, made once and reused. */
interface PooledDatagram {
  buffer: Buffer;
  view: DataView;
}

function newPooledDatagram(): PooledDatagram {
  const buffer = Buffer.allocUnsafeSlow(V5_MAX_DATAGRAM_BYTES);
  return { buffer, view: new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength) };
}

/**
 * A datagram waiting to be sent: its header fields and its records, still in the
 * batch the worker transferred. The bytes are assembled only when it is sent, in a
 * buffer from a small pool (at most the in-flight limit), so a long queue costs no
 * datagram buffers.
 */
interface QueuedDatagram {
  /** v9/IPFIX: the datagram, encoded whole when queued (the batch fields are unused) */
  prepared: Buffer | undefined;
  /** v5: the whole batch's records (one Buffer per batch, shared by its datagrams) */
  batch: Buffer;
  /** byte offset of this datagram's first record in the batch */
  offset: number;
  count: number;
  flowSequence: number;
  sysUptime: number;
  unixSecs: number;
  unixNsecs: number;
  done: RecordsDone;
  /** while in flight: the assembled datagram (back to the pool once every send completed) */
  datagram: PooledDatagram | undefined;
  /** collectors whose send has not completed */
  outstanding: number;
}

export interface ExportLogger {
  sendFailed(collector: Collector, reason: string, error: Error): void;
}

/** A datagram encoded whole (NetFlow v9, IPFIX): its bytes and the flow records in it. */
export interface EncodedDatagram {
  bytes: Buffer;
  flowRecords: number;
}

/**
 * Sends datagrams to every collector of one export version, paced by a token
 * bucket so a flush of a million flows does not overrun a collector, with a
 * bounded queue (live mode drops beyond it, counted). NetFlow v5: packs records
 * into datagrams (24 + 48·n bytes, n ≤ 30) with one flow_sequence for the
 * engine, assembled only when sent. v9 and IPFIX datagrams come encoded whole
 * (template-export.ts), their sequence numbers already in them.
 */
export class Exporter {
  readonly stats: ExporterStats = {
    datagramsBuilt: 0,
    recordsBuilt: 0,
    datagramsDropped: 0,
    recordsDropped: 0,
    datagramsAbandoned: 0,
    recordsAbandoned: 0,
  };
  /** records exported before the next datagram, modulo 2^32 */
  flowSequence = 0;

  private readonly queue: QueuedDatagram[] = [];
  private queueHead = 0;
  private readonly pool: PooledDatagram[] = [];
  private inFlight = 0;
  private tokens: number;
  private lastRefill = performance.now();
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private readonly burst: number;
  private readonly maxInFlight = 512;
  private dropWhenFull: boolean;
  /** the final flush was stopped: nothing more is sent */
  private abandoned = false;

  constructor(
    private readonly collectors: readonly Collector[],
    private readonly options: ExporterOptions,
    private readonly log: ExportLogger,
  ) {
    this.burst = Math.max(1, Math.min(1024, Math.ceil(options.rateLimit / 100)));
    this.tokens = this.burst;
    this.dropWhenFull = options.dropWhenFull;
  }

  /** datagrams per second (--export-rate) */
  get rate(): number {
    return this.options.rateLimit;
  }

  /**
   * The final flush begins: from now on no datagram is dropped for a full queue;
   * every one waits its turn at the rate, however long that takes.
   */
  keepEverything(): void {
    this.dropWhenFull = false;
  }

  /**
   * Stop at once (a second signal during the final flush): every queued datagram,
   * and every one enqueued later, is counted as abandoned and not sent. Sends in
   * flight complete. Returns what was queued.
   */
  abandon(): { datagrams: number; records: number } {
    this.abandoned = true;
    let datagrams = 0;
    let records = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) {
      const item = this.queue[i]!;
      datagrams++;
      records += item.count;
      item.done(item.count);
    }
    this.queue.length = 0;
    this.queueHead = 0;
    this.stats.datagramsAbandoned += datagrams;
    this.stats.recordsAbandoned += records;
    this.notifyIfIdle();
    return { datagrams, records };
  }

  get queuedDatagrams(): number {
    return this.queue.length - this.queueHead;
  }

  /** Queue datagrams encoded whole (v9, IPFIX); `done` hears of each one's flow records. */
  enqueueDatagrams(datagrams: readonly EncodedDatagram[], done: RecordsDone): void {
    for (const { bytes, flowRecords } of datagrams) {
      this.stats.datagramsBuilt++;
      this.stats.recordsBuilt += flowRecords;
      if (!this.admit(flowRecords, done)) continue;
      this.queue.push({
        prepared: bytes,
        batch: bytes,
        offset: 0,
        count: flowRecords,
        flowSequence: 0,
        sysUptime: 0,
        unixSecs: 0,
        unixNsecs: 0,
        done,
        datagram: undefined,
        outstanding: 0,
      });
    }
    this.schedulePump();
  }

  /** Whether a datagram built may be queued: not once abandoned, nor (live) with the queue full. Counted if not. */
  private admit(count: number, done: RecordsDone): boolean {
    if (this.abandoned) {
      this.stats.datagramsAbandoned++;
      this.stats.recordsAbandoned += count;
      done(count);
      return false;
    }
    if (this.dropWhenFull && this.queuedDatagrams >= this.options.maxQueuedDatagrams) {
      this.stats.datagramsDropped++;
      this.stats.recordsDropped += count;
      done(count);
      return false;
    }
    return true;
  }

  /** Split a batch into datagrams (≤ 30 records, each its flow_sequence) and queue them. */
  enqueue(batch: RecordBatch, done: RecordsDone): void {
    const records = Buffer.from(batch.records, 0, batch.count * V5_RECORD_BYTES);
    const unixSecs = Math.floor(batch.unixMs / 1000);
    const unixNsecs = Math.min(999_999_999, Math.floor((batch.unixMs - unixSecs * 1000) * 1e6));
    const sysUptime = Math.floor(batch.uptimeMs) % 0x1_0000_0000;
    for (let first = 0; first < batch.count; first += V5_MAX_RECORDS) {
      const count = Math.min(V5_MAX_RECORDS, batch.count - first);
      this.stats.datagramsBuilt++;
      this.stats.recordsBuilt += count;
      const flowSequence = this.flowSequence;
      // The sequence advances even for a dropped datagram, so collectors see the loss.
      this.flowSequence = (this.flowSequence + count) % 0x1_0000_0000;
      if (!this.admit(count, done)) continue;
      this.queue.push({
        prepared: undefined,
        batch: records,
        offset: first * V5_RECORD_BYTES,
        count,
        flowSequence,
        sysUptime,
        unixSecs,
        unixNsecs,
        done,
        datagram: undefined,
        outstanding: 0,
      });
    }
    this.schedulePump();
  }

  /** Resolves when every queued datagram has been sent (or failed). */
  drain(): Promise<void> {
    if (this.queuedDatagrams === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(this.pump);
  }

  private readonly pump = (): void => {
    this.pumpScheduled = false;
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) * this.options.rateLimit) / 1000);
    this.lastRefill = now;
    while (this.tokens >= 1 && this.queueHead < this.queue.length && this.inFlight < this.maxInFlight) {
      const item = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as QueuedDatagram;
      this.tokens -= 1;
      this.transmit(item);
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    if (this.queueHead < this.queue.length) {
      if (this.tokens < 1) {
        // Wait for the next token and no longer. A timer sleeps at least a
        // millisecond, so waiting by timer for a token due in 20 µs (50,000/s) had
        // the exporter idle between bursts, sending well below its rate.
        const waitMs = ((1 - this.tokens) * 1000) / this.options.rateLimit;
        this.pumpScheduled = true;
        if (waitMs < 1) setImmediate(this.pump);
        else setTimeout(this.pump, Math.ceil(waitMs));
      }
      // else: waiting for in-flight sends, whose completions pump again
    } else {
      this.queue.length = 0;
      this.queueHead = 0;
      this.notifyIfIdle();
    }
  };

  private transmit(item: QueuedDatagram): void {
    this.inFlight++;
    if (this.collectors.length === 0) {
      this.complete(item);
      return;
    }
    if (item.prepared !== undefined) {
      this.sendToAll(item, item.prepared, item.prepared.length);
      return;
    }
    const datagram = this.pool.pop() ?? newPooledDatagram();
    const { buffer } = datagram;
    const length = V5_HEADER_BYTES + item.count * V5_RECORD_BYTES;
    writeV5Header(datagram.view, 0, {
      count: item.count,
      sysUptime: item.sysUptime,
      unixSecs: item.unixSecs,
      unixNsecs: item.unixNsecs,
      flowSequence: item.flowSequence,
      engineType: this.options.engineType,
      engineId: this.options.engineId,
      samplingInterval: 0,
    });
    item.batch.copy(buffer, V5_HEADER_BYTES, item.offset, item.offset + item.count * V5_RECORD_BYTES);
    // dgram may send after send() returns: the buffer stays the item's until every send completed
    item.datagram = datagram;
    this.sendToAll(item, buffer, length);
  }

  private sendToAll(item: QueuedDatagram, buffer: Buffer, length: number): void {
    item.outstanding = this.collectors.length;
    for (const collector of this.collectors) {
      collector.send(buffer, length, (error) => {
        if (error === null) {
          collector.datagramsSent++;
          collector.recordsSent += item.count;
        } else {
          this.log.sendFailed(collector, collector.countError(error), error);
        }
        if (--item.outstanding === 0) this.complete(item);
      });
    }
  }

  private complete(item: QueuedDatagram): void {
    this.inFlight--;
    if (item.datagram !== undefined && this.pool.length < MAX_POOLED_BUFFERS) this.pool.push(item.datagram);
    item.datagram = undefined;
    item.prepared = undefined;
    item.done(item.count);
    if (this.queueHead < this.queue.length) this.schedulePump();
    else this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.inFlight !== 0 || this.queuedDatagrams !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
