#!/usr/bin/env node
/**
 * The container's HEALTHCHECK: GET /healthz on the probe's metrics listener.
 * Exit 0 on a 200, 1 on anything else (Docker reserves 2), with one line saying
 * which. No shell, curl or wget in the image: node runs it.
 *
 *   node dist/healthcheck.js [HOST:PORT | off]
 *
 * Without an argument it asks where the probe listens: the image runs the probe
 * as PID 1, whose command line (/proc/1/cmdline, readable by any user) read with
 * this environment (the container's, as Docker gives it to a healthcheck) gives
 * its --metrics-listen exactly as the probe took it, from a flag, FLOWPROBE_METRICS_LISTEN,
 * the config file or the default. When PID 1 is not the probe (run by hand on a
 * host): $FLOWPROBE_METRICS_LISTEN, else 127.0.0.1:9464 (the probe's default).
 *
 * With the listener off (or on port 0, any free port) there is no /healthz to
 * ask: the probe is healthy while it runs, which is all that can be told
 * (a container ends with its PID 1; a stopped or zombie probe is unhealthy).
 */
import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { get } from 'node:http';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine } from './config/cli-args.js';
import { ConfigError } from './config/ipcad-conf.js';
import { UsageError, parseCollector, type ListenAddress } from './config/options.js';

const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';
const TIMEOUT_MS = 3000;
/** the probe of this app: dist/cli.js beside this file */
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

class Unhealthy extends Error {}

/** Where to connect for a listener bound to `host`: a wildcard address is reached on loopback. */
function healthzUrl({ host, port }: ListenAddress): string {
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIP(target) === 6 ? `[${target}]` : target}:${port}/healthz`;
}

function check(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: TIMEOUT_MS }, (response) => {
      response.resume();
      if (response.statusCode === 200) resolve(`healthy: ${url} answered 200`);
      else reject(new Unhealthy(`${url} answered ${response.statusCode ?? '?'}`));
    });
    request.on('timeout', () => request.destroy(new Unhealthy(`${url} did not answer within ${TIMEOUT_MS} ms`)));
    request.on('error', (error: NodeJS.ErrnoException) =>
      reject(error instanceof Unhealthy ? error : new Unhealthy(error.code !== undefined ? `${url}: ${error.code}` : error.message)),
    );
  });
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** The probe's arguments when PID 1 runs this app's cli.js (the image's ENTRYPOINT); undefined otherwise. */
function pid1ProbeArguments(): string[] | undefined {
  let argv: string[];
  try {
    argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0').slice(0, -1);
  } catch {
    return undefined;
  }
  const script = argv.findIndex((word, i) => {
    if (i === 0 || word.startsWith('-')) return false;
    if (isAbsolute(word)) return samePath(word, CLI);
    try {
      return samePath(resolve(readlinkSync('/proc/1/cwd'), word), CLI);
    } catch {
      return false;
    }
  });
  return script === -1 ? undefined : argv.slice(script + 1);
}

/** The probe's listener: undefined when it is off. */
function probeListener(args: string[]): ListenAddress | undefined {
  try {
    const parsed = parseCommandLine(args);
    if (parsed.kind === 'exit') throw new Unhealthy('PID 1 is flowprobe showing its help or version, not probing');
    return parsed.options.metricsListen;
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) throw new Unhealthy(`PID 1's options do not read here (${error.message})`);
    throw error;
  }
}

/** What a probe without a fixed /healthz can show: that it runs. */
function runs(pid: number, why: string): string {
  let state: string;
  try {
    // pid (comm) state …: comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
  } catch {
    throw new Unhealthy(`${why}, and the probe (pid ${pid}) is gone`);
  }
  if (state === 'Z' || state === 'T' || state === 't') throw new Unhealthy(`${why}, and the probe (pid ${pid}) is ${state === 'Z' ? 'a zombie' : 'stopped'}`);
  return `healthy: ${why}: the probe (pid ${pid}) runs`;
}

async function health(): Promise<string> {
  const given = process.argv[2];
  const probeArgs = given === undefined ? pid1ProbeArguments() : undefined;
  let listener: ListenAddress | undefined;
  if (probeArgs !== undefined) {
    listener = probeListener(probeArgs);
  } else {
    const spec = given ?? process.env['FLOWPROBE_METRICS_LISTEN'] ?? DEFAULT_METRICS_LISTEN;
    listener = spec === 'off' ? undefined : parseCollector(spec, 'metrics-listen');
  }
  if (listener !== undefined && listener.port !== 0) return check(healthzUrl(listener));
  const why = listener === undefined ? 'the metrics listener is off, no /healthz to ask' : 'the metrics listener has no fixed port (port 0), no /healthz to ask';
  if (probeArgs === undefined) throw new Unhealthy(`${why}, and PID 1 is not flowprobe`);
  return runs(1, why);
}

async function main(): Promise<number> {
  try {
    process.stdout.write(`${await health()}\n`);
    return 0;
  } catch (error) {
    process.stdout.write(error instanceof UsageError ? `${error.message}\n` : `unhealthy: ${(error as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
