import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './processes.js';

/** The parts of a Grafana dashboard the tests look at. */
export interface GrafanaPanel {
  id?: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; legendFormat?: string }[];
  panels?: GrafanaPanel[];
}
export interface GrafanaDashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  panels: GrafanaPanel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

export function dashboardQueries(dashboard: GrafanaDashboard): { panel: string; expr: string }[] {
  const queries: { panel: string; expr: string }[] = [];
  const ids = new Set<number>();
  const visit = (panels: GrafanaPanel[]): void => {
    for (const panel of panels) {
      assert.ok(panel.id !== undefined && !ids.has(panel.id), `panel ${panel.title}: a unique id`);
      ids.add(panel.id);
      assert.ok(panel.gridPos !== undefined, `panel ${panel.title}: a grid position`);
      if (panel.type === 'row') {
        visit(panel.panels ?? []);
        continue;
      }
      assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title);
      assert.ok((panel.targets ?? []).length > 0, `panel ${panel.title}: queries`);
      for (const target of panel.targets ?? []) queries.push({ panel: panel.title, expr: target.expr });
    }
  };
  visit(dashboard.panels);
  const variables = dashboard.templating.list.map((v) => v.name);
  assert.ok(variables.includes('datasource'));
  for (const { expr } of queries) {
    for (const m of expr.matchAll(/\$(\w+)/g)) {
      assert.ok(variables.includes(m[1]!) || m[1]!.startsWith('__'), `${expr}: $${m[1]} is defined`);
    }
  }
  return queries;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
export function metricNames(expr: string): string[] {
  const withoutLabels = expr
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/"[^"]*"/g, '');
  const names = new Set<string>();
  for (const m of withoutLabels.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)) {
    const word = m[1]!;
    if (/^(and|or|unless|bool|offset|e|inf|nan)$/i.test(word)) continue;
    names.add(word);
  }
  return [...names];
}

export function readDashboard(): GrafanaDashboard {
  return JSON.parse(readFileSync(join(PROJECT_ROOT, 'config/grafana-dashboard.json'), 'utf8')) as GrafanaDashboard;
}
