import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { parseIpcadCommandLine, type IpcadOptions } from './ipcad-options.js';
import {
  DEFAULTS,
  ENV_PREFIX,
  UsageError,
  environmentName,
  failAsUsageError,
  integerOption,
  logLevelOption,
  parseAddress,
  parseListenAddress,
  exportVersionOption,
  parseCollectorTarget,
  parseInterface,
  secondsOption,
  type ProbeOptions,
} from './options.js';

export const VERSION = '0.1.0';

/**
 * Repeatable options take several values in one flag, variable or config string,
 * separated by commas or spaces (FLOWPROBE_COLLECTOR="10.0.0.5:9995,10.0.0.6:2055"):
 * no HOST:PORT holds either, and Linux interface names have no spaces (nor, in
 * practice, commas).
 */
function asList(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/[\s,]+/)).filter((v) => v !== '');
}

/** A repeatable option given but empty ("-i ''") is a mistake, not "none". */
function listOption(value: unknown): string[] {
  const list = asList(value);
  if (value !== undefined && list.length === 0) return [''];
  return list;
}

/** A string option where '' means "not given" (FLOWPROBE_USER= turns the image's drop off). */
function optionalString(name: string, value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new UsageError(`--${name}: expected one value, got ${JSON.stringify(value)}`);
  return value;
}

interface Sources {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  aliases: Record<string, string[]>;
  configPath: string | undefined;
  config: Record<string, unknown> | undefined;
}

/** Was --name (or one of its short aliases) written on the command line? */
function onCommandLine(name: string, sources: Sources): boolean {
  const end = sources.argv.indexOf('--');
  const words = end === -1 ? sources.argv : sources.argv.slice(0, end);
  const short = (sources.aliases[name] ?? []).filter((a) => a.length === 1);
  return words.some(
    (w) =>
      w === `--${name}` ||
      w.startsWith(`--${name}=`) ||
      short.some((a) => !w.startsWith('--') && w.startsWith(`-${a}`)),
  );
}

/** Say where a bad value came from when it was not the command line. */
function withOrigin(error: UsageError, sources: Sources): UsageError {
  const match = /^--([a-z][a-z-]*): /.exec(error.message);
  if (match === null) return error;
  const name = match[1]!;
  if (onCommandLine(name, sources)) return error;
  const rest = error.message.slice(match[0].length);
  const variable = environmentName(name);
  if (sources.env[variable] !== undefined) return new UsageError(`--${name} (from ${variable}): ${rest}`);
  if (sources.config !== undefined && name in sources.config) {
    return new UsageError(`--${name} (from ${sources.configPath ?? 'the config file'}): ${rest}`);
  }
  return error;
}

/**
 * yargs reads FLOWPROBE_* itself; check the names first so a typo is reported as
 * the variable it is (yargs would say "Unknown argument: activ-timeout"), and so
 * booleans take only true/false (yargs would read "1" as false).
 */
function checkEnvironment(env: NodeJS.ProcessEnv, longNames: readonly string[], booleans: readonly string[]): void {
  const byVariable = new Map(longNames.map((name) => [environmentName(name), name]));
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(`${ENV_PREFIX}_`)) continue;
    const name = byVariable.get(variable);
    if (name === undefined) {
      throw new UsageError(
        `${variable}: no such option (variables are ${ENV_PREFIX}_ and a long option name in capitals, e.g. ${environmentName('collector')} for --collector)`,
      );
    }
    if (booleans.includes(name) && value !== 'true' && value !== 'false') {
      throw new UsageError(`${variable}: expected true or false, got ${JSON.stringify(value)}`);
    }
  }
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

/** The part of yargs' getOptions() read here: every key, the aliases, the boolean options. */
interface DescribedOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
}

export type CliResult =
  | { kind: 'run'; options: ProbeOptions }
  | { kind: 'ipcad'; options: ProbeOptions; ipcad: IpcadOptions }
  | { kind: 'exit'; output: string };

