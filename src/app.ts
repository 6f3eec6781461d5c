/**
 * Wiring: options → capture worker → exporter (or the stdout printer), signals,
 * metrics, status, progress and the statistics summary. The only place the parts meet.
 */
import { CaptureOpenError, CaptureWorker, type OpenedSource } from './capture/capture-worker.js';
import { systemIfIndex } from './capture/interfaces.js';
import type { CaptureSourceSpec } from './capture/worker-protocol.js';
import type { Worker } from 'node:worker_threads';
import { watchReadPosition } from './capture/read-position.js';
import { VERSION } from './config/cli-args.js';
import type { IpcadOptions } from './config/ipcad-options.js';
import { EXPORT_VERSIONS, UsageError, type ProbeOptions } from './config/options.js';
import type { ApiHandler } from './control/http-api.js';
import type { IpcadControl } from './control/ipcad-control.js';
import { DataPlaneCounter, createControlWords, createDataPlaneCounters } from './counters/data-plane.js';
import { Collector, type CollectorEvents } from './export/collector.js';
import { Exporter, type RecordsDone } from './export/exporter.js';
import { ExportSet, type ExportChannel } from './export/export-set.js';
import { TemplateEncoder } from './export/template-export.js';
import { FLOW_LINE_HEADER, formatFlowLines } from './export/flow-printer.js';
import type { RecordBatch } from './export/record-batch.js';
import { V5_MAX_RECORDS } from './export/v5.js';
import { RateLimitedLog, type Logger } from './log/logger.js';
import { RateMeter, formatProgress, type TerminalStderr } from './log/progress.js';
import { MetricsListenError, MetricsServer, type ReadOnlyHttpServer, type Readiness } from './metrics/server.js';
import { MalformedWatch } from './stats/malformed-watch.js';
import { readProbeStats, type ExportStats, type ProbeStats, type RshStats } from './stats/probe-stats.js';
import { StatusLine } from './stats/status-line.js';
import { formatSummary } from './stats/summary.js';
import {
  currentIds,
  describeDrop,
  dropPrivileges,
  listCapabilities,
  planDrop,
  readEffectiveCapabilities,
  type DropReport,
} from './privileges/drop.js';
import { resolveIdentity, type Identity } from './privileges/identity.js';

/** An operational failure (capture cannot open, file unreadable): one line, exit 1. */
export class ProbeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProbeError';
  }
}

/**
 * BPF that keeps our own datagrams out of a live capture, and only ours: another
 * exporter's NetFlow to the same collector is traffic like any other. Ours are told
 * apart by the socket's source port (bound before the capture opens), and its source
 * address once connected. A collector whose name does not resolve yet (the filter is
 * set once): its source port to its port on any host.
 */
export function exportExclusionFilter(collectors: readonly Pick<Collector, 'address' | 'port' | 'source'>[]): string {
  return collectors
    .map((c) => {
      const terms = ['udp'];
      if (c.source?.address !== undefined) terms.push(`src host ${c.source.address}`);
      if (c.source !== undefined) terms.push(`src port ${c.source.port}`);
      if (c.address !== undefined) terms.push(`dst host ${c.address}`);
      terms.push(`dst port ${c.port}`);
      return `(${terms.join(' and ')})`;
    })
    .join(' or ');
}

export function combineFilters(user: string, exclusion: string): string {
  if (exclusion === '') return user;
  return user === '' ? `not (${exclusion})` : `(${user}) and not (${exclusion})`;
}

function sourcesFrom(options: ProbeOptions): CaptureSourceSpec[] {
  if (options.read !== undefined) {
    return [{ kind: 'file', path: options.read === '-' ? '-' : options.read, ifIndex: 0 }];
  }
  // An empty name is libpcap's default device, resolved in the worker: the pcap
  // addon may be loaded by one thread only, and that is the worker.
  const interfaces = options.interfaces.length > 0 ? options.interfaces : [{ name: '', ifIndex: undefined }];
  const sources = interfaces.map((spec): CaptureSourceSpec => ({
    kind: 'live',
    device: spec.name,
    ifIndex: spec.ifIndex ?? (spec.name === '' ? 0 : systemIfIndex(spec.name)),
    // libpcap refuses promiscuous mode on "any" (pcap_activate warns, the binding throws)
    promiscuous: (spec.promiscuous ?? options.promiscuous) && spec.name !== 'any',
    snapLength: options.snaplen,
    bufferSize: options.bufferSize,
    ...(spec.filter !== undefined && spec.filter !== '' ? { filter: spec.filter } : {}),
  }));
  refuseCutIfIndexClash(sources);
  return sources;
}

