/**
 * `flowprobe ipcad [-d] [-r] [-s] [-c FILE]`: IPCAD's own command line, and
 * its ipcad.conf translated into the probe's options plus the accounting
 * table's, the rsh server's and the dump file's.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import yargs from 'yargs';
import { aggregationRules, accountingLayout, MAX_MEMORY_LIMIT, MIN_ACCOUNTING_ENTRIES, type AggregationRules } from '../accounting/table.js';
import { resolveIdentity } from '../privileges/identity.js';
import { ConfigError, parseIpcadConf, type IpcadConfig, type RshAccessRule } from './ipcad-conf.js';
import {
  DEFAULTS,
  UsageError,
  environmentName,
  failAsUsageError,
  logLevelOption,
  parseCollector,
  parseListenAddress,
  secondsOption,
  type ListenAddress,
  type ProbeOptions,
} from './options.js';

/** IPCAD's default configuration file. */
export const DEFAULT_IPCAD_CONF = '/usr/local/etc/ipcad.conf';
/** IPCAD's pid file when detaching and the configuration names none. */
export const DEFAULT_PID_FILE = '/var/run/ipcad.pid';
export const DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024;
export const DEFAULT_RSH_TIMEOUT = 30;
export const RSH_MAX_CLIENTS = 10;
export const RSH_PORT = 514;

export interface IpcadOptions {
  configFile: string;
  /** -d: run as a detached child process */
  detach: boolean;
  /** -r: import the dump at start */
  restoreOnStart: boolean;
  /** -s: save the dump at exit */
  saveOnExit: boolean;
  accounting: {
    memoryLimit: number;
    /** per interface, in the order of ProbeOptions.interfaces */
    capturePorts: boolean[];
    rules: AggregationRules;
  };
  rsh: {
    /** addresses to listen on; empty: no rsh server */
    listen: string[];
    port: number;
    access: RshAccessRule[];
    timeoutSeconds: number;
    maxClients: number;
  };
  /** absolute, inside the chroot directory when one is given */
  dumpFile: string | undefined;
  chroot: string | undefined;
  pidFile: string | undefined;
  /** the read-only JSON API's own listener; undefined: off */
  apiListen: ListenAddress | undefined;
  /** lines to log at start (statements accepted but not carried out) */
  warnings: string[];
}

export type IpcadCliResult = { kind: 'ipcad'; options: ProbeOptions; ipcad: IpcadOptions } | { kind: 'exit'; output: string };

function readConfig(path: string): IpcadConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new UsageError(`-c: cannot read ${path} (${code})${code === 'ENOENT' && path === DEFAULT_IPCAD_CONF ? '; give the configuration with -c FILE' : ''}`);
  }
  return parseIpcadConf(path, text);
}

/** A path from the configuration: inside the chroot directory when there is one (as IPCAD, which read them after chroot). */
function inside(chroot: string | undefined, path: string): string {
  if (chroot === undefined) return resolve(path);
  // after a chroot(2), "/x" would be DIR/x too
  return join(chroot, path);
}

