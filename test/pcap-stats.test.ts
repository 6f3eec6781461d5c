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
    const handle = new PcapHandleFigures(counters, base, 0);
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
    const first = new PcapHandleFigures(counters, base, 0);
    first.update({ ps_recv: 1000, ps_drop: 7, ps_ifdrop: 5 });
    // the interface went away and came back: libpcap's figures start again
    const second = new PcapHandleFigures(counters, base, 0);
    second.update({ ps_recv: 10, ps_drop: 0, ps_ifdrop: 1 });
    assert.deepEqual(totals(counters), [1010, 7, 6]);
  });

  it('a closing handle counts what libpcap received, less its drops, that was never read', () => {
    const counters = createDataPlaneCounters(1);
    const unprocessed = (): number => counters[base + SourceCounter.pcapUnprocessed]!;
    counters[base + SourceCounter.packets] = 1000; // read before this handle opened
    const handle = new PcapHandleFigures(counters, base, 1000);
    handle.update({ ps_recv: 100, ps_drop: 10, ps_ifdrop: 3 });
    counters[base + SourceCounter.packets] = 1080;
    assert.equal(handle.unread('interface'), 10, 'still in the buffer');
    counters[base + SourceCounter.packets] = 1085;
    assert.equal(handle.unread('interface'), 5);
    assert.equal(counters[base + SourceCounter.pcapUnprocessed], 0, 'counted only when the handle closes');
    assert.equal(handle.close('interface'), 5);
    assert.equal(unprocessed(), 5);
    // everything read: nothing to count
    const next = new PcapHandleFigures(counters, base, 1085);
    next.update({ ps_recv: 40, ps_drop: 0, ps_ifdrop: 0 });
    counters[base + SourceCounter.packets] = 1125;
    assert.equal(next.close('interface'), 0);
    assert.equal(unprocessed(), 5);
  });

  it('on a loopback device each packet is received twice (sent and received); on "any" nothing is counted', () => {
    const counters = createDataPlaneCounters(1);
    const loopback = new PcapHandleFigures(counters, base, 0);
    loopback.update({ ps_recv: 200, ps_drop: 0, ps_ifdrop: 0 });
    counters[base + SourceCounter.packets] = 100;
    assert.equal(loopback.unread('loopback'), 0, 'all 100 read');
    assert.equal(loopback.close('loopback'), 0);
    const any = new PcapHandleFigures(counters, base, 100);
    any.update({ ps_recv: 500, ps_drop: 0, ps_ifdrop: 0 });
    counters[base + SourceCounter.packets] = 300;
    assert.equal(any.unread('any'), undefined, 'cannot be told');
    assert.equal(any.close('any'), 0);
    assert.equal(counters[base + SourceCounter.pcapUnprocessed], 0);
  });
});
