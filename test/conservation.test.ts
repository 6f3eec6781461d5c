/**
 * Conservation on the benchmark's captures: every packet and octet the capture
 * holds reaches a real nfcapd, per 5-tuple, with a flow cache holding ~1 M flows.
 * The generator's own per-flow counts are the source of truth.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Nfcapd } from './helpers/nfcapd.js';
import { runProbe } from './helpers/processes.js';
import { SYNTHETIC_IP_LENGTH, flowKeyOf, writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-conservation-'));
after(() => rmSync(work, { recursive: true, force: true }));

const CAPTURES = [
  { name: '1.5M packets, 50k flows', packets: 1_500_000, flows: 50_000, seed: 1 },
  { name: '3M packets, 950k concurrent flows', packets: 3_000_000, flows: 950_000, seed: 2 },
];

for (const capture of CAPTURES) {
  test(`benchmark capture (${capture.name}): nfcapd gets every packet and octet per 5-tuple`, async () => {
    const file = join(work, 'capture.pcap');
    const written = writeSyntheticCapture({ path: file, ...capture });
    const nfcapd = await Nfcapd.start();
    try {
      const result = await runProbe(['-r', file, '-n', `127.0.0.1:${nfcapd.port}`, '-m', '2000000']);
      assert.equal(result.code, 0, result.stderr);
      const log = await nfcapd.stop();
      assert.match(log, /Sequence Errors: 0, Bad Packets: 0/, log);
      const totals = await nfcapd.totals();
      assert.equal(totals.size, capture.flows, 'one 5-tuple per generated flow');
      let packets = 0;
      for (let i = 0; i < capture.flows; i++) {
        const expected = written.perFlowPackets[i]!;
        const got = totals.get(flowKeyOf(i));
        if (got?.packets !== expected || got.octets !== expected * SYNTHETIC_IP_LENGTH) {
          assert.fail(`flow ${flowKeyOf(i)}: expected ${expected} packets, got ${JSON.stringify(got)}`);
        }
        packets += got.packets;
      }
      assert.equal(packets, capture.packets);
    } finally {
      await nfcapd.dispose();
      rmSync(file, { force: true });
    }
  });
}
