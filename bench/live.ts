/**
 * `npm run bench:live`: the highest zero-drop replay rate, live, for flowprobe and
 * softflowd. A veth pair joins two network namespaces made for the run; tcpreplay
 * in one sends a generated capture at stepped rates (`--pps`, then `--topspeed`)
 * while the probe captures in the other and exports to a UDP sink beside it. A
 * rate is zero-drop when the packets in the exported records equal the packets
 * tcpreplay sent. CPU per packet is the probe's user+system time over packets.
 *
 *   npm run bench:live -- [--packets N] [--rates 100000,200000,…]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VethPair } from '../test/helpers/netns.js';
import { writeSyntheticCapture } from '../test/helpers/synthetic-pcap.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'bench-out');
const CLI = join(ROOT, 'dist/cli.js');

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const packets = Number(argValue('--packets') ?? 500_000);
const rates = (argValue('--rates') ?? '100000,200000,300000,400000,topspeed').split(',');

interface Child {
  pid: number;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
  stderrSoFar(): string;
  stdoutSoFar(): string;
}

function start(argv: string[]): Child {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return {
    pid: child.pid ?? -1,
    done: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))),
    kill: (signal) => child.kill(signal),
    stderrSoFar: () => stderr,
    stdoutSoFar: () => stdout,
  };
}

/** user + system time of a process and all its threads, from /proc (clock ticks of 10 ms) */
function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A sink inside the namespace: sums dPkts over every v5 record it receives. */
function startSink(prefix: string[], port: number): Child {
  return start([
    ...prefix,
    process.execPath,
    '-e',
    `const s = require('node:dgram').createSocket({ type: 'udp4', recvBufferSize: 64 << 20 });
     let packets = 0, records = 0;
     s.on('message', (m) => { const n = m.readUInt16BE(2); records += n; for (let i = 0; i < n; i++) packets += m.readUInt32BE(24 + 48 * i + 16); });
     s.bind(${port}, '127.0.0.1', () => console.log('ready'));
     process.on('SIGTERM', () => { console.log(packets + ' ' + records); process.exit(0); });`,
  ]);
}

interface Result {
  probe: string;
  rate: string;
  sent: number;
  accounted: number;
  achievedPps: number;
  cpuMicrosPerPacket: number;
}

async function measure(net: VethPair, capture: string, probe: 'flowprobe' | 'softflowd', rate: string): Promise<Result> {
  const inB = net.exec(net.nsB);
  const control = join(OUT, 'softflowd-live.ctl');
  rmSync(control, { force: true });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const sink = startSink(inB, port);
  await waitFor(() => sink.stdoutSoFar().includes('ready'), 10_000, 'the sink');
  // `ip netns exec` execs the probe: the child's pid is the probe's own
  const argv =
    probe === 'flowprobe'
      ? [...inB, process.execPath, CLI, '-i', net.ifB, '-n', `127.0.0.1:${port}`, '-m', '2000000', '--metrics-listen', 'off']
      : [...inB, 'softflowd', '-i', net.ifB, '-n', `127.0.0.1:${port}`, '-v', '5', '-m', '2000000', '-d', '-c', control, '-p', join(OUT, 'softflowd-live.pid')];
  const running = start(argv);
  if (probe === 'flowprobe') await waitFor(() => running.stderrSoFar().includes('capturing on'), 15_000, 'flowprobe');
  else await sleep(1500);
  const cpuBefore = processCpuSeconds(running.pid);
  const replay = await start([
    ...net.exec(net.nsA),
    'tcpreplay',
    '-i',
    net.ifA,
    ...(rate === 'topspeed' ? ['--topspeed'] : [`--pps=${rate}`]),
    capture,
  ]).done;
  const sent = Number(/Actual: (\d+) packets/.exec(replay.stdout)?.[1] ?? NaN);
  const achievedPps = Number(/Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps/.exec(replay.stdout)?.[1] ?? NaN);
  // let the ring drain; the CPU spent from the replay's start to here is the capture's
  await sleep(300);
  const cpuSeconds = processCpuSeconds(running.pid) - cpuBefore;
  await sleep(700);
  if (probe === 'softflowd') {
    // softflowd exports nothing on SIGTERM: its control socket's "shutdown" expires every flow
    await start(['softflowctl', '-c', control, 'shutdown']).done;
  } else {
    running.kill('SIGTERM');
  }
  await running.done;
  rmSync(control, { force: true });
  await sleep(300);
  sink.kill('SIGTERM');
  const sunk = (await sink.done).stdout.trim().split('\n').pop()!.split(' ');
  return {
    probe,
    rate,
    sent,
    accounted: Number(sunk[0]),
    achievedPps,
    cpuMicrosPerPacket: (cpuSeconds * 1e6) / sent,
  };
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const capture = join(OUT, `live-${packets}-pkts-10k-flows.pcap`);
  if (!existsSync(capture)) writeSyntheticCapture({ path: capture, packets, flows: 10_000, seed: 21 });
  const net = new VethPair('b');
  net.create();
  const results: Result[] = [];
  try {
    for (const rate of rates) {
      for (const probe of ['flowprobe', 'softflowd'] as const) {
        if (probe === 'softflowd' && !existsSync('/usr/sbin/softflowd')) continue;
        const r = await measure(net, capture, probe, rate);
        results.push(r);
        process.stderr.write(`${probe} ${rate}: sent ${r.sent} at ${r.achievedPps} pps, accounted ${r.accounted}\n`);
      }
    }
  } finally {
    net.remove();
  }
  process.stdout.write('| probe | replay rate | achieved packets/s | sent | in exported records | drops | CPU per packet |\n|---|---|---|---|---|---|---|\n');
  for (const r of results) {
    process.stdout.write(
      `| ${r.probe} | ${r.rate} | ${Math.round(r.achievedPps)} | ${r.sent} | ${r.accounted} | ${r.sent - r.accounted} | ${r.cpuMicrosPerPacket.toFixed(2)} µs |\n`,
    );
  }
}

await main();
