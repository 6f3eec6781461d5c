/**
 * Flow cache tests. Time is just the `now` number passed to each call; a sink
 * records every expiry with the flow's fields as they were when it expired.
 */
import { describe, it } from 'node:test';
import { prng } from './helpers/synthetic-pcap.js';
import assert from 'node:assert/strict';
import {
  EXPIRY_REASONS,
  ExpiryReason,
  FLOW_CACHE_STATS_LENGTH,
  FlowCache,
  FlowCacheStat,
  SLOT_MS,
  WHEEL_TURN_MS,
  hashKey,
  type ExpiredFlowSink,
  type FlowTimeouts,
} from '../src/cache/flow-cache.js';

interface Key {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  proto: number;
  tos: number;
  ifIndex: number;
}

interface Exported extends Key {
  reason: ExpiryReason;
  packets: number;
  octets: number;
  first: number;
  last: number;
  flags: number;
}

function keyOfFlow(cache: FlowCache, id: number): Key {
  return {
    src: cache.srcAddr(id),
    dst: cache.dstAddr(id),
    sport: cache.srcPort(id),
    dport: cache.dstPort(id),
    proto: cache.protocol(id),
    tos: cache.tos(id),
    ifIndex: cache.ifIndex(id),
  };
}

class RecordingSink implements ExpiredFlowSink {
  readonly records: Exported[] = [];
  /** extra check run on each expiry, while the flow is still in the cache */
  onExpired: ((record: Exported) => void) | undefined;

  expired(cache: FlowCache, id: number, reason: ExpiryReason): void {
    const record: Exported = {
      reason,
      ...keyOfFlow(cache, id),
      packets: cache.packets(id),
      octets: cache.octets(id),
      first: cache.firstSeen(id),
      last: cache.lastSeen(id),
      flags: cache.tcpFlags(id),
    };
    this.records.push(record);
    this.onExpired?.(record);
  }

  take(): Exported[] {
    return this.records.splice(0);
  }
}

const TCP = 6;
const UDP = 17;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

const TIMEOUTS: FlowTimeouts = { activeMs: 1000, inactiveMs: 100, tcpEndMs: 50 };

/** Each cache's packet clock, which account() below sets before every packet. */
const clocks = new WeakMap<FlowCache, { now: number }>();

function newCache(capacity: number, timeouts: FlowTimeouts, sink: ExpiredFlowSink, stats?: Float64Array): FlowCache {
  const clock = { now: 0 };
  const cache = stats === undefined ? new FlowCache(capacity, timeouts, sink, clock) : new FlowCache(capacity, timeouts, sink, clock, stats);
  clocks.set(cache, clock);
  return cache;
}

function setup(capacity = 16, timeouts: FlowTimeouts = TIMEOUTS): { cache: FlowCache; sink: RecordingSink } {
  const sink = new RecordingSink();
  return { cache: newCache(capacity, timeouts, sink), sink };
}

const BASE: Key = { src: 0x0a000001, dst: 0xc0a80102, sport: 40000, dport: 443, proto: TCP, tos: 0, ifIndex: 1 };

function account(cache: FlowCache, key: Partial<Key>, octets: number, flags: number, now: number): void {
  const k = { ...BASE, ...key };
  clocks.get(cache)!.now = now;
  cache.account(k.src, k.dst, k.sport, k.dport, k.proto, k.tos, k.ifIndex, octets, flags);
}

function keyOf(r: Key): string {
  return `${r.src}/${r.dst}/${r.sport}/${r.dport}/${r.proto}/${r.tos}/${r.ifIndex}`;
}

function stat(cache: FlowCache, reason: ExpiryReason): number {
  return cache.stats[FlowCacheStat.expiredBase + reason]!;
}

