#!/usr/bin/env node
/**
 * The container's HEALTHCHECK: GET /healthz on the probe's metrics listener
 * (--metrics-listen). Exit 0 on a 200, 1 on anything else (Docker reserves 2),
 * with one line saying which. No shell, curl or wget in the image: node runs it.
 *
 *   node dist/healthcheck.js [HOST:PORT]
 * default: $FLOWPROBE_METRICS_LISTEN, else 127.0.0.1:9464 (the probe's default)
 */
import { get } from 'node:http';
import { isIP } from 'node:net';
import { UsageError, parseCollector } from './config/options.js';

const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';
const TIMEOUT_MS = 3000;

/** Where to connect for a listener bound to `spec`: a wildcard address is reached on loopback. */
function healthzUrl(spec: string): string {
  const { host, port } = parseCollector(spec, 'metrics-listen');
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIP(target) === 6 ? `[${target}]` : target}:${port}/healthz`;
}

function check(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: TIMEOUT_MS }, (response) => {
      response.resume();
      if (response.statusCode === 200) resolve(`healthy: ${url} answered 200`);
      else reject(new Error(`${url} answered ${response.statusCode ?? '?'}`));
    });
    request.on('timeout', () => request.destroy(new Error(`${url} did not answer within ${TIMEOUT_MS} ms`)));
    request.on('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(error.code !== undefined ? `${url}: ${error.code}` : error.message)),
    );
  });
}

async function main(): Promise<number> {
  const spec = process.argv[2] ?? process.env['FLOWPROBE_METRICS_LISTEN'] ?? DEFAULT_METRICS_LISTEN;
  try {
    process.stdout.write(`${await check(healthzUrl(spec))}\n`);
    return 0;
  } catch (error) {
    const message = error instanceof UsageError ? error.message : `unhealthy: ${(error as Error).message}`;
    process.stdout.write(`${message}\n`);
    return 1;
  }
}

process.exitCode = await main();
