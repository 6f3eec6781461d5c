/**
 * `npm run bench`: flowprobe against softflowd on the same captures, same machine,
 * alternating runs. Prints median wall time, packets/s, peak RSS and the ratio.
 *
 *   npm run bench -- [--runs N] [--only NAME,…] [--curve] [--profile]
 *
 * Captures are generated (fixed seeds) into bench-out/ on first use. Both probes
 * export to one local UDP sink (bench/sink.ts) that counts what arrives: NetFlow v5
 * for the IPv4 captures, IPFIX for the '-ipv6' ones (v5 carries IPv4 only), whose
 * packet and flow counts are their IPv4 twins'. After every run the sink reports the
 * flow records it received, which should equal the capture's flows (every flow is
 * exported once, at the end of the file; a shortfall is UDP loss at the sink or
 * records missing; the sink also reports datagrams its socket dropped, as softflowd's
 * unpaced flush of 950k IPFIX records can overflow a receive buffer capped by
 * net.core.rmem_max). Wall time and
 * peak RSS come from GNU time (the whole process, start-up included); flowprobe's
 * steady-state rate comes from its own summary (packets / read time).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCapture } from '../test/helpers/synthetic-pcap.js';
import type { SinkCounts } from './sink.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'bench-out');
const CLI = join(ROOT, 'dist/cli.js');
const SINK = join(ROOT, 'bench/sink.ts');

interface Capture {
  name: string;
  packets: number;
  flows: number;
  seed: number;
  /** 6: Ethernet/IPv6 packets (84 bytes, IP length 70), exported over IPFIX; default 4 */
  family?: 4 | 6;
}

const CAPTURES: Capture[] = [
  { name: '1.5M-pkts-50k-flows', packets: 1_500_000, flows: 50_000, seed: 1 },
  { name: '3M-pkts-950k-flows', packets: 3_000_000, flows: 950_000, seed: 2 },
  { name: '1.5M-pkts-1k-flows', packets: 1_500_000, flows: 1_000, seed: 3 },
  // The IPv4 captures' seeds and counts: the same flow order and per-flow packet
  // counts, 16-byte addresses (every word varying across flows), exported over IPFIX.
  // flowprobe paces export (--export-rate, 50,000 datagrams/s by default): the end of
  // a file flushes every flow at once, so with 950k IPv6 flows its 64,454 IPFIX
  // datagrams (≤15 records of 87 bytes in ≤1,400; templates again every 20) take
  // ≈1.3 s of the wall time (50k flows: 3,393 datagrams, ≈68 ms; IPv4 over v5, 30
  // records a datagram: 32,471 and 1,709). softflowd sends its flush unpaced.
  { name: '1.5M-pkts-50k-flows-ipv6', packets: 1_500_000, flows: 50_000, seed: 1, family: 6 },
  { name: '3M-pkts-950k-flows-ipv6', packets: 3_000_000, flows: 950_000, seed: 2, family: 6 },
];
const CURVE: Capture[] = [1_000, 10_000, 100_000, 1_000_000].map((flows, i) => ({
  name: `curve-2M-pkts-${flows / 1000}k-flows`,
  packets: 2_000_000,
  flows,
  seed: 10 + i,
}));

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const runs = Number(argValue('--runs') ?? 3);
const only = argValue('--only')?.split(',');
const withCurve = process.argv.includes('--curve');

interface Measured {
  wallSeconds: number;
  peakRssKiB: number;
  cpuSeconds: number;
  stderr: string;
}

function timed(command: string, args: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'BENCH %e %M %U %S', command, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /BENCH ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
      if (code !== 0 || m === null) {
        reject(new Error(`${command} failed (${code}):\n${stderr}`));
        return;
      }
      resolve({
        wallSeconds: Number(m[1]),
        peakRssKiB: Number(m[2]),
        cpuSeconds: Number(m[3]) + Number(m[4]),
        stderr,
      });
    });
  });
}

/**
 * The UDP sink (bench/sink.ts) in its own process. `report()` resolves, once nothing
 * arrived for a moment, with what it received since the last report.
 */
