import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** ms from spawn to exit */
  elapsedMs: number;
}

/** A started child whose output is collected; `result` settles when it exits. */
export interface Running {
  child: ChildProcess;
  result: Promise<RunResult>;
  stderrSoFar(): string;
}

export function start(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; stdin?: 'ignore' | 'pipe' } = {}): Running {
  const began = performance.now();
  const child = spawn(command, args, {
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const result = new Promise<RunResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, elapsedMs: performance.now() - began }),
    );
  });
  return { child, result, stderrSoFar: () => stderr };
}

export function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return start(command, args, options).result;
}

/** Run the built probe (dist/cli.js) with the given arguments. */
export function startProbe(args: readonly string[], options: { prefix?: string[]; env?: NodeJS.ProcessEnv; cli?: string } = {}): Running {
  const prefix = options.prefix ?? [];
  const [command, ...rest] = [...prefix, process.execPath, options.cli ?? CLI, ...args];
  return start(command!, rest, options.env === undefined ? {} : { env: options.env });
}

/** For `finally`: kill the child if it still runs and wait for it to be gone. */
export async function stopped(running: Running): Promise<void> {
  if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
  await running.result.catch(() => undefined);
}

export function runProbe(args: readonly string[], options: { prefix?: string[] } = {}): Promise<RunResult> {
  return startProbe(args, options).result;
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The probe's stderr when it is not a terminal: one pino JSON record per line (50 = error). */
export function logRecords(stderr: string): LogRecord[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogRecord);
}

/** The statistics summary's text, from its log record. */
export function summaryText(stderr: string): string {
  return logRecords(stderr).find((r) => r.msg.startsWith('statistics:'))?.msg ?? '';
}
