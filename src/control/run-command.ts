/**
 * One rsh command line, run at the client's level: the text answer, and what
 * to do once it has been delivered (shutdown). Every command is counted.
 */
import type { RshLevel } from '../config/ipcad-conf.js';
import { allowed, CommandError, COMMAND_NAMES, HELP_TEXT, parseCommand, requiredLevel, type CommandName } from './commands.js';
import { formatAccounting, formatCache, formatInterface, formatStat } from './format.js';
import { ServiceError, type IpcadService } from './ipcad-service.js';
import type { RshReply } from './rsh-server.js';

export class CommandCounters {
  readonly ran: Record<CommandName, number> = Object.fromEntries(COMMAND_NAMES.map((n) => [n, 0])) as Record<CommandName, number>;
  /** not a command (parse error), not allowed at the client's level, or failed */
  invalid = 0;
  refused = 0;
  failed = 0;
}

export interface CommandEvents {
  /** a state-changing command ran, or any failed: worth a log line */
  note(message: string): void;
}

export async function runCommand(
  line: string,
  level: RshLevel,
  service: IpcadService,
  counters: CommandCounters,
  version: string,
  events: CommandEvents,
  who: string,
): Promise<RshReply> {
  let command;
  try {
    command = parseCommand(line);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    counters.invalid++;
    return { stdout: '', stderr: `${error.message}\n` };
  }
  if (!allowed(level, command.name)) {
    counters.refused++;
    return { stdout: '', stderr: `% Permission denied: "${line.trim()}" needs the ${requiredLevel(command.name)} level; ${who} has ${level}\n` };
  }
  counters.ran[command.name]++;
  try {
    switch (command.name) {
      case 'show-accounting':
        return { stdout: formatAccounting(await service.accounting(command.checkpoint)) };
      case 'clear-accounting': {
        const moved = await service.clear();
        events.note(`clear ip accounting by ${who}: ${moved} entries moved to the checkpoint`);
        return { stdout: 'IP accounting cleared\n' };
      }
      case 'show-cache':
        return { stdout: formatCache(await service.cache()) };
      case 'show-interface': {
        const info = service.interface(command.interface);
        if (info === undefined) return { stdout: '', stderr: `% No such interface: ${command.interface}\n` };
        return { stdout: formatInterface(info) };
      }
      case 'show-version':
        return { stdout: `flowprobe ${version}, IPCAD-compatible (rsh, ipcad.conf, dump files), NetFlow v5; Node.js ${process.version}\n` };
      case 'stat':
        return { stdout: formatStat(service.status()) };
      case 'dump': {
        const saved = await service.dump(command.path);
        events.note(`dump by ${who}: ${saved.entries} entries saved to ${saved.path}`);
        return { stdout: `Dump saved to ${saved.path}: ${saved.entries} entries\n` };
      }
      case 'restore':
      case 'import': {
        const result = await service.restore(command.path, command.name === 'restore');
        events.note(`${command.name} by ${who}: ${result.message}`);
        return { stdout: `${result.message}\n` };
      }
      case 'shutdown':
        events.note(`shutdown by ${who}`);
        return { stdout: 'Shutdown process started\n', afterReply: () => service.shutdown() };
      case 'help':
        return { stdout: HELP_TEXT };
    }
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    counters.failed++;
    events.note(`${line.trim()} by ${who} failed: ${error.message}`);
    return { stdout: '', stderr: `% ${error.message}\n` };
  }
}
