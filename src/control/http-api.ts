/**
 * The read-only commands as JSON, on a listener of their own (`--api-listen`, off
 * unless asked for: the tables name every host that talks, so they are not served
 * wherever /metrics is):
 *   /api/v1/accounting[?checkpoint][&limit=N]   show ip accounting [checkpoint]
 *   /api/v1/cache[?limit=N]                     show ip cache flow
 *   /api/v1/interface/NAME                      show interface NAME
 *   /api/v1/stat                                stat
 *   /api/v1/version                             show version
 * The two tables give at most API_DEFAULT_ROWS rows unless `limit` asks for more (up to
 * API_MAX_ROWS), with the total beside them. Nothing here changes state: clear, dump,
 * restore, import and shutdown are rsh only.
 */
import type { ListenAddress } from '../config/options.js';
import { ReadOnlyHttpServer, reply } from '../metrics/server.js';
import { accountingRowJson, cacheFlowJson } from './format.js';
import { ServiceError, type IpcadService } from './ipcad-service.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

export type ApiHandler = (path: string, query: URLSearchParams) => Promise<ApiResponse>;

export const API_PATHS = ['/api/v1/accounting', '/api/v1/cache', '/api/v1/interface/NAME', '/api/v1/stat', '/api/v1/version'] as const;
/** rows of a table when no limit is given */
export const API_DEFAULT_ROWS = 1000;
/** the most rows one answer gives (the whole table is rsh's `show`, or the dump file) */
export const API_MAX_ROWS = 100_000;

/** `limit=N`: the rows asked for, or a 400 answer. */
function rowLimit(query: URLSearchParams): number | ApiResponse {
  const text = query.get('limit');
  if (text === null) return API_DEFAULT_ROWS;
  const limit = Number(text);
  if (text.trim() === '' || !Number.isInteger(limit) || limit < 0 || limit > API_MAX_ROWS) {
    return { status: 400, body: { error: `limit: expected a whole number from 0 to ${API_MAX_ROWS}, got ${JSON.stringify(text)}` } };
  }
  return limit;
}

/**
 * Serve `api` (undefined until the control plane is up: 503) on `address`. A failure to
 * listen is a MetricsListenError naming --api-listen.
 */
export function listenApi(address: ListenAddress, api: () => ApiHandler | undefined): Promise<ReadOnlyHttpServer> {
  return ReadOnlyHttpServer.listen('api-listen', address, async (request, response, url) => {
    const handler = api();
    const answer =
      !url.pathname.startsWith('/api/')
        ? { status: 404, body: { error: `not found; try ${API_PATHS.join(' ')}` } }
        : handler === undefined
          ? { status: 503, body: { error: 'starting: the capture is not open yet' } }
          : await handler(url.pathname, url.searchParams);
    reply(response, request, answer.status, JSON.stringify(answer.body, null, 2) + '\n', 'application/json; charset=utf-8');
  });
}

export function ipcadApi(service: IpcadService, version: string): ApiHandler {
  return async (path, query) => {
    try {
      if (path === '/api/v1/accounting') {
        const limit = rowLimit(query);
        if (typeof limit !== 'number') return limit;
        const report = await service.accounting(query.has('checkpoint'));
        return {
          status: 200,
          body: {
            view: report.view,
            ageSeconds: report.ageSeconds,
            savedAt: report.savedAt,
            unaccounted: { packets: report.status.accounting.unaccountedPackets, bytes: report.status.accounting.unaccountedBytes },
            total: report.rows.length,
            limit,
            entries: report.rows.slice(0, limit).map(accountingRowJson),
          },
        };
      }
      if (path === '/api/v1/cache') {
        const limit = rowLimit(query);
        if (typeof limit !== 'number') return limit;
        const cache = await service.cache(limit);
        return {
          status: 200,
          body: { flows: cache.total, capacity: cache.capacity, timeouts: cache.timeouts, limit, entries: cache.flows.map(cacheFlowJson) },
        };
      }
      if (path.startsWith('/api/v1/interface/')) {
        const name = decodeURIComponent(path.slice('/api/v1/interface/'.length));
        const info = service.interface(name);
        return info === undefined ? { status: 404, body: { error: `no such interface: ${name}` } } : { status: 200, body: info };
      }
      if (path === '/api/v1/stat') return { status: 200, body: service.status() };
      if (path === '/api/v1/version') return { status: 200, body: { name: 'flowprobe', version, mode: 'ipcad', node: process.version } };
      return { status: 404, body: { error: `not found; try ${API_PATHS.join(' ')}` } };
    } catch (error) {
      if (error instanceof ServiceError) return { status: 503, body: { error: error.message, code: error.code } };
      throw error;
    }
  };
}
