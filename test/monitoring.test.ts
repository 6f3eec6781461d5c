/**
 * The probe's metrics, logs and progress as a user meets them: `flowprobe -r`
 * with --metrics-listen, scraped over HTTP while and after it reads; promtool
 * checks the exposition; a terminal gets a progress bar and readable logs.
 */
import { fixture } from './helpers/fixtures.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dashboardQueries, metricNames, readDashboard } from './helpers/grafana.js';
import { familyNames, httpGet, parseExposition } from './helpers/http.js';
import { CLI, freeUdpPort, run, runProbe, startProbe, waitFor, type Running } from './helpers/processes.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-monitoring-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A UDP collector stand-in on 127.0.0.1 that reads and discards. */
async function udpSink(): Promise<{ port: number; close(): Promise<void> }> {
  const socket: Socket = createSocket('udp4');
  socket.on('message', () => undefined);
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { port: socket.address().port, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

/** The JSON log records a probe wrote to stderr (it is not a terminal here). */
function logRecords(stderr: string): { level: number; msg: string; [key: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string });
}

async function metricsUrl(probe: Running): Promise<string> {
  let url: string | undefined;
  await waitFor(
    () => {
      url = /serving metrics on (http:\/\/\S+\/metrics)/.exec(probe.stderrSoFar())?.[1];
      return url !== undefined || probe.child.exitCode !== null;
    },
    10_000,
    'the probe to serve metrics',
  );
  assert.ok(url !== undefined, probe.stderrSoFar());
  return url;
}

interface SummaryFigures {
  packets: number;
  bytes: number;
  skipped: number;
  skippedByReason: Map<string, { packets: number; bytes: number }>;
  created: number;
  expired: Map<string, number>;
  records: number;
  datagrams: number;
  flowSequence: number;
  collectors: Map<string, { datagrams: number; records: number; errors: number }>;
}

/** The figures of the statistics summary, read from its text as a user reads it. */
function parseSummary(stderr: string): SummaryFigures {
  const text = logRecords(stderr).find((r) => r.msg.startsWith('statistics:'))?.msg;
  assert.ok(text !== undefined, `a statistics summary:\n${stderr}`);
  const number = (pattern: RegExp, group = 1): number => {
    const m = pattern.exec(text);
    assert.ok(m?.[group] !== undefined, `summary has ${pattern}:\n${text}`);
    return Number(m[group]);
  };
  const skippedByReason = new Map<string, { packets: number; bytes: number }>();
  const skippedLine = /packets skipped: \d+(?:: (.*))?$/m.exec(text)?.[1] ?? '';
  for (const m of skippedLine.matchAll(/(\w+) (\d+) \((\d+) bytes\)/g)) {
    skippedByReason.set(m[1]!, { packets: Number(m[2]), bytes: Number(m[3]) });
  }
  const expired = new Map<string, number>();
  for (const m of (/flows expired: (.*)$/m.exec(text)?.[1] ?? '').matchAll(/(\w+) (\d+)/g)) expired.set(m[1]!, Number(m[2]));
  const collectors = new Map<string, { datagrams: number; records: number; errors: number }>();
  for (const m of text.matchAll(/collector (\S+): (\d+) datagrams, (\d+) records sent; send errors (\d+)/g)) {
    collectors.set(m[1]!, { datagrams: Number(m[2]), records: Number(m[3]), errors: Number(m[4]) });
  }
  return {
    packets: number(/packets captured: (\d+)/),
    bytes: number(/packets captured: \d+ \((\d+) bytes/),
    skipped: number(/packets skipped: (\d+)/),
    skippedByReason,
    created: number(/flows created: (\d+)/),
    expired,
    records: number(/records exported: (\d+)/),
    datagrams: number(/records exported: \d+ in (\d+) datagrams/),
    flowSequence: number(/flow_sequence (\d+)/),
    collectors,
  };
}

/** Sum of every series of a family, optionally those whose labels include `match`. */
function total(samples: Map<string, number>, family: string, match = ''): number {
  let sum = 0;
  for (const [series, value] of samples) {
    if ((series === family || series.startsWith(`${family}{`)) && series.includes(match)) sum += value;
  }
  return sum;
}

/** A scrape of the finished run must say exactly what the summary says. */
function assertScrapeEqualsSummary(scrape: string, summary: SummaryFigures): void {
  const samples = parseExposition(scrape);
  assert.equal(total(samples, 'flowprobe_capture_packets_total'), summary.packets, 'packets');
  assert.equal(total(samples, 'flowprobe_capture_bytes_total'), summary.bytes, 'bytes');
  assert.equal(total(samples, 'flowprobe_decode_skipped_packets_total'), summary.skipped, 'skipped packets');
  for (const series of samples.keys()) {
    const reason = /^flowprobe_decode_skipped_packets_total\{reason="(\w+)"\}$/.exec(series)?.[1];
    if (reason === undefined) continue;
    const expected = summary.skippedByReason.get(reason) ?? { packets: 0, bytes: 0 };
    assert.equal(samples.get(series), expected.packets, `skipped ${reason}`);
    assert.equal(samples.get(`flowprobe_decode_skipped_bytes_total{reason="${reason}"}`), expected.bytes, `skipped bytes ${reason}`);
  }
  assert.equal(samples.get('flowprobe_flows_created_total'), summary.created, 'flows created');
  assert.ok(summary.expired.size === 7);
  for (const [reason, n] of summary.expired) assert.equal(samples.get(`flowprobe_flows_expired_total{reason="${reason}"}`), n, `expired ${reason}`);
  assert.equal(samples.get('flowprobe_export_flow_sequence'), summary.flowSequence, 'flow_sequence');
  assert.ok(summary.collectors.size > 0);
  for (const [label, c] of summary.collectors) {
    assert.equal(samples.get(`flowprobe_export_datagrams_total{collector="${label}"}`), c.datagrams, 'datagrams');
    assert.equal(samples.get(`flowprobe_export_records_total{collector="${label}"}`), c.records, 'records');
    assert.equal(total(samples, 'flowprobe_export_errors_total', `collector="${label}"`), c.errors, 'send errors');
    // one collector that took everything: what was built is what it received
    assert.equal(c.datagrams, summary.datagrams);
    assert.equal(c.records, summary.records);
  }
}

async function promtool(exposition: string): Promise<{ code: number | null; problems: string[] }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stdin.end(exposition);
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, problems: output.split('\n').filter((l) => l.trim() !== '') };
}

