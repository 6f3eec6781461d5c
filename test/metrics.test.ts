/**
 * The metrics module, the HTTP endpoint, the status line, the malformed-packet
 * warnings and the progress bar, in process, on the real counter layout.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { EXPIRY_REASONS, FlowCacheStat } from '../src/cache/flow-cache.js';
import { DataPlaneCounter, SourceCounter, createDataPlaneCounters, sourceCounterBase } from '../src/counters/data-plane.js';
import { DecodeResult, SKIP_REASONS } from '../src/decode/decode.js';
import { TerminalStderr, formatProgress } from '../src/log/progress.js';
import { ProbeMetrics } from '../src/metrics/metrics.js';
import { MetricsListenError, MetricsServer, type Readiness } from '../src/metrics/server.js';
import { MalformedWatch } from '../src/stats/malformed-watch.js';
import { readProbeStats, type ExportStats, type ProbeStats } from '../src/stats/probe-stats.js';
import { StatusLine } from '../src/stats/status-line.js';
import { PROJECT_ROOT } from './helpers/processes.js';
import { httpGet, httpRequest, parseExposition } from './helpers/http.js';

function exportStats(overrides: Partial<ExportStats> = {}): ExportStats {
  return {
    datagrams: 0,
    records: 0,
    flowSequence: 0,
    queuedDatagrams: 0,
    queueCapacity: 16384,
    droppedDatagrams: 0,
    droppedRecords: 0,
    abandonedDatagrams: 0,
    abandonedRecords: 0,
    collectors: [{ label: '127.0.0.1:9995', datagrams: 0, records: 0, errors: {}, resolved: true, failedLookups: 0 }],
    printedRecords: undefined,
    notExported: { ipv6_needs_v9_or_ipfix: 0 },
    ...overrides,
  };
}

/** Real shared counters, two live sources, as the worker lays them out. */
function probe(exported: () => ExportStats = () => exportStats()): { counters: Float64Array; read: () => ProbeStats } {
  const counters = createDataPlaneCounters(2);
  const read = (): ProbeStats =>
    readProbeStats({
      counters,
      sources: [
        { label: 'eth1', live: true },
        { label: 'any', live: true },
      ],
      flowCacheCapacity: 1000,
      export: exported,
    });
  return { counters, read };
}