describe('FlowCache: aggregation', () => {
  it('packets with the same 5-tuple, tos and ifIndex join one flow', () => {
    const { cache, sink } = setup();
    account(cache, {}, 60, SYN, 10);
    account(cache, {}, 1500, ACK, 20);
    account(cache, {}, 1500, ACK | PSH, 30);
    assert.equal(cache.flowCount, 1);
    cache.expireAll();
    assert.deepEqual(sink.take(), [
      { ...BASE, reason: ExpiryReason.shutdown, packets: 3, octets: 3060, first: 10, last: 30, flags: SYN | ACK | PSH },
    ]);
  });

  it('any key field that differs makes a different flow', () => {
    const { cache, sink } = setup();
    const variants: Partial<Key>[] = [
      {},
      { src: 0x0a000002 },
      { dst: 0xc0a80103 },
      { sport: 40001 },
      { dport: 80 },
      { proto: UDP },
      { tos: 0x10 },
      { tos: 0xb8 },
      { ifIndex: 2 },
      { ifIndex: 0 },
    ];
    for (const v of variants) account(cache, v, 100, 0, 5);
    for (const v of variants) account(cache, v, 100, 0, 6);
    assert.equal(cache.flowCount, variants.length);
    cache.expireAll();
    const records = sink.take();
    assert.equal(records.length, variants.length);
    for (const [i, v] of variants.entries()) {
      const r = records[i]!;
      assert.equal(keyOf(r), keyOf({ ...BASE, ...v }), 'expireAll goes oldest first and keeps key fields');
      assert.equal(r.packets, 2);
      assert.equal(r.octets, 200);
    }
  });

  it('the reverse direction is a separate flow', () => {
    const { cache } = setup();
    account(cache, {}, 100, 0, 1);
    account(cache, { src: BASE.dst, dst: BASE.src, sport: BASE.dport, dport: BASE.sport }, 100, 0, 1);
    assert.equal(cache.flowCount, 2);
  });

  it('keeps full-range key fields (high addresses, port 65535, tos 255, 16-bit ifIndex)', () => {
    const { cache, sink } = setup();
    const key: Key = { src: 0xffffffff, dst: 0x80000000, sport: 65535, dport: 0, proto: 255, tos: 255, ifIndex: 65535 };
    account(cache, key, 1, 0, 0);
    cache.expireAll();
    const [r] = sink.take();
    assert.equal(keyOf(r!), keyOf(key));
  });
});

describe('FlowCache: timeouts', () => {
  it('inactive timeout: not just before the boundary, exactly at it', () => {
    const { cache, sink } = setup();
    account(cache, { proto: UDP }, 100, 0, 1000);
    account(cache, { proto: UDP }, 100, 0, 1050);
    cache.expireTimedOut(1149);
    assert.equal(sink.records.length, 0, '99 ms idle is not inactive');
    cache.expireTimedOut(1150);
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets, r.octets, r.first, r.last]),
      [[ExpiryReason.inactive, 2, 200, 1000, 1050]],
    );
    assert.equal(cache.flowCount, 0);
  });

  it('inactive timeout expires only the idle flows, least recent first', () => {
    const { cache, sink } = setup();
    account(cache, { sport: 1, proto: UDP }, 10, 0, 0);
    account(cache, { sport: 2, proto: UDP }, 10, 0, 10);
    account(cache, { sport: 3, proto: UDP }, 10, 0, 20);
    account(cache, { sport: 1, proto: UDP }, 10, 0, 30); // sport 1 is now the most recent
    cache.expireTimedOut(125);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [
        [2, ExpiryReason.inactive],
        [3, ExpiryReason.inactive],
      ],
    );
    assert.equal(cache.flowCount, 1);
  });

  it('active timeout exports a busy flow, and the packet at the deadline starts a new one', () => {
    const { cache, sink } = setup();
    for (let t = 0; t <= 1000; t += 50) {
      account(cache, {}, 1000, ACK, t);
      cache.expireTimedOut(t);
      if (t < 1000) assert.equal(sink.records.length, 0, `nothing at ${t}`);
    }
    // the packet at 1000 found the flow due: it was exported first (0..950, 20 packets)
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets, r.octets, r.first, r.last]),
      [[ExpiryReason.active, 20, 20_000, 0, 950]],
    );
    account(cache, {}, 1000, ACK, 1050);
    cache.expireAll();
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets, r.first, r.last]),
      [[ExpiryReason.shutdown, 2, 1000, 1050]],
    );
  });

  it('active timeout boundary: 999 ms after the first packet no, 1000 ms yes', () => {
    const { cache, sink } = setup();
    // busy (a packet every 50 ms, well inside the 100 ms inactive timeout)
    for (let t = 5000; t <= 5950; t += 50) account(cache, {}, 1, 0, t);
    cache.expireTimedOut(5999);
    assert.equal(sink.records.length, 0);
    // a packet at the deadline: the due flow is exported before it is counted
    account(cache, {}, 1, 0, 6000);
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets]),
      [[ExpiryReason.active, 20]],
    );
    assert.equal(cache.flowCount, 1, 'the packet at 6000 started a new flow');
  });

  it('FIN then an ACK within the TCP-end linger join one flow, exported as tcpFin after the linger', () => {
    const { cache, sink } = setup();
    account(cache, {}, 1500, ACK, 0);
    account(cache, {}, 52, FIN | ACK, 10);
    cache.expireTimedOut(40);
    assert.equal(sink.records.length, 0, 'still lingering');
    account(cache, {}, 52, ACK, 40); // the last ACK
    assert.equal(cache.flowCount, 1, 'the ACK joined the flow');
    cache.expireTimedOut(89);
    assert.equal(sink.records.length, 0, 'linger restarts with each packet');
    cache.expireTimedOut(90);
    assert.deepEqual(sink.take(), [
      { ...BASE, reason: ExpiryReason.tcpFin, packets: 3, octets: 1604, first: 0, last: 40, flags: FIN | ACK },
    ]);
    assert.equal(cache.flowCount, 0);
  });

  it('a FIN flow lingers tcpEnd, not inactive', () => {
    const { cache, sink } = setup(16, { activeMs: 10_000, inactiveMs: 100, tcpEndMs: 300 });
    account(cache, {}, 40, FIN | ACK, 0);
    cache.expireTimedOut(150);
    assert.equal(sink.records.length, 0, 'the linger, not the inactive timeout, applies');
    cache.expireTimedOut(300);
    assert.equal(sink.take()[0]!.reason, ExpiryReason.tcpFin);
  });

  it('RST → tcpRst (also with FIN seen)', () => {
    const { cache, sink } = setup();
    account(cache, { sport: 1 }, 40, RST, 0);
    account(cache, { sport: 2 }, 40, FIN | ACK, 0);
    account(cache, { sport: 2 }, 40, RST | ACK, 5);
    cache.expireTimedOut(55);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason, r.flags]),
      [
        [1, ExpiryReason.tcpRst, RST],
        [2, ExpiryReason.tcpRst, FIN | RST | ACK],
      ],
    );
  });

  it('FIN or RST on a non-TCP flow does not end it', () => {
    const { cache, sink } = setup();
    account(cache, { proto: UDP }, 40, FIN | RST, 0);
    cache.expireTimedOut(60);
    assert.equal(sink.records.length, 0);
    cache.expireTimedOut(100);
    assert.equal(sink.take()[0]!.reason, ExpiryReason.inactive);
  });
});

