/**
 * A live probe on the loopback interface, scraped by a real Prometheus server:
 * its /metrics passes promtool, Prometheus sees it up with packets counted, the
 * labelled series are there at 0, and every dashboard query is valid PromQL over
 * metrics Prometheus has. Traffic: UDP datagrams from this test to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { dashboardQueries, metricNames, readDashboard } from './helpers/grafana.js';
import { httpGet, parseExposition } from './helpers/http.js';
import { startProbe, waitFor, freeUdpPort, type Running } from './helpers/processes.js';
import { needsRoot } from './helpers/requirements.js';
import { PrometheusServer } from './helpers/prometheus.js';

const skip = needsRoot('capture on lo');

function packetsCounted(exposition: string): number {
  let sum = 0;
  for (const [series, value] of parseExposition(exposition)) {
    if (series.startsWith('flowprobe_capture_packets_total{')) sum += value;
  }
  return sum;
}

describe('a live probe scraped by Prometheus', { skip }, () => {
  let probe: Running;
  let metricsUrl: string;
  let prometheus: PrometheusServer | undefined;
  const receiver = createSocket('udp4').on('message', () => undefined);
  const collector = createSocket('udp4').on('message', () => undefined);
  let trafficPort: number;

  before(async () => {
    trafficPort = await freeUdpPort();
    receiver.bind(trafficPort, '127.0.0.1');
    collector.bind(0, '127.0.0.1');
    await Promise.all([once(receiver, 'listening'), once(collector, 'listening')]);
    probe = startProbe([
      '-i', 'lo',
      '-n', `127.0.0.1:${collector.address().port}`,
      '--metrics-listen', '127.0.0.1:0',
      '--status-interval', '1',
      '--inactive-timeout', '1',
      `udp and dst port ${trafficPort}`,
    ]);
    await waitFor(() => probe.stderrSoFar().includes('capturing on lo') || probe.child.exitCode !== null, 15_000, 'the capture to open');
    assert.equal(probe.child.exitCode, null, probe.stderrSoFar());
    metricsUrl = /serving metrics on (http:\/\/\S+\/metrics)/.exec(probe.stderrSoFar())![1]!;
    // Send until the probe has counted some: bounded, 20 rounds of 50 datagrams at most.
    const sender = createSocket('udp4');
    const payload = Buffer.alloc(64, 1);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) await new Promise((r) => sender.send(payload, trafficPort, '127.0.0.1', r));
      await new Promise((r) => setTimeout(r, 250));
      if (packetsCounted((await httpGet(metricsUrl)).body) > 0) break;
    }
    sender.close();
  });

  after(async () => {
    await prometheus?.stop();
    if (probe.child.exitCode === null) probe.child.kill('SIGTERM');
    const result = await probe.result;
    receiver.close();
    collector.close();
    assert.equal(result.code, 0, result.stderr);
  });

  test('its /metrics passes promtool; /healthz and /readyz answer 200', async () => {
    const scrape = await httpGet(metricsUrl);
    assert.equal(scrape.status, 200);
    assert.ok(packetsCounted(scrape.body) > 0, 'the capture counted the test traffic');
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stdin.end(scrape.body);
    const [code] = (await once(child, 'close')) as [number | null];
    const ours = output.split('\n').filter((line) => line.includes('flowprobe_'));
    assert.deepEqual(ours, [], 'promtool on the flowprobe_* families');
    assert.equal(output.trim(), '', 'promtool on everything served');
    assert.equal(code, 0);
    assert.equal((await httpGet(metricsUrl.replace(/\/metrics$/, '/healthz'))).status, 200);
    const ready = await httpGet(metricsUrl.replace(/\/metrics$/, '/readyz'));
    assert.equal(ready.status, 200, ready.body);
  });

  test('a periodic status line at info level', async () => {
    await waitFor(() => /"msg":"status: /.test(probe.stderrSoFar()), 15_000, 'a status line');
    const line = probe.stderrSoFar().split('\n').find((l) => l.includes('"msg":"status: '))!;
    const record = JSON.parse(line) as Record<string, unknown>;
    assert.equal(record['level'], 30);
    for (const field of ['packetsPerSecond', 'dropped', 'flows', 'datagramsPerSecond']) {
      assert.equal(typeof record[field], 'number', field);
    }
    assert.match(String(record['msg']), /^status: \d+ packets\/s \(.*\), \d+ dropped, \d+ flows \(\d+ IPv6; \d+ new\/s\), \d+ datagrams\/s/);
  });

  test('Prometheus scrapes it: up == 1, packets > 0, labelled series at 0, dashboard queries valid', async () => {
    const target = new URL(metricsUrl).host;
    prometheus = await PrometheusServer.start('flowprobe', [target]);
    const server = prometheus;
    const value = async (expr: string): Promise<number | undefined> => {
      const result = await server.query(expr);
      return result[0] === undefined ? undefined : Number(result[0].value[1]);
    };
    await waitFor(async () => (await value('up{job="flowprobe"}')) === 1, 60_000, 'Prometheus to scrape the probe (up == 1)');
    await waitFor(
      async () => ((await value('sum(flowprobe_capture_packets_total{job="flowprobe"})')) ?? 0) > 0,
      60_000,
      'Prometheus to see packets counted',
    );
    assert.equal(await value('flowprobe_flows_expired_total{job="flowprobe",reason="cache_full"}'), 0, 'a series at 0 before its first event');
    assert.equal(await value('flowprobe_capture_dropped_packets_total{job="flowprobe",interface="lo",stage="kernel"}'), 0);
    const build = await server.query('flowprobe_build_info{job="flowprobe"}');
    assert.equal(build[0]?.metric['version'], '0.1.0');

    const known = await server.metricNames();
    for (const { panel, expr } of dashboardQueries(readDashboard())) {
      const concrete = expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*').replaceAll('$job', '.*');
      await assert.doesNotReject(server.query(concrete), `${panel}: ${concrete}`);
      for (const name of metricNames(expr)) assert.ok(known.has(name), `${panel}: Prometheus has no ${name}`);
    }
  });
});
