/**
 * NetFlow v5 wire format, the exporter's datagram packing and the record batcher.
 *
 * Header (24 bytes):  0 version  2 count  4 sys_uptime  8 unix_secs  12 unix_nsecs
 *                    16 flow_sequence  20 engine_type  21 engine_id  22 sampling_interval
 * Record (48 bytes):  0 srcaddr  4 dstaddr  8 nexthop  12 input  14 output  16 dPkts
 *                    20 dOctets  24 first  28 last  32 srcport  34 dstport  36 pad1
 *                    37 tcp_flags  38 prot  39 tos  40 src_as  42 dst_as  44 src_mask
 *                    45 dst_mask  46 pad2
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { FlowCache } from '../src/cache/flow-cache.js';
import { Collector } from '../src/export/collector.js';
import { Exporter, type ExporterOptions } from '../src/export/exporter.js';
import { RecordBatcher, type DataPlaneClock, type RecordBatch } from '../src/export/record-batch.js';
import { waitFor } from './helpers/processes.js';
import {
  V5_HEADER_BYTES,
  V5_MAX_DATAGRAM_BYTES,
  V5_MAX_RECORDS,
  V5_RECORD_BYTES,
  ipv4ToString,
  readV5Header,
  readV5Record,
  writeV5Header,
  writeV5Record,
  type V5Record,
} from '../src/export/v5.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** A buffer full of 0xee, so a field the writer forgets shows up. */
function dirty(length: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(length).fill(0xee);
  return { bytes, view: new DataView(bytes.buffer) };
}

