/**
 * Soak: a live probe on a veth pair between two namespaces, fed by tcpreplay with
 * many flows for SOAK_SECONDS (60 by default; set it higher for a long
 * run), timeouts short enough that the cache keeps turning over. Its RSS, read from
 * /proc/PID/status every second, stays flat after the warm-up (a generous bound, not
 * a rate), and what reached nfcapd reconciles with what the probe captured:
 * nfcapd's packets = captured − skipped. No rate is asserted: a slow machine may
 * capture less (libpcap's drops are counted), but never loses what it captured.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair, namespaceForSuite } from './helpers/netns.js';
import { start, startProbe, stopped, summaryText, waitFor } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const skip = needsRoot('network namespaces');
const SECONDS = Math.max(20, Number(process.env['SOAK_SECONDS'] ?? 60));
/** RSS samples before this are the warm-up (the heap and pools grow to their working size) */
const WARM_UP_SECONDS = Math.min(20, Math.floor(SECONDS / 3));

function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined; // exited
  }
}

describe(`soak: ${SECONDS} s of live replay`, { skip }, () => {
  const net = new VethPair('s');
  const work = namespaceForSuite(net, 'soak');

  test('RSS flat after warm-up; nfcapd packets = captured − skipped; nothing dropped on the export side', { timeout: (SECONDS + 120) * 1000 }, async () => {
    const capture = join(work, 'soak.pcap');
    // 100k flows in 300k packets: looped, each pass renews flows the timeouts have expired
    writeSyntheticCapture({ path: capture, packets: 300_000, flows: 100_000, seed: 99 });
    const nfcapd = await Nfcapd.start({ prefix: net.exec(net.nsB) });
    const probe = startProbe(
      ['-i', net.ifB, '-n', `127.0.0.1:${nfcapd.port}`, '--inactive-timeout', '2', '--active-timeout', '10', '--status-interval', '10', '-m', '65536'],
      { prefix: net.exec(net.nsB) },
    );
    const replay = start('ip', [
      'netns', 'exec', net.nsA,
      'tcpreplay', '-q', '-i', net.ifA, '--pps', '20000', '--loop', '1000', `--duration=${SECONDS}`, capture,
    ]);
    try {
      await waitFor(() => probe.stderrSoFar().includes('capturing on') || probe.child.exitCode !== null, 10_000, 'the probe to open the capture');
      assert.equal(probe.child.exitCode, null, probe.stderrSoFar());
      const pid = probe.child.pid!;
      const samples: { at: number; kib: number }[] = [];
      const began = performance.now();
      while (replay.child.exitCode === null && replay.child.signalCode === null && performance.now() - began < (SECONDS + 30) * 1000) {
        const kib = rssKiB(pid);
        if (kib !== undefined) samples.push({ at: (performance.now() - began) / 1000, kib });
        await new Promise((r) => setTimeout(r, 1000));
      }
      const replayed = await replay.result;
      assert.equal(replayed.code, 0, replayed.stderr + replayed.stdout);
      await new Promise((r) => setTimeout(r, 500)); // the last packets reach the capture
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      assert.equal(result.code, 0, result.stderr);
      await nfcapd.stop();

      const summary = summaryText(result.stderr);
      const captured = Number(/packets captured: (\d+)/.exec(summary)?.[1]);
      const skipped = Number(/packets skipped: (\d+)/.exec(summary)?.[1]);
      const records = Number(/(\d+) records sent/.exec(summary)?.[1]);
      assert.ok(captured > 0, summary);
      assert.doesNotMatch(summary, /dropped on a full send queue/, 'no export queue drop');
      assert.match(summary, /send errors 0/);
      const stat = await nfcapd.stat();
      // the veth pair's own IPv6 (neighbour discovery, MLD) is counted apart: NetFlow v5 carries IPv4
      const ipv6 = Number(/IPv6: (\d+) packets/.exec(summary)?.[1]);
      assert.equal(stat['Packets'], captured - skipped - ipv6, `nfcapd packets = captured − skipped − IPv6\n${summary}`);
      assert.equal(stat['Flows'], records, 'every record sent reached nfcapd');

      const afterWarmUp = samples.filter((s) => s.at >= WARM_UP_SECONDS);
      assert.ok(afterWarmUp.length >= 6, `${afterWarmUp.length} RSS samples after warm-up`);
      const third = Math.floor(afterWarmUp.length / 3);
      const early = Math.max(...afterWarmUp.slice(0, third).map((s) => s.kib));
      const late = Math.max(...afterWarmUp.slice(-third).map((s) => s.kib));
      // flat: the last third never exceeds the first third after warm-up by more than
      // a quarter plus 32 MiB (garbage collection moves RSS; a leak grows without bound)
      assert.ok(late <= early * 1.25 + 32 * 1024, `RSS grew from ${early} KiB to ${late} KiB`);
      const peak = Math.max(...samples.map((s) => s.kib));
      process.stdout.write(
        `soak: ${SECONDS} s, ${captured} packets captured, ${records} records, RSS ${early} KiB after warm-up, ${late} KiB at the end, peak ${peak} KiB\n`,
      );
    } finally {
      if (replay.child.exitCode === null) replay.child.kill('SIGTERM');
      await replay.result.catch(() => undefined);
      await stopped(probe);
      await nfcapd.dispose();
    }
  });
});