/**
 * NetFlow v5 (and the flow key) carry 16 bits of ifIndex: an index above 65535 is
 * cut to its low 16 bits (the worker says so). Two interfaces that the cut would
 * make one could not be told apart, their flows merged: refused.
 */
function refuseCutIfIndexClash(sources: CaptureSourceSpec[]): void {
  const seen = new Map<number, CaptureSourceSpec & { kind: 'live' }>();
  for (const source of sources) {
    if (source.kind !== 'live') continue;
    const other = seen.get(source.ifIndex & 0xffff);
    if (other !== undefined && other.ifIndex !== source.ifIndex) {
      throw new UsageError(
        `--interface: ${other.device} (ifIndex ${other.ifIndex}) and ${source.device} (ifIndex ${source.ifIndex}) would both be ${source.ifIndex & 0xffff} ` +
          "in NetFlow v5's 16-bit interface fields, their flows merged: give one another index with -i INDEX:NAME",
      );
    }
    seen.set(source.ifIndex & 0xffff, source);
  }
}

/** --user/--group, resolved and checked before anything is opened (UsageError if impossible). */
function privilegeDropPlan(options: ProbeOptions): { target: Identity; drop: boolean } | undefined {
  if (options.user === undefined) return undefined;
  const target = resolveIdentity(options.user, options.group);
  return { target, drop: planDrop(target, currentIds(), readEffectiveCapabilities()) === 'drop' };
}


/** Where the run is, for /readyz: ready only while capturing and exporting. */
type Phase = 'starting' | 'capturing' | 'stopping' | 'finished';

const NOT_READY: Record<Exclude<Phase, 'capturing'>, string> = {
  starting: 'starting (resolving collectors, opening the capture)',
  stopping: 'stopping (flushing flows)',
  finished: 'finished (the run is over; the figures are final)',
};

const PROGRESS_REDRAW_MS = 250;
/** Live: datagrams a collector whose name does not resolve holds; later ones fail, counted (reason unresolved). */
const LIVE_HOLD_DATAGRAMS = 256;
const MALFORMED_CHECK_MS = 1000;

export interface RunEnvironment {
  log: Logger;
  /** stderr when it is a terminal: reading a file then shows a progress bar */
  terminal?: TerminalStderr | undefined;
  /** `flowprobe ipcad`: the accounting table, rsh, dump files */
  ipcad?: IpcadOptions | undefined;
  /** called once the probe is up (captures open, control plane listening) */
  ready?: (() => void) | undefined;
  /** the capture thread, started early by the CLI (see startCaptureThread) */
  captureThread?: Worker | undefined;
}