describe('FlowCache: capacity and counters', () => {
  it('a full cache evicts the flow due soonest — for idle flows the least recently seen, not the oldest created', () => {
    // seconds apart, so each deadline falls in its own wheel slot (SLOT_MS)
    const { cache, sink } = setup(3, { activeMs: 1e7, inactiveMs: 100_000, tcpEndMs: 50_000 });
    account(cache, { sport: 1 }, 10, ACK, 0); // oldest
    account(cache, { sport: 2 }, 10, ACK, 1000);
    account(cache, { sport: 3 }, 10, ACK, 2000);
    account(cache, { sport: 1 }, 10, ACK, 3000); // sport 1 is busy again
    account(cache, { sport: 4 }, 10, ACK, 4000);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason, r.packets]),
      [[2, ExpiryReason.cacheFull, 1]],
    );
    assert.equal(cache.flowCount, 3);
    account(cache, { sport: 5 }, 10, ACK, 5000);
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [3],
    );
    assert.equal(stat(cache, ExpiryReason.cacheFull), 2);
  });

  it('within one wheel slot the victim is due within SLOT_MS of the soonest', () => {
    const { cache, sink } = setup(3);
    account(cache, { sport: 1 }, 10, ACK, 0);
    account(cache, { sport: 2 }, 10, ACK, 1);
    account(cache, { sport: 3 }, 10, ACK, 2);
    account(cache, { sport: 4 }, 10, ACK, 3);
    const [victim] = sink.take();
    assert.equal(victim?.reason, ExpiryReason.cacheFull);
    assert.ok(victim.last + TIMEOUTS.inactiveMs < 0 + TIMEOUTS.inactiveMs + SLOT_MS);
  });

  it('eviction considers lingering TCP flows too', () => {
    const { cache, sink } = setup(2);
    account(cache, { sport: 1 }, 10, FIN | ACK, 0); // ended list, least recent
    account(cache, { sport: 2 }, 10, ACK, 1);
    account(cache, { sport: 3 }, 10, ACK, 2);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [[1, ExpiryReason.cacheFull]],
    );
    account(cache, { sport: 4 }, 10, RST, 3); // ended, most recent
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [2],
    );
    account(cache, { sport: 5 }, 10, ACK, 4);
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [3],
    );
  });

  it('timeouts beyond one wheel turn: flows filed in one slot are each met once (the walk used to swap them for ever)', () => {
    // 86400 s is 21 turns: every flow waits at the horizon, and all these share a tick
    const far: FlowTimeouts = { activeMs: 86_400_000, inactiveMs: 86_400_000, tcpEndMs: 86_400_000 };
    const { cache, sink } = setup(4, far);
    for (let i = 0; i < 4; i++) account(cache, { sport: i }, 10, ACK, i);
    for (let i = 4; i < 400; i++) account(cache, { sport: i }, 10, ACK, 1000 + i * 10);
    assert.equal(cache.flowCount, 4);
    const evicted = sink.take();
    assert.equal(evicted.length, 396);
    assert.ok(evicted.every((r) => r.reason === ExpiryReason.cacheFull && r.packets === 1));
    assert.deepEqual(
      evicted.slice(0, 4).map((r) => r.sport),
      [0, 1, 2, 3],
      'the first four go in the order they were seen',
    );
    cache.expireAll();
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [396, 397, 398, 399],
    );
  });

  it('timeouts beyond one wheel turn: a full cache evicts the least recently seen (to within a slot)', () => {
    const far: FlowTimeouts = { activeMs: 86_400_000, inactiveMs: 86_400_000, tcpEndMs: 86_400_000 };
    const { cache, sink } = setup(8, far);
    for (let i = 0; i < 8; i++) account(cache, { sport: i }, 10, ACK, i * 1000);
    for (let i = 0; i < 4; i++) account(cache, { sport: i }, 10, ACK, 10_000 + i * 1000); // 0-3 busy again
    account(cache, { sport: 8 }, 10, ACK, 20_000);
    account(cache, { sport: 9 }, 10, ACK, 21_000);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [
        [4, ExpiryReason.cacheFull],
        [5, ExpiryReason.cacheFull],
      ],
      'idle since first seen: 4, then 5 (not 0, the oldest created)',
    );
    // now touch every flow, most recent last; the victims follow
    const order = [7, 9, 2, 6, 0, 8, 3, 1];
    order.forEach((sport, i) => account(cache, { sport }, 10, ACK, 30_000 + i * 1000));
    for (let i = 0; i < 4; i++) account(cache, { sport: 100 + i }, 10, ACK, 40_000 + i);
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      order.slice(0, 4),
    );
    // a whole turn later, with no sweep between, the same holds
    const later = 40_000 + WHEEL_TURN_MS + 5000;
    account(cache, { sport: 0 }, 10, ACK, later);
    account(cache, { sport: 200 }, 10, ACK, later + 1000);
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [8],
    );
  });

  it('timeouts beyond one wheel turn: a flow is exported at its timeout, neither early nor missed, whatever the turns between', () => {
    const inactiveMs = 3 * WHEEL_TURN_MS + 1234;
    const { cache, sink } = setup(16, { activeMs: 10 * WHEEL_TURN_MS, inactiveMs, tcpEndMs: WHEEL_TURN_MS + 777 });
    account(cache, { sport: 1, proto: UDP }, 10, 0, 0);
    account(cache, { sport: 2 }, 10, ACK, 0);
    account(cache, { sport: 2 }, 10, FIN | ACK, 500);
    // swept once per slot, as the live tick does, up to just before the deadlines
    let now = 0;
    for (; now < WHEEL_TURN_MS + 500 + 777; now += SLOT_MS) cache.expireTimedOut(now);
    cache.expireTimedOut(WHEEL_TURN_MS + 500 + 776);
    assert.equal(sink.records.length, 0);
    cache.expireTimedOut(WHEEL_TURN_MS + 500 + 777);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [[2, ExpiryReason.tcpFin]],
    );
    for (; now < inactiveMs; now += SLOT_MS) cache.expireTimedOut(now);
    cache.expireTimedOut(inactiveMs - 1);
    assert.equal(sink.records.length, 0);
    cache.expireTimedOut(inactiveMs);
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [[1, ExpiryReason.inactive]],
    );
    assert.equal(cache.flowCount, 0);
  });

  it('capacity 1 works', () => {
    const { cache, sink } = setup(1);
    for (let i = 0; i < 10; i++) account(cache, { sport: i }, 1, 0, i);
    assert.equal(cache.flowCount, 1);
    assert.deepEqual(
      sink.take().map((r) => r.sport),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
  });

  it('octets approaching 2^32: a counterLimit record never exceeds 2^32 - 1 and nothing is lost', () => {
    const { cache, sink } = setup(4, { activeMs: 1e12, inactiveMs: 1e12, tcpEndMs: 1e12 });
    const packets = 66_000;
    const size = 65_535;
    for (let i = 0; i < packets; i++) account(cache, { proto: UDP }, size, 0, i);
    const limited = sink.take();
    assert.equal(limited.length, 1);
    const [first] = limited;
    assert.equal(first!.reason, ExpiryReason.counterLimit);
    assert.ok(first!.octets <= 0xffffffff);
    // 65,535 × 65,537 = 2^32 - 1 exactly: the record fills the counter to the last octet
    assert.equal(first!.packets, 65_537);
    assert.equal(first!.octets, 0xffffffff);
    assert.equal(first!.first, 0);
    assert.equal(first!.last, 65_536);
    cache.expireAll();
    const rest = sink.take();
    assert.equal(rest.length, 1);
    assert.equal(rest[0]!.reason, ExpiryReason.shutdown);
    assert.equal(rest[0]!.first, 65_537, 'the new record starts at the packet that did not fit');
    const all = [...limited, ...rest];
    assert.equal(
      all.reduce((s, r) => s + r.packets, 0),
      packets,
    );
    assert.equal(
      all.reduce((s, r) => s + r.octets, 0),
      packets * size,
    );
    assert.equal(stat(cache, ExpiryReason.counterLimit), 1);
  });

  it('a packet counter at 2^32 - 1 is exported before it wraps', () => {
    const { cache, sink } = setup(4);
    account(cache, { proto: UDP }, 1, 0, 0);
    let id = -1;
    cache.forEachFlow((flow) => (id = flow));
    cache.overridePacketCount(id, 0xfffffffe); // pretend 4 billion packets went by
    account(cache, { proto: UDP }, 1, 0, 1);
    assert.equal(sink.records.length, 0);
    account(cache, { proto: UDP }, 1, 0, 2);
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets]),
      [[ExpiryReason.counterLimit, 0xffffffff]],
    );
    cache.expireAll();
    assert.deepEqual(
      sink.take().map((r) => [r.reason, r.packets, r.octets]),
      [[ExpiryReason.shutdown, 1, 1]],
    );
  });

  it('expireAll exports everything with reason shutdown, oldest first', () => {
    const { cache, sink } = setup();
    account(cache, { sport: 1 }, 10, ACK, 0);
    account(cache, { sport: 2 }, 10, FIN, 1);
    account(cache, { sport: 3, proto: UDP }, 10, 0, 2);
    account(cache, { sport: 1 }, 10, ACK, 3);
    cache.expireAll();
    assert.deepEqual(
      sink.take().map((r) => [r.sport, r.reason]),
      [
        [1, ExpiryReason.shutdown],
        [2, ExpiryReason.shutdown],
        [3, ExpiryReason.shutdown],
      ],
    );
    assert.equal(cache.flowCount, 0);
    cache.expireAll();
    assert.equal(sink.records.length, 0);
  });

  it('after expireAll the cache starts afresh: full capacity, timeouts and lookups as new', () => {
    const { cache, sink } = setup(4);
    for (let i = 0; i < 4; i++) account(cache, { sport: i }, 10, ACK, i);
    cache.expireAll();
    sink.take();
    for (let i = 0; i < 4; i++) account(cache, { sport: 10 + i }, 20, ACK, 100 + i);
    account(cache, { sport: 10 }, 20, ACK, 110);
    assert.equal(cache.flowCount, 4);
    assert.equal(cache.stats[FlowCacheStat.cached], 4);
    assert.equal(stat(cache, ExpiryReason.cacheFull), 0, 'no eviction: all four slots are free again');
    // the wheel works on the new flows: all four time out, sport 10 with both its packets
    cache.expireTimedOut(100 + TIMEOUTS.inactiveMs + 300);
    assert.deepEqual(
      sink
        .take()
        .map((r) => [r.sport, r.packets, r.reason])
        .sort((x, y) => x[0]! - y[0]!),
      [
        [10, 2, ExpiryReason.inactive],
        [11, 1, ExpiryReason.inactive],
        [12, 1, ExpiryReason.inactive],
        [13, 1, ExpiryReason.inactive],
      ],
    );
    assert.equal(cache.flowCount, 0);
    assert.equal(stat(cache, ExpiryReason.shutdown), 4);
  });

  it('the stats array counts created, cached and expiries by reason', () => {
    const stats = new Float64Array(FLOW_CACHE_STATS_LENGTH);
    const sink = new RecordingSink();
    const cache = newCache(2, TIMEOUTS, sink, stats);
    assert.equal(cache.stats, stats, 'uses the array it was given');
    assert.equal(EXPIRY_REASONS.length, 7);

    account(cache, { sport: 1, proto: UDP }, 1, 0, 0);
    account(cache, { sport: 2, proto: UDP }, 1, 0, 0);
    assert.deepEqual(Array.from(stats), [2, 2, 0, 0, 0, 0, 0, 0, 0]);
    account(cache, { sport: 3, proto: UDP }, 1, 0, 1); // evicts sport 1
    assert.deepEqual(Array.from(stats), [3, 2, 0, 0, 0, 0, 1, 0, 0]);
    cache.expireTimedOut(100); // sport 2 idle since 0
    assert.deepEqual(Array.from(stats), [3, 1, 1, 0, 0, 0, 1, 0, 0]);
    account(cache, { sport: 4 }, 1, FIN, 100);
    account(cache, { sport: 3, proto: UDP }, 1, 0, 100);
    cache.expireTimedOut(150); // sport 4 lingered 50
    assert.deepEqual(Array.from(stats), [4, 1, 1, 0, 1, 0, 1, 0, 0]);
    account(cache, { sport: 5 }, 1, RST, 150);
    account(cache, { sport: 3, proto: UDP }, 1, 0, 150);
    cache.expireTimedOut(200); // sport 5 reset
    assert.deepEqual(Array.from(stats), [5, 1, 1, 0, 1, 1, 1, 0, 0]);
    for (let t = 200; t <= 1001; t += 50) account(cache, { sport: 3, proto: UDP }, 1, 0, t);
    cache.expireTimedOut(1001); // sport 3, first seen at 1
    assert.deepEqual(Array.from(stats), [5, 0, 1, 1, 1, 1, 1, 0, 0]);
    account(cache, { sport: 6, proto: UDP }, 1, 0, 1001);
    cache.expireAll();
    assert.deepEqual(Array.from(stats), [6, 0, 1, 1, 1, 1, 1, 0, 1]);

    // every expiry went to the sink, with the same reason
    const byReason = new Array<number>(EXPIRY_REASONS.length).fill(0);
    for (const r of sink.take()) byReason[r.reason]! += 1;
    assert.deepEqual(byReason, Array.from(stats.subarray(FlowCacheStat.expiredBase)));
  });

  it('rejects a bad capacity or a short stats array', () => {
    const sink = new RecordingSink();
    assert.throws(() => new FlowCache(0, TIMEOUTS, sink, { now: 0 }), RangeError);
    assert.throws(() => new FlowCache(1.5, TIMEOUTS, sink, { now: 0 }), RangeError);
    assert.throws(() => new FlowCache(4, TIMEOUTS, sink, { now: 0 }, new Float64Array(3)), RangeError);
  });
});

