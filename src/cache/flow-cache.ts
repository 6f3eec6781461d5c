import { PacketBatch } from './packet-batch.js';

/**
 * The flow table: lookup-or-insert by the NetFlow v5 key, per-flow counters and
 * expiry, with nothing allocated per packet and nothing the garbage collector
 * ever sees per flow.
 *
 * - Each flow is one 64-byte record (one cache line) in a single ArrayBuffer,
 *   read through a Uint32Array and a Float64Array view.
 * - An open-addressing hash table of 32-bit entries, linear probing with
 *   backward-shift deletion, grows with the number of flows (load ≤ 1/2), so a
 *   cache sized for millions stays small and hot while it holds thousands. An
 *   entry is the flow id + 1 in the low bits (0 is an empty slot) and the hash's
 *   own high bits above it: a probe rejects almost every other flow without
 *   reading its record, in half the bytes of an (id, hash) pair.
 * - Expiry is a hashed timing wheel of deadlines, corrected lazily: a packet
 *   only moves a deadline later, so the packet path never relinks a flow (but
 *   for the first FIN or RST, which brings it earlier). A wheel slot whose time
 *   has passed is swept: due flows go, the others move to their real slot.
 *   Every lookup also checks the flow it found, so a packet that arrives after a
 *   flow's timeout always starts a new record, however late the sweep.
 * - The wheel holds one turn: each slot stands for exactly one tick of the
 *   ticks (wheelTick, wheelTick + WHEEL_SLOTS]. A deadline further out (the
 *   timeouts may exceed a turn) waits in a second ring of slots, the far ring,
 *   under the tick at which the wheel's turn reaches it (at most a turn ahead:
 *   further deadlines are looked at again a turn later). So the wheel holds
 *   every flow due within its turn, no walk of it meets a flow of a later
 *   turn, and no flow is refiled into the slot being walked but at the current
 *   tick (which every walk guards against).
 * - A creation-order list gives oldest-first iteration (shutdown, reports).
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

/**
 * The time packets are accounted at (ms). The data plane sets it once per packet;
 * the cache reads it rather than taking it as an argument, because V8 would box
 * a double argument into a new heap number on every call.
 */
export interface PacketClock {
  readonly now: number;
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

// Record layout, in 32-bit words (16 words = 64 bytes per flow).
const WORDS = 16;
const W_SRC = 0;
const W_DST = 1;
/** srcPort << 16 | dstPort */
const W_PORTS = 2;
/** protocol << 24 | tos << 16 | ifIndex (16 bit) */
const W_PROTO_TOS_IF = 3;
const W_HASH = 4;
const W_PACKETS = 5;
/** never above 2^32 - 1: the flow is exported before */
const W_OCTETS = 6;
/** bits 0-7 TCP flags seen, bit 8 FIN or RST seen (lingering) */
const W_STATE = 7;
const STATE_ENDED = 0x100;
// words 8-9 and 10-11: first and last seen, ms, as float64 at index id*8 + 4 / + 5
const F_FIRST = 4;
const F_LAST = 5;
/**
 * List links (wheel, age, and the free list through W_WHEEL_NEXT) are stored
 * XORed with the node's own id: memory never written reads as a node linked to
 * itself, an empty list's sentinel. So the 16384 wheel sentinels (1 MB) need no
 * setting up, and the pages of slots never used are never touched.
 */
const W_WHEEL_PREV = 12;
const W_WHEEL_NEXT = 13;
const W_AGE_PREV = 14;
const W_AGE_NEXT = 15;

/** Wheel granularity: a sweep exports a due flow at most two slots late. */
export const SLOT_MS = 250;
/**
 * 16384 slots of 250 ms: one turn is 68 minutes (4096 s), above Cisco's 30-minute
 * active timeout. Longer deadlines wait in the far ring (see above).
 */
const WHEEL_SLOTS = 16384;
const WHEEL_MASK = WHEEL_SLOTS - 1;
export const WHEEL_TURN_MS = WHEEL_SLOTS * SLOT_MS;
const MIN_TABLE_SLOTS = 1024;
/** from this many table slots (more than 16384 flows: 256 KiB of table, 1 MiB of records) batches pay */
const WARM_FROM_SLOTS = 65536;
/** busy flows an eviction may pass over before it takes the first of them */
const EVICT_SCAN = 64;
/** flows drawn when only flows waiting beyond the turn are left: the least recently seen goes */
const EVICT_SAMPLES = 16;

export class FlowCache {
  readonly capacity: number;
  /**
   * [0] flows created, [1] flows cached, [2 + reason] expiries by reason.
   * May be a view on shared memory so another thread can read it.
   */
  readonly stats: Float64Array;

