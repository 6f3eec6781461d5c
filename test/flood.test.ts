/**
 * The flow cache under a flood of new 5-tuples (a SYN scan from random sources)
 * while a few legitimate long flows run: the cache stays at its capacity by
 * forcing the least recently seen flows out (counted cache_full), and the long
 * flows reach a real nfcapd with their exact packet and octet totals.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Nfcapd } from './helpers/nfcapd.js';
import { runProbe, summaryText } from './helpers/processes.js';
import { prng } from './helpers/synthetic-pcap.js';

const LEGIT = [
  { src: '192.0.2.10', dst: '198.51.100.20', sport: 40001, dport: 443, proto: 6, payload: 1000 },
  { src: '198.51.100.20', dst: '192.0.2.10', sport: 443, dport: 40001, proto: 6, payload: 40 },
  { src: '192.0.2.11', dst: '198.51.100.21', sport: 5004, dport: 5004, proto: 17, payload: 172 },
  { src: '192.0.2.12', dst: '198.51.100.22', sport: 40002, dport: 22, proto: 6, payload: 100 },
] as const;

const ip4 = (s: string): number[] => s.split('.').map(Number);

/** Ethernet + IPv4 (+ TCP 20 or UDP 8) + payload zeros. */
function frame(src: number[], dst: number[], proto: number, sport: number, dport: number, payload: number, tcpFlags: number): Buffer {
  const l4 = proto === 6 ? 20 : 8;
  const ipLength = 20 + l4 + payload;
  const f = Buffer.alloc(14 + ipLength);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(ipLength, 16);
  f[22] = 64;
  f[23] = proto;
  f.set(src, 26);
  f.set(dst, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  if (proto === 6) {
    f[46] = 5 << 4;
    f[47] = tcpFlags;
  } else {
    f.writeUInt16BE(8 + payload, 38);
  }
  return f;
}

describe('cache full under a SYN flood', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-flood-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  test('-m 512 and 300k scan packets: forced expiry, counted; the long flows exported with their exact totals', async () => {
    const path = join(work, 'flood.pcap');
    const random = prng(77);
    const fd = openSync(path, 'w');
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(65535, 16);
    header.writeUInt32LE(1, 20);
    writeSync(fd, header);
    const expected = new Map<string, { packets: number; octets: number }>();
    let micros = 0;
    const write = (f: Buffer): void => {
      const rec = Buffer.alloc(16);
      rec.writeUInt32LE(1767225600 + Math.floor(micros / 1e6), 0);
      rec.writeUInt32LE(micros % 1e6, 4);
      rec.writeUInt32LE(f.length, 8);
      rec.writeUInt32LE(f.length, 12);
      writeSync(fd, Buffer.concat([rec, f]));
    };
    const scanPackets = 300_000;
    // 300k packets over 60 s of capture time: 200 µs apart; a legitimate packet every 50th
    for (let i = 0; i < scanPackets; i++) {
      micros += 200;
      const src = [10, Math.floor(random() * 256), Math.floor(random() * 256), 1 + Math.floor(random() * 254)];
      write(frame(src, ip4('203.0.113.5'), 6, 1024 + Math.floor(random() * 60000), 1 + Math.floor(random() * 1024), 0, 0x02));
      if (i % 50 === 0) {
        const l = LEGIT[(i / 50) % LEGIT.length]!;
        const f = frame(ip4(l.src), ip4(l.dst), l.proto, l.sport, l.dport, l.payload, 0x18);
        write(f);
        const key = `${l.src} ${l.dst} ${l.proto} ${l.sport} ${l.dport}`;
        const t = expected.get(key) ?? { packets: 0, octets: 0 };
        t.packets++;
        t.octets += f.length - 14;
        expected.set(key, t);
      }
    }
    closeSync(fd);

    const nfcapd = await Nfcapd.start();
    try {
      const result = await runProbe(['-r', path, '-n', `127.0.0.1:${nfcapd.port}`, '-m', '512']);
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();
      const summary = summaryText(result.stderr);
      const cacheFull = Number(/cache_full (\d+)/.exec(summary)?.[1]);
      const created = Number(/flows created: (\d+)/.exec(summary)?.[1]);
      const records = Number(/records exported: (\d+)/.exec(summary)?.[1]);
      assert.ok(cacheFull > scanPackets / 2, `forced expiry counted (${cacheFull})\n${summary}`);
      assert.equal(records, created, 'every flow created was exported');
      assert.match(summary, /packets skipped: 0/);
      const totals = await nfcapd.totals();
      for (const [key, t] of expected) assert.deepEqual(totals.get(key), t, key);
      const stat = await nfcapd.stat();
      assert.equal(stat['Flows'], records, 'nfcapd has every record');
      assert.equal(stat['Packets'], scanPackets + scanPackets / 50, 'and every packet');
    } finally {
      await nfcapd.dispose();
    }
  });
});