describe('ProbeMetrics', () => {
  it('every labelled series is there at 0 before the first event', async () => {
    const { read } = probe();
    const samples = parseExposition(await new ProbeMetrics({ version: '1.2.3', read }).scrape());
    for (const iface of ['eth1', 'any']) {
      assert.equal(samples.get(`flowprobe_capture_packets_total{interface="${iface}"}`), 0);
      assert.equal(samples.get(`flowprobe_capture_bytes_total{interface="${iface}"}`), 0);
      for (const stage of ['kernel', 'interface']) {
        assert.equal(samples.get(`flowprobe_capture_dropped_packets_total{interface="${iface}",stage="${stage}"}`), 0);
      }
    }
    for (const reason of SKIP_REASONS.slice(1)) {
      assert.equal(samples.get(`flowprobe_decode_skipped_packets_total{reason="${reason}"}`), 0, reason);
      assert.equal(samples.get(`flowprobe_decode_skipped_bytes_total{reason="${reason}"}`), 0, reason);
    }
    for (const reason of EXPIRY_REASONS) assert.equal(samples.get(`flowprobe_flows_expired_total{reason="${reason}"}`), 0);
    for (const reason of ['refused', 'unreachable', 'unresolved', 'no_buffer_space', 'message_too_long', 'not_permitted', 'other']) {
      assert.equal(samples.get(`flowprobe_export_errors_total{collector="127.0.0.1:9995",reason="${reason}"}`), 0);
    }
    assert.equal(samples.get('flowprobe_export_datagrams_total{collector="127.0.0.1:9995"}'), 0);
    assert.equal(samples.get('flowprobe_export_records_total{collector="127.0.0.1:9995"}'), 0);
    assert.equal(samples.get('flowprobe_flows_created_total'), 0);
    assert.equal(samples.get('flowprobe_flow_cache_flows'), 0);
    assert.equal(samples.get('flowprobe_flow_cache_capacity_flows'), 1000);
    assert.equal(samples.get('flowprobe_export_flow_sequence'), 0);
    assert.equal(samples.get('flowprobe_export_abandoned_datagrams_total'), 0);
    assert.equal(samples.get('flowprobe_export_abandoned_records_total'), 0);
    assert.equal(samples.get(`flowprobe_build_info{version="1.2.3",nodejs_version="${process.version}"}`), 1);
    assert.ok(samples.has('process_cpu_user_seconds_total'), 'default process metrics');
    assert.ok(![...samples.keys()].some((k) => k.startsWith('nodejs_active_handles_total')), 'gauges named _total are dropped');
  });

  it('reads the shared counters at scrape time', async () => {
    let exported = exportStats();
    const { counters, read } = probe(() => exported);
    const metrics = new ProbeMetrics({ version: '1.2.3', read });
    counters[sourceCounterBase(0) + SourceCounter.packets] = 10;
    counters[sourceCounterBase(0) + SourceCounter.bytes] = 1500;
    counters[sourceCounterBase(1) + SourceCounter.packets] = 3;
    counters[DataPlaneCounter.skippedPacketsBase + DecodeResult.mpls] = 2;
    counters[DataPlaneCounter.skippedBytesBase + DecodeResult.mpls] = 180;
    counters[DataPlaneCounter.ipv4Packets] = 9;
    counters[DataPlaneCounter.ipv6Packets] = 4;
    counters[DataPlaneCounter.ipv6Octets] = 400;
    counters[DataPlaneCounter.flowCache6Base + FlowCacheStat.created] = 2;
    counters[DataPlaneCounter.flowCache6Base + FlowCacheStat.cached] = 1;
    counters[DataPlaneCounter.flowCacheBase + FlowCacheStat.created] = 7;
    counters[DataPlaneCounter.flowCacheBase + FlowCacheStat.cached] = 4;
    counters[DataPlaneCounter.flowCacheBase + FlowCacheStat.expiredBase + EXPIRY_REASONS.indexOf('tcp_fin')] = 3;
    exported = exportStats({
      datagrams: 2,
      records: 3,
      flowSequence: 3,
      collectors: [
        { label: '127.0.0.1:9995', datagrams: 1, records: 2, errors: { ECONNREFUSED: 1, EWHATEVER: 2 }, resolved: true, failedLookups: 0 },
        { label: 'collector.invalid:2055', datagrams: 0, records: 0, errors: { ENOTFOUND: 4, EAI_AGAIN: 1 }, resolved: false, failedLookups: 3 },
      ],
    });
    const samples = parseExposition(await metrics.scrape());
    assert.equal(samples.get('flowprobe_capture_packets_total{interface="eth1"}'), 10);
    assert.equal(samples.get('flowprobe_capture_bytes_total{interface="eth1"}'), 1500);
    assert.equal(samples.get('flowprobe_capture_packets_total{interface="any"}'), 3);
    assert.equal(samples.get('flowprobe_decode_skipped_packets_total{reason="mpls"}'), 2);
    assert.equal(samples.get('flowprobe_decode_skipped_bytes_total{reason="mpls"}'), 180);
    assert.equal(samples.get('flowprobe_flows_created_total'), 9, 'both families');
    assert.equal(samples.get('flowprobe_flow_cache_flows'), 5);
    assert.equal(samples.get('flowprobe_family_packets_total{family="ipv4"}'), 9);
    assert.equal(samples.get('flowprobe_family_packets_total{family="ipv6"}'), 4);
    assert.equal(samples.get('flowprobe_family_octets_total{family="ipv6"}'), 400);
    assert.equal(samples.get('flowprobe_family_flows_created_total{family="ipv4"}'), 7);
    assert.equal(samples.get('flowprobe_family_flows_created_total{family="ipv6"}'), 2);
    assert.equal(samples.get('flowprobe_family_flow_cache_flows{family="ipv6"}'), 1);
    assert.equal(samples.get('flowprobe_export_not_exported_flows_total{reason="ipv6_needs_v9_or_ipfix"}'), 0);
    assert.equal(samples.get('flowprobe_flows_expired_total{reason="tcp_fin"}'), 3);
    assert.equal(samples.get('flowprobe_export_datagrams_total{collector="127.0.0.1:9995"}'), 1);
    assert.equal(samples.get('flowprobe_export_records_total{collector="127.0.0.1:9995"}'), 2);
    assert.equal(samples.get('flowprobe_export_errors_total{collector="127.0.0.1:9995",reason="refused"}'), 1);
    assert.equal(samples.get('flowprobe_export_errors_total{collector="127.0.0.1:9995",reason="other"}'), 2);
    assert.equal(samples.get('flowprobe_export_errors_total{collector="collector.invalid:2055",reason="unresolved"}'), 5);
    assert.equal(samples.get('flowprobe_export_collector_resolved{collector="127.0.0.1:9995"}'), 1);
    assert.equal(samples.get('flowprobe_export_collector_resolved{collector="collector.invalid:2055"}'), 0);
    assert.equal(samples.get('flowprobe_export_collector_failed_lookups_total{collector="collector.invalid:2055"}'), 3);
    assert.equal(samples.get('flowprobe_export_flow_sequence'), 3);
    // the next scrape mirrors again, it does not add
    const again = parseExposition(await metrics.scrape());
    assert.equal(again.get('flowprobe_capture_packets_total{interface="eth1"}'), 10);
  });

  it("libpcap's drops are mirrored as the worker's running totals, past 2^32", async () => {
    const { counters, read } = probe();
    const metrics = new ProbeMetrics({ version: '1', read });
    const kernel = 'flowprobe_capture_dropped_packets_total{interface="eth1",stage="kernel"}';
    const ifdrop = 'flowprobe_capture_dropped_packets_total{interface="eth1",stage="interface"}';
    counters[sourceCounterBase(0) + SourceCounter.pcapDropped] = 2 ** 32 - 10;
    counters[sourceCounterBase(0) + SourceCounter.pcapInterfaceDropped] = 4;
    let samples = parseExposition(await metrics.scrape());
    assert.equal(samples.get(kernel), 2 ** 32 - 10);
    assert.equal(samples.get(ifdrop), 4);
    counters[sourceCounterBase(0) + SourceCounter.pcapDropped] = 2 ** 32 + 5; // libpcap's own figure wrapped: 15 more
    samples = parseExposition(await metrics.scrape());
    assert.equal(samples.get(kernel), 2 ** 32 + 5);
    assert.equal(samples.get(ifdrop), 4);
    samples = parseExposition(await metrics.scrape());
    assert.equal(samples.get(kernel), 2 ** 32 + 5, 'no change, no increase');
  });

  it('packets libpcap received but the probe never read, per interface', async () => {
    const { counters, read } = probe();
    const metrics = new ProbeMetrics({ version: '1', read });
    const series = 'flowprobe_capture_unprocessed_packets_total{interface="eth1"}';
    assert.equal(parseExposition(await metrics.scrape()).get(series), 0, 'there at 0 from the start');
    counters[sourceCounterBase(0) + SourceCounter.pcapUnprocessed] = 2;
    assert.equal(parseExposition(await metrics.scrape()).get(series), 2);
    assert.equal(parseExposition(await metrics.scrape()).get('flowprobe_capture_unprocessed_packets_total{interface="any"}'), 0);
  });

  it('packets whose input ifIndex was cut to 16 bits, per interface', async () => {
    const { counters, read } = probe();
    const metrics = new ProbeMetrics({ version: '1', read });
    const series = 'flowprobe_capture_ifindex_cut_packets_total{interface="eth1"}';
    assert.equal(parseExposition(await metrics.scrape()).get(series), 0, 'there at 0 from the start');
    counters[sourceCounterBase(0) + SourceCounter.ifIndexCut] = 7;
    assert.equal(parseExposition(await metrics.scrape()).get(series), 7);
  });

  it('printing to stdout: records under collector="stdout"', async () => {
    const { read } = probe(() => exportStats({ collectors: [], printedRecords: 12 }));
    const samples = parseExposition(await new ProbeMetrics({ version: '1', read }).scrape());
    assert.equal(samples.get('flowprobe_export_records_total{collector="stdout"}'), 12);
  });

  it('before the capture opens: no per-source series, the rest answers', async () => {
    const samples = parseExposition(await new ProbeMetrics({ version: '1', read: () => undefined }).scrape());
    assert.equal(samples.get('flowprobe_build_info{version="1",nodejs_version="' + process.version + '"}'), 1);
    assert.ok(![...samples.keys()].some((k) => k.startsWith('flowprobe_capture_packets_total{')));
  });
});