export async function runProbe(
  options: ProbeOptions,
  { log, terminal, ipcad, ready, captureThread }: RunEnvironment,
): Promise<number> {
  // --user/--group are checked before anything opens, the metrics listener included
  const privileges = privilegeDropPlan(options);
  // so are the interfaces' indexes (a clash of cut ifIndexes is a usage error)
  const sources = sourcesFrom(options);
  let phase: Phase = 'starting';
  /** collectors whose name does not resolve yet: /readyz says not ready while there are any */
  let unresolvedCollectors: () => string[] = () => [];
  let readStats: (() => ProbeStats) | undefined;
  let server: MetricsServer | undefined;
  let api: ApiHandler | undefined;
  if (options.metricsListen !== undefined) {
    // prom-client is loaded only when metrics are served: start-up time counts for a file run
    const { ProbeMetrics } = await import('./metrics/metrics.js');
    const metrics = new ProbeMetrics({ version: VERSION, read: () => readStats?.() });
    const readiness = (): Readiness => {
      if (phase !== 'capturing') return { ready: false, reason: NOT_READY[phase] };
      const waiting = unresolvedCollectors();
      return waiting.length === 0
        ? { ready: true }
        : { ready: false, reason: `collector ${waiting.join(', ')} does not resolve yet (retrying)` };
    };
    try {
      server = await MetricsServer.listen(options.metricsListen, metrics, readiness);
    } catch (error) {
      if (error instanceof MetricsListenError) throw new ProbeError('E_METRICS_LISTEN', error.message);
      throw error;
    }
    log.info({ url: `${server.url}/metrics` }, `serving metrics on ${server.url}/metrics (/healthz, /readyz)`);
  }
  let apiServer: ReadOnlyHttpServer | undefined;
  if (ipcad?.apiListen !== undefined) {
    // the IPCAD tables as JSON: a listener of their own, only when asked for
    const { listenApi } = await import('./control/http-api.js');
    try {
      apiServer = await listenApi(ipcad.apiListen, () => api);
    } catch (error) {
      await server?.close();
      if (error instanceof MetricsListenError) throw new ProbeError('E_API_LISTEN', error.message);
      throw error;
    }
    log.info({ url: `${apiServer.url}/api/v1/` }, `serving the read-only JSON API on ${apiServer.url}/api/v1/ (accounting table, flow cache, interfaces, stat)`);
  }
  try {
    return await runCapture(options, sources, privileges, log, terminal, {
      attach: (read) => (readStats = read),
      collectors: (unresolved) => (unresolvedCollectors = unresolved),
      phase: (next) => (phase = next),
      linger: server === undefined ? undefined : () => linger(options.metricsLinger, log),
      ipcad,
      api: (handler) => (api = handler),
      ready,
      captureThread,
    });
  } finally {
    await apiServer?.close();
    await server?.close();
  }
}

interface RunHooks {
  /** the figures can be read from now on */
  attach(read: () => ProbeStats): void;
  /** the labels of the collectors not resolved yet can be read from now on */
  collectors(unresolved: () => string[]): void;
  phase(phase: Phase): void;
  /** after the summary: keep the final figures scrapeable a while */
  linger: (() => Promise<void>) | undefined;
  ipcad: IpcadOptions | undefined;
  /** the JSON API is ready to answer */
  api(handler: ApiHandler): void;
  ready: (() => void) | undefined;
  captureThread: Worker | undefined;
}

