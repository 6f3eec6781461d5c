/**
 * The read-only HTTP endpoint: /metrics (Prometheus text), /healthz (the process
 * answers), /readyz (capturing and exporting), and in ipcad mode the read-only
 * commands as JSON under /api/v1/. Nothing on it changes state.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/options.js';
import type { ProbeMetrics } from './metrics.js';

export type Readiness = { ready: true } | { ready: false; reason: string };

/** Extra read-only JSON routes under /api/ (the IPCAD commands); undefined while not yet available. */
export type ApiRoutes = (path: string, query: URLSearchParams) => Promise<{ status: number; body: unknown }> | undefined;

export class MetricsListenError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'MetricsListenError';
  }
}

const PATHS = ['/metrics', '/healthz', '/readyz'] as const;

export class MetricsServer {
  private constructor(
    private readonly server: Server,
    /** where it listens, as a URL prefix (the real port when 0 was asked for) */
    readonly url: string,
  ) {}

  static async listen(
    address: ListenAddress,
    metrics: ProbeMetrics,
    readiness: () => Readiness,
    api?: ApiRoutes,
  ): Promise<MetricsServer> {
    const server = createServer((request, response) => {
      handle(request, response, metrics, readiness, api).catch((error: unknown) => {
        if (!response.headersSent) reply(response, request, 500, `scrape failed: ${(error as Error).message}\n`);
        else response.destroy();
      });
    });
    server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval, so its connection is reused
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? 'unknown';
        const hint = code === 'EADDRINUSE' ? 'in use (another probe?); give another ADDRESS:PORT or off' : code;
        reject(new MetricsListenError(code, `--metrics-listen ${formatListen(address)}: cannot listen: ${hint}`));
      });
      server.listen(address.port, address.host, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    return new MetricsServer(server, `http://${formatListen({ host: address.host, port: bound.port })}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function formatListen(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  metrics: ProbeMetrics,
  readiness: () => Readiness,
  api: ApiRoutes | undefined,
): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    reply(response, request, 405, 'read-only: GET or HEAD\n');
    return;
  }
  const url = new URL(request.url ?? '/', 'http://probe');
  const path = url.pathname;
  if (api !== undefined && path.startsWith('/api/')) {
    const answer = await (api(path, url.searchParams) ?? Promise.resolve({ status: 503, body: { error: 'starting: the capture is not open yet' } }));
    reply(response, request, answer.status, JSON.stringify(answer.body, null, 2) + '\n', 'application/json; charset=utf-8');
    return;
  }
  switch (path) {
    case '/metrics':
      reply(response, request, 200, await metrics.scrape(), metrics.contentType);
      return;
    case '/healthz':
      reply(response, request, 200, 'ok\n');
      return;
    case '/readyz': {
      const state = readiness();
      reply(response, request, state.ready ? 200 : 503, state.ready ? 'ready\n' : `not ready: ${state.reason}\n`);
      return;
    }
    case '/':
      reply(response, request, 200, `flowprobe: ${PATHS.join(' ')}\n`);
      return;
    default:
      reply(response, request, 404, `not found; try ${PATHS.join(' ')}\n`);
  }
}

function reply(
  response: ServerResponse,
  request: IncomingMessage,
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
): void {
  response.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}
