/**
 * Wiring: options → capture workers → exporter (or the stdout printer), signals,
 * and the statistics summary. The only place the parts meet.
 */
import { CaptureOpenError, CaptureWorker, type OpenedSource } from './capture/capture-worker.js';
import { systemIfIndex } from './capture/interfaces.js';
import type { CaptureSourceSpec } from './capture/worker-protocol.js';
import { EXPIRY_REASONS, FlowCacheStat } from './cache/flow-cache.js';
import type { ProbeOptions } from './config/options.js';
import {
  DataPlaneCounter,
  PORTS_UNAVAILABLE_REASONS,
  SourceCounter,
  createControlWords,
  createDataPlaneCounters,
  sourceCounterBase,
} from './counters/data-plane.js';
import { SKIP_REASONS } from './decode/decode.js';
import { Collector } from './export/collector.js';
import { V5Exporter, type RecordsDone } from './export/exporter.js';
import { FLOW_LINE_HEADER, formatFlowLines } from './export/flow-printer.js';
import type { RecordBatch } from './export/record-batch.js';
import { V5_MAX_RECORDS } from './export/v5.js';
import { RateLimitedLog, type Logger } from './log/logger.js';
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

/** BPF that keeps our own datagrams out of a live capture. */
export function exportExclusionFilter(collectors: readonly Collector[]): string {
  return collectors.map((c) => `(udp and dst host ${c.address} and dst port ${c.port})`).join(' or ');
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
  return interfaces.map((spec) => ({
    kind: 'live',
    device: spec.name,
    ifIndex: spec.ifIndex ?? (spec.name === '' ? 0 : systemIfIndex(spec.name)),
    // libpcap refuses promiscuous mode on "any" (pcap_activate warns, the binding throws)
    promiscuous: options.promiscuous && spec.name !== 'any',
    snapLength: options.snaplen,
    bufferSize: options.bufferSize,
  }));
}

/** --user/--group, resolved and checked before anything is opened (UsageError if impossible). */
function privilegeDropPlan(options: ProbeOptions): { target: Identity; drop: boolean } | undefined {
  if (options.user === undefined) return undefined;
  const target = resolveIdentity(options.user, options.group);
  return { target, drop: planDrop(target, currentIds(), readEffectiveCapabilities()) === 'drop' };
}

