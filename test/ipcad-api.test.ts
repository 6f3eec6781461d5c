/**
 * The IPCAD JSON API: on a listener of its own (the metrics listener serves no table),
 * read-only, and the two tables cut at a default number of rows. The service is the
 * real one, over a stand-in data plane holding 1500 flows and 1500 accounting entries.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SNAPSHOT_FIELDS, SnapshotField } from '../src/accounting/table.js';
import { FLOW_FIELDS, FlowField, type DataPlaneReply, type DataPlaneRequest } from '../src/capture/worker-protocol.js';
import { API_DEFAULT_ROWS, API_MAX_ROWS, ipcadApi, listenApi } from '../src/control/http-api.js';
import { IpcadService } from '../src/control/ipcad-service.js';
import type { ReadOnlyHttpServer } from '../src/metrics/server.js';
import type { ProbeStats } from '../src/stats/probe-stats.js';

const ROWS = 1500;

function dataPlane(): { request(request: DataPlaneRequest): Promise<DataPlaneReply>; asked: number[] } {
  const asked: number[] = [];
  return {
    asked,
    request(request) {
      if (request.op === 'cache') {
        asked.push(request.limit);
        const n = Math.min(request.limit, ROWS);
        const f = new Float64Array(n * FLOW_FIELDS);
        for (let i = 0; i < n; i++) {
          f[i * FLOW_FIELDS + FlowField.src] = 0x0a000000 + i;
          f[i * FLOW_FIELDS + FlowField.dst] = 0x0a010000 + i;
          f[i * FLOW_FIELDS + FlowField.packets] = 1;
          f[i * FLOW_FIELDS + FlowField.family] = 4;
        }
        if (n > 1) {
          // the second flow is IPv6: 2001:db8::1 → 2001:db8::2
          const o = FLOW_FIELDS;
          f[o + FlowField.src] = 0;
          f[o + FlowField.dst] = 0;
          f[o + FlowField.family] = 6;
          f.set([0x20010db8, 0, 0, 1], o + FlowField.src6);
          f.set([0x20010db8, 0, 0, 2], o + FlowField.dst6);
        }
        return Promise.resolve({ op: 'cache', rows: f.buffer, flows: ROWS, ipv4Flows: ROWS - 1, clockMs: 0 });
      }
      if (request.op === 'accounting') {
        const f = new Float64Array(ROWS * SNAPSHOT_FIELDS);
        for (let i = 0; i < ROWS; i++) {
          f[i * SNAPSHOT_FIELDS + SnapshotField.src] = 0x0a000000 + i;
          f[i * SNAPSHOT_FIELDS + SnapshotField.packets] = 1;
        }
        return Promise.resolve({ op: 'accounting', rows: f.buffer });
      }
      return Promise.resolve({ op: 'error', message: `not here: ${request.op}` });
    },
  };
}

const stats = {
  sources: [],
  flows: { cached: ROWS, capacity: 262144, created: ROWS },
  families: { ipv4: { flowsCached: ROWS - 1 }, ipv6: { flowsCached: 1 } },
  export: { records: 0, datagrams: 0 },
} as unknown as ProbeStats;

describe('the JSON API', () => {
  const plane = dataPlane();
  const service = new IpcadService({
    dataPlane: plane,
    stats: () => stats,
    accounting: new Float64Array(16),
    sources: [],
    capturePorts: false,
    dumpFile: undefined,
    timeouts: { active: 1800, inactive: 15 },
    flowCacheCapacity: 262144,
    rsh: () => undefined,
    stop: () => undefined,
    version: 'test',
  });
  const api = ipcadApi(service, 'test');
  let server: ReadOnlyHttpServer;
  before(async () => {
    server = await listenApi({ host: '127.0.0.1', port: 0 }, () => api);
  });
  after(async () => {
    await server.close();
    service.close();
  });

  async function get(path: string, method = 'GET'): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${server.url}${path}`, { method });
    const text = await response.text();
    return { status: response.status, body: (response.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : { text }) as Record<string, unknown> };
  }

  it(`the tables give ${API_DEFAULT_ROWS} rows unless asked for more, with the total beside them`, async () => {
    const cache = await get('/api/v1/cache');
    assert.equal(cache.status, 200);
    assert.equal(cache.body['flows'], ROWS);
    assert.equal(cache.body['limit'], API_DEFAULT_ROWS);
    assert.equal((cache.body['entries'] as unknown[]).length, API_DEFAULT_ROWS);
    const [first, second] = cache.body['entries'] as Record<string, unknown>[];
    assert.deepEqual([first?.['family'], first?.['source'], first?.['destination']], [4, '10.0.0.0', '10.1.0.0']);
    assert.deepEqual([second?.['family'], second?.['source'], second?.['destination']], [6, '2001:db8::1', '2001:db8::2']);
    assert.equal(plane.asked.at(-1), API_DEFAULT_ROWS, 'the data plane copies no more than that');
    const accounting = await get('/api/v1/accounting');
    assert.equal(accounting.body['total'], ROWS);
    assert.equal(accounting.body['limit'], API_DEFAULT_ROWS);
    assert.equal((accounting.body['entries'] as unknown[]).length, API_DEFAULT_ROWS);
  });

  it('?limit=N asks for fewer or more, up to a bound', async () => {
    assert.equal(((await get('/api/v1/cache?limit=5')).body['entries'] as unknown[]).length, 5);
    assert.equal(((await get('/api/v1/cache?limit=2000')).body['entries'] as unknown[]).length, ROWS);
    assert.equal(((await get('/api/v1/accounting?limit=0')).body['entries'] as unknown[]).length, 0);
    for (const bad of [String(API_MAX_ROWS + 1), '-1', '1.5', 'all', '']) {
      const answer = await get(`/api/v1/cache?limit=${bad}`);
      assert.equal(answer.status, 400, bad);
      assert.match(String(answer.body['error']), new RegExp(`^limit: expected a whole number from 0 to ${API_MAX_ROWS}`));
    }
  });

  it('read-only, and nothing but the API there', async () => {
    assert.equal((await get('/api/v1/cache', 'POST')).status, 405);
    assert.equal((await get('/metrics')).status, 404);
    assert.equal((await get('/api/v1/clear')).status, 404);
  });

  it('before the control plane is up: 503', async () => {
    const early = await listenApi({ host: '127.0.0.1', port: 0 }, () => undefined);
    try {
      assert.equal((await fetch(`${early.url}/api/v1/stat`)).status, 503);
    } finally {
      await early.close();
    }
  });
});
