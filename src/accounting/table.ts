/**
 * IPCAD's accounting table: packets and bytes per (source, destination), or per
 * (source, destination, source port, destination port, protocol, interface)
 * where capture-ports is on. A second consumer of the decoded fields, beside
 * the flow cache and independent of it.
 *
 * - A pool of entries (four 32-bit key words, two float64 counters) shared by
 *   two tables: the active one, which packets go to, and the checkpoint, which
 *   `clear ip accounting` moves the active table to. The pool and both hash
 *   indexes are allocated once, sized so that everything fits in memory_limit;
 *   a packet that finds the pool full is counted as unaccounted, never lost
 *   silently.
 * - Each table is an open-addressing index (linear probing, load ≤ 1/2) of
 *   entry ids, and a list of its entries in creation order. Entries are never
 *   deleted one by one: a table is emptied whole.
 * - The packet path allocates nothing and calls nothing that allocates.
 */
import { hashKey } from '../cache/flow-cache.js';

/** Figures the table keeps in (possibly shared) memory, at these indexes. */
export const AccountingStat = {
  activeEntries: 0,
  checkpointEntries: 1,
  /** entries created in the active table since start (restores included) */
  entriesMade: 2,
  /** packets and bytes that found the table full */
  unaccountedPackets: 3,
  unaccountedBytes: 4,
  /** how many entries fit (both tables together) */
  capacity: 5,
  /** bytes memory_limit allows, and bytes the entries in use stand for */
  memoryLimit: 6,
  memoryUsed: 7,
  /** packets and bytes accounted into the active table */
  packets: 8,
  bytes: 9,
} as const;
export const ACCOUNTING_STATS_LENGTH = 10;

/** Which table a snapshot is of. */
export const AccountingView = { active: 0, checkpoint: 1 } as const;
export type AccountingView = (typeof AccountingView)[keyof typeof AccountingView];

/** A snapshot row: 9 float64 per entry, in this order. */
export const SnapshotField = {
  src: 0,
  dst: 1,
  srcPort: 2,
  dstPort: 3,
  protocol: 4,
  /** index of the interface name (the capture source, or a name a dump brought) */
  ifSlot: 5,
  /** 1: ports, protocol and interface are part of the key (capture-ports) */
  withPorts: 6,
  packets: 7,
  bytes: 8,
} as const;
export const SNAPSHOT_FIELDS = 9;

const KEY_WORDS = 4;
const KEY_BYTES = KEY_WORDS * 4;
const VALUE_BYTES = 16;
/** key, counters, the list link and a place on the free stack */
const ENTRY_DATA_BYTES = KEY_BYTES + VALUE_BYTES + 4 + 4;
const INDEX_SLOT_BYTES = 4;
const DETAIL_PORTS = 0x80000000;
export const MIN_ACCOUNTING_ENTRIES = 16;
export const MAX_MEMORY_LIMIT = 2 * 1024 ** 3;

/** The largest pool (and its index size) that fits in `memoryLimit` bytes. */
export function accountingLayout(memoryLimit: number): { capacity: number; indexSlots: number } {
  let best = { capacity: 0, indexSlots: 0 };
  for (let slots = 32; slots * INDEX_SLOT_BYTES * 2 < memoryLimit; slots *= 2) {
    const room = memoryLimit - slots * INDEX_SLOT_BYTES * 2;
    const capacity = Math.min(slots / 2, Math.floor(room / ENTRY_DATA_BYTES));
    if (capacity > best.capacity) best = { capacity, indexSlots: slots };
  }
  return best;
}

/** Address and port aggregation rules, as flat typed arrays (first match wins). */
export interface AggregationRules {
  /** per address rule: network, network mask, mask applied to a matching address */
  addressNetwork: Uint32Array;
  addressMask: Uint32Array;
  addressKeep: Uint32Array;
  /** per port rule: from, to, into */
  portFrom: Uint16Array;
  portTo: Uint16Array;
  portInto: Uint16Array;
}

export const NO_AGGREGATION: AggregationRules = {
  addressNetwork: new Uint32Array(0),
  addressMask: new Uint32Array(0),
  addressKeep: new Uint32Array(0),
  portFrom: new Uint16Array(0),
  portTo: new Uint16Array(0),
  portInto: new Uint16Array(0),
};

export function prefixMask(length: number): number {
  return length <= 0 ? 0 : (0xffffffff << (32 - Math.min(32, length))) >>> 0;
}

export class AccountingTable {
  readonly capacity: number;
  readonly stats: Float64Array<ArrayBufferLike>;
  private readonly keys: Uint32Array;
  private readonly values: Float64Array;
  /** next entry of the same table, in creation order; -1 ends */
  private readonly next: Int32Array;
  /** unused ids, a stack */
  private readonly free: Int32Array;
  private freeTop: number;
  /** per table: id + 1 per slot, 0 empty */
  private readonly index: [Int32Array, Int32Array];
  private readonly mask: number;
  private readonly head = [-1, -1];
  private readonly tail = [-1, -1];
  private readonly count = [0, 0];
  /** which of the two tables is active (the other is the checkpoint) */
  private active = 0;
  private readonly bytesPerEntry: number;
  private readonly rules: AggregationRules;
  private readonly addressRules: number;
  private readonly portRules: number;