// ---------------------------------------------------------------------------
// Randomized comparison with a reference model


interface ModelFlow {
  packets: number;
  octets: number;
  first: number;
  last: number;
  flags: number;
  proto: number;
}

/**
 * Keys whose hash lands in a few table slots around the wrap-around point, so
 * probe runs are long, cross the end of the table, and deletions shift a lot.
 * Capacity 64 → 128 slots.
 */
function collidingKeys(count: number, tableSize: number, slots: Set<number>): Key[] {
  const keys: Key[] = [];
  for (let i = 0; keys.length < count; i++) {
    const key: Key = {
      src: (0x0a000000 + (i % 251)) >>> 0,
      dst: (0xc0a80000 + Math.floor(i / 251)) >>> 0,
      sport: 1024 + (i % 7),
      dport: 80,
      proto: i % 3 === 0 ? UDP : TCP,
      tos: 0,
      ifIndex: 1,
    };
    const ports = ((key.sport << 16) | key.dport) >>> 0;
    const protoTosIf = ((key.proto << 24) | (key.tos << 16) | key.ifIndex) >>> 0;
    const slot = hashKey(key.src, key.dst, ports, protoTosIf) & (tableSize - 1);
    if (slots.has(slot)) keys.push(key);
  }
  return keys;
}

/**
 * 100k random operations on a cache of 64 against a plain model. Times are in
 * units of `scale` ms: active 5000, inactive 100, TCP end 50 units. Returns how
 * many cache_full victims were drawn (the turn held no idle flow).
 */
