/**
 * The flow table: lookup-or-insert by the NetFlow v5 key, per-flow counters and
 * expiry. Everything lives in typed arrays indexed by a numeric flow id, so the
 * per-packet path allocates nothing and the garbage collector never sees flows.
 *
 * - An open-addressing hash table (linear probing, backward-shift deletion) maps
 *   a key to a flow id.
 * - Three intrusive doubly linked lists order the flows for expiry, so no tick
 *   ever scans the table:
 *     `live`  recently seen first (inactive timeout, cache-full eviction)
 *     `ended` TCP flows that saw FIN or RST, recently seen first (linger timeout)
 *     `age`   creation order (active timeout)
 */

export const ExpiryReason = {
  inactive: 0,
  active: 1,
  tcpFin: 2,
  tcpRst: 3,
  cacheFull: 4,
  counterLimit: 5,
  shutdown: 6,
} as const;
export type ExpiryReason = (typeof ExpiryReason)[keyof typeof ExpiryReason];
export const EXPIRY_REASONS = [
  'inactive',
  'active',
  'tcp_fin',
  'tcp_rst',
  'cache_full',
  'counter_limit',
  'shutdown',
] as const;

export const FlowCacheStat = { created: 0, cached: 1, expiredBase: 2 } as const;
export const FLOW_CACHE_STATS_LENGTH = 2 + EXPIRY_REASONS.length;

export interface FlowTimeouts {
  /** ms after the first packet at which a flow is exported even if still busy */
  activeMs: number;
  /** ms without packets after which a flow is exported */
  inactiveMs: number;
  /** ms a TCP flow lingers after FIN or RST, so the last ACKs join it */
  tcpEndMs: number;
}

/** Receives each expired flow. It reads the flow's fields from the cache before returning. */
export interface ExpiredFlowSink {
  expired(cache: FlowCache, flowId: number, reason: ExpiryReason): void;
}

const TCP = 6;
const TCP_FIN = 0x01;
const TCP_RST = 0x04;
const UINT32_MAX = 0xffffffff;
const EMPTY = -1;


export class FlowCache {
  readonly capacity: number;
  /**
   * [0] flows created, [1] flows cached, [2 + reason] expiries by reason.
   * May be a view on shared memory so another thread can read it.
   */
  readonly stats: Float64Array;

  // Key fields, by flow id.
  readonly srcAddr: Uint32Array;
  readonly dstAddr: Uint32Array;
  /** srcPort << 16 | dstPort */
  readonly ports: Uint32Array;
  /** protocol << 24 | tos << 16 | ifIndex (16 bit) */
  readonly protoTosIf: Uint32Array;
  private readonly hash: Uint32Array;
  // Counters, by flow id.
  readonly packets: Uint32Array;
  /** a double so the limit check is exact; never exceeds 2^32 - 1 */
  readonly octets: Float64Array;
  /** ms, the cache's clock */
  readonly firstSeen: Float64Array;
  readonly lastSeen: Float64Array;
  readonly tcpFlags: Uint8Array;

  // Intrusive lists; ids capacity..capacity+2 are the sentinels.
  private readonly recentPrev: Int32Array;
  private readonly recentNext: Int32Array;
  private readonly agePrev: Int32Array;
  private readonly ageNext: Int32Array;
  private readonly liveHead: number;
  private readonly endedHead: number;
  private readonly ageHead: number;

  private readonly table: Int32Array;
  private readonly tableMask: number;
  private readonly freeIds: Int32Array;
  private freeTop: number;

  private readonly timeouts: FlowTimeouts;
  private readonly sink: ExpiredFlowSink;

  private size = 0;
  /**
   * Never later than the earliest timeout deadline of any cached flow, so the
   * packet path can skip the expiry check with one comparison.
   */
  private nextDeadline = Number.POSITIVE_INFINITY;

