/**
 * Live time with the wall clock stepped under it (time injected: a real step of
 * the system clock is not for a shared machine). The data plane is driven as the
 * worker drives it: packets carry wall-clock timestamps and are read by polls
 * that sample the clocks first, the clock never goes back, a tick every second
 * samples the clocks, sweeps the cache and closes a batch of records.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryReason, FlowCache, type ExpiredFlowSink } from '../src/cache/flow-cache.js';
import { LiveClock } from '../src/capture/live-clock.js';
import { RecordBatcher, type DataPlaneClock, type RecordBatch } from '../src/export/record-batch.js';

const START = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const UDP = 17;

interface Expired {
  sport: number;
  reason: ExpiryReason;
  first: number;
  last: number;
  /** the tick it left at (ms of monotonic time since the start) */
  at: number;
  /** the wall clock then */
  wall: number;
}

function liveDataPlane() {
  let wall = START;
  let monotonic = 5_000;
  const live = new LiveClock(
    () => wall,
    () => monotonic,
  );
  const clock: DataPlaneClock = { now: live.sample(), boot: 0, wallOffset: live.wallOffset };
  clock.boot = clock.now;
  const batches: RecordBatch[] = [];
  const batcher = new RecordBatcher(clock, (batch) => batches.push(batch));
  const expired: Expired[] = [];
  const sink: ExpiredFlowSink = {
    expired(cache, id, reason) {
      expired.push({ sport: cache.srcPort(id), reason, first: cache.firstSeen(id), last: cache.lastSeen(id), at: monotonic - 5_000, wall });
      batcher.expired(cache, id, reason);
    },
  };
  const cache = new FlowCache(64, { activeMs: 1_800_000, inactiveMs: 15_000, tcpEndMs: 5_000 }, sink, clock);
  let backwards = 0;
  return {
    clock,
    cache,
    expired,
    batches,
    backwards: () => backwards,
    wall: () => wall,
    /** time passes: both clocks move */
    pass(ms: number): void {
      wall += ms;
      monotonic += ms;
    },
    /** the wall clock is set, the monotonic clock is not */
    stepWall(ms: number): void {
      wall += ms;
    },
    /** a packet stamped by the kernel now (or at `stamp`), read now: by a poll, which samples the clocks first */
    packet(sport: number, stamp = wall): void {
      live.sample();
      clock.wallOffset = live.wallOffset;
      const time = live.packetTime(stamp);
      // as the worker: the clock never goes back (an earlier packet counts at the current time)
      if (time >= clock.now) clock.now = time;
      else backwards++;
      cache.account(0x0a000001, 0x0a000002, sport, 53, UDP, 0, 1, 100, 0);
    },
    tick(): void {
      const now = live.sample();
      if (now > clock.now) clock.now = now;
      clock.wallOffset = live.wallOffset;
      cache.expireTimedOut(clock.now);
      batcher.flush();
    },
  };
}

describe('LiveClock: ages on a monotonic clock, record times on the wall clock', () => {
  it('a wall clock set back an hour neither freezes the timeouts nor sends the clock back', () => {
    const dp = liveDataPlane();
    dp.packet(1); // idle from here on
    dp.packet(2);
    for (let s = 1; s <= 5; s++) {
      dp.pass(1000);
      dp.packet(2);
      dp.tick();
    }
    dp.stepWall(-HOUR);
    for (let s = 6; s <= 20; s++) {
      dp.pass(1000);
      dp.packet(2);
      dp.tick();
    }
    assert.equal(dp.backwards(), 0, 'no packet after the step counted as out of time order');
    // flow 1 leaves at its inactive timeout, 15 s after its only packet
    assert.deepEqual(
      dp.expired.map((e) => [e.sport, e.reason, e.at]),
      [[1, ExpiryReason.inactive, 15_000]],
    );
    // its record: sys_uptime 0 (the boot), and the header's wall clock is the one set back
    const batch = dp.batches.find((b) => b.count > 0)!;
    const words = new DataView(batch.records);
    assert.equal(words.getUint32(24), 0, 'first, ms of sys_uptime');
    assert.equal(words.getUint32(28), 0, 'last');
    assert.equal(batch.uptimeMs, 15_000);
    assert.equal(batch.unixMs, START + 15_000 - HOUR, "the header's unix time: the wall clock as it reads now");
    // flow 2, busy all along, is one record of 21 packets that spans 20 s
    dp.cache.expireAll();
    const busy = dp.expired.find((e) => e.sport === 2)!;
    assert.equal(busy.last - busy.first, 20_000);
  });

  it('a wall clock set forward an hour does not time out every flow at once', () => {
    const dp = liveDataPlane();
    dp.packet(1);
    dp.pass(1000);
    dp.tick();
    dp.stepWall(HOUR);
    dp.pass(1000);
    dp.packet(1);
    dp.tick();
    assert.equal(dp.expired.length, 0, 'two seconds of age, not an hour');
    assert.equal(dp.clock.now - dp.clock.boot, 2_000);
    for (let s = 0; s < 16; s++) {
      dp.pass(1000);
      dp.tick();
    }
    assert.deepEqual(
      dp.expired.map((e) => [e.sport, e.reason, e.last - e.first, e.at]),
      [[1, ExpiryReason.inactive, 2_000, 17_000]],
    );
    assert.deepEqual(
      dp.batches.map((b) => b.unixMs),
      [dp.expired[0]!.wall],
      "the header's unix time: the wall clock as it reads then",
    );
  });

  it('a packet stamped before a step and read after it counts when it is read, not an hour away', () => {
    const dp = liveDataPlane();
    dp.packet(1);
    dp.pass(500);
    const stamped = dp.wall();
    dp.stepWall(-HOUR);
    dp.pass(10);
    dp.tick(); // the step is seen
    dp.packet(1, stamped);
    assert.equal(dp.clock.now - dp.clock.boot, 510);
    dp.cache.expireAll();
    assert.equal(dp.expired[0]!.last - dp.expired[0]!.first, 510);
  });
});