function compareWithModel(scale: number): number {
  const capacity = 64;
  const timeouts: FlowTimeouts = { activeMs: 5000 * scale, inactiveMs: 100 * scale, tcpEndMs: 50 * scale };
  const sink = new RecordingSink();
  const cache = newCache(capacity, timeouts, sink);
  const random = prng(20260101);
  const int = (n: number): number => Math.floor(random() * n);

  // 240 keys hashing to slots 122..127 and 0..5 of 128, plus 60 ordinary keys
  const crowded = collidingKeys(240, 128, new Set([122, 123, 124, 125, 126, 127, 0, 1, 2, 3, 4, 5]));
  const ordinary: Key[] = Array.from({ length: 60 }, (_, i) => ({ ...BASE, sport: 2000 + i, proto: i % 2 === 0 ? TCP : UDP }));
  // a few hot keys stay busy long enough for the active timeout
  const hot: Key[] = Array.from({ length: 2 }, (_, i) => ({ ...BASE, src: 0x0b000000 + i, proto: UDP }));

  const model = new Map<string, ModelFlow>();
  let now = 0;
  let totalPackets = 0;
  let totalOctets = 0;
  let exportedPackets = 0;
  let exportedOctets = 0;
  const reasons = new Array<number>(EXPIRY_REASONS.length).fill(0);
  let drawn = 0;

  const ended = (f: ModelFlow): boolean => f.proto === TCP && (f.flags & (FIN | RST)) !== 0;

  sink.onExpired = (r) => {
    const k = keyOf(r);
    const m = model.get(k);
    if (m === undefined) assert.fail(`expired a flow the model does not hold: ${k} (reason ${r.reason})`);
    assert.deepEqual([r.packets, r.octets, r.first, r.last, r.flags], [m.packets, m.octets, m.first, m.last, m.flags], `counters of ${k}`);
    switch (r.reason) {
      case ExpiryReason.inactive:
        assert.ok(!ended(m) && now - m.last >= timeouts.inactiveMs, `inactive too early: ${k}`);
        break;
      case ExpiryReason.tcpFin:
      case ExpiryReason.tcpRst:
        assert.ok(ended(m) && now - m.last >= timeouts.tcpEndMs, `tcp end too early: ${k}`);
        assert.equal(r.reason === ExpiryReason.tcpRst, (m.flags & RST) !== 0);
        break;
      case ExpiryReason.active:
        assert.ok(now - m.first >= timeouts.activeMs, `active too early: ${k}`);
        break;
      case ExpiryReason.cacheFull: {
        assert.equal(model.size, capacity);
        // the victim is the least recently seen (idle deadline first), to within one
        // wheel slot, among the flows not about to reach their active timeout
        const idle = (f: ModelFlow): number => f.last + (ended(f) ? timeouts.tcpEndMs : timeouts.inactiveMs);
        const idleDriven = (f: ModelFlow): boolean => idle(f) <= f.first + timeouts.activeMs;
        let soonest = Infinity;
        for (const f of model.values()) if (idleDriven(f)) soonest = Math.min(soonest, idle(f));
        assert.ok(idleDriven(m), 'a flow near its active timeout is passed over');
        // deadlines before this lie within the wheel's turn
        const turnEnd = Math.floor(now / SLOT_MS) * SLOT_MS + WHEEL_TURN_MS;
        if (soonest < turnEnd) {
          assert.ok(idle(m) < (Math.floor(soonest / SLOT_MS) + 1) * SLOT_MS, 'the victim is least recently seen (to within a slot)');
        } else {
          // every deadline beyond the turn: the least recent of a random draw, so
          // (all but certainly) not among the most recently seen quarter
          let older = 0;
          for (const f of model.values()) if (f.last < m.last) older++;
          assert.ok(older < (capacity * 3) / 4, `a drawn victim is among the least recent: ${older} flows older`);
          drawn++;
        }
        break;
      }
      case ExpiryReason.counterLimit:
      case ExpiryReason.shutdown:
        assert.fail(`unexpected reason ${r.reason}`);
    }
    reasons[r.reason]! += 1;
    exportedPackets += r.packets;
    exportedOctets += r.octets;
    model.delete(k);
  };

  for (let op = 0; op < 100_000; op++) {
    now += int(8) === 0 ? int(20) * scale : 0;
    if (int(20) === 0) {
      cache.expireTimedOut(now);
      // nothing due may remain
      for (const [k, f] of model) {
        const due = ended(f) ? now - f.last >= timeouts.tcpEndMs : now - f.last >= timeouts.inactiveMs;
        assert.ok(!due && now - f.first < timeouts.activeMs, `${k} should have expired at ${now}`);
      }
    } else {
      const pick = int(10);
      const key = pick < 2 ? hot[int(hot.length)]! : pick < 5 ? ordinary[int(ordinary.length)]! : crowded[int(crowded.length)]!;
      const octets = 40 + int(1461);
      const r = int(100);
      const flags = key.proto !== TCP ? 0 : r < 3 ? FIN | ACK : r < 5 ? RST : r < 10 ? SYN : ACK;
      account(cache, key, octets, flags, now);
      totalPackets += 1;
      totalOctets += octets;
      const k = keyOf(key);
      const m = model.get(k);
      if (m === undefined) {
        model.set(k, { packets: 1, octets, first: now, last: now, flags, proto: key.proto });
      } else {
        m.packets += 1;
        m.octets += octets;
        m.last = now;
        m.flags |= flags;
      }
    }
    assert.equal(cache.flowCount, model.size, `flow count after op ${op}`);

    if (op % 1000 === 999) {
      // every cached flow is in the model with the same counters
      let cachedPackets = 0;
      let cachedOctets = 0;
      cache.forEachFlow((id) => {
        const k = keyOf(keyOfFlow(cache, id));
        const m = model.get(k);
        assert.ok(m !== undefined, `cached flow ${k} not in the model`);
        assert.equal(cache.packets(id), m.packets);
        assert.equal(cache.octets(id), m.octets);
        cachedPackets += m.packets;
        cachedOctets += m.octets;
      });
      assert.equal(exportedPackets + cachedPackets, totalPackets, 'packets conserved');
      assert.equal(exportedOctets + cachedOctets, totalOctets, 'octets conserved');
    }
  }

  // all reasons were exercised, and the stats agree with the sink
  for (const reason of [ExpiryReason.inactive, ExpiryReason.active, ExpiryReason.tcpFin, ExpiryReason.tcpRst, ExpiryReason.cacheFull]) {
    assert.ok(reasons[reason]! > 20, `${EXPIRY_REASONS[reason]}: ${reasons[reason]} (all: ${reasons.join(' ')})`);
    assert.equal(stat(cache, reason), reasons[reason]);
  }

  sink.onExpired = undefined;
  sink.take();
  cache.expireAll();
  const rest = sink.take();
  assert.equal(rest.length, model.size);
  assert.equal(exportedPackets + rest.reduce((s, r) => s + r.packets, 0), totalPackets);
  assert.equal(exportedOctets + rest.reduce((s, r) => s + r.octets, 0), totalOctets);
  assert.equal(cache.flowCount, 0);
  assert.equal(cache.stats[FlowCacheStat.created], cache.stats.subarray(FlowCacheStat.expiredBase).reduce((s, n) => s + n, 0));
  return drawn;
}