/** Parse `ipcad …` (argv without the word "ipcad"). Throws UsageError or ConfigError. */
export function parseIpcadCommandLine(argv: string[]): IpcadCliResult {
  let output = '';
  const parser = yargs(argv)
    .scriptName('flowprobe ipcad')
    .usage('$0 [-d] [-r] [-s] [-c FILE]\n\nIPCAD compatibility: reads ipcad.conf, keeps the accounting table, answers rsh.')
    .parserConfiguration({ 'boolean-negation': false, 'camel-case-expansion': true, 'short-option-groups': true })
    .option('detach', { alias: 'd', type: 'boolean', default: false, describe: 'run in the background (a detached child process and a pid file)' })
    .option('restore', { alias: 'r', type: 'boolean', default: false, describe: 'import the dump file at start' })
    .option('save', { alias: 's', type: 'boolean', default: false, describe: 'save the dump file at exit' })
    .option('config', { alias: 'c', type: 'string', default: DEFAULT_IPCAD_CONF, describe: 'the ipcad.conf to read' })
    .option('metrics-listen', { type: 'string', describe: `Prometheus metrics, /healthz, /readyz on ADDRESS:PORT, or off (default ${DEFAULTS.metricsListen})` })
    .option('api-listen', {
      type: 'string',
      describe: 'the read-only JSON API (accounting table, flow cache) on ADDRESS:PORT, or off (default off; ipcad.conf: api-listen = …)',
    })
    .option('log-level', { type: 'string', describe: `debug, info, warn or error (default ${DEFAULTS.logLevel})` })
    .option('status-interval', { type: 'string', describe: 'seconds between status lines (default 0: none)' })
    .epilogue(
      `The long options can also come from the environment: ${IPCAD_ENV_OPTIONS.map(environmentName).join(', ')}; ` +
        'a flag wins over its variable, the variable over ipcad.conf.',
    )
    .strict()
    .version(false)
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail(failAsUsageError);
  const args = parser.parseSync(argv, {}, (_error, _argv, text) => {
    output = text;
  });
  if (output !== '' || args['help'] === true) return { kind: 'exit', output };
  const configFile = resolve(String(args['config']));
  const conf = readConfig(configFile);
  // a flag, else its FLOWPROBE_* variable (whose name a bad value's message gives)
  const origins = new Map<string, string>();
  const given = (name: (typeof IPCAD_ENV_OPTIONS)[number], flag: unknown): unknown => {
    if (flag !== undefined) return flag;
    const value = process.env[environmentName(name)];
    if (value !== undefined) origins.set(name, environmentName(name));
    return value;
  };
  try {
    return {
      kind: 'ipcad',
      ...translateIpcadConfig(conf, {
        configFile,
        detach: args['detach'] === true,
        restoreOnStart: args['restore'] === true,
        saveOnExit: args['save'] === true,
        metricsListen: given('metrics-listen', args['metricsListen']) ?? DEFAULTS.metricsListen,
        apiListen: given('api-listen', args['apiListen']),
        logLevel: given('log-level', args['logLevel']) ?? DEFAULTS.logLevel,
        statusInterval: given('status-interval', args['statusInterval']) ?? 0,
      }),
    };
  } catch (error) {
    const name = error instanceof UsageError ? /^--([a-z-]+): /.exec(error.message)?.[1] : undefined;
    const origin = name === undefined ? undefined : origins.get(name);
    if (origin === undefined) throw error;
    throw new UsageError(`--${name} (from ${origin}): ${(error as UsageError).message.slice(name!.length + 4)}`);
  }
}

/** `flowprobe ipcad`'s long options that FLOWPROBE_* variables may give (its -d, -r, -s, -c are IPCAD's own). */
export const IPCAD_ENV_OPTIONS = ['metrics-listen', 'api-listen', 'log-level', 'status-interval'] as const;

export interface IpcadCommandLine {
  configFile: string;
  detach: boolean;
  restoreOnStart: boolean;
  saveOnExit: boolean;
  metricsListen: unknown;
  /** --api-listen (or its variable); undefined: ipcad.conf's api-listen, else off */
  apiListen?: unknown;
  logLevel: unknown;
  statusInterval: unknown;
}

