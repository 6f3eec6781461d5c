/**
 * The IPCAD control plane, started once the captures are open: the commands'
 * service, the rsh server, the JSON API, the dump at start (-r) and exit (-s),
 * the pid file, and IPCAD's start-up messages.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IpcadOptions } from '../config/ipcad-options.js';
import type { Logger } from '../log/logger.js';
import type { ProbeStats, RshStats } from '../stats/probe-stats.js';
import type { Identity } from '../privileges/identity.js';
import { RshAccess } from './access.js';
import { ConnectBackHelper } from './connect-back.js';
import { ipcadApi, type ApiHandler } from './http-api.js';
import { IpcadService, ServiceError, type DataPlaneAccess } from './ipcad-service.js';
import { CommandCounters, runCommand } from './run-command.js';
import { PidFileError, removePidFile, writePidFile } from './pid-file.js';
import { RshServer } from './rsh-server.js';

export interface IpcadControlInputs {
  ipcad: IpcadOptions;
  dataPlane: DataPlaneAccess;
  stats(): ProbeStats;
  accounting: Float64Array;
  sources: readonly { label: string; ifIndex: number }[];
  timeouts: { active: number; inactive: number };
  flowCacheCapacity: number;
  collectors: readonly string[];
  stop(): void;
  log: Logger;
  version: string;
  /** ipcad.conf's uid/gid: the user the probe drops to once this is started (undefined: no drop) */
  dropTo?: Identity | undefined;
}

export interface IpcadControl {
  api: ApiHandler;
  /** for /metrics: connections by outcome, commands by name */
  rshStats: () => RshStats | undefined;
  service: IpcadService;
  /** the data plane has ended with this active table: save it if -s */
  finish(finalRows: ArrayBuffer | undefined): void;
  /** privileges were dropped to `dropTo`: say what that means for the dump file */
  privilegesDropped(): void;
  close(): Promise<void>;
}

/** CAP_NET_BIND_SERVICE is bit 10 of the capability sets. */
export function canBindReservedPorts(): boolean {
  if (process.geteuid?.() === 0) return true;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
    return effective !== undefined && (BigInt(`0x${effective}`) & (1n << 10n)) !== 0n;
  } catch {
    return false;
  }
}