  constructor(
    memoryLimit: number,
    rules: AggregationRules = NO_AGGREGATION,
    stats: Float64Array<ArrayBufferLike> = new Float64Array(ACCOUNTING_STATS_LENGTH),
  ) {
    const { capacity, indexSlots } = accountingLayout(Math.min(memoryLimit, MAX_MEMORY_LIMIT));
    if (capacity < MIN_ACCOUNTING_ENTRIES) throw new RangeError(`memory_limit ${memoryLimit} holds fewer than ${MIN_ACCOUNTING_ENTRIES} entries`);
    this.capacity = capacity;
    this.stats = stats;
    this.keys = new Uint32Array(capacity * KEY_WORDS);
    this.values = new Float64Array(capacity * 2);
    this.next = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.free[i] = capacity - 1 - i;
    this.freeTop = capacity;
    this.index = [new Int32Array(indexSlots), new Int32Array(indexSlots)];
    this.mask = indexSlots - 1;
    this.bytesPerEntry = (capacity * ENTRY_DATA_BYTES + 2 * indexSlots * INDEX_SLOT_BYTES) / capacity;
    this.rules = rules;
    this.addressRules = rules.addressNetwork.length;
    this.portRules = rules.portFrom.length;
    stats[AccountingStat.capacity] = capacity;
    stats[AccountingStat.memoryLimit] = memoryLimit;
    this.publish();
  }

  /** Count one packet of `bytes` (IP length). `withPorts` 0: per (source, destination) only. */
  account(
    srcAddr: number,
    dstAddr: number,
    srcPort: number,
    dstPort: number,
    protocol: number,
    ifSlot: number,
    withPorts: number,
    bytes: number,
  ): void {
    let src = srcAddr;
    let dst = dstAddr;
    if (this.addressRules !== 0) {
      src = this.aggregateAddress(src);
      dst = this.aggregateAddress(dst);
    }
    let ports = 0;
    let detail = 0;
    if (withPorts !== 0) {
      let sp = srcPort;
      let dp = dstPort;
      if (this.portRules !== 0) {
        sp = this.aggregatePort(sp);
        dp = this.aggregatePort(dp);
      }
      ports = ((sp << 16) | dp) >>> 0;
      detail = (DETAIL_PORTS | (protocol << 16) | (ifSlot & 0xffff)) >>> 0;
    }
    const id = this.findOrInsert(this.active, src, dst, ports, detail);
    if (id < 0) {
      this.stats[AccountingStat.unaccountedPackets]! += 1;
      this.stats[AccountingStat.unaccountedBytes]! += bytes;
      return;
    }
    this.values[id * 2] = this.values[id * 2]! + 1;
    this.values[id * 2 + 1] = this.values[id * 2 + 1]! + bytes;
    this.stats[AccountingStat.packets]! += 1;
    this.stats[AccountingStat.bytes]! += bytes;
  }

  /** `clear ip accounting`: the active table becomes the checkpoint (the old checkpoint goes), a new table starts. */
  clear(): void {
    const old = 1 - this.active;
    this.empty(old);
    this.active = old;
    this.publish();
  }

  /** Empty the active table (a restore that replaces it). */
  clearActive(): void {
    this.empty(this.active);
    this.publish();
  }

  entries(view: AccountingView): number {
    return this.count[view === AccountingView.active ? this.active : 1 - this.active]!;
  }

  /** The table's rows, 9 float64 each (SnapshotField), in creation order, in a fresh buffer to transfer. */
  snapshot(view: AccountingView): ArrayBuffer {
    const table = view === AccountingView.active ? this.active : 1 - this.active;
    const rows = new Float64Array(this.count[table]! * SNAPSHOT_FIELDS);
    let o = 0;
    for (let id = this.head[table]!; id !== -1; id = this.next[id]!) {
      const k = id * KEY_WORDS;
      const detail = this.keys[k + 3]!;
      const ports = this.keys[k + 2]!;
      rows[o + SnapshotField.src] = this.keys[k]!;
      rows[o + SnapshotField.dst] = this.keys[k + 1]!;
      rows[o + SnapshotField.srcPort] = ports >>> 16;
      rows[o + SnapshotField.dstPort] = ports & 0xffff;
      rows[o + SnapshotField.protocol] = (detail >>> 16) & 0xff;
      rows[o + SnapshotField.ifSlot] = detail & 0xffff;
      rows[o + SnapshotField.withPorts] = (detail & DETAIL_PORTS) !== 0 ? 1 : 0;
      rows[o + SnapshotField.packets] = this.values[id * 2]!;
      rows[o + SnapshotField.bytes] = this.values[id * 2 + 1]!;
      o += SNAPSHOT_FIELDS;
    }
    return rows.buffer;
  }