/** ipcad.conf → the probe's options and the IPCAD parts'. Throws ConfigError for what cannot run. */
export function translateIpcadConfig(conf: IpcadConfig, cli: IpcadCommandLine): { options: ProbeOptions; ipcad: IpcadOptions } {
  const file = conf.file;
  if (conf.interfaces.length === 0) throw new ConfigError(`${file}: no interface statement: nothing to capture`);
  const memoryLimit = conf.memoryLimit ?? DEFAULT_MEMORY_LIMIT;
  if (memoryLimit > MAX_MEMORY_LIMIT) throw new ConfigError(`${file}: memory_limit ${memoryLimit} is above the most flowprobe takes (2g)`);
  if (accountingLayout(memoryLimit).capacity < MIN_ACCOUNTING_ENTRIES) {
    throw new ConfigError(`${file}: memory_limit ${memoryLimit} is too small (at least 2k, for ${MIN_ACCOUNTING_ENTRIES} entries)`);
  }
  const collectors = conf.netflowDestinations.map(({ host, port }) => {
    try {
      // IPCAD speaks NetFlow v5 only
      return { ...parseCollector(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, 'collector'), version: 5 as const };
    } catch (error) {
      throw new ConfigError(`${file}: netflow export destination ${host} ${port}: ${(error as Error).message}`);
    }
  });
  if (conf.dumpFile === undefined && (cli.restoreOnStart || cli.saveOnExit)) {
    conf.warnings.push(`${file}: -r/-s given but no "dumpfile = PATH": nothing is restored or saved`);
  }
  if (conf.gid !== undefined && conf.uid === undefined) {
    throw new ConfigError(`${file}: gid = ${conf.gid} without uid: changing the group alone would leave the probe root; give uid = N too`);
  }
  if (conf.uid !== undefined) {
    // looked up now, so that a typo is named as the statement it is (the drop itself comes once the probe is up)
    try {
      resolveIdentity(conf.uid, conf.gid);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      const statement = /^--group: /.test(error.message) ? `gid = ${conf.gid}` : `uid = ${conf.uid}`;
      throw new ConfigError(`${file}: ${statement}: ${error.message.replace(/^--(user|group): /, '').replace('give --group too', 'give gid = N too')}`);
    }
  }
  const options: ProbeOptions = {
    interfaces: conf.interfaces.map((i) => ({ name: i.name, ifIndex: undefined, promiscuous: i.promiscuous, filter: i.filter })),
    read: undefined,
    collectors,
    exportSource: undefined,
    activeTimeout: conf.netflowActiveTimeout ?? DEFAULTS.activeTimeout,
    inactiveTimeout: conf.netflowInactiveTimeout ?? DEFAULTS.inactiveTimeout,
    tcpEndTimeout: DEFAULTS.tcpEndTimeout,
    maxFlows: DEFAULTS.maxFlows,
    snaplen: DEFAULTS.snaplen,
    bufferSize: DEFAULTS.bufferSize,
    // IPCAD leaves interfaces out of promiscuous mode unless told (`interface X promisc`)
    promiscuous: false,
    engineType: conf.netflowEngineType ?? DEFAULTS.engineType,
    engineId: conf.netflowEngineId ?? DEFAULTS.engineId,
    exportRate: DEFAULTS.exportRate,
    exportQueue: DEFAULTS.exportQueue,
    sourceId: conf.netflowEngineId ?? DEFAULTS.engineId,
    templateRefreshPackets: DEFAULTS.templateRefreshPackets,
    templateRefreshSeconds: DEFAULTS.templateRefreshSeconds,
    exportMaxBytes: DEFAULTS.exportMaxBytes,
    filter: '',
    // IPCAD's uid/gid: dropped once the captures and every listener are open, the pid file
    // written and the rsh connect-back helper started (which keeps CAP_NET_BIND_SERVICE alone)
    user: conf.uid,
    group: conf.gid,
    onInterfaceLoss: 'exit',
    tickMs: 1000,
    metricsListen: parseListenAddress('metrics-listen', cli.metricsListen),
    metricsLinger: 0,
    logLevel: logLevelOption('log-level', cli.logLevel),
    statusInterval: secondsOption('status-interval', cli.statusInterval, 0, 86400),
  };
  // Paths never depend on the working directory (/ under systemd, while running as root).
  if (conf.chroot !== undefined && !isAbsolute(conf.chroot)) {
    throw new ConfigError(`${file}: chroot = ${conf.chroot}: give an absolute directory`);
  }
  if (conf.dumpFile !== undefined && conf.chroot === undefined && !isAbsolute(conf.dumpFile)) {
    throw new ConfigError(
      `${file}: dumpfile = ${conf.dumpFile}: a relative path needs chroot = DIR (it is then DIR/${conf.dumpFile}); otherwise give an absolute path`,
    );
  }
  const chroot = conf.chroot === undefined ? undefined : resolve(conf.chroot);
  // the pid file is written by the parent, before any confinement: as given
  const pidFile = conf.pidFile !== undefined ? resolve(conf.pidFile) : cli.detach ? DEFAULT_PID_FILE : undefined;
  return {
    options,
    ipcad: {
      configFile: cli.configFile,
      detach: cli.detach,
      restoreOnStart: cli.restoreOnStart,
      saveOnExit: cli.saveOnExit,
      accounting: {
        memoryLimit,
        capturePorts: conf.interfaces.map((i) => i.capturePorts),
        rules: aggregationRules(conf.aggregates),
      },
      rsh: {
        listen: conf.rshListen,
        port: RSH_PORT,
        access: conf.rshAccess,
        timeoutSeconds: conf.rshTimeout ?? DEFAULT_RSH_TIMEOUT,
        maxClients: RSH_MAX_CLIENTS,
      },
      dumpFile: conf.dumpFile === undefined ? undefined : inside(chroot, conf.dumpFile),
      chroot,
      pidFile,
      apiListen: parseListenAddress('api-listen', cli.apiListen ?? conf.apiListen ?? 'off'),
      warnings: conf.warnings,
    },
  };
}
