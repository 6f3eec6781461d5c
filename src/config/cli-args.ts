import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { parseIpcadCommandLine, type IpcadOptions } from './ipcad-options.js';
import {
  DEFAULTS,
  UsageError,
  integerOption,
  logLevelOption,
  parseAddress,
  parseListenAddress,
  parseCollector,
  parseInterface,
  secondsOption,
  type ProbeOptions,
} from './options.js';

export const VERSION = '0.1.0';

function asList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--config: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config: ${path} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--config: ${path} must hold a JSON object whose keys are long option names`);
  }
  return parsed as Record<string, unknown>;
}

export type CliResult =
  | { kind: 'run'; options: ProbeOptions }
  | { kind: 'ipcad'; options: ProbeOptions; ipcad: IpcadOptions }
  | { kind: 'exit'; output: string };

/**
 * Parse the command line (and -c JSON file) into validated options. Throws
 * UsageError, or ConfigError for `flowprobe ipcad` and a bad ipcad.conf.
 */
export function parseCommandLine(argv: string[]): CliResult {
  // `flowprobe ipcad …`: IPCAD's command line (its -r and -c differ from ours)
  if (argv[0] === 'ipcad') return parseIpcadCommandLine(argv.slice(1));
  let output = '';
  const parser = yargs(argv)
    .scriptName('flowprobe')
    .usage(
      '$0 [options] [bpf filter …]\n$0 ipcad [-d] [-r] [-s] [-c ipcad.conf]   (IPCAD compatibility: see flowprobe ipcad --help)\n\n' +
        'A NetFlow v5 probe: captures packets, keeps a flow cache, exports expired flows.',
    )
    .parserConfiguration({ 'boolean-negation': false, 'camel-case-expansion': true })
    .option('interface', { alias: 'i', type: 'string', describe: 'live capture on [IFINDEX:]NAME (repeatable; "any" works)' })
    .option('read', { alias: 'r', type: 'string', describe: 'read a pcap or pcapng file ("-" = stdin) instead of an interface' })
    .option('collector', { alias: 'n', type: 'string', describe: 'NetFlow v5 destination HOST:PORT or [IPv6]:PORT (repeatable)' })
    .option('export-source', { type: 'string', describe: 'source address for export datagrams' })
    .option('active-timeout', { type: 'string', default: DEFAULTS.activeTimeout, describe: 'export a flow this many seconds after its first packet' })
    .option('inactive-timeout', { type: 'string', default: DEFAULTS.inactiveTimeout, describe: 'export a flow idle this many seconds' })
    .option('tcp-end-timeout', { type: 'string', default: DEFAULTS.tcpEndTimeout, describe: 'seconds a TCP flow lingers after FIN/RST' })
    .option('max-flows', { alias: 'm', type: 'string', default: DEFAULTS.maxFlows, describe: 'flow cache capacity' })
    .option('snaplen', { alias: 'C', type: 'string', default: DEFAULTS.snaplen, describe: 'bytes captured per packet (live)' })
    .option('buffer-size', { alias: 'B', type: 'string', default: DEFAULTS.bufferSize, describe: 'libpcap buffer size in bytes (live)' })
    .option('no-promisc', { alias: 'N', type: 'boolean', default: false, describe: 'do not put the interface in promiscuous mode' })
    .option('engine-type', { type: 'string', default: DEFAULTS.engineType, describe: 'engine_type in every v5 header (0-255)' })
    .option('engine-id', { type: 'string', default: DEFAULTS.engineId, describe: 'engine_id in every v5 header (0-255)' })
    .option('export-rate', { type: 'string', default: DEFAULTS.exportRate, describe: 'most datagrams per second sent to each collector' })
    .option('export-queue', { type: 'string', default: DEFAULTS.exportQueue, describe: 'datagrams that may wait to be sent (live mode drops beyond, counted)' })
    .option('metrics-listen', {
      type: 'string',
      describe: `serve /metrics, /healthz, /readyz on ADDRESS:PORT, or "off" (default ${DEFAULTS.metricsListen} live; reading a file: off)`,
    })
    .option('metrics-linger', { type: 'string', default: DEFAULTS.metricsLinger, describe: 'keep serving metrics this many seconds after the run ends' })
    .option('log-level', { type: 'string', default: DEFAULTS.logLevel, describe: 'debug, info, warn or error (logs go to stderr)' })
    .option('status-interval', { type: 'string', default: DEFAULTS.statusInterval, describe: 'seconds between status lines when live (0: none)' })
    .option('config', { alias: 'c', type: 'string', describe: 'JSON file of options (keys = long option names); flags override it' })
    .config('config', loadConfigFile)
    .strictOptions()
    .version(VERSION)
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((message, error) => {
      if (error instanceof UsageError) throw error;
      throw new UsageError(message ?? error?.message ?? 'invalid command line');
    });

  const args = parser.parseSync(argv, {}, (_error, _argv, text) => {
    output = text;
  });
  if (output !== '' || args['help'] === true || args['version'] === true) return { kind: 'exit', output };

  const interfaces = asList(args['interface']).map(parseInterface);
  const read = args['read'];
  if (read !== undefined && interfaces.length > 0) {
    throw new UsageError('--read and --interface exclude each other: read a file or capture live');
  }
  if (read !== undefined && (typeof read !== 'string' || read === '')) {
    throw new UsageError('--read: expected a file path or "-"');
  }
  const exportSource = args['exportSource'];
  const options: ProbeOptions = {
    interfaces,
    read,
    collectors: asList(args['collector']).map((spec) => parseCollector(spec)),
    exportSource: exportSource === undefined ? undefined : parseAddress('export-source', exportSource),
    activeTimeout: secondsOption('active-timeout', args['activeTimeout'], 1, 86400 * 7),
    inactiveTimeout: secondsOption('inactive-timeout', args['inactiveTimeout'], 1, 86400),
    tcpEndTimeout: secondsOption('tcp-end-timeout', args['tcpEndTimeout'], 0, 86400),
    maxFlows: integerOption('max-flows', args['maxFlows'], 1, 100_000_000),
    snaplen: integerOption('snaplen', args['snaplen'], 64, 262144),
    bufferSize: integerOption('buffer-size', args['bufferSize'], 65536, 2 ** 31 - 1),
    promiscuous: args['noPromisc'] !== true,
    engineType: integerOption('engine-type', args['engineType'], 0, 255),
    engineId: integerOption('engine-id', args['engineId'], 0, 255),
    exportRate: integerOption('export-rate', args['exportRate'], 1, 10_000_000),
    exportQueue: integerOption('export-queue', args['exportQueue'], 64, 10_000_000),
    filter: args._.map(String).join(' ').trim(),
    tickMs: 1000,
    // A file replay is a batch job that may run beside a live probe: no port unless asked.
    metricsListen: parseListenAddress(
      'metrics-listen',
      args['metricsListen'] ?? (read === undefined ? DEFAULTS.metricsListen : 'off'),
    ),
    metricsLinger: secondsOption('metrics-linger', args['metricsLinger'], 0, 86400),
    logLevel: logLevelOption('log-level', args['logLevel']),
    statusInterval: secondsOption('status-interval', args['statusInterval'], 0, 86400),
  };
  if (options.statusInterval > 0 && options.statusInterval < 1) {
    throw new UsageError(`--status-interval: expected 0 (none) or at least 1 second, got ${options.statusInterval}`);
  }
  return { kind: 'run', options };
}