  private readonly w: Uint32Array;
  /** the same words as int32, for comparing keys held as int32 */
  private readonly wi: Int32Array;
  private readonly t: Float64Array;
  /** sentinel of the creation-order list */
  private readonly ageHead: number;
  /** id of wheel slot 0's sentinel; slot s is wheelBase + s, far slot s is wheelBase + WHEEL_SLOTS + s */
  private readonly wheelBase: number;
  /**
   * The last wheel tick (floor(time / SLOT_MS)) swept; NaN until the first
   * packet. The wheel holds the ticks (wheelTick, wheelTick + WHEEL_SLOTS].
   */
  private wheelTick = Number.NaN;
  /**
   * One bit per wheel and far slot (sentinel id - wheelBase), set while the slot
   * holds a flow: evict() skips empty slots 32 at a time, expireAll() resets
   * only the sentinels used.
   */
  private readonly occupied = new Int32Array((2 * WHEEL_SLOTS) / 32);
  /** xorshift32 state for evict()'s draw (fixed seed: runs repeat exactly) */
  private draw = 0x9e3779b9 | 0;
  /** when the packet path must sweep next */
  private nextSweepAt = Number.NEGATIVE_INFINITY;

  /** (hash & tagMask) | (flow id + 1) per slot; 0 is empty */
  private table: Int32Array;
  private tableMask: number;
  /** an entry's low bits: flow id + 1 (enough bits for the capacity) */
  private readonly idMask: number;
  /** an entry's high bits: the same bits of the flow's hash */
  private readonly tagMask: number;
  private readonly maxTableSlots: number;

  /** ids never used yet start here */
  private nextFreshId = 0;
  /** freed ids, linked through W_WHEEL_NEXT */
  private freeHead = EMPTY;
  private size = 0;

  /**
   * Whether the table has outgrown the CPU's caches (WARM_FROM_SLOTS), so that
   * packets are worth gathering into batches for warm(). Below, batches cost
   * more than the misses they would hide.
   */
  worthWarming = false;
  /** warm(): the batch's hashes, and what its loads read (unused but kept) */
  private readonly warmHashes = new Int32Array(PacketBatch.SIZE);
  private warmed = 0;

  /** whether the last account() created its flow */
  createdLast = false;
  /** per flow: what its first packet said beyond the key (the caller's encoding) */
  private readonly attributeWords: Int32Array;

  private readonly timeouts: FlowTimeouts;
  private readonly sink: ExpiredFlowSink;
  private readonly clock: PacketClock;