async function startSink(): Promise<{ port: number; report: () => Promise<SinkCounts>; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SINK], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const nextLine = async (): Promise<string> => {
    while (lines.length === 0) {
      if (child.exitCode !== null) throw new Error(`the sink exited (${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return lines.shift()!;
  };
  const port = Number(await nextLine());
  return {
    port,
    report: async () => {
      child.stdin.write('report\n');
      return JSON.parse(await nextLine()) as SinkCounts;
    },
    stop: async () => {
      child.stdin.end();
      if (child.exitCode === null) await new Promise((r) => child.on('close', r));
    },
  };
}

/** "50000 flow records in 1709 datagrams", per run when they differ, and whether they are all `expected`. */
function receivedLine(probe: string, received: SinkCounts[], expected: number): string {
  const describe = (c: SinkCounts): string =>
    `${c.flowRecords} flow records in ${c.datagrams} datagrams` +
    (c.optionRecords > 0 ? `, ${c.optionRecords} options records` : '') +
    (c.unknownSets > 0 ? `, ${c.unknownSets} sets of unknown templates` : '') +
    (c.malformed > 0 ? `, ${c.malformed} malformed` : '') +
    (c.socketDrops !== 0 ? `, ${c.socketDrops < 0 ? 'unknown' : c.socketDrops} datagrams dropped at the sink's socket (receive buffer full)` : '');
  const texts = received.map(describe);
  const same = texts.every((t) => t === texts[0]);
  const all = same ? `${texts[0]}${received.length > 1 ? ' each run' : ''}` : `per run: ${texts.join('; ')}`;
  const ok = received.every((c) => c.flowRecords === expected);
  return `${probe}: ${all}${ok ? ' (= flows)' : ` — EXPECTED ${expected} flow records per run`}`;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const RMEM_MAX = '/proc/sys/net/core/rmem_max';
const SINK_BUFFER = 64 << 20;

/**
 * The sink asks for a 64 MiB receive buffer; the kernel caps it at net.core.rmem_max
 * (often 4 MiB), too small for softflowd's unpaced flush of 950k IPFIX records.
 * As root, raise the cap for the run and put it back after; otherwise say so.
 */
function raiseReceiveBufferCap(): () => void {
  let before: string;
  try {
    before = readFileSync(RMEM_MAX, 'utf8').trim();
  } catch {
    return () => undefined;
  }
  if (Number(before) >= SINK_BUFFER) return () => undefined;
  try {
    writeFileSync(RMEM_MAX, String(SINK_BUFFER));
  } catch {
    process.stdout.write(`note: net.core.rmem_max is ${before} and cannot be raised here: the sink may drop a burst (counted)\n`);
    return () => undefined;
  }
  return () => writeFileSync(RMEM_MAX, before);
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('run `npm run build` first');
  const restoreReceiveBufferCap = raiseReceiveBufferCap();
  process.on('exit', restoreReceiveBufferCap);
  mkdirSync(OUT, { recursive: true });
  const haveSoftflowd = existsSync('/usr/sbin/softflowd');
  const selected = [...CAPTURES, ...(withCurve ? CURVE : [])].filter((c) => only === undefined || only.includes(c.name));
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`,
  );
  const rows: string[] = [];
  for (const capture of selected) {
    const file = join(OUT, `${capture.name}.pcap`);
    const ipv6 = capture.family === 6;
    if (!existsSync(file)) {
      writeSyntheticCapture({ path: file, packets: capture.packets, flows: capture.flows, seed: capture.seed, family: capture.family ?? 4 });
    }
    const sink = await startSink();
    const probe: Measured[] = [];
    const soft: Measured[] = [];
    const probeReceived: SinkCounts[] = [];
    const softReceived: SinkCounts[] = [];
    // IPv6 goes over IPFIX: flowprobe's HOST:PORT/10, softflowd's -v 10 (which also
    // makes it track IPv6; v5 would make it skip IPv6 packets)
    const collector = `127.0.0.1:${sink.port}${ipv6 ? '/10' : ''}`;
    for (let i = 0; i < runs; i++) {
      probe.push(await timed(process.execPath, [CLI, '-r', file, '-n', collector, '-m', '2000000']));
      probeReceived.push(await sink.report());
      if (haveSoftflowd) {
        // `-c none`: with a control socket, a file run sometimes blocks in accept() at start
        const pid = join(tmpdir(), `flowprobe-bench-softflowd-${process.pid}.pid`);
        soft.push(
          await timed('softflowd', [
            '-r',
            file,
            '-n',
            `127.0.0.1:${sink.port}`,
            '-v',
            ipv6 ? '10' : '5',
            '-a',
            '-m',
            '2000000',
            '-d',
            '-p',
            pid,
            '-c',
            'none',
          ]),
        );
        rmSync(pid, { force: true });
        softReceived.push(await sink.report());
      }
    }
    await sink.stop();
    const pw = median(probe.map((m) => m.wallSeconds));
    const steady = median(probe.map((m) => Number(/read in ([\d.]+) s/.exec(m.stderr)?.[1] ?? NaN)));
    const prss = median(probe.map((m) => m.peakRssKiB)) / 1024;
    const pcpu = median(probe.map((m) => m.cpuSeconds));
    let line = `| ${capture.name} | flowprobe | ${pw.toFixed(2)} s | ${(capture.packets / pw / 1e6).toFixed(2)} M | ${(capture.packets / steady / 1e6).toFixed(2)} M | ${prss.toFixed(0)} MiB | ${pcpu.toFixed(2)} s |`;
    rows.push(line);
    if (soft.length > 0) {
      const sw = median(soft.map((m) => m.wallSeconds));
      const srss = median(soft.map((m) => m.peakRssKiB)) / 1024;
      const scpu = median(soft.map((m) => m.cpuSeconds));
      line = `| ${capture.name} | softflowd | ${sw.toFixed(2)} s | ${(capture.packets / sw / 1e6).toFixed(2)} M | | ${srss.toFixed(0)} MiB | ${scpu.toFixed(2)} s |`;
      rows.push(line);
      // Each flowprobe run is paired with the softflowd run right after it: on a machine whose
      // speed drifts, the median of the pairs' ratios is steadier than a ratio of medians.
      const paired = median(probe.map((m, i) => soft[i]!.wallSeconds / m.wallSeconds));
      rows.push(`| ${capture.name} | **ratio** | **${(sw / pw).toFixed(2)}×** faster (paired runs: ${paired.toFixed(2)}×) | | | | |`);
    }
    process.stderr.write(`${capture.name}: sink received, ${receivedLine('flowprobe', probeReceived, capture.flows)}\n`);
    if (softReceived.length > 0) {
      process.stderr.write(`${capture.name}: sink received, ${receivedLine('softflowd', softReceived, capture.flows)}\n`);
    }
  }
  process.stdout.write(
    `runs per probe: ${runs} (median)\n\n| capture | probe | wall | packets/s (whole process) | packets/s (steady) | peak RSS | CPU |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}

await main();
