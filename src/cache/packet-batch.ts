/**
 * Decoded packets waiting to be accounted, column by column. Once the flow
 * table outgrows the CPU's caches, the data plane gathers a few packets before
 * handing them to the flow cache, so that the cache can first bring each one's
 * table slot and record in together (FlowCache.warm): the memory misses then
 * overlap instead of following one another. BENCHMARKS.md has the figures.
 */
export class PacketBatch {
  /** 16: enough loads in flight to fill the CPU's miss buffers, few enough to stay in L1 */
  static readonly SIZE = 16;
  count = 0;
  /** addresses as int32 (`| 0`), as FlowCache.account takes them */
  readonly srcAddr = new Int32Array(PacketBatch.SIZE);
  readonly dstAddr = new Int32Array(PacketBatch.SIZE);
  readonly srcPort = new Int32Array(PacketBatch.SIZE);
  readonly dstPort = new Int32Array(PacketBatch.SIZE);
  readonly protocol = new Int32Array(PacketBatch.SIZE);
  readonly tos = new Int32Array(PacketBatch.SIZE);
  readonly ifIndex = new Int32Array(PacketBatch.SIZE);
  /** IPv4 total length */
  readonly octets = new Int32Array(PacketBatch.SIZE);
  readonly tcpFlags = new Int32Array(PacketBatch.SIZE);
  /** FlowCache.account's attributes (the VLAN id) */
  readonly attributes = new Int32Array(PacketBatch.SIZE);
  /**
   * An IPv6 batch only: each packet's addresses as four big-endian words each
   * (DecodedPacket's src6/dst6); srcAddr and dstAddr then hold their AddressTable
   * ids, once interned.
   */
  readonly src6 = new Int32Array(PacketBatch.SIZE * 4);
  readonly dst6 = new Int32Array(PacketBatch.SIZE * 4);
  /** when each packet is accounted (ms, never decreasing) */
  readonly time = new Float64Array(PacketBatch.SIZE);
  /**
   * The time the latest packet is accounted at; the clock reaches it when the
   * packet is accounted. A field, not a variable: a double in an object field is
   * updated in place, where a `let` would allocate a number per packet.
   */
  latestTime = Number.NEGATIVE_INFINITY;
}
