import type { ExpiredFlowSink, ExpiryReason, FlowCache } from '../cache/flow-cache.js';
import { endianness } from 'node:os';
import { V5_RECORD_BYTES } from './v5.js';
import { IPV6_RECORD_BYTES, flowAttributes, type AddressFamily } from './flow-records.js';
import type { AddressTable } from '../cache/address-table.js';

/** A batch of expired flows of one address family, crossing from a capture worker to the exporter. */
export interface RecordBatch {
  family: AddressFamily;
  /**
   * IPv4: count × 48-byte v5 records; IPv6: count × 64-byte IPv6 records (see
   * flow-records.ts). Big-endian; first/last already in sys_uptime ms.
   */
  records: ArrayBuffer;
  /** count × uint32 in host order: vlanId << 8 | ExpiryReason (see flowAttributes) */
  attributes: ArrayBuffer;
  count: number;
  /** the clock when the batch was closed: unix time in ms */
  unixMs: number;
  /** the same instant as ms since the exporter's boot (not wrapped) */
  uptimeMs: number;
}

/** Where batches go: a worker posts them to the main thread; tests collect them. */
export type RecordBatchConsumer = (batch: RecordBatch) => void;

/** The clock the data plane runs on (capture time for files; live, a monotonic time line, see LiveClock). */
export interface DataPlaneClock {
  /** ms, never decreasing: unix ms of capture time (file), or LiveClock's line (live: the wall clock at start, then monotonic) */
  now: number;
  /** `now` of the exporter's boot (sys_uptime 0) */
  boot: number;
  /** added to `now` for wall-clock unix ms: 0 for a file; live, LiveClock's wallOffset as last sampled */
  wallOffset: number;
}

/** v5 record words (of 12) that carry something; the rest stay zero in a fresh buffer */
const WORD_SRC = 0;
const WORD_DST = 1;
/** input ifIndex << 16 | output (0) */
const WORD_IF = 3;
const WORD_PACKETS = 4;
const WORD_OCTETS = 5;
const WORD_FIRST = 6;
const WORD_LAST = 7;
/** srcPort << 16 | dstPort */
const WORD_PORTS = 8;
/** pad1 (0) << 24 | tcpFlags << 16 | protocol << 8 | tos */
const WORD_FLAGS_PROTO_TOS = 9;
const RECORD_WORDS = V5_RECORD_BYTES / 4;
/** v5 is big-endian: words written in host order are swapped as a batch is closed */
const SWAP = endianness() === 'LE';

/**
 * Expired flows of one family into records in a fresh buffer per batch: the
 * buffer is transferred to the exporter, so nothing in flight is ever
 * overwritten. Each record is written as whole 32-bit words in host order, the
 * batch byte-swapped once when closed: at the end of a file every flow passes
 * through here at once, before the code is optimized, and a dozen array stores
 * cost a fraction of seventeen DataView calls.
 */
abstract class RecordBatchWriter implements ExpiredFlowSink {
  private buffer: ArrayBuffer;
  protected words: Uint32Array;
  protected attributes: Uint32Array;
  protected count = 0;

  constructor(
    private readonly family: AddressFamily,
    private readonly recordBytes: number,
    protected readonly clock: DataPlaneClock,
    private readonly consume: RecordBatchConsumer,
    protected readonly recordsPerBatch: number,
  ) {
    this.buffer = new ArrayBuffer(recordsPerBatch * recordBytes);
    this.words = new Uint32Array(this.buffer);
    this.attributes = new Uint32Array(recordsPerBatch);
  }

  get pending(): number {
    return this.count;
  }

  abstract expired(cache: FlowCache, id: number, reason: ExpiryReason): void;

  /** Hand over what has accumulated, if anything. */
  flush(): void {
    if (this.count === 0) return;
    if (SWAP) Buffer.from(this.buffer, 0, this.count * this.recordBytes).swap32();
    const batch: RecordBatch = {
      family: this.family,
      records: this.buffer,
      attributes: this.attributes.buffer as ArrayBuffer,
      count: this.count,
      unixMs: this.clock.now + this.clock.wallOffset,
      uptimeMs: this.clock.now - this.clock.boot,
    };
    this.buffer = new ArrayBuffer(this.recordsPerBatch * this.recordBytes);
    this.words = new Uint32Array(this.buffer);
    this.attributes = new Uint32Array(this.recordsPerBatch);
    this.count = 0;
    this.consume(batch);
  }
}