describe('MetricsServer', () => {
  it('serves /metrics, /healthz and /readyz, read-only', async () => {
    const { counters, read } = probe();
    counters[sourceCounterBase(0) + SourceCounter.packets] = 42;
    let readiness: Readiness = { ready: false, reason: 'starting' };
    const server = await MetricsServer.listen({ host: '127.0.0.1', port: 0 }, new ProbeMetrics({ version: '1', read }), () => readiness);
    try {
      const metrics = await httpGet(`${server.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      assert.equal(parseExposition(metrics.body).get('flowprobe_capture_packets_total{interface="eth1"}'), 42);
      assert.equal((await httpGet(`${server.url}/healthz`)).status, 200);
      const starting = await httpGet(`${server.url}/readyz`);
      assert.equal(starting.status, 503);
      assert.match(starting.body, /not ready: starting/);
      readiness = { ready: true };
      assert.equal((await httpGet(`${server.url}/readyz`)).status, 200);
      assert.equal((await httpGet(`${server.url}/nope`)).status, 404);
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const refused = await httpRequest(`${server.url}/metrics`, method);
        assert.equal(refused.status, 405, method);
        assert.equal(refused.headers['allow'], 'GET, HEAD');
      }
      const head = await httpRequest(`${server.url}/metrics`, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
    } finally {
      await server.close();
    }
  });

  it('an address in use is an error naming --metrics-listen', async () => {
    const metrics = new ProbeMetrics({ version: '1', read: () => undefined });
    const first = await MetricsServer.listen({ host: '127.0.0.1', port: 0 }, metrics, () => ({ ready: true }));
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(
        MetricsServer.listen({ host: '127.0.0.1', port }, metrics, () => ({ ready: true })),
        (error: unknown) =>
          error instanceof MetricsListenError && error.code === 'EADDRINUSE' && error.message.includes(`--metrics-listen 127.0.0.1:${port}`),
      );
    } finally {
      await first.close();
    }
  });
});

describe('StatusLine', () => {
  it('rates since the previous line, drops since the previous line', () => {
    let exported = exportStats();
    const { counters, read } = probe(() => exported);
    let now = 0;
    counters[sourceCounterBase(0) + SourceCounter.pcapDropped] = 2 ** 32 - 1;
    const status = new StatusLine(read(), () => now);
    now = 2000;
    counters[sourceCounterBase(0) + SourceCounter.packets] = 2000;
    counters[sourceCounterBase(0) + SourceCounter.bytes] = 250_000;
    counters[sourceCounterBase(0) + SourceCounter.pcapDropped] = 2 ** 32 + 2; // 3 more (running totals, past 2^32)
    counters[DataPlaneCounter.flowCacheBase + FlowCacheStat.created] = 40;
    counters[DataPlaneCounter.flowCacheBase + FlowCacheStat.cached] = 30;
    counters[DataPlaneCounter.flowCache6Base + FlowCacheStat.cached] = 4;
    exported = exportStats({ datagrams: 10, records: 60 });
    const { message, fields } = status.next(read());
    assert.deepEqual(fields, {
      packetsPerSecond: 1000,
      bitsPerSecond: 1_000_000,
      dropped: 3,
      flows: 34,
      ipv6Flows: 4,
      flowsCreatedPerSecond: 20,
      recordsPerSecond: 30,
      datagramsPerSecond: 5,
      exportErrors: 0,
    });
    assert.equal(message, 'status: 1000 packets/s (1.0 Mbit/s), 3 dropped, 34 flows (4 IPv6; 20 new/s), 5 datagrams/s (30 records/s)');
  });
});

describe('MalformedWatch', () => {
  it('the first burst at once, then one line per interval counting every packet since', () => {
    const { counters, read } = probe();
    const lines: string[] = [];
    let now = 0;
    const watch = new MalformedWatch(read(), (message) => lines.push(message), 10_000, () => now);
    counters[DataPlaneCounter.skippedPacketsBase + DecodeResult.arp] = 50; // not malformed: never reported
    watch.check(read());
    assert.deepEqual(lines, []);
    counters[DataPlaneCounter.skippedPacketsBase + DecodeResult.badTotalLength] = 3;
    watch.check(read());
    assert.deepEqual(lines, ['skipped 3 malformed packets (bad_ip_total_length 3)']);
    for (const t of [1000, 2000, 9000]) {
      now = t;
      counters[DataPlaneCounter.skippedPacketsBase + DecodeResult.truncatedIp]! += 5;
      watch.check(read());
    }
    assert.equal(lines.length, 1, 'suppressed within the interval');
    now = 12_000;
    watch.check(read());
    assert.deepEqual(lines.slice(1), ['skipped 15 malformed packets in the last 12 s (truncated_ip_header 15)']);
    now = 30_000;
    watch.check(read());
    assert.equal(lines.length, 2, 'nothing new, nothing said');
  });
});

describe('progress bar', () => {
  it('a bar of the bytes read when the size is known; plain figures for a pipe', () => {
    const line = formatProgress({ bytesRead: 50 * 2 ** 20, size: 200 * 2 ** 20, packets: 1, packetsPerSecond: 1_250_000, flows: 812, ipv6Flows: 0 }, 100);
    assert.equal(line, `[${'#'.repeat(8)}${'-'.repeat(22)}]  25%  50.0/200.0 MiB  1.25M packets/s  812 flows`);
    assert.ok(line.length < 100);
    const pipe = formatProgress({ bytesRead: undefined, size: undefined, packets: 5, packetsPerSecond: 300, flows: 2, ipv6Flows: 1 }, 100);
    assert.equal(pipe, '300 packets/s  2 flows (1 IPv6)');
    const narrow = formatProgress({ bytesRead: 1, size: 4, packets: 5, packetsPerSecond: 300, flows: 2, ipv6Flows: 0 }, 40);
    assert.ok(narrow.length < 40 && narrow.startsWith(' 25%'), narrow);
  });

  it('log lines go above the bar, which is redrawn under them', () => {
    const out: string[] = [];
    const terminal = new TerminalStderr((text) => out.push(text), () => 80);
    terminal.log('before\n');
    terminal.show('[##--] 50%');
    terminal.log('warn\n');
    terminal.keep();
    terminal.log('after\n');
    assert.equal(out.join(''), 'before\n\r[##--] 50%\x1b[K\r\x1b[Kwarn\n[##--] 50%\nafter\n');
  });
});

describe('the data plane stays free of logging and metrics', () => {
  it('nothing the capture worker imports reaches src/log, src/metrics, pino or prom-client', () => {
    const seen = new Set<string>();
    const pending = [join(PROJECT_ROOT, 'src/capture/worker.ts')];
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      for (const match of source.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)) {
        if (match[1] !== undefined) continue; // erased at compile time
        const specifier = match[2]!;
        assert.ok(!/^(pino|pino-pretty|prom-client)$/.test(specifier), `${file} imports ${specifier}`);
        if (specifier.startsWith('.')) pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      }
    }
    const reached = [...seen].map((f) => f.slice(PROJECT_ROOT.length));
    assert.ok(reached.length > 5, `followed the imports: ${reached.join(' ')}`);
    for (const file of reached) assert.doesNotMatch(file, /src\/(log|metrics|stats)\//, `the worker reaches ${file}`);
  });

  it('only src/metrics imports prom-client', () => {
    const files = readdirSync(join(PROJECT_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const importers = files.filter((f) => /from 'prom-client'/.test(readFileSync(join(PROJECT_ROOT, 'src', f), 'utf8')));
    assert.deepEqual(importers, ['metrics/metrics.ts']);
  });
});