describe('v5 wire format', () => {
  it('sizes: 24-byte header, 48-byte records, at most 30 per datagram', () => {
    assert.equal(V5_HEADER_BYTES, 24);
    assert.equal(V5_RECORD_BYTES, 48);
    assert.equal(V5_MAX_RECORDS, 30);
    assert.equal(V5_MAX_DATAGRAM_BYTES, 1464);
  });

  it('writeV5Header: golden bytes', () => {
    const { bytes, view } = dirty(24);
    writeV5Header(view, 0, {
      count: 2,
      sysUptime: 3_600_000,
      unixSecs: 1_767_225_600,
      unixNsecs: 123_456_000,
      flowSequence: 1000,
      engineType: 1,
      engineId: 42,
      samplingInterval: 0,
    });
    const expected = [
      '0005', //     0  version 5
      '0002', //     2  count 2
      '0036ee80', // 4  sys_uptime 3,600,000 ms
      '6955b900', // 8  unix_secs 1,767,225,600 (2026-01-01T00:00:00Z)
      '075bca00', // 12 unix_nsecs 123,456,000
      '000003e8', // 16 flow_sequence 1000
      '01', //       20 engine_type 1
      '2a', //       21 engine_id 42
      '0000', //     22 sampling_interval 0
    ].join('');
    assert.equal(hex(bytes), expected);
  });

  it('writeV5Header at an offset leaves the bytes around it alone', () => {
    const { bytes, view } = dirty(30);
    writeV5Header(view, 3, { count: 30, sysUptime: 0, unixSecs: 0, unixNsecs: 0, flowSequence: 0, engineType: 0, engineId: 0, samplingInterval: 0 });
    assert.equal(hex(bytes), 'eeeeee' + '0005' + '001e' + '00'.repeat(20) + 'eeeeee');
  });

  it('writeV5Header wraps sys_uptime and flow_sequence modulo 2^32', () => {
    const { bytes, view } = dirty(24);
    writeV5Header(view, 0, {
      count: 1,
      sysUptime: 2 ** 32 + 7,
      unixSecs: 1,
      unixNsecs: 999_999_999,
      flowSequence: 2 ** 32 + 0x10,
      engineType: 255,
      engineId: 255,
      samplingInterval: 0,
    });
    const expected = [
      '0005', //     version
      '0001', //     count
      '00000007', // sys_uptime 2^32 + 7 → 7
      '00000001', // unix_secs
      '3b9ac9ff', // unix_nsecs 999,999,999
      '00000010', // flow_sequence 2^32 + 16 → 16
      'ff', //       engine_type
      'ff', //       engine_id
      '0000', //     sampling
    ].join('');
    assert.equal(hex(bytes), expected);
  });

  // production writes records in RecordBatcher; this writer makes the exporter tests' batches
  it('writeV5Record: golden bytes, unknown fields zero', () => {
    const { bytes, view } = dirty(48);
    writeV5Record(
      view,
      0,
      0x0a000001, // 10.0.0.1
      0xc0a80102, // 192.168.1.2
      7, // input ifIndex
      3, // packets
      1500, // octets
      0x1000, // first
      0x2000, // last
      443, // srcport
      51234, // dstport
      0x1b, // tcp flags: ACK PSH SYN FIN
      6, // TCP
      0x10, // tos
    );
    const expected = [
      '0a000001', // 0  srcaddr 10.0.0.1
      'c0a80102', // 4  dstaddr 192.168.1.2
      '00000000', // 8  nexthop
      '0007', //     12 input 7
      '0000', //     14 output
      '00000003', // 16 dPkts 3
      '000005dc', // 20 dOctets 1500
      '00001000', // 24 first
      '00002000', // 28 last
      '01bb', //     32 srcport 443
      'c822', //     34 dstport 51234
      '00', //       36 pad1
      '1b', //       37 tcp_flags
      '06', //       38 prot TCP
      '10', //       39 tos
      '0000', //     40 src_as
      '0000', //     42 dst_as
      '00', //       44 src_mask
      '00', //       45 dst_mask
      '0000', //     46 pad2
    ].join('');
    assert.equal(hex(bytes), expected);
  });

  it('writeV5Record: extreme values (unsigned addresses, 2^32 - 1 counters, wrapped uptimes, 16-bit input)', () => {
    const { bytes, view } = dirty(48);
    writeV5Record(view, 0, 0xffffffff, 0x80000000, 0x12345, 0xffffffff, 0xffffffff, 2 ** 32 + 1, 2 ** 32 + 2, 65535, 0, 0xff, 255, 255);
    const expected = [
      'ffffffff', // srcaddr 255.255.255.255
      '80000000', // dstaddr 128.0.0.0
      '00000000', // nexthop
      '2345', //     input 0x12345 & 0xffff
      '0000', //     output
      'ffffffff', // dPkts
      'ffffffff', // dOctets
      '00000001', // first 2^32 + 1 → 1
      '00000002', // last  2^32 + 2 → 2
      'ffff', //     srcport
      '0000', //     dstport
      '00', //       pad1
      'ff', //       tcp_flags
      'ff', //       prot
      'ff', //       tos
      '00'.repeat(8), // AS, masks, pad2
    ].join('');
    assert.equal(hex(bytes), expected);
  });

  it('round-trips through readV5Header and readV5Record', () => {
    const buffer = new ArrayBuffer(V5_HEADER_BYTES + 2 * V5_RECORD_BYTES);
    const view = new DataView(buffer);
    const header = {
      count: 2,
      sysUptime: 0xfedcba98,
      unixSecs: 1_767_225_600,
      unixNsecs: 500_000_000,
      flowSequence: 0x89abcdef,
      engineType: 3,
      engineId: 200,
      samplingInterval: 0,
    };
    writeV5Header(view, 0, header);
    const records: V5Record[] = [
      { srcAddr: 0x01020304, dstAddr: 0x05060708, nextHop: 0, input: 1, output: 0, packets: 10, octets: 15000, first: 100, last: 200, srcPort: 53, dstPort: 60000, tcpFlags: 0, protocol: 17, tos: 0 },
      { srcAddr: 0xfffffffe, dstAddr: 0x7f000001, nextHop: 0, input: 65535, output: 0, packets: 0xffffffff, octets: 0xffffffff, first: 0xfffffff0, last: 0xffffffff, srcPort: 1, dstPort: 2, tcpFlags: 0x3f, protocol: 6, tos: 0xfc },
    ];
    for (const [i, r] of records.entries()) {
      writeV5Record(view, V5_HEADER_BYTES + i * V5_RECORD_BYTES, r.srcAddr, r.dstAddr, r.input, r.packets, r.octets, r.first, r.last, r.srcPort, r.dstPort, r.tcpFlags, r.protocol, r.tos);
    }
    assert.deepEqual(readV5Header(view), { version: 5, ...header });
    for (const [i, r] of records.entries()) assert.deepEqual(readV5Record(view, V5_HEADER_BYTES + i * V5_RECORD_BYTES), r);
  });

  it('ipv4ToString', () => {
    assert.equal(ipv4ToString(0x0a000001), '10.0.0.1');
    assert.equal(ipv4ToString(0xffffffff), '255.255.255.255');
    assert.equal(ipv4ToString(0), '0.0.0.0');
  });
});

