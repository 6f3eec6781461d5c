import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AddressTable } from '../src/cache/address-table.js';
import { FlowCache, type ExpiredFlowSink } from '../src/cache/flow-cache.js';
import { prng } from './helpers/synthetic-pcap.js';

const words = (a: number, b: number, c: number, d: number): Int32Array => Int32Array.from([a, b, c, d]);

describe('AddressTable', () => {
  it('interns an address once; a held id stays, an unheld one is forgotten', () => {
    const table = new AddressTable(8);
    const a = table.intern(words(0x20010db8, 0, 0, 1));
    assert.equal(table.intern(words(0x20010db8, 0, 0, 1)), a);
    const b = table.intern(words(0x20010db8, 0, 0, 2));
    assert.notEqual(a, b);
    table.hold(a);
    table.forgetReleased();
    assert.equal(table.count, 1, 'b was never held');
    const out = new Uint8Array(16);
    table.copyAddress(a, out, 0);
    assert.deepEqual([...out], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.equal(table.word(a, 0), 0x20010db8);
  });

  it('a release then a hold before forgetReleased keeps the id (a flow ended and began again on one packet)', () => {
    const table = new AddressTable(4);
    const a = table.intern(words(1, 2, 3, 4));
    table.hold(a);
    table.release(a);
    assert.equal(table.intern(words(1, 2, 3, 4)), a);
    table.hold(a);
    table.forgetReleased();
    assert.equal(table.count, 1);
    assert.equal(table.intern(words(1, 2, 3, 4)), a);
  });

  it('random holds and releases against a Map model: ids and counts agree, freed ids are reused', () => {
    const random = prng(42);
    const table = new AddressTable(300);
    const model = new Map<string, { id: number; holders: number }>();
    for (let step = 0; step < 50_000; step++) {
      const key = [1, 0, 0, Math.floor(random() * 400)] as const;
      const name = key.join(':');
      const entry = model.get(name);
      if (entry !== undefined && entry.holders > 0 && random() < 0.5) {
        table.release(entry.id);
        entry.holders--;
      } else if (model.size < 299 || entry !== undefined) {
        const id = table.intern(words(...key));
        assert.ok(id >= 0 && id < 300);
        if (entry !== undefined) assert.equal(id, entry.id, name);
        table.hold(id);
        model.set(name, { id, holders: (entry?.holders ?? 0) + 1 });
      }
      if (step % 7 === 0) {
        table.forgetReleased();
        for (const [k, v] of model) if (v.holders === 0) model.delete(k);
        assert.equal(table.count, model.size);
      }
    }
  });
});

describe('FlowCache over AddressTable ids (the IPv6 cache)', () => {
  it('packets and octets are conserved across expiry, eviction and id reuse', () => {
    const random = prng(7);
    const table = new AddressTable(2 * 64 + 2);
    const clock = { now: 0 };
    let packets = 0;
    let octets = 0;
    const seen = new Set<string>();
    const sink: ExpiredFlowSink = {
      expired(cache, id) {
        packets += cache.packets(id);
        octets += cache.octets(id);
        const out = new Uint8Array(16);
        table.copyAddress(cache.srcAddr(id), out, 0);
        seen.add(Buffer.from(out).toString('hex'));
        table.release(cache.srcAddr(id));
        table.release(cache.dstAddr(id));
      },
    };
    const cache = new FlowCache(64, { activeMs: 60_000, inactiveMs: 5_000, tcpEndMs: 1_000 }, sink, clock);
    let sentPackets = 0;
    let sentOctets = 0;
    for (let i = 0; i < 100_000; i++) {
      clock.now += Math.floor(random() * 20);
      const host = Math.floor(random() * 500);
      const src = table.intern(words(0x20010db8, 0, 0, host));
      const dst = table.intern(words(0x20010db8, 0, 1, 1));
      const length = 40 + Math.floor(random() * 1400);
      cache.account(src, dst, 1000 + host, 443, 6, 0, 1, length, 0x10);
      if (cache.createdLast) {
        table.hold(src);
        table.hold(dst);
      }
      table.forgetReleased();
      sentPackets++;
      sentOctets += length;
      assert.ok(table.count <= 2 * cache.flowCount + 2);
    }
    cache.expireAll();
    table.forgetReleased();
    assert.equal(packets, sentPackets);
    assert.equal(octets, sentOctets);
    assert.equal(table.count, 0, 'every address released');
    assert.ok(seen.size > 400);
  });
});
