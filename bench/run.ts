/**
 * `npm run bench`: flowprobe against softflowd on the same captures, same machine,
 * alternating runs. Prints median wall time, packets/s, peak RSS and the ratio.
 *
 *   npm run bench -- [--runs N] [--only NAME,…] [--curve] [--profile]
 *
 * Captures are generated (fixed seeds) into bench-out/ on first use. Both probes
 * export NetFlow v5 to one local UDP sink that counts what arrives. Wall time and
 * peak RSS come from GNU time (the whole process, start-up included); flowprobe's
 * steady-state rate comes from its own summary (packets / read time).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticCapture } from '../test/helpers/synthetic-pcap.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'bench-out');
const CLI = join(ROOT, 'dist/cli.js');

interface Capture {
  name: string;
  packets: number;
  flows: number;
  seed: number;
}

const CAPTURES: Capture[] = [
  { name: '1.5M-pkts-50k-flows', packets: 1_500_000, flows: 50_000, seed: 1 },
  { name: '3M-pkts-950k-flows', packets: 3_000_000, flows: 950_000, seed: 2 },
  { name: '1.5M-pkts-1k-flows', packets: 1_500_000, flows: 1_000, seed: 3 },
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

/** A UDP sink in its own process, counting datagrams and records. */
async function startSink(): Promise<{ port: number; stop: () => Promise<string> }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 64 << 20 });
       let d = 0, r = 0;
       s.on('message', (m) => { d++; r += m.readUInt16BE(2); });
       s.bind(0, '127.0.0.1', () => console.log(s.address().port));
       process.on('SIGTERM', () => { console.log(d + ' datagrams ' + r + ' records'); process.exit(0); });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 10));
  const port = Number(out.trim());
  return {
    port,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('close', r));
      return out.split('\n')[1] ?? '';
    },
  };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('run `npm run build` first');
  mkdirSync(OUT, { recursive: true });
  const haveSoftflowd = existsSync('/usr/sbin/softflowd');
  const selected = [...CAPTURES, ...(withCurve ? CURVE : [])].filter((c) => only === undefined || only.includes(c.name));
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}\n`,
  );
  const rows: string[] = [];
  for (const capture of selected) {
    const file = join(OUT, `${capture.name}.pcap`);
    if (!existsSync(file)) writeSyntheticCapture({ path: file, packets: capture.packets, flows: capture.flows, seed: capture.seed });
    const sink = await startSink();
    const probe: Measured[] = [];
    const soft: Measured[] = [];
    for (let i = 0; i < runs; i++) {
      probe.push(await timed(process.execPath, [CLI, '-r', file, '-n', `127.0.0.1:${sink.port}`, '-m', '2000000']));
      if (haveSoftflowd) {
        // `-c none`: with a control socket, a file run sometimes blocks in accept() at start
        const pid = join(tmpdir(), `flowprobe-bench-softflowd-${process.pid}.pid`);
        soft.push(
          await timed('softflowd', ['-r', file, '-n', `127.0.0.1:${sink.port}`, '-v', '5', '-a', '-m', '2000000', '-d', '-p', pid, '-c', 'none']),
        );
        rmSync(pid, { force: true });
      }
    }
    const received = await sink.stop();
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
    process.stderr.write(`${capture.name}: sink received ${received}\n`);
  }
  process.stdout.write(
    `runs per probe: ${runs} (median)\n\n| capture | probe | wall | packets/s (whole process) | packets/s (steady) | peak RSS | CPU |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}

await main();