describe('the datagrams production puts on the wire: golden bytes', () => {
  it('flows → FlowCache → RecordBatcher → Exporter → Collector (UDP): every byte as v5 defines it', async () => {
    const receiver = createSocket('udp4');
    const received: Buffer[] = [];
    receiver.on('message', (message) => received.push(message));
    await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
    const collector = await Collector.open({ host: '127.0.0.1', port: receiver.address().port }, { holdWhileUnresolved: 0 });
    try {
      // the data plane as the capture worker wires it: one clock, cache → batcher → exporter
      const boot = 1_767_225_600_000; // 2026-01-01T00:00:00Z is sys_uptime 0
      const clock: DataPlaneClock = { now: boot, boot, wallOffset: 0 };
      const batches: RecordBatch[] = [];
      const batcher = new RecordBatcher(clock, (b) => batches.push(b));
      const cache = new FlowCache(16, { activeMs: 1e9, inactiveMs: 1e9, tcpEndMs: 1e9 }, batcher, clock);
      const exporter = new Exporter([collector], { ...OPTIONS, engineType: 7, engineId: 42 }, noLog);
      const exportBatches = async (): Promise<void> => {
        for (const batch of batches.splice(0)) exporter.enqueue(batch, () => undefined);
        await exporter.drain();
      };
      // account(src, dst, sport, dport, protocol, tos, ifIndex, octets, tcpFlags) at the clock's time
      clock.now = boot + 1000.25;
      cache.account(0x0a000001, 0xc0a80102, 443, 51234, 6, 0x10, 7, 60, 0x02); //     10.0.0.1 → 192.168.1.2, SYN
      clock.now = boot + 2500.75;
      cache.account(0x0a000001, 0xc0a80102, 443, 51234, 6, 0x10, 7, 1500, 0x18); //   ACK PSH
      clock.now = boot + 2600.9;
      cache.account(0xcb0071c8, 0x08080808, 5353, 53, 17, 0xb8, 70000, 80, 0); //       203.0.113.200 → 8.8.8.8
      clock.now = boot + 3_600_000.5;
      cache.expireAll();
      batcher.flush();
      await exportBatches();
      // a second, shorter datagram, assembled in the buffer the first one used
      clock.now = boot + 3_700_000;
      cache.account(0x0a010203, 0x0a030201, 0, 0x0800, 1, 0, 0, 84, 0); //              10.1.2.3 → 10.3.2.1, ICMP echo
      clock.now = boot + 3_700_001;
      cache.expireAll();
      batcher.flush();
      await exportBatches();
      await waitFor(() => received.length >= 2, 10_000, 'both datagrams to arrive');

      const zeros = [
        '0000', //     40  src_as
        '0000', //     42  dst_as
        '00', //       44  src_mask
        '00', //       45  dst_mask
        '0000', //     46  pad2
      ];
      const first = [
        // header
        '0005', //     0  version 5
        '0002', //     2  count 2
        '0036ee80', // 4  sys_uptime 3,600,000 ms (the clock at the batch's close, less boot)
        '6955c710', // 8  unix_secs 1,767,229,200
        '0007a120', // 12 unix_nsecs 500,000 (the .5 ms)
        '00000000', // 16 flow_sequence 0
        '07', //       20 engine_type 7
        '2a', //       21 engine_id 42
        '0000', //     22 sampling_interval 0
        // record 1: the TCP flow (created first, exported first)
        '0a000001', // 0  srcaddr 10.0.0.1
        'c0a80102', // 4  dstaddr 192.168.1.2
        '00000000', // 8  nexthop
        '0007', //     12 input 7
        '0000', //     14 output
        '00000002', // 16 dPkts 2
        '00000618', // 20 dOctets 1560 (60 + 1500)
        '000003e8', // 24 first 1000 (1000.25 ms after boot)
        '000009c4', // 28 last 2500
        '01bb', //     32 srcport 443
        'c822', //     34 dstport 51234
        '00', //       36 pad1
        '1a', //       37 tcp_flags SYN | PSH | ACK
        '06', //       38 prot TCP
        '10', //       39 tos
        ...zeros,
        // record 2: the UDP flow
        'cb0071c8', // 0  srcaddr 203.0.113.200
        '08080808', // 4  dstaddr 8.8.8.8
        '00000000', // 8  nexthop
        '1170', //     12 input 70000 mod 2^16 = 4464
        '0000', //     14 output
        '00000001', // 16 dPkts 1
        '00000050', // 20 dOctets 80
        '00000a28', // 24 first 2600
        '00000a28', // 28 last 2600
        '14e9', //     32 srcport 5353
        '0035', //     34 dstport 53
        '00', //       36 pad1
        '00', //       37 tcp_flags
        '11', //       38 prot UDP
        'b8', //       39 tos
        ...zeros,
      ].join('');
      const second = [
        '0005', //     0  version 5
        '0001', //     2  count 1
        '00387521', // 4  sys_uptime 3,700,001 ms
        '6955c774', // 8  unix_secs 1,767,229,300
        '000f4240', // 12 unix_nsecs 1,000,000
        '00000002', // 16 flow_sequence 2: two records went before
        '07', //       20 engine_type
        '2a', //       21 engine_id
        '0000', //     22 sampling_interval
        '0a010203', // 0  srcaddr 10.1.2.3
        '0a030201', // 4  dstaddr 10.3.2.1
        '00000000', // 8  nexthop
        '0000', //     12 input 0
        '0000', //     14 output
        '00000001', // 16 dPkts 1
        '00000054', // 20 dOctets 84
        '00387520', // 24 first 3,700,000
        '00387520', // 28 last
        '0000', //     32 srcport 0 (ICMP)
        '0800', //     34 dstport: type 8, code 0
        '00', //       36 pad1
        '00', //       37 tcp_flags
        '01', //       38 prot ICMP
        '00', //       39 tos
        ...zeros,
      ].join('');
      assert.deepEqual(
        received.map((d) => d.toString('hex')),
        [first, second],
      );
    } finally {
      await collector.close();
      receiver.close();
    }
  });
});