describe('FlowCache: randomized against a reference model', () => {
  it('100k operations, capacity 64, colliding keys: lookups, expiry order and totals all agree', () => {
    // one wheel slot (SLOT_MS) is small beside the timeouts, all within one turn
    assert.equal(compareWithModel(40), 0);
  });

  it('the same with timeouts beyond one wheel turn (inactive 1.5 turns, active 75)', () => {
    assert.ok(compareWithModel((WHEEL_TURN_MS * 1.5) / 100) > 100);
  });

  it('the same with every timeout beyond one wheel turn (TCP end 2 turns, inactive 4)', () => {
    assert.ok(compareWithModel((WHEEL_TURN_MS * 4) / 100) > 100);
  });

  it('after filling and emptying a crowded table many times, every key is found again', () => {
    const capacity = 64;
    const sink = new RecordingSink();
    const cache = newCache(capacity, { activeMs: 1e12, inactiveMs: 10, tcpEndMs: 10 }, sink);
    const crowded = collidingKeys(64, 128, new Set([126, 127, 0, 1]));
    const random = prng(7);
    let now = 0;
    for (let round = 0; round < 200; round++) {
      // insert in a random order, then touch a random subset so expiry deletes in a scattered order
      const order = crowded.map((k, i) => ({ k, r: random(), i })).sort((a, b) => a.r - b.r);
      for (const { k } of order) account(cache, k, 1, 0, now);
      assert.equal(cache.flowCount, capacity);
      now += 5;
      const touched = new Set<number>();
      for (const { i } of order) if (random() < 0.5) touched.add(i);
      for (const i of touched) account(cache, crowded[i]!, 1, 0, now);
      // nothing was inserted twice: each touch found its flow
      assert.equal(cache.flowCount, capacity);
      assert.equal(sink.records.length, 0, 'no eviction: every key was found');
      now += 5;
      cache.expireTimedOut(now); // the untouched ones go
      assert.equal(sink.take().length, capacity - touched.size);
      for (const i of touched) account(cache, crowded[i]!, 1, 0, now);
      assert.equal(cache.flowCount, touched.size, 'the survivors are still found after the deletions');
      now += 10;
      cache.expireTimedOut(now);
      const survivors = sink.take();
      assert.equal(survivors.length, touched.size);
      for (const r of survivors) assert.equal(r.packets, 3);
    }
  });
});
