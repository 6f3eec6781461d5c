import { existsSync } from 'node:fs';
import { run, type RunResult } from './processes.js';

/** Debian's real rsh client (rsh-client): netkit's, whatever the rsh alternative points to. */
export const RSH_CLIENT = existsSync('/usr/bin/netkit-rsh') ? '/usr/bin/netkit-rsh' : 'rsh';

export function rshAvailable(): boolean {
  return existsSync('/usr/bin/netkit-rsh');
}

/**
 * `rsh HOST COMMAND…` with the real client, from inside a namespace (`prefix`),
 * optionally as another local user (runuser). stdin is /dev/null, as `rsh -n`.
 */
export function rsh(host: string, command: string, options: { prefix?: string[]; user?: string } = {}): Promise<RunResult> {
  const argv = [
    ...(options.prefix ?? []),
    ...(options.user === undefined ? [] : ['runuser', '-u', options.user, '--']),
    RSH_CLIENT,
    host,
    ...command.split(' '),
  ];
  return run(argv[0]!, argv.slice(1));
}

export interface AccountingLine {
  source: string;
  destination: string;
  packets: number;
  bytes: number;
}

/** The rows of a `show ip accounting` answer (or a dump file), keyed "src dst". */
export function accountingRows(text: string): Map<string, AccountingLine> {
  const rows = new Map<string, AccountingLine>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+\.\d+\.\d+\.\d+$/.test(f[0]!)) continue;
    const key = f.length > 4 ? `${f[0]} ${f[1]} ${f.slice(4).join(' ')}` : `${f[0]} ${f[1]}`;
    rows.set(key, { source: f[0]!, destination: f[1]!, packets: Number(f[2]), bytes: Number(f[3]) });
  }
  return rows;
}