async function runCapture(
  options: ProbeOptions,
  sources: CaptureSourceSpec[],
  privileges: ReturnType<typeof privilegeDropPlan>,
  log: Logger,
  terminal: TerminalStderr | undefined,
  hooks: RunHooks,
): Promise<number> {
  const live = options.read === undefined;
  const collectors: Collector[] = [];
  const sendFailures = new RateLimitedLog((message, suppressed) => log.warn({ suppressed }, message));
  const resolveWarnings = new RateLimitedLog((message, suppressed) => log.warn({ suppressed }, message));
  const collectorEvents: CollectorEvents = {
    resolveFailed: (collector, why, retryInMs) =>
      resolveWarnings.log(
        `resolve:${collector.label}`,
        `collector ${collector.label}: cannot resolve or reach it (${why}); ` +
          (live
            ? `capturing on, holding up to ${LIVE_HOLD_DATAGRAMS} datagrams for it (later ones are counted as failed sends)`
            : 'reading on until the send queue is full, then waiting for it (a file loses no record)') +
          `, retrying in ${Math.round(retryInMs / 1000)} s`,
      ),
    resolved: (collector, address, attempts) =>
      log.info(
        { collector: collector.label, address, failedLookups: attempts },
        `collector ${collector.label} resolved to ${address} after ${attempts} failed lookups: exporting to it`,
      ),
    socketError: (collector, error) => {
      const reason = error.code ?? 'unknown';
      sendFailures.log(`send:${collector.label}:${reason}`, `export to ${collector.label} failed: ${error.message}`);
    },
  };
  try {
    for (const target of options.collectors) {
      collectors.push(
        await Collector.open(target, {
          exportSource: options.exportSource,
          holdWhileUnresolved: live ? LIVE_HOLD_DATAGRAMS : Infinity,
          events: collectorEvents,
        }),
      );
    }
  } catch (error) {
    await Promise.all(collectors.map((c) => c.close()));
    throw new ProbeError('E_COLLECTOR', (error as Error).message);
  }

  const exporterLog = {
    sendFailed: (collector: Collector, reason: string, error: Error) =>
      sendFailures.log(`send:${collector.label}:${reason}`, `export to ${collector.label} failed: ${error.message}`),
  };
  // one channel per export version in use, each with its own pacing, queue and sequence
  const systemInitUnixMs = Date.now();
  const channels: ExportChannel[] = EXPORT_VERSIONS.flatMap((version) => {
    const members = collectors.filter((_c, i) => options.collectors[i]!.version === version);
    if (members.length === 0) return [];
    const exporter = new Exporter(
      members,
      {
        engineType: options.engineType,
        engineId: options.engineId,
        rateLimit: options.exportRate,
        maxQueuedDatagrams: options.exportQueue,
        dropWhenFull: live,
      },
      exporterLog,
    );
    const encoder =
      version === 5
        ? undefined
        : new TemplateEncoder({
            version,
            sourceId: options.sourceId,
            maxDatagramBytes: options.exportMaxBytes,
            templateRefreshPackets: options.templateRefreshPackets,
            templateRefreshMs: options.templateRefreshSeconds * 1000,
            systemInitUnixMs,
          });
    return [{ version, collectors: members, exporter, encoder }];
  });
  const exporter = new ExportSet(channels, (message) => log.warn(message));

  let printedHeader = false;
  let printedRecords = 0;
  const printBatch = (batch: RecordBatch, done: RecordsDone): void => {
    if (hooks.ipcad !== undefined) {
      // IPCAD without a NetFlow destination: the flows are not wanted anywhere
      done(batch.count);
      return;
    }
    let text = formatFlowLines(batch);
    if (!printedHeader) {
      text = FLOW_LINE_HEADER + '\n' + text;
      printedHeader = true;
    }
    // Acknowledge when written, so a slow reader of stdout pauses file reading.
    process.stdout.write(text, () => {
      printedRecords += batch.count;
      done(batch.count);
    });
  };

  const exclusion = live ? exportExclusionFilter(collectors) : '';
  const counters = createDataPlaneCounters(sources.length);
  const warnings = new Set<string>();
  const ipcad = hooks.ipcad;
  let finalAccounting: ArrayBuffer | undefined;
  let worker: CaptureWorker | undefined = undefined;
  const done: RecordsDone = (records) => worker?.acknowledge(records);
  worker = new CaptureWorker(
    {
      sources: sources.map((s) => (s.kind === 'live' && s.filter !== undefined ? { ...s, filter: combineFilters(s.filter, exclusion) } : s)),
      filter: combineFilters(options.filter, exclusion),
      onInterfaceLoss: options.onInterfaceLoss,
      maxFlows: options.maxFlows,
      timeouts: {
        activeMs: options.activeTimeout * 1000,
        inactiveMs: options.inactiveTimeout * 1000,
        tcpEndMs: options.tcpEndTimeout * 1000,
      },
      bootMs: live ? Date.now() : null,
      counters,
      control: createControlWords(),
      maxPendingRecords: Math.max(1, options.exportQueue - 64) * V5_MAX_RECORDS,
      tickMs: options.tickMs,
      accounting:
        ipcad === undefined
          ? undefined
          : {
              memoryLimit: ipcad.accounting.memoryLimit,
              capturePorts: ipcad.accounting.capturePorts,
              rules: ipcad.accounting.rules,
            },
    },
    {
      onFinalAccounting: (rows) => (finalAccounting = rows),
      onRecords: (batch) => (collectors.length > 0 ? exporter.enqueue(batch, done) : printBatch(batch, done)),
      onNotice: (message) => log.warn(message),
      onWarning: (message) => {
        if (warnings.has(message)) return;
        warnings.add(message);
        // libpcap's "no IPv4 address assigned" is normal on a SPAN port
        log.debug(message);
      },
    },
    hooks.captureThread,
  );
  const capture = worker;

  // A signal during start-up is not lost: the capture is told to stop at once, and
  // the stop is logged and seen through once the run is set up (below). One listener
  // serves the whole run, its behaviour switched: swapping listeners would close
  // Node's signal handle, and a signal it had caught but not yet delivered would be
  // dropped with it (a SIGINT right after "capturing on" went unheard).
  let earlySignal: NodeJS.Signals | undefined;
  let handleSignal = (signal: NodeJS.Signals): void => {
    earlySignal ??= signal;
    capture.stop();
  };
  const onProcessSignal = (signal: NodeJS.Signals): void => handleSignal(signal);
  process.on('SIGINT', onProcessSignal);
  process.on('SIGTERM', onProcessSignal);

  let opened: OpenedSource[];
  try {
    opened = await capture.opened;
  } catch (error) {
    process.off('SIGINT', onProcessSignal);
    process.off('SIGTERM', onProcessSignal);
    await capture.finished.catch(() => undefined);
    await Promise.all(collectors.map((c) => c.close()));
    const message = (error as Error).message;
    // libpcap's "socket: Operation not permitted" does not say what is missing
    const hint = live && /not permitted|permission/i.test(message) ? ' (live capture needs root, or CAP_NET_RAW and CAP_NET_ADMIN)' : '';
    throw new ProbeError(error instanceof CaptureOpenError ? error.code : 'E_CAPTURE', message + hint);
  }
  const labels = opened.map((o) => (o.name === '-' ? 'stdin' : o.name));
  opened.forEach((o, i) =>
    log.info({ source: labels[i], linkType: o.linkTypeName, reader: o.reader }, `${live ? 'capturing on' : 'reading'} ${labels[i]} (${o.linkTypeName})`),
  );
  if (ipcad !== undefined) labels.forEach((label) => log.info(`Opening ${label}... Initialized`));
  if (options.filter !== '') log.info(`filter: ${options.filter}`);
  if (exclusion !== '') log.info(`excluding our own export traffic from the capture: not (${exclusion})`);
  for (const channel of channels) {
    const what = channel.version === 5 ? 'NetFlow v5 (IPv4)' : channel.version === 9 ? 'NetFlow v9 (IPv4 and IPv6)' : 'IPFIX (IPv4 and IPv6)';
    log.info(`exporting ${what} to ${channel.collectors.map((c) => c.label).join(', ')}`);
  }
  if (collectors.length === 0 && ipcad === undefined) log.info('no collector given: printing flows to stdout');

  const exportStats = (): ExportStats => ({
    datagrams: exporter.stats.datagramsBuilt,
    records: exporter.stats.recordsBuilt,
    flowSequence: exporter.flowSequence,
    queuedDatagrams: exporter.queuedDatagrams,
    queueCapacity: options.exportQueue,
    droppedDatagrams: exporter.stats.datagramsDropped,
    droppedRecords: exporter.stats.recordsDropped,
    abandonedDatagrams: exporter.stats.datagramsAbandoned,
    abandonedRecords: exporter.stats.recordsAbandoned,
    collectors: collectors.map((c) => ({
      label: c.label,
      datagrams: c.datagramsSent,
      records: c.recordsSent,
      errors: Object.fromEntries(c.errors),
      resolved: c.resolved,
      failedLookups: c.resolveFailures,
    })),
    printedRecords: collectors.length === 0 ? printedRecords : undefined,
    notExported: { ...exporter.notExported },
  });
  let rshStats: (() => RshStats | undefined) | undefined;
  const read = (): ProbeStats =>
    readProbeStats({
      counters,
      sources: labels.map((label) => ({ label, live })),
      flowCacheCapacity: options.maxFlows,
      export: exportStats,
      accounting: ipcad !== undefined,
      rsh: () => rshStats?.(),
    });
  hooks.attach(read);
  hooks.collectors(() => collectors.filter((c) => !c.resolved).map((c) => c.label));

  let signalled = 0;
  /** the final flush: when the stop was asked for, and the datagrams built and queued by then */
  let flush: { began: number; built: number; queued: number } | undefined;
  const stopCapture = (why: string): void => {
    // The final flush sends every record: none is dropped for a full queue, however
    // long --export-rate makes it take (a second signal stops it at once).
    exporter.keepEverything();
    flush = { began: performance.now(), built: exporter.stats.datagramsBuilt, queued: exporter.queuedDatagrams };
    // a collector still unresolved will not be waited for: what it holds fails, counted
    for (const c of collectors) c.stopWaiting();
    if (collectors.length > 0) {
      const cached = read().flows.cached;
      const datagrams = flush.queued + Math.ceil(cached / V5_MAX_RECORDS);
      log.info(
        { cachedFlows: cached, queuedDatagrams: flush.queued, exportRate: exporter.rate, flushSeconds: datagrams / exporter.rate },
        `${why}: flushing flows and stopping: ${cached} cached flows, ${flush.queued} datagrams queued; at --export-rate ` +
          `${exporter.rate}/s the flush takes about ${seconds(datagrams / exporter.rate)} (nothing is dropped; a second SIGINT or SIGTERM stops it at once)`,
      );
    } else {
      log.info(`${why}: flushing flows and stopping`);
    }
    hooks.phase('stopping');
    capture.stop();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signalled++;
    if (signalled === 1) {
      stopCapture(signal);
    } else if (signalled === 2 && collectors.length > 0) {
      const { datagrams, records } = exporter.abandon();
      const after = flush === undefined ? '' : ` after ${seconds((performance.now() - flush.began) / 1000)}`;
      log.warn(
        `${signal} again: stopping the final flush at once${after}: ${datagrams} queued datagrams (${records} records) not sent, ` +
          'counted, as is whatever the capture still hands over (a third signal exits at once)',
      );
    } else {
      log.warn(`${signal} again: exiting now, without the summary`);
      process.exit(1);
    }
  };

  let control: IpcadControl | undefined;
  if (ipcad !== undefined) {
    const { startIpcadControl } = await import('./control/ipcad-control.js');
    try {
      control = await startIpcadControl({
        ipcad,
        dataPlane: capture,
        stats: read,
        accounting: counters.subarray(DataPlaneCounter.accountingBase),
        sources: labels.map((label, i) => ({ label, ifIndex: sources[i]!.ifIndex })),
        timeouts: { active: options.activeTimeout, inactive: options.inactiveTimeout },
        flowCacheCapacity: options.maxFlows,
        collectors: collectors.map((c) => c.label),
        stop: () => {
          signalled++;
          if (signalled === 1) stopCapture('shutdown');
        },
        log,
        version: VERSION,
        dropTo: privileges?.drop === true ? privileges.target : undefined,
      });
    } catch (error) {
      capture.stop();
      await capture.finished.catch(() => undefined);
      await exporter.drain();
      await Promise.all(collectors.map((c) => c.close()));
      const { RshListenError } = await import('./control/rsh-server.js');
      if (error instanceof RshListenError) throw new ProbeError('E_RSH_LISTEN', error.message);
      throw error;
    }
    hooks.api(control.api);
    rshStats = control.rshStats;
  }
  // Everything that needs a privilege is open (captures, sockets, and in IPCAD mode the rsh
  // listener, the pid file and the connect-back helper): give it up.
  if (privileges?.drop === true) {
    const previousUid = process.geteuid?.() ?? 0;
    let report: DropReport;
    try {
      report = dropPrivileges(privileges.target);
    } catch (error) {
      capture.stop();
      await capture.finished.catch(() => undefined);
      await exporter.drain();
      await control?.close();
      await Promise.all(collectors.map((c) => c.close()));
      throw new ProbeError('E_PRIVILEGE_DROP', `cannot drop privileges: ${(error as Error).message}`);
    }
    for (const line of describeDrop(report, previousUid)) log.info(line);
    control?.privilegesDropped();
  } else if (privileges !== undefined) {
    const { user, uid, group, gid } = privileges.target;
    const capabilities = readEffectiveCapabilities();
    log.info(
      `already running as user ${user} (uid ${uid}), group ${group} (gid ${gid}): nothing to drop` +
        (capabilities !== undefined && capabilities !== 0n ? ` (with ${listCapabilities(capabilities, uid)})` : ''),
    );
  } else if (live && process.geteuid?.() === 0) {
    const how = ipcad === undefined ? '--user NAME (and --group)' : 'uid = N (and gid = N) in ipcad.conf';
    log.info(`running as root: ${how} would drop every privilege once the capture is open`);
  }

  hooks.phase('capturing');
  hooks.ready?.();

  const timers: NodeJS.Timeout[] = [];
  const malformed = new MalformedWatch(read(), (message, fields) => log.warn(fields, message));
  timers.push(setInterval(() => malformed.check(read()), MALFORMED_CHECK_MS));
  if (live && options.statusInterval > 0) {
    const status = new StatusLine(read());
    timers.push(
      setInterval(() => {
        const { message, fields } = status.next(read());
        log.info(fields, message);
      }, options.statusInterval * 1000),
    );
  }
  const progress = !live && terminal !== undefined ? startProgress(options.read!, read, terminal) : undefined;
  if (progress !== undefined) timers.push(progress.timer);

  handleSignal = onSignal;
  if (earlySignal !== undefined) onSignal(earlySignal);

  let exitCode = 0;
  let readToTheEnd = false;
  try {
    const outcome = await capture.finished;
    readToTheEnd = outcome.outcome === 'end_of_file';
    if (outcome.outcome === 'read_error') {
      // Live: exit non-zero so the supervisor (systemd, Docker's restart policy)
      // starts the probe again; after the privilege drop it could not reopen the capture.
      log.error(
        live
          ? `${outcome.message ?? 'capture read error'}: exporting the cached flows, then exiting with status 1 for the supervisor to restart flowprobe`
          : (outcome.message ?? 'capture read error'),
      );
      exitCode = 1;
    }
  } catch (error) {
    log.error(`capture worker: ${(error as Error).message}`);
    exitCode = 1;
  }
  hooks.phase('stopping');
  for (const timer of timers) clearInterval(timer);
  progress?.finish(readToTheEnd);
  control?.finish(finalAccounting);
  await exporter.drain();
  if (flush !== undefined && collectors.length > 0) {
    const took = seconds((performance.now() - flush.began) / 1000);
    const { datagramsAbandoned, recordsAbandoned } = exporter.stats;
    if (datagramsAbandoned > 0) {
      log.warn(`final flush stopped after ${took}: ${datagramsAbandoned} datagrams (${recordsAbandoned} records) not sent`);
      // records were lost: say so to the supervisor
      exitCode = 1;
    } else {
      const sent = exporter.stats.datagramsBuilt - flush.built + flush.queued;
      log.info(`final flush done in ${took}: ${sent} datagrams since the stop, none dropped`);
    }
  }
  await control?.close();
  process.off('SIGINT', onProcessSignal);
  process.off('SIGTERM', onProcessSignal);
  await Promise.all(collectors.map((c) => c.close()));
  hooks.phase('finished');
  const stats = read();
  log.info({ statistics: stats }, formatSummary(stats));
  await hooks.linger?.();
  return exitCode;
}

