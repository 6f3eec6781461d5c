import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, httpGet } from './http.js';
import { start, waitFor, type Running } from './processes.js';

export interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * A real Prometheus server (Debian's `prometheus`) on 127.0.0.1, scraping the
 * given targets every second, with its storage in a temporary directory.
 */
export class PrometheusServer {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly running: Running,
  ) {}

  static async start(job: string, targets: string[]): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'flowprobe-prometheus-'));
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        `  - job_name: ${job}`,
        '    static_configs:',
        `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
        '',
      ].join('\n'),
    );
    const port = await freeTcpPort();
    const running = start('prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ]);
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, dir, running);
    try {
      await waitFor(
        async () => {
          if (running.child.exitCode !== null) return true;
          return (await httpGet(`${server.url}/-/ready`).catch(() => ({ status: 0 }))).status === 200;
        },
        60_000,
        'prometheus to be ready',
      );
      assert.equal(running.child.exitCode, null, `prometheus exited: ${running.stderrSoFar()}`);
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** An instant query; throws unless Prometheus says success. */
  async query(expr: string): Promise<QueryResult[]> {
    const response = await httpGet(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = JSON.parse(response.body) as { status: string; error?: string; data?: { resultType: string; result: QueryResult[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error ?? response.body}`);
    const data = body.data!;
    return data.resultType === 'vector' ? data.result : [];
  }

  async metricNames(): Promise<Set<string>> {
    const response = await httpGet(`${this.url}/api/v1/label/__name__/values`);
    return new Set((JSON.parse(response.body) as { data: string[] }).data);
  }

  /** Ends the server (SIGTERM to its pid) and removes its storage. */
  async stop(): Promise<string> {
    if (this.running.child.exitCode === null) this.running.child.kill('SIGTERM');
    const result = await this.running.result;
    rmSync(this.dir, { recursive: true, force: true });
    return result.stderr;
  }
}