/**
 * Parse the command line, FLOWPROBE_* environment variables and the -c JSON file
 * into validated options. Precedence: flags > environment > config file > defaults.
 * Throws UsageError, or ConfigError for `flowprobe ipcad` and a bad ipcad.conf.
 */
export function parseCommandLine(argv: string[]): CliResult {
  // `flowprobe ipcad …`: IPCAD's command line (its -r and -c differ from ours)
  if (argv[0] === 'ipcad') return parseIpcadCommandLine(argv.slice(1));
  let output = '';
  const sources: Sources = { argv, env: process.env, aliases: {}, configPath: undefined, config: undefined };
  const parser = yargs(argv)
    .scriptName('flowprobe')
    .usage(
      '$0 [options] [bpf filter …]\n$0 ipcad [-d] [-r] [-s] [-c ipcad.conf]   (IPCAD compatibility: see flowprobe ipcad --help)\n\n' +
        'A NetFlow v5 probe: captures packets, keeps a flow cache, exports expired flows.\n' +
        `Every option can also be set by environment: ${ENV_PREFIX}_ and the long name in capitals ` +
        `(${environmentName('active-timeout')}); flags > environment > config file > defaults.`,
    )
    .parserConfiguration({ 'boolean-negation': false, 'camel-case-expansion': true })
    .option('interface', { alias: 'i', type: 'string', describe: 'live capture on [IFINDEX:]NAME (repeatable; "any" works)' })
    .option('read', { alias: 'r', type: 'string', describe: 'read a pcap or pcapng file ("-" = stdin) instead of an interface' })
    .option('collector', {
      alias: 'n',
      type: 'string',
      describe: 'NetFlow destination HOST:PORT or [IPv6]:PORT, /5, /9 or /10 after it for its own version (repeatable)',
    })
    .option('export-version', {
      alias: 'v',
      type: 'string',
      default: String(DEFAULTS.exportVersion),
      describe: 'export version for collectors without /VERSION: 5 (NetFlow v5, IPv4 only), 9 (NetFlow v9) or 10 (IPFIX)',
    })
    .option('source-id', { type: 'string', describe: 'v9 source id / IPFIX observation domain (default: the engine id)' })
    .option('template-refresh-packets', {
      type: 'string',
      default: String(DEFAULTS.templateRefreshPackets),
      describe: 'v9/IPFIX: send the templates again after this many datagrams',
    })
    .option('template-refresh-seconds', {
      type: 'string',
      default: String(DEFAULTS.templateRefreshSeconds),
      describe: 'v9/IPFIX: ... and after this many seconds (1-600)',
    })
    .option('export-max-bytes', {
      type: 'string',
      default: String(DEFAULTS.exportMaxBytes),
      describe: 'v9/IPFIX: largest datagram sent, bytes of UDP payload (512-65507)',
    })
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
    .option('filter', { type: 'string', describe: 'BPF filter, for the environment or config file (filter words after the options replace it)' })
    .option('user', { type: 'string', describe: 'once the captures and sockets are open, switch to this user (name or uid; needs root)' })
    .option('on-interface-loss', {
      type: 'string',
      default: 'exit',
      describe: 'a live interface goes away: "exit" (flush, exit 1 for the supervisor) or "retry" (wait for it; not with --user)',
    })
    .option('group', { type: 'string', describe: "with --user: switch to this group (name or gid) instead of the user's own" })
    .option('config', { alias: 'c', type: 'string' })
    .config('config', 'JSON file of options (keys = long option names); flags and environment win over it', (path: string) => {
      sources.configPath = path;
      sources.config = loadConfigFile(path);
      return sources.config;
    })
    .env(ENV_PREFIX)
    .strictOptions()
    .version(VERSION)
    .alias('version', 'V')
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail(failAsUsageError);

  // getOptions() is public in yargs but missing from @types/yargs
  const described = (parser as unknown as { getOptions(): DescribedOptions }).getOptions();
  sources.aliases = described.alias;
  const longNames = Object.keys(described.key).filter((k) => k.length > 1 && k !== 'help' && k !== 'version');
  // --help and --version answer whatever the environment holds
  const asksForHelp = argv.some((a) => ['-h', '--help', '-V', '--version'].includes(a));
  if (!asksForHelp) checkEnvironment(process.env, longNames, described.boolean);

  const args = parser.parseSync(argv, {}, (_error, _argv, text) => {
    output = text;
  });
  if (output !== '' || args['help'] === true || args['version'] === true) return { kind: 'exit', output };

  try {
    return { kind: 'run', options: validate(args) };
  } catch (error) {
    if (error instanceof UsageError) throw withOrigin(error, sources);
    throw error;
  }
}