  /** Add snapshot rows to the active table (no aggregation: they were counted already). */
  restore(rows: Float64Array): { added: number; dropped: number } {
    let added = 0;
    let dropped = 0;
    for (let o = 0; o + SNAPSHOT_FIELDS <= rows.length; o += SNAPSHOT_FIELDS) {
      const withPorts = rows[o + SnapshotField.withPorts] !== 0;
      const ports = withPorts ? ((rows[o + SnapshotField.srcPort]! << 16) | rows[o + SnapshotField.dstPort]!) >>> 0 : 0;
      const detail = withPorts
        ? (DETAIL_PORTS | (rows[o + SnapshotField.protocol]! << 16) | (rows[o + SnapshotField.ifSlot]! & 0xffff)) >>> 0
        : 0;
      const id = this.findOrInsert(this.active, rows[o + SnapshotField.src]! >>> 0, rows[o + SnapshotField.dst]! >>> 0, ports, detail);
      if (id < 0) {
        dropped++;
        continue;
      }
      this.values[id * 2] = this.values[id * 2]! + rows[o + SnapshotField.packets]!;
      this.values[id * 2 + 1] = this.values[id * 2 + 1]! + rows[o + SnapshotField.bytes]!;
      added++;
    }
    this.publish();
    return { added, dropped };
  }

  private aggregateAddress(address: number): number {
    const r = this.rules;
    for (let i = 0; i < this.addressRules; i++) {
      if (((address & r.addressMask[i]!) >>> 0) === r.addressNetwork[i]) return (address & r.addressKeep[i]!) >>> 0;
    }
    return address;
  }

  private aggregatePort(port: number): number {
    const r = this.rules;
    for (let i = 0; i < this.portRules; i++) {
      if (port >= r.portFrom[i]! && port <= r.portTo[i]!) return r.portInto[i]!;
    }
    return port;
  }

  /** The entry's id, inserted if new; -1 when the pool is full. */
  private findOrInsert(table: number, src: number, dst: number, ports: number, detail: number): number {
    const index = this.index[table]!;
    const keys = this.keys;
    const mask = this.mask;
    let slot = hashKey(src, dst, ports, detail) & mask;
    for (;;) {
      const stored = index[slot]!;
      if (stored === 0) break;
      const k = (stored - 1) * KEY_WORDS;
      if (keys[k] === src && keys[k + 1] === dst && keys[k + 2] === ports && keys[k + 3] === detail) return stored - 1;
      slot = (slot + 1) & mask;
    }
    if (this.freeTop === 0) return -1;
    const id = this.free[--this.freeTop]!;
    const k = id * KEY_WORDS;
    keys[k] = src;
    keys[k + 1] = dst;
    keys[k + 2] = ports;
    keys[k + 3] = detail;
    this.values[id * 2] = 0;
    this.values[id * 2 + 1] = 0;
    this.next[id] = -1;
    index[slot] = id + 1;
    if (this.tail[table] === -1) this.head[table] = id;
    else this.next[this.tail[table]!] = id;
    this.tail[table] = id;
    this.count[table]! += 1;
    this.stats[AccountingStat.entriesMade]! += 1;
    this.publish();
    return id;
  }

  private empty(table: number): void {
    for (let id = this.head[table]!; id !== -1; id = this.next[id]!) this.free[this.freeTop++] = id;
    this.index[table]!.fill(0);
    this.head[table] = -1;
    this.tail[table] = -1;
    this.count[table] = 0;
  }

  private publish(): void {
    const active = this.count[this.active]!;
    const checkpoint = this.count[1 - this.active]!;
    this.stats[AccountingStat.activeEntries] = active;
    this.stats[AccountingStat.checkpointEntries] = checkpoint;
    this.stats[AccountingStat.memoryUsed] = Math.round((active + checkpoint) * this.bytesPerEntry);
  }
}

/** The typed arrays of the aggregate statements. */
export function aggregationRules(
  rules: readonly ({ kind: 'address'; network: number; prefixLength: number; strip: number } | { kind: 'port'; from: number; to: number; into: number })[],
): AggregationRules {
  const addresses = rules.filter((r) => r.kind === 'address');
  const ports = rules.filter((r) => r.kind === 'port');
  return {
    addressNetwork: Uint32Array.from(addresses, (r) => r.network),
    addressMask: Uint32Array.from(addresses, (r) => prefixMask(r.prefixLength)),
    // strip the last N bits, but never into the network part
    addressKeep: Uint32Array.from(addresses, (r) => prefixMask(Math.max(r.prefixLength, 32 - r.strip))),
    portFrom: Uint16Array.from(ports, (r) => r.from),
    portTo: Uint16Array.from(ports, (r) => r.to),
    portInto: Uint16Array.from(ports, (r) => r.into),
  };
}
