import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from './processes.js';

/**
 * What the image's /app holds: package.json, dist/ and the production
 * dependencies only (the Dockerfile's `npm prune --omit=dev`), copied from this
 * tree into a directory every user may read, as /app is. A process started as
 * an unprivileged user can run from it even when the work tree is root-only.
 */
export interface RuntimeTree {
  dir: string;
  cli: string;
  healthcheck: string;
  remove(): void;
}

export function copyRuntimeTree(): RuntimeTree {
  const dir = mkdtempSync(join(tmpdir(), 'flowprobe-app-'));
  chmodSync(dir, 0o755);
  cpSync(join(PROJECT_ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(PROJECT_ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry.devOptional === true) continue;
    const from = join(PROJECT_ROOT, path);
    if (existsSync(from)) cpSync(from, join(dir, path), { recursive: true });
  }
  return {
    dir,
    cli: join(dir, 'dist/cli.js'),
    healthcheck: join(dir, 'dist/healthcheck.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
