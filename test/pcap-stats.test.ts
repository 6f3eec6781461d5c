/**
 * libpcap's statistics into the probe's running totals: each handle's figures
 * are 32-bit and wrap, and a capture reopened after its interface came back is
 * a new handle that counts from 0 again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SourceCounter, createDataPlaneCounters, sourceCounterBase } from '../src/counters/data-plane.js';
import { PcapHandleFigures, pcapCounterDelta } from '../src/capture/pcap-stats.js';

const base = sourceCounterBase(0);
const totals = (counters: Float64Array): number[] => [
  counters[base + SourceCounter.pcapReceived]!,
  counters[base + SourceCounter.pcapDropped]!,
  counters[base + SourceCounter.pcapInterfaceDropped]!,
];

describe('PcapHandleFigures', () => {
  it('adds what a handle counted since the last read, across a wrap', () => {
    const counters = createDataPlaneCounters(1);
    const handle = new PcapHandleFigures(counters, base);
    handle.update({ ps_recv: 2 ** 32 - 10, ps_drop: 3, ps_ifdrop: 1 });
    assert.deepEqual(totals(counters), [2 ** 32 - 10, 3, 1]);
    handle.update({ ps_recv: 5, ps_drop: 3, ps_ifdrop: 1 }); // wrapped: 15 more
    assert.deepEqual(totals(counters), [2 ** 32 + 5, 3, 1]);
    handle.update({ ps_recv: 5, ps_drop: 3, ps_ifdrop: 1 });
    assert.deepEqual(totals(counters), [2 ** 32 + 5, 3, 1], 'no change, no increase');
    assert.equal(pcapCounterDelta(7, 7), 0);
    assert.equal(pcapCounterDelta(2 ** 32 - 1, 0), 1);
  });

  it('a reopened capture is a new handle from 0: its figures add to the totals, they never read as a wrap', () => {
    const counters = createDataPlaneCounters(1);
    const first = new PcapHandleFigures(counters, base);
    first.update({ ps_recv: 1000, ps_drop: 7, ps_ifdrop: 5 });
    // the interface went away and came back: libpcap's figures start again
    const second = new PcapHandleFigures(counters, base);
    second.update({ ps_recv: 10, ps_drop: 0, ps_ifdrop: 1 });
    assert.deepEqual(totals(counters), [1010, 7, 6]);
  });
});