export async function runProbe(options: ProbeOptions, log: Logger): Promise<number> {
  const live = options.read === undefined;
  const privileges = privilegeDropPlan(options);
  const collectors: Collector[] = [];
  try {
    for (const target of options.collectors) collectors.push(await Collector.open(target, options.exportSource));
  } catch (error) {
    await Promise.all(collectors.map((c) => c.close()));
    throw new ProbeError('E_COLLECTOR', (error as Error).message);
  }

  const sendFailures = new RateLimitedLog((m) => log.warn(m));
  const exporter = new V5Exporter(
    collectors,
    {
      engineType: options.engineType,
      engineId: options.engineId,
      rateLimit: options.exportRate,
      maxQueuedDatagrams: options.exportQueue,
      dropWhenFull: live,
    },
    {
      sendFailed: (collector, reason, error) =>
        sendFailures.log(`send:${collector.label}:${reason}`, `export to ${collector.label} failed: ${error.message}`),
    },
  );

  let printedHeader = false;
  const printBatch = (batch: RecordBatch, done: RecordsDone): void => {
    let text = formatFlowLines(batch);
    if (!printedHeader) {
      text = FLOW_LINE_HEADER + '\n' + text;
      printedHeader = true;
    }
    // Acknowledge when written, so a slow reader of stdout pauses file reading.
    process.stdout.write(text, () => done(batch.count));
  };

  const exclusion = live ? exportExclusionFilter(collectors) : '';
  const sources = sourcesFrom(options);
  const counters = createDataPlaneCounters(sources.length);
  const warnings = new Set<string>();
  let worker: CaptureWorker | undefined = undefined;
  const done: RecordsDone = (records) => worker?.acknowledge(records);
  worker = new CaptureWorker(
    {
      sources,
      filter: combineFilters(options.filter, exclusion),
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
    },
    {
      onRecords: (batch) => (collectors.length > 0 ? exporter.enqueue(batch, done) : printBatch(batch, done)),
      onWarning: (message) => {
        if (warnings.has(message)) return;
        warnings.add(message);
        // libpcap's "no IPv4 address assigned" is normal on a SPAN port
        log.debug(message);
      },
    },
  );
  const capture = worker;

  let opened: OpenedSource[];
  try {
    opened = await capture.opened;
  } catch (error) {
    await capture.finished.catch(() => undefined);
    await Promise.all(collectors.map((c) => c.close()));
    const message = (error as Error).message;
    // libpcap's "socket: Operation not permitted" does not say what is missing
    const hint = live && /not permitted|permission/i.test(message) ? ' (live capture needs root, or CAP_NET_RAW and CAP_NET_ADMIN)' : '';
    throw new ProbeError(error instanceof CaptureOpenError ? error.code : 'E_CAPTURE', message + hint);
  }
  const labels = opened.map((o) => (o.name === '-' ? 'stdin' : o.name));
  opened.forEach((o, i) => log.info(`${live ? 'capturing on' : 'reading'} ${labels[i]} (${o.linkTypeName})`));
  if (options.filter !== '') log.info(`filter: ${options.filter}`);
  if (exclusion !== '') log.info(`excluding our own export traffic from the capture: not (${exclusion})`);
  log.info(
    collectors.length > 0
      ? `exporting NetFlow v5 to ${collectors.map((c) => c.label).join(', ')}`
      : 'no collector given: printing flows to stdout',
  );

  // Everything that needs a privilege (captures, sockets) is open: give it up.
  if (privileges?.drop === true) {
    const previousUid = process.geteuid?.() ?? 0;
    let report: DropReport;
    try {
      report = dropPrivileges(privileges.target);
    } catch (error) {
      capture.stop();
      await capture.finished.catch(() => undefined);
      await exporter.drain();
      await Promise.all(collectors.map((c) => c.close()));
      throw new ProbeError('E_PRIVILEGE_DROP', `cannot drop privileges: ${(error as Error).message}`);
    }
    for (const line of describeDrop(report, previousUid)) log.info(line);
  } else if (privileges !== undefined) {
    const { user, uid, group, gid } = privileges.target;
    const capabilities = readEffectiveCapabilities();
    log.info(
      `already running as user ${user} (uid ${uid}), group ${group} (gid ${gid}): nothing to drop` +
        (capabilities !== undefined && capabilities !== 0n ? ` (with ${listCapabilities(capabilities, uid)})` : ''),
    );
  } else if (live && process.geteuid?.() === 0) {
    log.info('running as root: --user NAME (and --group) would drop every privilege once the capture is open');
  }

  let signalled = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signalled++;
    if (signalled === 1) {
      log.info(`${signal}: flushing flows and stopping`);
      capture.stop();
    } else {
      log.warn(`${signal} again: exiting without waiting for the flush`);
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let exitCode = 0;
  try {
    const outcome = await capture.finished;
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
  await exporter.drain();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  await Promise.all(collectors.map((c) => c.close()));
  log.info(summary(labels, counters, live, exporter, collectors));
  return exitCode;
}

/** The end-of-run statistics, in the spirit of softflowd's `statistics`. */
function summary(
  labels: readonly string[],
  counters: Float64Array,
  live: boolean,
  exporter: V5Exporter,
  collectors: readonly Collector[],
): string {
  const lines: string[] = ['statistics:'];
  const c = (index: number): number => counters[index]!;
  let packets = 0;
  let bytes = 0;
  labels.forEach((_, i) => {
    packets += c(sourceCounterBase(i) + SourceCounter.packets);
    bytes += c(sourceCounterBase(i) + SourceCounter.bytes);
  });
  lines.push(`  packets captured: ${packets} (${bytes} bytes on the wire)`);
  labels.forEach((label, i) => {
    const base = sourceCounterBase(i);
    if (labels.length > 1) {
      lines.push(`  ${label}: ${c(base + SourceCounter.packets)} packets (${c(base + SourceCounter.bytes)} bytes)`);
    }
    if (live) {
      lines.push(
        `  ${label} libpcap: received ${c(base + SourceCounter.pcapReceived)}, dropped ${c(base + SourceCounter.pcapDropped)}, dropped by interface ${c(base + SourceCounter.pcapInterfaceDropped)}`,
      );
    }
  });
  let skippedPackets = 0;
  const skipped: string[] = [];
  SKIP_REASONS.forEach((reason, r) => {
    if (r === 0) return;
    const packets = c(DataPlaneCounter.skippedPacketsBase + r);
    skippedPackets += packets;
    if (packets > 0) skipped.push(`${reason} ${packets} (${c(DataPlaneCounter.skippedBytesBase + r)} bytes)`);
  });
  lines.push(`  packets skipped: ${skippedPackets}${skipped.length > 0 ? ': ' + skipped.join(', ') : ''}`);
  const portless = PORTS_UNAVAILABLE_REASONS.map((reason, k) => `${reason} ${c(DataPlaneCounter.portsUnavailableBase + k)}`);
  lines.push(`  packets counted with ports 0: ${portless.join(', ')}`);
  if (c(DataPlaneCounter.clockBackwards) > 0) {
    lines.push(`  packets out of time order (counted at the latest time): ${c(DataPlaneCounter.clockBackwards)}`);
  }
  lines.push(`  flows created: ${c(DataPlaneCounter.flowCacheBase + FlowCacheStat.created)}`);
  const expired = EXPIRY_REASONS.map(
    (reason, r) => `${reason} ${c(DataPlaneCounter.flowCacheBase + FlowCacheStat.expiredBase + r)}`,
  );
  lines.push(`  flows expired: ${expired.join(', ')}`);
  const s = exporter.stats;
  lines.push(`  records exported: ${s.recordsBuilt} in ${s.datagramsBuilt} datagrams (flow_sequence ${exporter.flowSequence})`);
  if (s.datagramsDropped > 0) {
    lines.push(`  dropped on a full send queue: ${s.datagramsDropped} datagrams, ${s.recordsDropped} records`);
  }
  for (const collector of collectors) {
    const errors = [...collector.errors].map(([reason, n]) => `${reason} ${n}`).join(', ');
    lines.push(
      `  collector ${collector.label}: ${collector.datagramsSent} datagrams, ${collector.recordsSent} records sent; send errors ${collector.errorCount}${errors === '' ? '' : ` (${errors})`}`,
    );
  }
  return lines.join('\n');
}

