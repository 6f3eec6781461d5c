/**
 * IPv6 addresses interned as small numbers, so the IPv6 flow cache is the same
 * FlowCache as IPv4's, keyed by two 32-bit address ids instead of two IPv4
 * addresses: the IPv4 packet path stays exactly as it was, and an IPv6 flow
 * costs its 64-byte record plus its share of two 16-byte addresses.
 *
 * Each address is held by the flows that use it (a count per id). A count that
 * drops to zero does not free the id at once: the packet being accounted may
 * have expired the flow that held it and be about to start a new one with the
 * same address, under the id it was given. Ids whose count is still zero are
 * freed by forgetReleased(), which the data plane calls once a packet or a sweep
 * is over. Typed arrays only: nothing per address for the garbage collector.
 */
export class AddressTable {
  readonly capacity: number;
  /** four big-endian words per id, as int32 */
  private readonly words: Int32Array;
  private readonly hashes: Int32Array;
  /** flows holding each id */
  private readonly holders: Int32Array;
  /** 1 while the id waits in `released` */
  private readonly waiting: Uint8Array;
  private readonly released: Int32Array;
  private releasedCount = 0;
  /** freed ids, linked through `next` */
  private readonly next: Int32Array;
  private freeHead = -1;
  private nextFreshId = 0;
  private size = 0;
  /** warm(): the batch's address hashes, and what its loads read (unused but kept) */
  private readonly warmHashes = new Int32Array(64);
  private warmed = 0;
  /** open addressing, linear probing: id + 1 per slot, 0 empty */
  private index: Int32Array;
  private indexMask: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`address table capacity ${capacity}`);
    this.capacity = capacity;
    this.words = new Int32Array(capacity * 4);
    this.hashes = new Int32Array(capacity);
    this.holders = new Int32Array(capacity);
    this.waiting = new Uint8Array(capacity);
    this.released = new Int32Array(capacity);
    this.next = new Int32Array(capacity);
    this.index = new Int32Array(1024);
    this.indexMask = 1023;
  }

  /** addresses held (or waiting to be forgotten) */
  get count(): number {
    return this.size;
  }

  /**
   * The id of the address in `words` (four big-endian words), added if new.
   * A new id is held by nobody until hold(): it is forgotten by the next
   * forgetReleased() unless a flow holds it by then. Returns -1 when full.
   */
  intern(words: Int32Array): number {
    return this.internAt(words, 0);
  }

  /** intern() of the four words at `offset` of `words`. */
  internAt(words: Int32Array, offset: number): number {
    const w0 = words[offset]!;
    const w1 = words[offset + 1]!;
    const w2 = words[offset + 2]!;
    const w3 = words[offset + 3]!;
    const hash = hashAddress(w0, w1, w2, w3);
    const index = this.index;
    const mask = this.indexMask;
    const stored = this.words;
    let slot = hash & mask;
    for (;;) {
      const entry = index[slot]!;
      if (entry === 0) break;
      const id = entry - 1;
      const o = id << 2;
      if (stored[o] === w0 && stored[o + 1] === w1 && stored[o + 2] === w2 && stored[o + 3] === w3) return id;
      slot = (slot + 1) & mask;
    }
    if (this.size === this.capacity) return -1;
    let id = this.freeHead;
    if (id !== -1) this.freeHead = this.next[id]!;
    else id = this.nextFreshId++;
    const o = id << 2;
    stored[o] = w0;
    stored[o + 1] = w1;
    stored[o + 2] = w2;
    stored[o + 3] = w3;
    this.hashes[id] = hash;
    this.holders[id] = 0;
    index[slot] = id + 1;
    this.size++;
    // held by nobody yet: forgotten at the next forgetReleased() unless held
    this.queueRelease(id);
    if (this.size * 2 > mask + 1) this.growIndex();
    return id;
  }

  /**
   * Bring into the CPU's cache the index slots and stored words that interning
   * the first `addresses` addresses (up to 32) of each array (four words each) will read: the loads
   * are independent, so their misses overlap (as FlowCache.warm). A hint only.
   */
  warm(src: Int32Array, dst: Int32Array, addresses: number): void {
    const count = Math.min(addresses, this.warmHashes.length >> 1);
    const index = this.index;
    const mask = this.indexMask;
    const hashes = this.warmHashes;
    let touched = 0;
    for (let i = 0; i < count; i++) {
      const o = i << 2;
      const a = hashAddress(src[o]!, src[o + 1]!, src[o + 2]!, src[o + 3]!);
      const b = hashAddress(dst[o]!, dst[o + 1]!, dst[o + 2]!, dst[o + 3]!);
      hashes[2 * i] = a;
      hashes[2 * i + 1] = b;
      touched ^= index[a & mask]! ^ index[b & mask]!;
    }
    const stored = this.words;
    for (let i = 0; i < 2 * count; i++) {
      const entry = index[hashes[i]! & mask]!;
      if (entry !== 0) touched ^= stored[(entry - 1) << 2]!;
    }
    // kept, so the compiler cannot drop the loads as unused
    this.warmed = touched;
  }

  /** A new flow holds the address. */
  hold(id: number): void {
    this.holders[id] = this.holders[id]! + 1;
  }

  /** A flow that held the address has ended (its record already written). */
  release(id: number): void {
    const holders = this.holders[id]! - 1;
    this.holders[id] = holders;
    if (holders === 0) this.queueRelease(id);
  }

  /** Free every id no flow holds any more. */
  forgetReleased(): void {
    const n = this.releasedCount;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const id = this.released[i]!;
      this.waiting[id] = 0;
      if (this.holders[id] !== 0) continue;
      this.removeFromIndex(id);
      this.next[id] = this.freeHead;
      this.freeHead = id;
      this.size--;
    }
    this.releasedCount = 0;
  }

  /** Copy the address into `out` at `offset` (16 bytes, network order). */
  copyAddress(id: number, out: Uint8Array, offset: number): void {
    const o = id << 2;
    for (let i = 0; i < 4; i++) {
      const word = this.words[o + i]!;
      out[offset + 4 * i] = word >>> 24;
      out[offset + 4 * i + 1] = (word >>> 16) & 0xff;
      out[offset + 4 * i + 2] = (word >>> 8) & 0xff;
      out[offset + 4 * i + 3] = word & 0xff;
    }
  }

  /** Word `i` (0–3) of the address, unsigned (reports, not the packet path). */
  word(id: number, i: number): number {
    return this.words[(id << 2) + i]! >>> 0;
  }

  private queueRelease(id: number): void {
    if (this.waiting[id] !== 0) return;
    this.waiting[id] = 1;
    this.released[this.releasedCount++] = id;
  }

  private removeFromIndex(id: number): void {
    const index = this.index;
    const mask = this.indexMask;
    let slot = this.hashes[id]! & mask;
    while (index[slot] !== id + 1) slot = (slot + 1) & mask;
    // backward-shift deletion, as FlowCache's table
    let hole = slot;
    let next = (hole + 1) & mask;
    for (;;) {
      const moving = index[next]!;
      if (moving === 0) break;
      const home = this.hashes[moving - 1]! & mask;
      if (((next - home) & mask) >= ((next - hole) & mask)) {
        index[hole] = moving;
        hole = next;
      }
      next = (next + 1) & mask;
    }
    index[hole] = 0;
  }

  private growIndex(): void {
    const old = this.index;
    const slots = old.length * 2;
    const index = new Int32Array(slots);
    const mask = slots - 1;
    for (let i = 0; i < old.length; i++) {
      const entry = old[i]!;
      if (entry === 0) continue;
      let slot = this.hashes[entry - 1]! & mask;
      while (index[slot] !== 0) slot = (slot + 1) & mask;
      index[slot] = entry;
    }
    this.index = index;
    this.indexMask = mask;
  }
}

/** A 32-bit mix of the four words (murmur3-style finaliser per word), as int32. */
function hashAddress(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ w2, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w3, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
