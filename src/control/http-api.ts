/**
 * The read-only commands as JSON, served on the metrics listener:
 *   /api/v1/accounting[?checkpoint]   show ip accounting [checkpoint]
 *   /api/v1/cache[?limit=N]           show ip cache flow
 *   /api/v1/interface/NAME            show interface NAME
 *   /api/v1/stat                      stat
 *   /api/v1/version                   show version
 * Nothing here changes state: clear, dump, restore, import and shutdown are rsh only.
 */
import { accountingRowJson, cacheFlowJson } from './format.js';
import { ServiceError, type IpcadService } from './ipcad-service.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

export type ApiHandler = (path: string, query: URLSearchParams) => Promise<ApiResponse>;

export const API_PATHS = ['/api/v1/accounting', '/api/v1/cache', '/api/v1/interface/NAME', '/api/v1/stat', '/api/v1/version'] as const;

export function ipcadApi(service: IpcadService, version: string): ApiHandler {
  return async (path, query) => {
    try {
      if (path === '/api/v1/accounting') {
        const report = await service.accounting(query.has('checkpoint'));
        return {
          status: 200,
          body: {
            view: report.view,
            ageSeconds: report.ageSeconds,
            savedAt: report.savedAt,
            unaccounted: { packets: report.status.accounting.unaccountedPackets, bytes: report.status.accounting.unaccountedBytes },
            entries: report.rows.map(accountingRowJson),
          },
        };
      }
      if (path === '/api/v1/cache') {
        const limitText = query.get('limit');
        const limit = limitText === null ? undefined : Number(limitText);
        if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
          return { status: 400, body: { error: `limit: expected a whole number, got ${JSON.stringify(limitText)}` } };
        }
        const cache = await service.cache(limit);
        return {
          status: 200,
          body: { flows: cache.total, capacity: cache.capacity, timeouts: cache.timeouts, entries: cache.flows.map(cacheFlowJson) },
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