/** IPv4 flows as NetFlow v5 records (v5.ts's writeV5Record writes the same bytes). The cache's attributes: the VLAN id. */
export class RecordBatcher extends RecordBatchWriter {
  constructor(clock: DataPlaneClock, consume: RecordBatchConsumer, recordsPerBatch = 1024) {
    super(4, V5_RECORD_BYTES, clock, consume, recordsPerBatch);
  }

  expired(cache: FlowCache, id: number, reason: ExpiryReason): void {
    const boot = this.clock.boot;
    const words = this.words;
    const o = this.count * RECORD_WORDS;
    words[o + WORD_SRC] = cache.srcAddr(id);
    words[o + WORD_DST] = cache.dstAddr(id);
    words[o + WORD_IF] = (cache.ifIndex(id) & 0xffff) << 16;
    words[o + WORD_PACKETS] = cache.packets(id);
    words[o + WORD_OCTETS] = cache.octets(id);
    // sys_uptime ms, modulo 2^32 as the array stores it
    words[o + WORD_FIRST] = Math.floor(cache.firstSeen(id) - boot);
    words[o + WORD_LAST] = Math.floor(cache.lastSeen(id) - boot);
    words[o + WORD_PORTS] = (cache.srcPort(id) << 16) | cache.dstPort(id);
    words[o + WORD_FLAGS_PROTO_TOS] = (cache.tcpFlags(id) << 16) | (cache.protocol(id) << 8) | cache.tos(id);
    this.attributes[this.count] = flowAttributes(cache.attributes(id), reason);
    if (++this.count === this.recordsPerBatch) this.flush();
  }
}

/** The IPv6 cache's attributes word: the first packet's VLAN id and flow label. */
export function ipv6FlowAttributes(vlanId: number, flowLabel: number): number {
  return (vlanId << 20) | flowLabel;
}

const IPV6_RECORD_WORDS = IPV6_RECORD_BYTES / 4;

/**
 * IPv6 flows (the IPv6 cache's addresses are AddressTable ids) as 64-byte IPv6
 * records (flow-records.ts). Once written, the flow's addresses are released.
 */
export class Ipv6RecordBatcher extends RecordBatchWriter {
  constructor(
    private readonly addresses: AddressTable,
    clock: DataPlaneClock,
    consume: RecordBatchConsumer,
    recordsPerBatch = 1024,
  ) {
    super(6, IPV6_RECORD_BYTES, clock, consume, recordsPerBatch);
  }

  expired(cache: FlowCache, id: number, reason: ExpiryReason): void {
    const boot = this.clock.boot;
    const words = this.words;
    const addresses = this.addresses;
    const o = this.count * IPV6_RECORD_WORDS;
    const src = cache.srcAddr(id);
    const dst = cache.dstAddr(id);
    for (let i = 0; i < 4; i++) {
      words[o + i] = addresses.word(src, i);
      words[o + 4 + i] = addresses.word(dst, i);
    }
    words[o + 8] = cache.packets(id);
    words[o + 9] = cache.octets(id);
    words[o + 10] = Math.floor(cache.firstSeen(id) - boot);
    words[o + 11] = Math.floor(cache.lastSeen(id) - boot);
    words[o + 12] = (cache.srcPort(id) << 16) | cache.dstPort(id);
    words[o + 13] = (cache.tcpFlags(id) << 16) | (cache.protocol(id) << 8) | cache.tos(id);
    words[o + 14] = (cache.ifIndex(id) & 0xffff) << 16;
    const attributes = cache.attributes(id);
    words[o + 15] = attributes & 0xfffff;
    this.attributes[this.count] = flowAttributes(attributes >>> 20, reason);
    addresses.release(src);
    addresses.release(dst);
    if (++this.count === this.recordsPerBatch) this.flush();
  }
}