  constructor(
    capacity: number,
    timeouts: FlowTimeouts,
    sink: ExpiredFlowSink,
    clock: PacketClock,
    stats: Float64Array = new Float64Array(FLOW_CACHE_STATS_LENGTH),
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow cache capacity ${capacity}`);
    if (stats.length < FLOW_CACHE_STATS_LENGTH) throw new RangeError('flow cache stats array too short');
    this.capacity = capacity;
    this.timeouts = timeouts;
    this.sink = sink;
    this.clock = clock;
    this.stats = stats;

    // Untouched pages of a large ArrayBuffer cost no memory until used, and the
    // sentinels need no writing: zeroed links read as a node linked to itself.
    const records = capacity + 1 + 2 * WHEEL_SLOTS;
    const buffer = new ArrayBuffer(records * WORDS * 4);
    this.w = new Uint32Array(buffer);
    this.wi = new Int32Array(buffer);
    this.t = new Float64Array(buffer);
    this.ageHead = capacity;
    this.attributeWords = new Int32Array(capacity);
    this.wheelBase = capacity + 1;

    let maxSlots = MIN_TABLE_SLOTS;
    while (maxSlots < capacity * 2) maxSlots *= 2;
    this.maxTableSlots = maxSlots;
    const slots = Math.min(MIN_TABLE_SLOTS, maxSlots);
    this.table = new Int32Array(slots);
    this.tableMask = slots - 1;
    let idBits = 1;
    while (2 ** idBits - 1 < capacity) idBits++;
    this.idMask = 2 ** idBits - 1;
    this.tagMask = ~this.idMask;
  }

  get flowCount(): number {
    return this.size;
  }

  /**
   * Account one packet to its flow at the clock's time; creates the flow when
   * new (with `attributes`: what the first packet says beyond the key, see
   * attributes()), and says so in createdLast.
   */
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
    attributes = 0,
  ): void {
    const now = this.clock.now;
    if (now >= this.nextSweepAt) this.sweepPast(now);
    // Key words as int32 from here on: V8 passes them between functions unboxed
    // (a uint32 above 2^31 would be a heap number, allocated per call).
    const src = srcAddr | 0;
    const dst = dstAddr | 0;
    const ports = keyPorts(srcPort, dstPort);
    const protoTosIf = keyProtoTosIf(protocol, tos, ifIndex);
    const hash = hashKey(src, dst, ports, protoTosIf);
    const w = this.w;

    let id = this.find(hash, src, dst, ports, protoTosIf);
    if (id !== EMPTY) {
      const base = id * WORDS;
      if (now >= this.deadline(id)) {
        // Due but not swept yet: it ends here, and this packet starts a new record.
        this.expire(id, this.timeoutReason(id, now));
        id = EMPTY;
      } else if (w[base + W_PACKETS]! >= UINT32_MAX || w[base + W_OCTETS]! + octets > UINT32_MAX) {
        // Export before a 32-bit counter would wrap, then start a new record.
        this.expire(id, ExpiryReason.counterLimit);
        id = EMPTY;
      }
    }
    this.createdLast = id === EMPTY;
    if (id === EMPTY) {
      if (this.size === this.capacity) this.evict(now);
      id = this.insert(hash, src, dst, ports, protoTosIf);
      this.attributeWords[id] = attributes;
    }
    const base = id * WORDS;
    w[base + W_PACKETS] = w[base + W_PACKETS]! + 1;
    w[base + W_OCTETS] = w[base + W_OCTETS]! + octets;
    this.t[(id << 3) + F_LAST] = now;
    const state = w[base + W_STATE]!;
    let next = state | tcpFlags;
    if (protocol === TCP && (tcpFlags & (TCP_FIN | TCP_RST)) !== 0 && (state & STATE_ENDED) === 0) {
      // The linger deadline is earlier than the one the flow is filed under: refile.
      next |= STATE_ENDED;
      w[base + W_STATE] = next;
      this.unlinkWheel(id);
      this.linkWheel(id, this.deadline(id));
    } else {
      w[base + W_STATE] = next;
    }
  }

  /**
   * Bring into the CPU's cache the table slot and the record that account() will
   * read for each packet of the batch. Every load here is independent of the
   * others, so their misses overlap; account() then finds them warm. A hint
   * only: it reads, and changes nothing (a slot that is not the flow's, or a
   * table that grows meanwhile, costs a wasted load).
   */
  warm(batch: PacketBatch): void {
    const n = batch.count;
    const { srcAddr, dstAddr, srcPort, dstPort, protocol, tos, ifIndex } = batch;
    const table = this.table;
    const mask = this.tableMask;
    const idMask = this.idMask;
    const w = this.wi;
    const hashes = this.warmHashes;
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const hash = hashKey(
        srcAddr[i]!,
        dstAddr[i]!,
        keyPorts(srcPort[i]!, dstPort[i]!),
        keyProtoTosIf(protocol[i]!, tos[i]!, ifIndex[i]!),
      );
      hashes[i] = hash;
      touched ^= table[hash & mask]!;
    }
    for (let i = 0; i < n; i++) {
      const entry = table[hashes[i]! & mask]!;
      if (entry !== 0) touched ^= w[((entry & idMask) - 1) * WORDS]!;
    }
    // kept, so the compiler cannot drop the loads as unused
    this.warmed = touched;
  }

  /** Export every flow whose inactive, TCP-end or active timeout has passed at `now`. */
  expireTimedOut(now: number): void {
    this.sweepPast(now);
    // The current slot is not past yet: look at it without moving the wheel on.
    // (Its far slot holds deadlines beyond the turn: none is due.)
    this.sweepSlot(this.wheelBase + ((this.wheelTick + 1) & WHEEL_MASK), now);
  }

  /**
   * Export every flow (end of capture, shutdown), oldest first, then empty the
   * cache at once: no per-flow unlinking, which at the end of a file with a
   * million flows would be a million random memory accesses for nothing.
   */
  expireAll(reason: ExpiryReason = ExpiryReason.shutdown): void {
    const w = this.w;
    const head = this.ageHead;
    let expired = 0;
    for (let id = w[head * WORDS + W_AGE_NEXT]! ^ head; id !== head; id = w[id * WORDS + W_AGE_NEXT]! ^ id) {
      this.sink.expired(this, id, reason);
      expired++;
    }
    this.stats[FlowCacheStat.expiredBase + reason]! += expired;
    this.table.fill(0);
    // every list empty again: sentinels linked to themselves (zero links), only
    // those in use written, so pages never used stay untouched
    w[head * WORDS + W_AGE_PREV] = 0;
    w[head * WORDS + W_AGE_NEXT] = 0;
    const occupied = this.occupied;
    for (let word = 0; word < occupied.length; word++) {
      for (let bits = occupied[word]!; bits !== 0; bits &= bits - 1) {
        const sentinel = this.wheelBase + word * 32 + (31 - Math.clz32(bits & -bits));
        w[sentinel * WORDS + W_WHEEL_PREV] = 0;
        w[sentinel * WORDS + W_WHEEL_NEXT] = 0;
      }
    }
    occupied.fill(0);
    this.nextFreshId = 0;
    this.freeHead = EMPTY;
    this.size = 0;
    this.stats[FlowCacheStat.cached] = 0;
  }

  /** Calls `visit` for each cached flow id, oldest first (for reports, not the packet path). */
  forEachFlow(visit: (flowId: number) => void): void {
    const w = this.w;
    const head = this.ageHead;
    for (let id = w[head * WORDS + W_AGE_NEXT]! ^ head; id !== head; id = w[id * WORDS + W_AGE_NEXT]! ^ id) visit(id);
  }

  srcAddr(id: number): number {
    return this.w[id * WORDS + W_SRC]!;
  }
  dstAddr(id: number): number {
    return this.w[id * WORDS + W_DST]!;
  }
  srcPort(id: number): number {
    return this.w[id * WORDS + W_PORTS]! >>> 16;
  }
  dstPort(id: number): number {
    return this.w[id * WORDS + W_PORTS]! & 0xffff;
  }
  protocol(id: number): number {
    return this.w[id * WORDS + W_PROTO_TOS_IF]! >>> 24;
  }
  tos(id: number): number {
    return (this.w[id * WORDS + W_PROTO_TOS_IF]! >>> 16) & 0xff;
  }
  ifIndex(id: number): number {
    return this.w[id * WORDS + W_PROTO_TOS_IF]! & 0xffff;
  }
  packets(id: number): number {
    return this.w[id * WORDS + W_PACKETS]!;
  }
  octets(id: number): number {
    return this.w[id * WORDS + W_OCTETS]!;
  }
  firstSeen(id: number): number {
    return this.t[(id << 3) + F_FIRST]!;
  }
  lastSeen(id: number): number {
    return this.t[(id << 3) + F_LAST]!;
  }
  tcpFlags(id: number): number {
    return this.w[id * WORDS + W_STATE]! & 0xff;
  }
  /** the first packet's attributes, as given to account() */
  attributes(id: number): number {
    return this.attributeWords[id]!;
  }

  /** For tests of the counter limit: pretend the flow has already counted this many packets. */
  overridePacketCount(id: number, packets: number): void {
    this.w[id * WORDS + W_PACKETS] = packets;
  }

  /** The time the flow is due: the earlier of its active and inactive (or linger) timeouts. */
  private deadline(id: number): number {
    const idle = this.idleDeadline(id);
    const active = this.t[(id << 3) + F_FIRST]! + this.timeouts.activeMs;
    return idle < active ? idle : active;
  }

  /** When the flow is due for idleness: inactive timeout, or the linger after FIN/RST. */
  private idleDeadline(id: number): number {
    return (
      this.t[(id << 3) + F_LAST]! +
      ((this.w[id * WORDS + W_STATE]! & STATE_ENDED) !== 0 ? this.timeouts.tcpEndMs : this.timeouts.inactiveMs)
    );
  }

  /** Why a due flow is due. */
  private timeoutReason(id: number, now: number): ExpiryReason {
    const state = this.w[id * WORDS + W_STATE]!;
    const last = this.t[(id << 3) + F_LAST]!;
    if ((state & STATE_ENDED) !== 0 && last + this.timeouts.tcpEndMs <= now) {
      return (state & TCP_RST) !== 0 ? ExpiryReason.tcpRst : ExpiryReason.tcpFin;
    }
    if (last + this.timeouts.inactiveMs <= now) return ExpiryReason.inactive;
    return ExpiryReason.active;
  }

  /** Sweep every wheel slot whose time has entirely passed at `now`. */
  private sweepPast(now: number): void {
    const target = Math.floor(now / SLOT_MS) - 1;
    if (Number.isNaN(this.wheelTick)) this.wheelTick = target; // first packet: nothing filed yet
    if (target > this.wheelTick) {
      const from = this.wheelTick;
      // moved on first, so that the flows refiled below are filed within the new turn
      this.wheelTick = target;
      // After a jump of more than one turn, each slot is swept once: every flow is looked at.
      const steps = Math.min(target - from, WHEEL_SLOTS);
      for (let k = 1; k <= steps; k++) {
        const slot = (from + k) & WHEEL_MASK;
        // and its far slot: the flows the turn now reaches move into the wheel
        this.sweepSlot(this.wheelBase + WHEEL_SLOTS + slot, now);
        this.sweepSlot(this.wheelBase + slot, now);
      }
    }
    this.nextSweepAt = (this.wheelTick + 2) * SLOT_MS;
  }

  /** Export the (wheel or far) slot's due flows; move the others to the slot of their real deadline. */
  private sweepSlot(sentinel: number, now: number): void {
    const w = this.w;
    let id = w[sentinel * WORDS + W_WHEEL_NEXT]! ^ sentinel;
    if (id === sentinel) return;
    // Flows refiled into this same slot (the current tick, or the far slot of
    // the horizon) go to its tail, after `last`: not seen twice.
    const last = w[sentinel * WORDS + W_WHEEL_PREV]! ^ sentinel;
    for (;;) {
      const next = w[id * WORDS + W_WHEEL_NEXT]! ^ id;
      const deadline = this.deadline(id);
      if (deadline <= now) {
        this.expire(id, this.timeoutReason(id, now));
      } else {
        this.unlinkWheel(id);
        this.linkWheel(id, deadline);
      }
      if (id === last) break;
      id = next;
    }
  }

  /**
   * Make room. The victim is the least recently seen flow, to within a wheel
   * slot: the first flow, in deadline order, that is due for idleness. A busy
   * flow near its active timeout is passed over (up to EVICT_SCAN of them), as
   * a least-recently-used cache would. A due flow found on the way goes first,
   * under its own reason.
   *
   * The walk covers the wheel's one turn, skipping empty slots 32 at a time;
   * each flow it meets is the victim, is passed over (at most EVICT_SCAN), or
   * moves to a later tick or the far ring for packets it has seen since it was
   * filed (paid for by those packets): so it ends, and its cost is bounded.
   * When the turn holds no idle flow but other flows wait beyond it (timeouts
   * above 68 minutes), where deadlines are not in order, the least recently
   * seen of EVICT_SAMPLES flows drawn at random goes (of all flows, for a
   * cache that small), as sampling caches do.
   */
  private evict(now: number): void {
    const w = this.w;
    const occupied = this.occupied;
    const horizon = this.wheelTick + WHEEL_SLOTS;
    let busy = EMPTY;
    let passed = 0;
    for (let tick = this.wheelTick + 1; tick <= horizon; tick++) {
      const slot = tick & WHEEL_MASK;
      const bits = occupied[slot >>> 5]! >>> (slot & 31);
      if ((bits & 1) === 0) {
        // on to the next occupied slot of this word, or past the word
        tick += (bits === 0 ? 32 - (slot & 31) : 31 - Math.clz32(bits & -bits)) - 1;
        continue;
      }
      const sentinel = this.wheelBase + slot;
      let id = w[sentinel * WORDS + W_WHEEL_NEXT]! ^ sentinel;
      for (;;) {
        const next = w[id * WORDS + W_WHEEL_NEXT]! ^ id;
        const deadline = this.deadline(id);
        if (deadline <= now) {
          this.expire(id, this.timeoutReason(id, now));
          return;
        }
        // ticks, not slot indices; a flow of this slot is filed under this tick
        if (Math.floor(deadline / SLOT_MS) <= tick) {
          if (deadline === this.idleDeadline(id)) {
            this.expire(id, ExpiryReason.cacheFull);
            return;
          }
          if (busy === EMPTY) busy = id;
          if (++passed === EVICT_SCAN) {
            this.expire(busy, ExpiryReason.cacheFull);
            return;
          }
        } else {
          // filed too early (it saw packets since): refile, further on or in the far ring
          this.unlinkWheel(id);
          this.linkWheel(id, deadline);
        }
        if (next === sentinel) break;
        id = next;
      }
    }
    // every flow passed over: all are busy; otherwise some wait beyond the turn
    this.expire(passed === this.size ? busy : this.leastRecentOfDraw(), ExpiryReason.cacheFull);
  }

  /** The least recently seen of EVICT_SAMPLES flows drawn at random (of all, if fewer). Only with the cache full. */
  private leastRecentOfDraw(): number {
    const t = this.t;
    const capacity = this.capacity;
    let victim = 0;
    let victimSeen = t[F_LAST]!;
    if (capacity <= EVICT_SAMPLES) {
      for (let id = 1; id < capacity; id++) {
        if (t[(id << 3) + F_LAST]! < victimSeen) {
          victim = id;
          victimSeen = t[(id << 3) + F_LAST]!;
        }
      }
      return victim;
    }
    let x = this.draw;
    victimSeen = Number.POSITIVE_INFINITY;
    for (let i = 0; i < EVICT_SAMPLES; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      // full, so every id below the capacity holds a flow
      const id = (x >>> 0) % capacity;
      if (t[(id << 3) + F_LAST]! < victimSeen) {
        victim = id;
        victimSeen = t[(id << 3) + F_LAST]!;
      }
    }
    this.draw = x;
    return victim;
  }

  private find(hash: number, srcAddr: number, dstAddr: number, ports: number, protoTosIf: number): number {
    const table = this.table;
    const mask = this.tableMask;
    const tagMask = this.tagMask;
    const w = this.wi;
    let slot = hash & mask;
    for (;;) {
      const entry = table[slot]!;
      if (entry === 0) return EMPTY;
      if (((entry ^ hash) & tagMask) === 0) {
        const id = (entry & this.idMask) - 1;
        const base = id * WORDS;
        if (
          w[base + W_SRC] === srcAddr &&
          w[base + W_DST] === dstAddr &&
          w[base + W_PORTS] === ports &&
          w[base + W_PROTO_TOS_IF] === protoTosIf
        ) {
          return id;
        }
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
  ): number {
    const now = this.clock.now;
    const w = this.w;
    let id = this.freeHead;
    if (id !== EMPTY) this.freeHead = w[id * WORDS + W_WHEEL_NEXT]! ^ id;
    else id = this.nextFreshId++;
    const base = id * WORDS;
    w[base + W_SRC] = srcAddr;
    w[base + W_DST] = dstAddr;
    w[base + W_PORTS] = ports;
    w[base + W_PROTO_TOS_IF] = protoTosIf;
    w[base + W_HASH] = hash;
    w[base + W_PACKETS] = 0;
    w[base + W_OCTETS] = 0;
    w[base + W_STATE] = 0;
    this.t[(id << 3) + F_FIRST] = now;
    this.t[(id << 3) + F_LAST] = now;

    this.size++;
    if (this.size * 2 > this.tableMask + 1 && (this.tableMask + 1) * 2 <= this.maxTableSlots) this.growTable();
    this.tableInsert(id, hash);

    // Creation order is first-seen order because the clock never goes back.
    const head = this.ageHead;
    const tail = w[head * WORDS + W_AGE_PREV]! ^ head;
    w[tail * WORDS + W_AGE_NEXT] = id ^ tail;
    w[id * WORDS + W_AGE_PREV] = tail ^ id;
    w[id * WORDS + W_AGE_NEXT] = head ^ id;
    w[head * WORDS + W_AGE_PREV] = id ^ head;
    this.linkWheel(id, this.deadline(id));

    this.stats[FlowCacheStat.created]! += 1;
    this.stats[FlowCacheStat.cached] = this.size;
    return id;
  }

  private tableInsert(id: number, hash: number): void {
    const table = this.table;
    const mask = this.tableMask;
    let slot = hash & mask;
    while (table[slot] !== 0) slot = (slot + 1) & mask;
    table[slot] = (hash & this.tagMask) | (id + 1);
  }

  /** Double the hash table and re-insert every flow (amortised: each growth doubles the room). */
  private growTable(): void {
    const w = this.w;
    const slots = (this.tableMask + 1) * 2;
    this.table = new Int32Array(slots); // zeroed: every slot empty
    this.tableMask = slots - 1;
    this.worthWarming = slots >= WARM_FROM_SLOTS;
    const head = this.ageHead;
    for (let id = w[head * WORDS + W_AGE_NEXT]! ^ head; id !== head; id = w[id * WORDS + W_AGE_NEXT]! ^ id) {
      this.tableInsert(id, this.wi[id * WORDS + W_HASH]!);
    }
  }

  /** Hand the flow to the sink, then forget it. */
  private expire(id: number, reason: ExpiryReason): void {
    const w = this.w;
    this.stats[FlowCacheStat.expiredBase + reason]! += 1;
    this.sink.expired(this, id, reason);
    this.removeFromTable(id);
    this.unlinkWheel(id);
    const prev = w[id * WORDS + W_AGE_PREV]! ^ id;
    const next = w[id * WORDS + W_AGE_NEXT]! ^ id;
    w[prev * WORDS + W_AGE_NEXT] = next ^ prev;
    w[next * WORDS + W_AGE_PREV] = prev ^ next;
    w[id * WORDS + W_WHEEL_NEXT] = this.freeHead ^ id;
    this.freeHead = id;
    this.size--;
    this.stats[FlowCacheStat.cached] = this.size;
  }

  private removeFromTable(id: number): void {
    const table = this.table;
    const mask = this.tableMask;
    const idMask = this.idMask;
    const w = this.wi;
    let slot = w[id * WORDS + W_HASH]! & mask;
    while ((table[slot]! & idMask) !== id + 1) slot = (slot + 1) & mask;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = slot;
    let next = (hole + 1) & mask;
    for (;;) {
      const moving = table[next]!;
      if (moving === 0) break;
      // the entry holds only the hash's high bits: its home slot comes from its record
      const home = w[((moving & idMask) - 1) * WORDS + W_HASH]! & mask;
      // `moving` may fill the hole if its home is not in (hole, next] cyclically.
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        table[hole] = moving;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    table[hole] = 0;
  }

  /**
   * File the flow under its deadline's tick; a deadline beyond the turn goes to
   * the far ring, under the tick at which the turn reaches it, or the horizon
   * if that is further.
   */
  private linkWheel(id: number, deadline: number): void {
    const w = this.w;
    const tick = Math.floor(deadline / SLOT_MS);
    const horizon = this.wheelTick + WHEEL_SLOTS;
    let slot: number; // sentinel id - wheelBase: wheel slots, then far slots
    if (tick <= horizon) {
      slot = tick & WHEEL_MASK;
    } else {
      const reached = tick - WHEEL_SLOTS;
      slot = WHEEL_SLOTS + ((reached < horizon ? reached : horizon) & WHEEL_MASK);
    }
    const sentinel = this.wheelBase + slot;
    const tail = w[sentinel * WORDS + W_WHEEL_PREV]! ^ sentinel;
    w[tail * WORDS + W_WHEEL_NEXT] = id ^ tail;
    w[id * WORDS + W_WHEEL_PREV] = tail ^ id;
    w[id * WORDS + W_WHEEL_NEXT] = sentinel ^ id;
    w[sentinel * WORDS + W_WHEEL_PREV] = id ^ sentinel;
    this.occupied[slot >>> 5]! |= 1 << (slot & 31);
  }

  private unlinkWheel(id: number): void {
    const w = this.w;
    const prev = w[id * WORDS + W_WHEEL_PREV]! ^ id;
    const next = w[id * WORDS + W_WHEEL_NEXT]! ^ id;
    w[prev * WORDS + W_WHEEL_NEXT] = next ^ prev;
    w[next * WORDS + W_WHEEL_PREV] = prev ^ next;
    if (prev === next && prev >= this.wheelBase) {
      // only the sentinel is left: the slot is empty
      const slot = prev - this.wheelBase;
      this.occupied[slot >>> 5]! &= ~(1 << (slot & 31));
    }
  }
}

/** The key word W_PORTS: srcPort << 16 | dstPort. */
function keyPorts(srcPort: number, dstPort: number): number {
  return (srcPort << 16) | dstPort;
}

/** The key word W_PROTO_TOS_IF: protocol << 24 | tos << 16 | ifIndex (16 bit). */
function keyProtoTosIf(protocol: number, tos: number, ifIndex: number): number {
  return (protocol << 24) | (tos << 16) | (ifIndex & 0xffff);
}

/** A 32-bit mix of the key words (murmur3-style finaliser per word), as int32. */
export function hashKey(srcAddr: number, dstAddr: number, ports: number, protoTosIf: number): number {
  let h = Math.imul(srcAddr ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ dstAddr, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ports, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ protoTosIf, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