export async function startIpcadControl(inputs: IpcadControlInputs): Promise<IpcadControl> {
  const { ipcad, log } = inputs;
  for (const warning of ipcad.warnings) log.warn(warning);
  if (ipcad.chroot !== undefined) {
    log.warn(
      `chroot = ${ipcad.chroot}: relative paths (the dump file) resolve inside it, but the process is NOT confined: ` +
        'Node.js has no chroot(2) and no maintained binding for it. To confine it, run flowprobe in a container with a read-only root, ' +
        'or under systemd with RootDirectory= (or ProtectSystem=strict and ReadWritePaths= for the dump directory)',
    );
  }
  for (const collector of inputs.collectors) log.info(`Configured NetFlow destination at ${collector}`);
  if (inputs.collectors.length === 0) log.info('No NetFlow destination configured: flows are counted but not exported');

  const service = new IpcadService({
    dataPlane: inputs.dataPlane,
    stats: () => inputs.stats(),
    accounting: inputs.accounting,
    sources: inputs.sources,
    capturePorts: ipcad.accounting.capturePorts.some((p) => p),
    dumpFile: ipcad.dumpFile,
    timeouts: inputs.timeouts,
    flowCacheCapacity: inputs.flowCacheCapacity,
    rsh: () =>
      rsh === undefined
        ? undefined
        : {
            freeSlots: rsh.freeSlots,
            maxClients: rsh.maxClients,
            connections: rsh.connections,
            outcomes: { ...rsh.outcomes },
            commands: { ...counters.ran, invalid: counters.invalid, refused: counters.refused, failed: counters.failed },
          },
    stop: () => inputs.stop(),
    version: inputs.version,
  });
  const counters = new CommandCounters();

  let rsh: RshServer | undefined;
  let helper: ConnectBackHelper | undefined;
  if (ipcad.rsh.listen.length > 0) {
    if (!canBindReservedPorts()) {
      log.warn(
        'the rsh server needs root or CAP_NET_BIND_SERVICE for every request (the rsh protocol connects back from a reserved port): ' +
          'without it rsh is unavailable',
      );
    }
    const access = await RshAccess.resolve(ipcad.rsh.access, (message) => log.warn(message));
    // Every request connects back from a reserved port: after the drop only the helper can.
    if (inputs.dropTo !== undefined && inputs.dropTo.uid !== 0 && canBindReservedPorts()) {
      const user = `${inputs.dropTo.user} (uid ${inputs.dropTo.uid})`;
      try {
        helper = await ConnectBackHelper.start(inputs.dropTo, (why) =>
          log.error(`rsh: the connect-back helper exited (${why}): rsh requests fail from now on (counted as connect_back_failed)`),
        );
        log.info(`rsh: once privileges are dropped to ${user}, connect-backs go through a helper process (${helper.description})`);
      } catch (error) {
        log.warn(
          `rsh: cannot start the connect-back helper (${(error as Error).message}): once privileges are dropped to ${user}, ` +
            'every rsh request fails (counted as connect_back_failed)',
        );
      }
    }
    try {
      rsh = await RshServer.listen({
        connectBack: helper,
        addresses: ipcad.rsh.listen,
        port: ipcad.rsh.port,
        timeoutMs: ipcad.rsh.timeoutSeconds * 1000,
        maxClients: ipcad.rsh.maxClients,
        access,
        run: (command, level, client) => {
          const who = `${client.user}@${client.address}`;
          log.debug({ command, level, client: who }, `rsh ${who} (${level}): ${command}`);
          return runCommand(command, level, service, counters, inputs.version, { note: (message) => log.info(message) }, who);
        },
      });
    } catch (error) {
      service.close();
      helper?.close();
      throw error;
    }
    for (const address of ipcad.rsh.listen) log.info(`Configured RSH Server listening at ${address}`);
    log.info(
      `rsh: ${ipcad.rsh.access.length} access lines, ${ipcad.rsh.maxClients} client slots, ${ipcad.rsh.timeoutSeconds} s timeout; ` +
        'answering needs root or CAP_NET_BIND_SERVICE for every request' +
        (helper === undefined ? '' : ' (after the drop to uid, the connect-back helper holds it)'),
    );
  }

  if (ipcad.restoreOnStart && ipcad.dumpFile !== undefined) {
    try {
      const restored = await service.restore(undefined, false);
      log.info(restored.message);
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      // a first start has no dump yet: say so and go on
      log.warn(error.message);
    }
  }

  if (ipcad.pidFile !== undefined) {
    try {
      writePidFile(ipcad.pidFile);
    } catch (error) {
      if (!(error instanceof PidFileError)) throw error;
      log.warn(error.message);
    }
  }

  let finished = false;
  return {
    api: ipcadApi(service, inputs.version),
    service,
    // from the server and the counters directly: service.status() reads the probe's stats, which read this
    rshStats: () =>
      rsh === undefined
        ? undefined
        : {
            connections: { ...rsh.outcomes },
            commands: { ...counters.ran, invalid: counters.invalid, refused: counters.refused, failed: counters.failed },
          },
    finish(finalRows) {
      if (finished) return;
      finished = true;
      if (!ipcad.saveOnExit || ipcad.dumpFile === undefined) return;
      if (finalRows === undefined) {
        log.error(`the data plane ended without its accounting table: ${ipcad.dumpFile} not saved`);
        return;
      }
      try {
        const saved = service.saveFinal(finalRows);
        log.info(`Accounting data saved to ${saved.path}: ${saved.entries} entries`);
      } catch (error) {
        if (!(error instanceof ServiceError)) throw error;
        log.error(error.message);
      }
    },
    privilegesDropped() {
      const dropTo = inputs.dropTo;
      if (dropTo === undefined || ipcad.dumpFile === undefined) return;
      const dir = dirname(ipcad.dumpFile);
      try {
        accessSync(dir, constants.W_OK);
      } catch {
        log.warn(
          `${dir} is not writable by ${dropTo.user} (uid ${dropTo.uid}): dump and -s cannot save ${ipcad.dumpFile} ` +
            `(chown ${dropTo.uid}:${dropTo.gid} ${dir}, mode 0700)`,
        );
      }
    },
    async close() {
      service.close();
      await rsh?.close();
      helper?.close();
      if (ipcad.pidFile !== undefined) {
        try {
          removePidFile(ipcad.pidFile);
        } catch (error) {
          // after a privilege drop, a root-owned directory (/var/run) keeps it
          log.warn(`pidfile ${ipcad.pidFile}: cannot remove it (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      }
    },
  };
}