  constructor(
    capacity: number,
    timeouts: FlowTimeouts,
    sink: ExpiredFlowSink,
    stats: Float64Array = new Float64Array(FLOW_CACHE_STATS_LENGTH),
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow cache capacity ${capacity}`);
    if (stats.length < FLOW_CACHE_STATS_LENGTH) throw new RangeError('flow cache stats array too short');
    this.stats = stats;
    this.capacity = capacity;
    this.timeouts = timeouts;
    this.sink = sink;
    this.srcAddr = new Uint32Array(capacity);
    this.dstAddr = new Uint32Array(capacity);
    this.ports = new Uint32Array(capacity);
    this.protoTosIf = new Uint32Array(capacity);
    this.hash = new Uint32Array(capacity);
    this.packets = new Uint32Array(capacity);
    this.octets = new Float64Array(capacity);
    this.firstSeen = new Float64Array(capacity);
    this.lastSeen = new Float64Array(capacity);
    this.tcpFlags = new Uint8Array(capacity);

    const nodes = capacity + 3;
    this.recentPrev = new Int32Array(nodes);
    this.recentNext = new Int32Array(nodes);
    this.agePrev = new Int32Array(nodes);
    this.ageNext = new Int32Array(nodes);
    this.liveHead = capacity;
    this.endedHead = capacity + 1;
    this.ageHead = capacity + 2;
    for (const head of [this.liveHead, this.endedHead]) {
      this.recentPrev[head] = head;
      this.recentNext[head] = head;
    }
    this.agePrev[this.ageHead] = this.ageHead;
    this.ageNext[this.ageHead] = this.ageHead;

    // Load factor at most 1/2 keeps linear probes short.
    let tableSize = 1;
    while (tableSize < capacity * 2) tableSize *= 2;
    this.table = new Int32Array(tableSize).fill(EMPTY);
    this.tableMask = tableSize - 1;

    this.freeIds = new Int32Array(capacity);
    for (let i = 0; i < capacity; i++) this.freeIds[i] = capacity - 1 - i;
    this.freeTop = capacity;
  }

  /** Account one packet to its flow at time `now` (ms); creates the flow when new. */
  account(
    srcAddr: number,
    dstAddr: number,
    srcPort: number,
    dstPort: number,
    protocol: number,
    tos: number,
    ifIndex: number,
    octets: number,
    tcpFlags: number,
    now: number,
  ): void {
    // A flow whose timeout passed before this packet is exported first, so the
    // packet starts a new record: timeouts hold exactly, in capture time too.
    if (now >= this.nextDeadline) this.expireTimedOut(now);
    const ports = ((srcPort << 16) | dstPort) >>> 0;
    const protoTosIf = ((protocol << 24) | (tos << 16) | (ifIndex & 0xffff)) >>> 0;
    const hash = hashKey(srcAddr, dstAddr, ports, protoTosIf);

    let id = this.find(hash, srcAddr, dstAddr, ports, protoTosIf);
    if (id !== EMPTY && (this.packets[id]! >= UINT32_MAX || this.octets[id]! + octets > UINT32_MAX)) {
      // Export before a 32-bit counter would wrap, then start a new record.
      this.expire(id, ExpiryReason.counterLimit);
      id = EMPTY;
    }
    if (id === EMPTY) {
      if (this.size === this.capacity) this.evictLeastRecent();
      id = this.insert(hash, srcAddr, dstAddr, ports, protoTosIf, now);
    } else {
      this.lastSeen[id] = now;
      this.unlinkRecent(id);
    }
    this.packets[id]! += 1;
    this.octets[id]! += octets;
    const flags = this.tcpFlags[id]! | tcpFlags;
    this.tcpFlags[id] = flags;
    if (protocol === TCP && (flags & (TCP_FIN | TCP_RST)) !== 0) {
      this.linkRecentFront(id, this.endedHead);
      const lingerEnd = now + this.timeouts.tcpEndMs;
      if (lingerEnd < this.nextDeadline) this.nextDeadline = lingerEnd;
    } else {
      this.linkRecentFront(id, this.liveHead);
      // a new flow's deadlines are never earlier than those already cached
      if (this.nextDeadline === Number.POSITIVE_INFINITY) this.updateNextDeadline();
    }
  }

  /** Export every flow whose inactive, TCP-end or active timeout has passed at `now`. */
  expireTimedOut(now: number): void {
    const { inactiveMs, tcpEndMs, activeMs } = this.timeouts;
    let id = this.recentPrev[this.liveHead]!;
    while (id !== this.liveHead && this.lastSeen[id]! + inactiveMs <= now) {
      this.expire(id, ExpiryReason.inactive);
      id = this.recentPrev[this.liveHead]!;
    }
    id = this.recentPrev[this.endedHead]!;
    while (id !== this.endedHead && this.lastSeen[id]! + tcpEndMs <= now) {
      this.expire(id, (this.tcpFlags[id]! & TCP_RST) !== 0 ? ExpiryReason.tcpRst : ExpiryReason.tcpFin);
      id = this.recentPrev[this.endedHead]!;
    }
    id = this.ageNext[this.ageHead]!;
    while (id !== this.ageHead && this.firstSeen[id]! + activeMs <= now) {
      this.expire(id, ExpiryReason.active);
      id = this.ageNext[this.ageHead]!;
    }
    this.updateNextDeadline();
  }

  /** The earliest deadline, from the three list ends (O(1)). */
  private updateNextDeadline(): void {
    let next = Number.POSITIVE_INFINITY;
    const live = this.recentPrev[this.liveHead]!;
    if (live !== this.liveHead) next = this.lastSeen[live]! + this.timeouts.inactiveMs;
    const ended = this.recentPrev[this.endedHead]!;
    if (ended !== this.endedHead) next = Math.min(next, this.lastSeen[ended]! + this.timeouts.tcpEndMs);
    const oldest = this.ageNext[this.ageHead]!;
    if (oldest !== this.ageHead) next = Math.min(next, this.firstSeen[oldest]! + this.timeouts.activeMs);
    this.nextDeadline = next;
  }

  /** Export every flow (end of capture, shutdown), oldest first. */
  expireAll(reason: ExpiryReason = ExpiryReason.shutdown): void {
    let id = this.ageNext[this.ageHead]!;
    while (id !== this.ageHead) {
      this.expire(id, reason);
      id = this.ageNext[this.ageHead]!;
    }
  }

  /** Calls `visit` for each cached flow id, oldest first (for reports, not the packet path). */
  forEachFlow(visit: (flowId: number) => void): void {
    for (let id = this.ageNext[this.ageHead]!; id !== this.ageHead; id = this.ageNext[id]!) visit(id);
  }

  get flowCount(): number {
    return this.size;
  }

  srcPort(id: number): number {
    return this.ports[id]! >>> 16;
  }
  dstPort(id: number): number {
    return this.ports[id]! & 0xffff;
  }
  protocol(id: number): number {
    return this.protoTosIf[id]! >>> 24;
  }
  tos(id: number): number {
    return (this.protoTosIf[id]! >>> 16) & 0xff;
  }
  ifIndex(id: number): number {
    return this.protoTosIf[id]! & 0xffff;
  }

  private evictLeastRecent(): void {
    const live = this.recentPrev[this.liveHead]!;
    const ended = this.recentPrev[this.endedHead]!;
    let victim: number;
    if (live === this.liveHead) victim = ended;
    else if (ended === this.endedHead) victim = live;
    else victim = this.lastSeen[ended]! <= this.lastSeen[live]! ? ended : live;
    this.expire(victim, ExpiryReason.cacheFull);
  }

  private find(hash: number, srcAddr: number, dstAddr: number, ports: number, protoTosIf: number): number {
    const table = this.table;
    const mask = this.tableMask;
    let slot = hash & mask;
    for (;;) {
      const id = table[slot]!;
      if (id === EMPTY) return EMPTY;
      if (
        this.srcAddr[id] === srcAddr &&
        this.dstAddr[id] === dstAddr &&
        this.ports[id] === ports &&
        this.protoTosIf[id] === protoTosIf
      ) {
        return id;
      }
      slot = (slot + 1) & mask;
    }
  }

  private insert(
    hash: number,
    srcAddr: number,
    dstAddr: number,
    ports: number,
    protoTosIf: number,
    now: number,
  ): number {
    const id = this.freeIds[--this.freeTop]!;
    this.srcAddr[id] = srcAddr;
    this.dstAddr[id] = dstAddr;
    this.ports[id] = ports;
    this.protoTosIf[id] = protoTosIf;
    this.hash[id] = hash;
    this.packets[id] = 0;
    this.octets[id] = 0;
    this.firstSeen[id] = now;
    this.lastSeen[id] = now;
    this.tcpFlags[id] = 0;

    let slot = hash & this.tableMask;
    while (this.table[slot] !== EMPTY) slot = (slot + 1) & this.tableMask;
    this.table[slot] = id;

    // Creation order is first-seen order because the clock never goes back.
    const tail = this.agePrev[this.ageHead]!;
    this.ageNext[tail] = id;
    this.agePrev[id] = tail;
    this.ageNext[id] = this.ageHead;
    this.agePrev[this.ageHead] = id;

    this.size++;
    this.stats[FlowCacheStat.created]! += 1;
    this.stats[FlowCacheStat.cached] = this.size;
    return id;
  }

  /** Hand the flow to the sink, then forget it. */
  private expire(id: number, reason: ExpiryReason): void {
    this.stats[FlowCacheStat.expiredBase + reason]! += 1;
    this.sink.expired(this, id, reason);
    this.removeFromTable(id);
    this.unlinkRecent(id);
    const prev = this.agePrev[id]!;
    const next = this.ageNext[id]!;
    this.ageNext[prev] = next;
    this.agePrev[next] = prev;
    this.freeIds[this.freeTop++] = id;
    this.size--;
    this.stats[FlowCacheStat.cached] = this.size;
  }

  private removeFromTable(id: number): void {
    const table = this.table;
    const mask = this.tableMask;
    let slot = this.hash[id]! & mask;
    while (table[slot] !== id) slot = (slot + 1) & mask;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = slot;
    let next = (hole + 1) & mask;
    for (;;) {
      const moving = table[next]!;
      if (moving === EMPTY) break;
      const home = this.hash[moving]! & mask;
      // `moving` may fill the hole if its home is not in (hole, next] cyclically.
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        table[hole] = moving;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    table[hole] = EMPTY;
  }

  private unlinkRecent(id: number): void {
    const prev = this.recentPrev[id]!;
    const next = this.recentNext[id]!;
    this.recentNext[prev] = next;
    this.recentPrev[next] = prev;
  }

  private linkRecentFront(id: number, head: number): void {
    const first = this.recentNext[head]!;
    this.recentPrev[id] = head;
    this.recentNext[id] = first;
    this.recentPrev[first] = id;
    this.recentNext[head] = id;
  }
}

/** A 32-bit mix of the key words (murmur3-style finaliser per word). */
export function hashKey(srcAddr: number, dstAddr: number, ports: number, protoTosIf: number): number {
  let h = Math.imul(srcAddr ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ dstAddr, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ports, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ protoTosIf, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