describe('a file read with --metrics-listen', () => {
  let sink: Awaited<ReturnType<typeof udpSink>>;
  before(async () => (sink = await udpSink()));
  after(() => sink.close());

  test('a scrape at the end of the run equals the statistics summary; promtool finds nothing', async () => {
    const probe = startProbe(['-r', fixture('malformed.pcap'), '-n', `127.0.0.1:${sink.port}`, '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '300']);
    const url = await metricsUrl(probe);
    await waitFor(() => probe.stderrSoFar().includes('serving the final metrics'), 20_000, 'the run to end');
    const scrape = await httpGet(url);
    assert.equal(scrape.status, 200);
    const summary = parseSummary(probe.stderrSoFar());
    assert.ok(summary.skipped > 0 && summary.created > 0, 'the fixture exercises skips and flows');
    assertScrapeEqualsSummary(scrape.body, summary);

    const checked = await promtool(scrape.body);
    assert.deepEqual(checked.problems, [], 'promtool check metrics');
    assert.equal(checked.code, 0);

    const ready = await httpGet(url.replace(/\/metrics$/, '/readyz'));
    assert.equal(ready.status, 503, 'a finished run is not ready');
    assert.match(ready.body, /finished/);
    assert.equal((await httpGet(url.replace(/\/metrics$/, '/healthz'))).status, 200);

    probe.child.kill('SIGTERM');
    const result = await probe.result;
    assert.equal(result.code, 0, 'SIGTERM ends the linger, exit 0');
  });

  test('scrapes answer while the worker reads: a pipe fed half a capture is scraped mid-read', async () => {
    // Capture bytes for 20,000 packets; the probe reads them from stdin as the test feeds them.
    const path = join(work, 'half.pcap');
    writeSyntheticCapture({ path, packets: 20_000, flows: 500, seed: 3 });
    const bytes = readFileSync(path);
    const firstHalf = 24 + 10_000 * 80; // header, then 10,000 records of 16 + 64 bytes
    const probe = spawn(process.execPath, [CLI, '-r', '-', '-n', `127.0.0.1:${sink.port}`, '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '300'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    probe.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const closed = once(probe, 'close');
    try {
      probe.stdin.write(bytes.subarray(0, firstHalf));
      await waitFor(() => /serving metrics on/.test(stderr), 10_000, 'the metrics listener');
      const url = /serving metrics on (http:\/\/\S+\/metrics)/.exec(stderr)![1]!;
      let packets = 0;
      await waitFor(
        async () => {
          packets = total(parseExposition((await httpGet(url)).body), 'flowprobe_capture_packets_total');
          return packets === 10_000;
        },
        20_000,
        'a scrape showing the first 10,000 packets',
      );
      // the worker now waits in libpcap's read for the rest; the endpoint still answers
      const mid = await httpGet(url);
      assert.equal(mid.status, 200);
      assert.equal(total(parseExposition(mid.body), 'flowprobe_capture_packets_total'), 10_000);
      assert.equal((await httpGet(url.replace(/\/metrics$/, '/readyz'))).status, 200, 'ready while reading');
      assert.doesNotMatch(stderr, /statistics:/, 'the run is still going');

      probe.stdin.end(bytes.subarray(firstHalf));
      await waitFor(() => stderr.includes('serving the final metrics'), 20_000, 'the run to end');
      const summary = parseSummary(stderr);
      assert.equal(summary.packets, 20_000);
      assertScrapeEqualsSummary((await httpGet(url)).body, summary);
    } finally {
      probe.kill('SIGTERM');
      await closed;
    }
    assert.equal(probe.exitCode, 0, stderr);
  });

  test('a large file: every scrape during the read answers and counts only go up; the last equals the summary', async () => {
    const big = join(work, 'big.pcap');
    writeSyntheticCapture({ path: big, packets: 2_000_000, flows: 50_000, seed: 9 });
    const probe = startProbe(['-r', big, '-n', `127.0.0.1:${sink.port}`, '-m', '100000', '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '300']);
    try {
      const url = await metricsUrl(probe);
      let previous = 0;
      let scrapes = 0;
      let midRead = 0;
      while (!probe.stderrSoFar().includes('serving the final metrics')) {
        assert.equal(probe.child.exitCode, null, probe.stderrSoFar());
        const scrape = await httpGet(url);
        assert.equal(scrape.status, 200);
        const packets = total(parseExposition(scrape.body), 'flowprobe_capture_packets_total');
        assert.ok(packets >= previous, `packets never go back (${previous} → ${packets})`);
        if (packets > 0 && packets < 2_000_000) midRead++;
        previous = packets;
        scrapes++;
      }
      const summary = parseSummary(probe.stderrSoFar());
      assert.equal(summary.packets, 2_000_000);
      assertScrapeEqualsSummary((await httpGet(url)).body, summary);
      process.stdout.write(`# ${scrapes} scrapes during the run, ${midRead} of them mid-read\n`);
    } finally {
      probe.child.kill('SIGTERM');
    }
    assert.equal((await probe.result).code, 0);
  });

  test('the port in use: one line naming --metrics-listen, exit 1', async () => {
    const first = startProbe(['-r', fixture('basic.pcap'), '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '300']);
    try {
      const port = new URL(await metricsUrl(first)).port;
      const second = await runProbe(['-r', fixture('basic.pcap'), '--metrics-listen', `127.0.0.1:${port}`]);
      assert.equal(second.code, 1);
      const lines = second.stderr.trim().split('\n');
      assert.equal(lines.length, 1, second.stderr);
      assert.match(lines[0]!, new RegExp(`--metrics-listen 127\\.0\\.0\\.1:${port}: cannot listen: in use`));
    } finally {
      first.child.kill('SIGTERM');
      await first.result;
    }
  });

  test('without --metrics-listen a file run serves nothing', async () => {
    const result = await runProbe(['-r', fixture('basic.pcap')]);
    assert.equal(result.code, 0);
    assert.doesNotMatch(result.stderr, /serving metrics/);
  });
});

describe('logs and progress', () => {
  test('not a terminal: JSON log lines on stderr only, no progress bar', async () => {
    const result = await runProbe(['-r', fixture('basic.pcap')]);
    assert.equal(result.code, 0);
    assert.ok(!result.stderr.includes('\r') && !result.stderr.includes('\u001b'), 'no carriage returns or escapes');
    const lines = result.stderr.trim().split('\n');
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(logRecords(result.stderr).some((r) => r.msg.startsWith('statistics:') && typeof r['statistics'] === 'object'));
    assert.doesNotMatch(result.stdout, /"level"/, 'no log on stdout');
  });

  test('a collector refusing every datagram: one warning, not one per datagram; the count is in the summary', async () => {
    const refused = await freeUdpPort(); // nothing listens: each send after the first fails with ECONNREFUSED
    const file = join(work, 'refused.pcap');
    writeSyntheticCapture({ path: file, packets: 100_000, flows: 20_000, seed: 8 });
    const result = await runProbe(['-r', file, '-n', `127.0.0.1:${refused}`]);
    assert.equal(result.code, 0, result.stderr);
    const errors = parseSummary(result.stderr).collectors.get(`127.0.0.1:${refused}`)!.errors;
    assert.ok(errors > 100, `${errors} send errors`);
    const warnings = logRecords(result.stderr).filter((r) => r.level === 40 && r.msg.includes('failed'));
    assert.ok(warnings.length >= 1, 'the first failure is said');
    // at most one per 10 s: far fewer than the failures, however slow the machine
    assert.ok(warnings.length * 10 < errors, `${warnings.length} warnings for ${errors} failures`);
    assert.match(warnings[0]!.msg, /export to 127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/);
  });

  test('--log-level warn keeps info lines out', async () => {
    const result = await runProbe(['-r', fixture('basic.pcap'), '--log-level', 'warn']);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, '');
  });

  test('on a terminal: readable lines and a progress bar that ends at 100%', async () => {
    const big = join(work, 'progress.pcap');
    writeSyntheticCapture({ path: big, packets: 200_000, flows: 1000, seed: 4 });
    // script(1) gives the probe a pseudo-terminal; stdout goes to /dev/null inside it
    const command = `${process.execPath} ${CLI} -r ${big} > /dev/null`;
    const result = await run('script', ['-qec', command, '/dev/null'], { env: { ...process.env, NO_COLOR: '1', COLUMNS: '100' } });
    assert.equal(result.code, 0, result.stdout);
    const screen = result.stdout;
    assert.doesNotMatch(screen, /"level":/, 'not JSON');
    assert.match(screen, /\] INFO: reading .*progress\.pcap/);
    assert.match(screen, /\[#+\] 100% {2}\d+\.\d\/\d+\.\d MiB {2}\S+ packets\/s {2}1000 flows/);
    assert.match(screen, /INFO: statistics:\r?\n {2}packets captured: 200000/);
  });
});

test('the Grafana dashboard loads as JSON and every query names a metric the probe serves', async () => {
  const dashboard = readDashboard();
  const probe = startProbe(['-r', fixture('basic.pcap'), '-n', '127.0.0.1:9', '--metrics-listen', '127.0.0.1:0', '--metrics-linger', '300']);
  let families: Set<string>;
  try {
    const url = await metricsUrl(probe);
    await waitFor(() => probe.stderrSoFar().includes('serving the final metrics'), 20_000, 'the run to end');
    families = familyNames((await httpGet(url)).body);
  } finally {
    probe.child.kill('SIGTERM');
    await probe.result;
  }
  const queries = dashboardQueries(dashboard);
  assert.ok(queries.length >= 10, `${queries.length} queries`);
  for (const { panel, expr } of queries) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${panel}: ${expr} names no metric`);
    for (const name of names) {
      // `up` is Prometheus' own, per target
      assert.ok(name === 'up' || families.has(name), `${panel}: ${name} is not served`);
    }
  }
  const titles = queries.map((q) => q.panel.toLowerCase()).join(' | ');
  for (const topic of ['capture', 'drop', 'cache', 'expir', 'export', 'error']) assert.match(titles, new RegExp(topic), `a panel on ${topic}`);
});
