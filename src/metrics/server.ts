/**
 * The read-only HTTP endpoint: /metrics (Prometheus text), /healthz (the process
 * answers), /readyz (capturing and exporting). Nothing on it changes state. The
 * plumbing (listen, GET/HEAD only, replies) also serves the IPCAD JSON API on its own
 * listener (src/control/http-api.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/options.js';
import type { ProbeMetrics } from './metrics.js';

export type Readiness = { ready: true } | { ready: false; reason: string };

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

/** A listening read-only HTTP server. */
export class ReadOnlyHttpServer {
  private constructor(
    private readonly server: Server,
    /** where it listens, as a URL prefix (the real port when 0 was asked for) */
    readonly url: string,
  ) {}

  /**
   * Listen on `address` for GET and HEAD (anything else: 405); `handle` answers those.
   * A failure to listen is a MetricsListenError naming `--${option}`.
   */
  static async listen(
    option: string,
    address: ListenAddress,
    handle: (request: IncomingMessage, response: ServerResponse, url: URL) => Promise<void>,
  ): Promise<ReadOnlyHttpServer> {
    const server = createServer((request, response) => {
      const answer = async (): Promise<void> => {
        if (request.method !== 'GET' && request.method !== 'HEAD') {
          response.setHeader('Allow', 'GET, HEAD');
          reply(response, request, 405, 'read-only: GET or HEAD\n');
          return;
        }
        await handle(request, response, new URL(request.url ?? '/', 'http://probe'));
      };
      answer().catch((error: unknown) => {
        if (!response.headersSent) reply(response, request, 500, `failed: ${(error as Error).message}\n`);
        else response.destroy();
      });
    });
    server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval, so its connection is reused
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? 'unknown';
        const hint = code === 'EADDRINUSE' ? 'in use (another probe?); give another ADDRESS:PORT or off' : code;
        reject(new MetricsListenError(code, `--${option} ${formatListen(address)}: cannot listen: ${hint}`));
      });
      server.listen(address.port, address.host, () => resolve());
    });
    const bound = server.address() as AddressInfo;
    return new ReadOnlyHttpServer(server, `http://${formatListen({ host: address.host, port: bound.port })}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export const MetricsServer = {
  listen(address: ListenAddress, metrics: ProbeMetrics, readiness: () => Readiness): Promise<ReadOnlyHttpServer> {
    return ReadOnlyHttpServer.listen('metrics-listen', address, (request, response, url) => handle(request, response, url.pathname, metrics, readiness));
  },
};
export type MetricsServer = ReadOnlyHttpServer;

export function formatListen(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

async function handle(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  metrics: ProbeMetrics,
  readiness: () => Readiness,
): Promise<void> {
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

export function reply(
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