function validate(args: Record<string, unknown> & { _: (string | number)[] }): ProbeOptions {
  const interfaces = listOption(args['interface']).map(parseInterface);
  const read = args['read'];
  if (read !== undefined && interfaces.length > 0) {
    throw new UsageError('--read and --interface exclude each other: read a file or capture live');
  }
  if (read !== undefined && (typeof read !== 'string' || read === '')) {
    throw new UsageError('--read: expected a file path or "-"');
  }
  const exportSource = args['exportSource'];
  const words = args._.map(String).join(' ').trim();
  const user = optionalString('user', args['user']);
  const group = optionalString('group', args['group']);
  if (group !== undefined && user === undefined) {
    throw new UsageError('--group: give --user too (changing the group alone leaves the probe root)');
  }
  const onInterfaceLoss = args['onInterfaceLoss'];
  if (onInterfaceLoss !== 'exit' && onInterfaceLoss !== 'retry') {
    throw new UsageError(`--on-interface-loss: expected exit or retry, got ${JSON.stringify(onInterfaceLoss)}`);
  }
  if (onInterfaceLoss === 'retry' && user !== undefined) {
    // reopening a capture needs the privileges --user gives away
    throw new UsageError('--on-interface-loss retry cannot reopen a capture after --user drops privileges: use exit, or no --user');
  }
  const exportVersion = exportVersionOption('export-version', args['exportVersion']);
  const engineId = integerOption('engine-id', args['engineId'], 0, 255);
  const options: ProbeOptions = {
    interfaces,
    read,
    collectors: listOption(args['collector']).map((spec) => parseCollectorTarget(spec, exportVersion)),
    exportSource: exportSource === undefined ? undefined : parseAddress('export-source', exportSource),
    activeTimeout: secondsOption('active-timeout', args['activeTimeout'], 1, 86400 * 7),
    inactiveTimeout: secondsOption('inactive-timeout', args['inactiveTimeout'], 1, 86400),
    tcpEndTimeout: secondsOption('tcp-end-timeout', args['tcpEndTimeout'], 0, 86400),
    maxFlows: integerOption('max-flows', args['maxFlows'], 1, 100_000_000),
    snaplen: integerOption('snaplen', args['snaplen'], 64, 262144),
    bufferSize: integerOption('buffer-size', args['bufferSize'], 65536, 2 ** 31 - 1),
    promiscuous: args['noPromisc'] !== true,
    engineType: integerOption('engine-type', args['engineType'], 0, 255),
    engineId,
    exportRate: integerOption('export-rate', args['exportRate'], 1, 10_000_000),
    exportQueue: integerOption('export-queue', args['exportQueue'], 64, 10_000_000),
    sourceId: args['sourceId'] === undefined ? engineId : integerOption('source-id', args['sourceId'], 0, 0xffffffff),
    templateRefreshPackets: integerOption('template-refresh-packets', args['templateRefreshPackets'], 1, 1_000_000),
    templateRefreshSeconds: secondsOption('template-refresh-seconds', args['templateRefreshSeconds'], 1, 600),
    exportMaxBytes: integerOption('export-max-bytes', args['exportMaxBytes'], 512, 65507),
    // words after the options are the command line's own filter: they win over --filter
    filter: words !== '' ? words : (optionalString('filter', args['filter']) ?? '').trim(),
    user,
    group,
    onInterfaceLoss,
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
  return options;
}