// ---------------------------------------------------------------------------
// Exporter

const OPTIONS: ExporterOptions = { engineType: 1, engineId: 9, rateLimit: 1_000_000, maxQueuedDatagrams: 1000, dropWhenFull: false };

const noLog = { sendFailed: (): void => assert.fail('no send should fail') };

/** A batch of `count` distinct records: record i has srcaddr 10.0.i.i, packets i + 1, ports i / 1000 + i. */
function makeBatch(count: number, unixMs = 1_767_225_600_000, uptimeMs = 60_000): RecordBatch {
  const records = new ArrayBuffer(count * V5_RECORD_BYTES);
  const view = new DataView(records);
  for (let i = 0; i < count; i++) {
    writeV5Record(view, i * V5_RECORD_BYTES, (0x0a000000 | (i << 8) | i) >>> 0, 0xc0a80001, 2, i + 1, 100 * (i + 1), i, i + 10, i, 1000 + i, 0x10, 6, 0);
  }
  return { family: 4, records, attributes: new ArrayBuffer(count * 4), count, unixMs, uptimeMs };
}

interface FakeCollector {
  datagrams: Buffer[];
  /** performance.now() at each send */
  sentAt: number[];
  collector: Collector;
  errors: Map<string, number>;
}

/**
 * A Collector look-alike that keeps a copy of each datagram (the exporter reuses
 * its buffers once a send completes) and completes sends asynchronously.
 */
function fakeCollector(fail: (n: number) => Error | null = () => null): FakeCollector {
  const datagrams: Buffer[] = [];
  const sentAt: number[] = [];
  const errors = new Map<string, number>();
  const fake = {
    label: 'fake:2055',
    datagramsSent: 0,
    recordsSent: 0,
    errors,
    send(datagram: Buffer, length: number, done: (error: Error | null) => void): void {
      sentAt.push(performance.now());
      datagrams.push(Buffer.from(datagram.subarray(0, length)));
      const error = fail(datagrams.length);
      setImmediate(() => done(error));
    },
    countError(error: NodeJS.ErrnoException): string {
      const reason = error.code ?? 'unknown';
      errors.set(reason, (errors.get(reason) ?? 0) + 1);
      return reason;
    },
  };
  return { datagrams, sentAt, collector: fake as unknown as Collector, errors };
}

function viewOf(datagram: Buffer): DataView {
  return new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
}