/** A duration for a log line: "0.4 s", "12.5 s", "95 s". */
function seconds(value: number): string {
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} s`;
}

/** -r on a terminal: a bar of the bytes read, packets/s and flows, redrawn in place. */
function startProgress(
  path: string,
  read: () => ProbeStats,
  terminal: TerminalStderr,
): { timer: NodeJS.Timeout; finish(readToTheEnd: boolean): void } {
  const position = watchReadPosition(path);
  const meter = new RateMeter();
  const began = performance.now();
  let lastOffset: number | undefined;
  const draw = (final: boolean, readToTheEnd = false): void => {
    const stats = read();
    const now = performance.now();
    lastOffset = position.offset() ?? lastOffset;
    terminal.show(
      formatProgress(
        {
          size: position.size,
          // the file is closed by now: its offset is gone, but at the end it was the size
          bytesRead: readToTheEnd ? (position.size ?? lastOffset) : lastOffset,
          packets: stats.packets,
          packetsPerSecond: final ? (stats.packets * 1000) / Math.max(1, now - began) : meter.add(now, stats.packets),
          flows: stats.flows.created,
          ipv6Flows: stats.families.ipv6.flowsCreated,
        },
        terminal.columns(),
      ),
    );
  };
  draw(false);
  return {
    timer: setInterval(() => draw(false), PROGRESS_REDRAW_MS),
    finish: (readToTheEnd) => {
      draw(true, readToTheEnd);
      terminal.keep();
    },
  };
}

/** Serve the final figures for a while; SIGINT or SIGTERM ends it early. */
async function linger(seconds: number, log: Logger): Promise<void> {
  if (seconds <= 0) return;
  log.info(`serving the final metrics for ${seconds} s (SIGINT or SIGTERM ends this)`);
  await new Promise<void>((resolve) => {
    const end = (): void => {
      clearTimeout(timer);
      process.off('SIGINT', end);
      process.off('SIGTERM', end);
      resolve();
    };
    const timer = setTimeout(end, seconds * 1000);
    process.on('SIGINT', end);
    process.on('SIGTERM', end);
  });
}
