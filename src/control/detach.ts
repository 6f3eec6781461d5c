/**
 * `flowprobe ipcad -d`: Node cannot fork(2), so the probe starts itself again
 * as a detached child (its own session, no terminal) with the same arguments
 * less -d, waits until the child says it is up, then exits. The child writes
 * the pid file. Its log lines go where this process's stderr went: redirect
 * it to keep them (flowprobe ipcad -d 2>>/var/log/flowprobe.log).
 */
import { spawn } from 'node:child_process';

export const DETACHED_ENV = 'FLOWPROBE_DETACHED';
const READY = 'flowprobe-ready';

/** The arguments without -d (also inside a group such as -drs). */
export function withoutDetach(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg === '-d' || arg === '--detach' || arg === '--detach=true') continue;
    if (/^-[a-zA-Z]{2,}$/.test(arg) && arg.includes('d')) {
      out.push(arg.replace(/d/g, ''));
      // a group that ended in c takes the next word as its value
      if (arg.endsWith('c') && i + 1 < argv.length) out.push(argv[++i]!);
      continue;
    }
    out.push(arg);
    if ((arg === '-c' || arg === '--config') && i + 1 < argv.length) out.push(argv[++i]!);
  }
  return out;
}

/** Start the detached child; resolves with this process's exit code once the child is up (or has failed). */
export function detach(argv: readonly string[], pidFile: string | undefined): Promise<number> {
  const script = process.argv[1]!;
  const child = spawn(process.execPath, [...process.execArgv, script, ...withoutDetach(argv)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, [DETACHED_ENV]: '1' },
  });
  return new Promise((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`flowprobe: cannot start the detached process: ${error.message}\n`);
      resolve(1);
    });
    child.on('message', (message: unknown) => {
      if ((message as { type?: string } | null)?.type !== READY) return;
      process.stderr.write(`flowprobe: running in the background as pid ${child.pid}${pidFile === undefined ? '' : ` (pid file ${pidFile})`}\n`);
      child.removeAllListeners('exit');
      child.disconnect();
      child.unref();
      resolve(0);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });
}

/** In the detached child: tell the parent the probe is up, then let go of it. */
export function signalReady(): void {
  if (process.env[DETACHED_ENV] !== '1' || process.send === undefined) return;
  // the terminal the log lines go to may close; a failed write must not end the probe
  process.stderr.on('error', () => undefined);
  process.send({ type: READY }, () => process.disconnect());
}