describe('Exporter', () => {
  it('with no collectors: 65 records → 3 datagrams of 30, 30, 5; flowSequence 65', async () => {
    const exporter = new Exporter([], OPTIONS, noLog);
    const done: number[] = [];
    exporter.enqueue(makeBatch(65), (n) => done.push(n));
    assert.equal(exporter.flowSequence, 65);
    assert.equal(exporter.queuedDatagrams, 3);
    await exporter.drain();
    assert.deepEqual(done, [30, 30, 5]);
    assert.deepEqual(exporter.stats, {
      datagramsBuilt: 3,
      recordsBuilt: 65,
      datagramsDropped: 0,
      recordsDropped: 0,
      datagramsAbandoned: 0,
      recordsAbandoned: 0,
    });
    assert.equal(exporter.queuedDatagrams, 0);
  });

  it('datagram bytes: 24 + 48·n, counts, flow_sequence 0, 30, 60, records in order', async () => {
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    const batch = makeBatch(65, 1_767_225_600_250, 3_600_000.9);
    const done: number[] = [];
    exporter.enqueue(batch, (n) => done.push(n));
    await exporter.drain();
    assert.deepEqual(
      fake.datagrams.map((d) => d.length),
      [24 + 48 * 30, 24 + 48 * 30, 24 + 48 * 5],
    );
    const batchView = new DataView(batch.records);
    let recordIndex = 0;
    for (const [i, datagram] of fake.datagrams.entries()) {
      const view = viewOf(datagram);
      const header = readV5Header(view);
      assert.deepEqual(header, {
        version: 5,
        count: [30, 30, 5][i],
        sysUptime: 3_600_000,
        unixSecs: 1_767_225_600,
        unixNsecs: 250_000_000,
        flowSequence: [0, 30, 60][i],
        engineType: 1,
        engineId: 9,
        samplingInterval: 0,
      });
      for (let r = 0; r < header.count; r++, recordIndex++) {
        assert.deepEqual(readV5Record(view, V5_HEADER_BYTES + r * V5_RECORD_BYTES), readV5Record(batchView, recordIndex * V5_RECORD_BYTES));
      }
    }
    assert.equal(recordIndex, 65);
    assert.equal(exporter.flowSequence, 65);
    assert.deepEqual(done, [30, 30, 5]);
    const sent = fake.collector as unknown as { datagramsSent: number; recordsSent: number };
    assert.equal(sent.datagramsSent, 3);
    assert.equal(sent.recordsSent, 65);
  });

  it('flow_sequence continues across batches and wraps modulo 2^32', async () => {
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    exporter.enqueue(makeBatch(7), () => {});
    exporter.enqueue(makeBatch(30), () => {});
    exporter.flowSequence = 2 ** 32 - 10;
    exporter.enqueue(makeBatch(31), () => {});
    await exporter.drain();
    assert.deepEqual(
      fake.datagrams.map((d) => [readV5Header(viewOf(d)).flowSequence, readV5Header(viewOf(d)).count]),
      [
        [0, 7],
        [7, 30],
        [2 ** 32 - 10, 30],
        [20, 1],
      ],
    );
    assert.equal(exporter.flowSequence, 21);
  });

  it('an empty batch sends nothing', async () => {
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    exporter.enqueue(makeBatch(0), () => assert.fail('nothing to be done'));
    await exporter.drain();
    assert.equal(fake.datagrams.length, 0);
    assert.equal(exporter.flowSequence, 0);
  });

  it('unix_nsecs is nanoseconds: 1767225600123.5 ms → 1767225600 s + 123,500,000 ns', async () => {
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    exporter.enqueue(makeBatch(1, 1_767_225_600_123.5), () => {});
    exporter.enqueue(makeBatch(1, 1_767_225_600_000), () => {});
    exporter.enqueue(makeBatch(1, 1_767_225_600_999.999), () => {});
    await exporter.drain();
    const headers = fake.datagrams.map((d) => readV5Header(viewOf(d)));
    assert.deepEqual(
      headers.map((h) => [h.unixSecs, h.unixNsecs]),
      [
        [1_767_225_600, 123_500_000],
        [1_767_225_600, 0],
        [1_767_225_600, headers[2]!.unixNsecs],
      ],
    );
    assert.ok(Math.abs(headers[2]!.unixNsecs - 999_999_000) < 1000, `${headers[2]!.unixNsecs}`);
    for (const h of headers) assert.ok(h.unixNsecs <= 999_999_999);
  });

  it('unix_nsecs for 1767225600123.456 ms is 123,456,000 ns to within the precision of a double', async () => {
    // 1767225600123.456 is stored as 1767225600123.4560546875: exactly 123,456,054 ns.
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    exporter.enqueue(makeBatch(1, 1_767_225_600_123.456), () => {});
    await exporter.drain();
    const h = readV5Header(viewOf(fake.datagrams[0]!));
    assert.equal(h.unixSecs, 1_767_225_600);
    assert.ok(Math.abs(h.unixNsecs - 123_456_000) < 1000, `unix_nsecs ${h.unixNsecs}`);
  });

  it('drops when the queue is full (dropWhenFull): sequence still advances, drops counted, done() called', async () => {
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], { ...OPTIONS, dropWhenFull: true, maxQueuedDatagrams: 1 }, noLog);
    const done: number[] = [];
    exporter.enqueue(makeBatch(65), (n) => done.push(n));
    // the 2nd and 3rd datagrams found the queue full
    assert.deepEqual(done, [30, 5], 'dropped records are done at once');
    assert.equal(exporter.flowSequence, 65);
    assert.deepEqual(exporter.stats, {
      datagramsBuilt: 3,
      recordsBuilt: 65,
      datagramsDropped: 2,
      recordsDropped: 35,
      datagramsAbandoned: 0,
      recordsAbandoned: 0,
    });
    await exporter.drain();
    assert.deepEqual(done, [30, 5, 30]);
    exporter.enqueue(makeBatch(3), (n) => done.push(n));
    await exporter.drain();
    assert.deepEqual(done, [30, 5, 30, 3]);
    // the collector sees the gap: 0 (30 records), then 65
    assert.deepEqual(
      fake.datagrams.map((d) => [readV5Header(viewOf(d)).flowSequence, readV5Header(viewOf(d)).count]),
      [
        [0, 30],
        [65, 3],
      ],
    );
    assert.equal(exporter.stats.datagramsDropped, 2);
  });

  it('abandon: queued datagrams and every later one are counted as abandoned, not sent; done() is called for each', async () => {
    const fake = fakeCollector();
    // 1 datagram per second: the second and third wait in the queue
    const exporter = new Exporter([fake.collector], { ...OPTIONS, rateLimit: 1 }, noLog);
    const done: number[] = [];
    exporter.enqueue(makeBatch(65), (n) => done.push(n));
    await new Promise((r) => setImmediate(r));
    assert.equal(fake.datagrams.length, 1, 'the first went at once');
    assert.deepEqual(exporter.abandon(), { datagrams: 2, records: 35 });
    exporter.enqueue(makeBatch(10), (n) => done.push(n));
    await exporter.drain();
    assert.deepEqual(done.sort((a, b) => a - b), [5, 10, 30, 30]);
    assert.equal(fake.datagrams.length, 1, 'nothing more was sent');
    assert.deepEqual(
      { abandoned: exporter.stats.datagramsAbandoned, records: exporter.stats.recordsAbandoned, dropped: exporter.stats.datagramsDropped },
      { abandoned: 3, records: 45, dropped: 0 },
    );
    assert.equal(exporter.flowSequence, 75);
  });

  for (const [name, dropWhenFull, keepEverything] of [
    ['without dropWhenFull', false, false],
    ['with dropWhenFull after keepEverything (the final flush)', true, true],
  ] as const) {
    it(`${name} the queue grows past maxQueuedDatagrams: every datagram is sent, in sequence`, async () => {
      const fake = fakeCollector();
      const exporter = new Exporter([fake.collector], { ...OPTIONS, dropWhenFull, maxQueuedDatagrams: 1 }, noLog);
      if (keepEverything) exporter.keepEverything();
      let total = 0;
      exporter.enqueue(makeBatch(65), (n) => (total += n));
      assert.equal(exporter.queuedDatagrams, 3);
      await exporter.drain();
      assert.equal(total, 65);
      assert.equal(exporter.stats.datagramsDropped, 0);
      assert.deepEqual(
        fake.datagrams.map((d) => readV5Header(viewOf(d)).flowSequence),
        [0, 30, 60],
      );
    });
  }

  it('sends every datagram to every collector; a failed send is logged and still completes', async () => {
    const ok = fakeCollector();
    const failing = fakeCollector((n) => (n === 2 ? Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) : null));
    const failures: string[] = [];
    const exporter = new Exporter([ok.collector, failing.collector], OPTIONS, {
      sendFailed: (_collector, reason) => failures.push(reason),
    });
    const done: number[] = [];
    exporter.enqueue(makeBatch(65), (n) => done.push(n));
    await exporter.drain();
    assert.equal(ok.datagrams.length, 3);
    assert.equal(failing.datagrams.length, 3);
    assert.deepEqual(ok.datagrams, failing.datagrams);
    assert.deepEqual(failures, ['ECONNREFUSED']);
    assert.deepEqual(failing.errors, new Map([['ECONNREFUSED', 1]]));
    assert.deepEqual(done, [30, 30, 5]);
  });

  it('paces at its rate: after the burst (1/100 s of the rate), never faster', async () => {
    // 10,000 datagrams/s: a burst of 100, then 500 more take at least 50 ms
    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], { ...OPTIONS, rateLimit: 10_000 }, noLog);
    for (let i = 0; i < 20; i++) exporter.enqueue(makeBatch(900), () => undefined);
    await exporter.drain();
    const { sentAt } = fake;
    assert.equal(sentAt.length, 600);
    // Datagram k (from 0) is sent no sooner after the first than the bucket allows,
    // give or take the 2 ms the first send may trail the bucket's refill; a slow
    // machine only makes it later.
    for (let k = 200; k < 600; k += 50) {
      const after = sentAt[k]! - sentAt[0]!;
      assert.ok(after >= ((k - 100) / 10_000) * 1000 - 2, `datagram ${k} sent ${after.toFixed(2)} ms after the first`);
    }
  });
});

// ---------------------------------------------------------------------------
// RecordBatcher

describe('RecordBatcher', () => {
  const TIMEOUTS = { activeMs: 1e9, inactiveMs: 1e9, tcpEndMs: 1e9 };

  it('writes each expired flow as a v5 record with first/last = floor(time − boot)', () => {
    const boot = 1_767_225_600_000.7;
    const clock: DataPlaneClock = { now: boot, boot, wallOffset: 0 };
    const batches: RecordBatch[] = [];
    const batcher = new RecordBatcher(clock, (b) => batches.push(b));
    const cache = new FlowCache(8, TIMEOUTS, batcher, clock);
    const t1 = boot + 1000.2;
    const t2 = boot + 2500.9;
    clock.now = t1;
    cache.account(0x0a000001, 0x0a000002, 1234, 80, 6, 0x20, 3, 60, 0x02);
    clock.now = t2;
    cache.account(0x0a000001, 0x0a000002, 1234, 80, 6, 0x20, 3, 1500, 0x18);
    cache.account(0xc0a80001, 0x08080808, 5353, 53, 17, 0, 70000, 80, 0);
    clock.now = boot + 3000.5;
    cache.expireAll();
    assert.equal(batcher.pending, 2);
    assert.equal(batches.length, 0, 'nothing until flush');
    batcher.flush();
    assert.equal(batcher.pending, 0);
    assert.equal(batches.length, 1);
    const batch = batches[0]!;
    assert.equal(batch.count, 2);
    assert.equal(batch.unixMs, clock.now);
    assert.equal(batch.uptimeMs, clock.now - boot);
    const view = new DataView(batch.records);
    assert.deepEqual(readV5Record(view, 0), {
      srcAddr: 0x0a000001,
      dstAddr: 0x0a000002,
      nextHop: 0,
      input: 3,
      output: 0,
      packets: 2,
      octets: 1560,
      first: Math.floor(t1 - boot),
      last: Math.floor(t2 - boot),
      srcPort: 1234,
      dstPort: 80,
      tcpFlags: 0x1a,
      protocol: 6,
      tos: 0x20,
    });
    assert.equal(readV5Record(view, 0).first, 1000, 'floor(1000.2)');
    assert.equal(readV5Record(view, 0).last, 2500);
    assert.deepEqual(readV5Record(view, V5_RECORD_BYTES), {
      srcAddr: 0xc0a80001,
      dstAddr: 0x08080808,
      nextHop: 0,
      input: 70000 & 0xffff,
      output: 0,
      packets: 1,
      octets: 80,
      first: 2500,
      last: 2500,
      srcPort: 5353,
      dstPort: 53,
      tcpFlags: 0,
      protocol: 17,
      tos: 0,
    });
    batcher.flush();
    assert.equal(batches.length, 1, 'an empty flush hands over nothing');
  });

  it('wraps first and last modulo 2^32 ms (49.7 days of uptime), as v5 does', () => {
    const boot = 1_000_000;
    const clock: DataPlaneClock = { now: boot, boot, wallOffset: 0 };
    const batches: RecordBatch[] = [];
    const batcher = new RecordBatcher(clock, (b) => batches.push(b));
    const cache = new FlowCache(8, { activeMs: 2 ** 40, inactiveMs: 2 ** 40, tcpEndMs: 2 ** 40 }, batcher, clock);
    clock.now = boot + 2 ** 32 - 2;
    cache.account(0xffffffff, 0x80000000, 65535, 65535, 6, 0xff, 0xffff, 65535, 0xff);
    clock.now = boot + 2 ** 32 + 5.5;
    cache.account(0xffffffff, 0x80000000, 65535, 65535, 6, 0xff, 0xffff, 65535, 0xff);
    cache.expireAll();
    batcher.flush();
    const record = readV5Record(new DataView(batches[0]!.records), 0);
    assert.deepEqual(record, {
      srcAddr: 0xffffffff,
      dstAddr: 0x80000000,
      nextHop: 0,
      input: 0xffff,
      output: 0,
      packets: 2,
      octets: 131070,
      first: 2 ** 32 - 2,
      last: 5,
      srcPort: 65535,
      dstPort: 65535,
      tcpFlags: 0xff,
      protocol: 6,
      tos: 0xff,
    });
  });

  it('flushes on its own every recordsPerBatch records, each batch in a fresh buffer', () => {
    const clock: DataPlaneClock = { now: 0, boot: 0, wallOffset: 0 };
    const batches: RecordBatch[] = [];
    const batcher = new RecordBatcher(clock, (b) => batches.push(b), 4);
    const cache = new FlowCache(16, TIMEOUTS, batcher, clock);
    for (let i = 0; i < 10; i++) {
      clock.now = i;
      cache.account(1, 2, i, 0, 17, 0, 0, 100, 0);
    }
    clock.now = 10;
    cache.expireAll();
    batcher.flush();
    assert.deepEqual(
      batches.map((b) => b.count),
      [4, 4, 2],
    );
    assert.equal(new Set(batches.map((b) => b.records)).size, 3);
    const ports = batches.flatMap((b) => Array.from({ length: b.count }, (_, i) => readV5Record(new DataView(b.records), i * V5_RECORD_BYTES).srcPort));
    assert.deepEqual(ports, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('the exported header sys_uptime is ≥ every record’s last', async () => {
    const boot = 1_767_225_600_000.3;
    const clock: DataPlaneClock = { now: boot, boot, wallOffset: 0 };
    const batches: RecordBatch[] = [];
    const batcher = new RecordBatcher(clock, (b) => batches.push(b), 1024);
    const cache = new FlowCache(64, { activeMs: 5000, inactiveMs: 1500, tcpEndMs: 500 }, batcher, clock);
    let seed = 12345;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let step = 0; step < 2000; step++) {
      clock.now += random() * 17.3;
      cache.account(0x0a000000 + Math.floor(random() * 100), 0x0a0000ff, 1, 2, 17, 0, 0, 64, 0);
      if (step % 50 === 0) {
        cache.expireTimedOut(clock.now);
        batcher.flush();
      }
    }
    cache.expireAll();
    batcher.flush();
    assert.ok(batches.length > 5);

    const fake = fakeCollector();
    const exporter = new Exporter([fake.collector], OPTIONS, noLog);
    for (const b of batches) exporter.enqueue(b, () => {});
    await exporter.drain();
    let records = 0;
    for (const d of fake.datagrams) {
      const view = viewOf(d);
      const h = readV5Header(view);
      for (let r = 0; r < h.count; r++) {
        const rec = readV5Record(view, V5_HEADER_BYTES + r * V5_RECORD_BYTES);
        assert.ok(rec.first <= rec.last, `first ${rec.first} last ${rec.last}`);
        assert.ok(h.sysUptime >= rec.last, `sys_uptime ${h.sysUptime} < last ${rec.last}`);
        records++;
      }
    }
    assert.equal(records, batches.reduce((s, b) => s + b.count, 0));
  });
});
