/**
 * The rsh commands, Cisco style: each word may be shortened to any prefix of
 * at least its minimum length (`sh ip acc`), and the level each one needs.
 */
import type { RshLevel } from '../config/ipcad-conf.js';

export type Command =
  | { name: 'show-accounting'; checkpoint: boolean }
  | { name: 'clear-accounting' }
  | { name: 'show-cache' }
  | { name: 'show-interface'; interface: string }
  | { name: 'show-version' }
  | { name: 'stat' }
  | { name: 'dump'; path: string | undefined }
  | { name: 'restore'; path: string | undefined }
  | { name: 'import'; path: string | undefined }
  | { name: 'shutdown' }
  | { name: 'help' };

export type CommandName = Command['name'];
export const COMMAND_NAMES: readonly CommandName[] = [
  'show-accounting',
  'clear-accounting',
  'show-cache',
  'show-interface',
  'show-version',
  'stat',
  'dump',
  'restore',
  'import',
  'shutdown',
  'help',
];

/** A command line that is not a command: `message` is the one line to answer. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** A keyword and the shortest prefix that selects it. */
interface Keyword {
  word: string;
  min: number;
}

function matches(token: string, keyword: Keyword): boolean {
  return token.length >= keyword.min && keyword.word.startsWith(token);
}

function pick<T extends string>(token: string | undefined, keywords: readonly (Keyword & { word: T })[], after: string): T {
  const choices = keywords.map((k) => k.word).join(', ');
  if (token === undefined) throw new CommandError(`% Incomplete command: ${after} … (${choices})`);
  const found = keywords.find((k) => matches(token.toLowerCase(), k));
  if (found === undefined) throw new CommandError(`% Invalid input "${token}"${after === '' ? '' : ` after "${after}"`}; expected ${choices}`);
  return found.word;
}

const TOP = [
  { word: 'show', min: 2 },
  { word: 'shutdown', min: 3 },
  { word: 'clear', min: 2 },
  { word: 'stat', min: 4 },
  { word: 'status', min: 5 },
  { word: 'dump', min: 2 },
  { word: 'restore', min: 3 },
  { word: 'import', min: 2 },
  { word: 'help', min: 1 },
] as const;
const SHOW = [
  { word: 'ip', min: 1 },
  { word: 'interface', min: 2 },
  { word: 'version', min: 1 },
] as const;
const SHOW_IP = [
  { word: 'accounting', min: 1 },
  { word: 'cache', min: 1 },
] as const;

function noMore(tokens: string[], from: number, said: string): void {
  if (tokens.length > from) throw new CommandError(`% Invalid input "${tokens[from]}" after "${said}"`);
}

/** Parse one command line. Throws CommandError with the answer for a wrong one. */
export function parseCommand(text: string): Command {
  const tokens = text.trim().split(/\s+/).filter((t) => t !== '');
  if (tokens.length === 0 || tokens[0] === '?') return { name: 'help' };
  const top = pick(tokens[0], TOP, '');
  switch (top) {
    case 'show': {
      const what = pick(tokens[1], SHOW, 'show');
      if (what === 'version') {
        noMore(tokens, 2, 'show version');
        return { name: 'show-version' };
      }
      if (what === 'interface') {
        const name = tokens[2];
        if (name === undefined) throw new CommandError('% Incomplete command: show interface NAME');
        noMore(tokens, 3, `show interface ${name}`);
        return { name: 'show-interface', interface: name };
      }
      const sub = pick(tokens[2], SHOW_IP, 'show ip');
      if (sub === 'cache') {
        pick(tokens[3], [{ word: 'flow', min: 1 }], 'show ip cache');
        noMore(tokens, 4, 'show ip cache flow');
        return { name: 'show-cache' };
      }
      if (tokens[3] !== undefined) {
        pick(tokens[3], [{ word: 'checkpoint', min: 1 }], 'show ip accounting');
        noMore(tokens, 4, 'show ip accounting checkpoint');
        return { name: 'show-accounting', checkpoint: true };
      }
      return { name: 'show-accounting', checkpoint: false };
    }
    case 'clear':
      pick(tokens[1], [{ word: 'ip', min: 1 }], 'clear');
      pick(tokens[2], [{ word: 'accounting', min: 1 }], 'clear ip');
      noMore(tokens, 3, 'clear ip accounting');
      return { name: 'clear-accounting' };
    case 'stat':
    case 'status':
      noMore(tokens, 1, top);
      return { name: 'stat' };
    case 'dump':
    case 'restore':
    case 'import':
      noMore(tokens, 2, `${top} ${tokens[1] ?? ''}`.trim());
      return { name: top, path: tokens[1] };
    case 'shutdown':
      noMore(tokens, 1, 'shutdown');
      return { name: 'shutdown' };
    case 'help':
      return { name: 'help' };
  }
}

/** The lowest level that may run each command (admin > backup > default > view-only). */
const NEEDS: Record<CommandName, Exclude<RshLevel, 'deny'>> = {
  'show-accounting': 'view-only',
  'show-cache': 'view-only',
  'show-interface': 'view-only',
  'show-version': 'view-only',
  stat: 'view-only',
  help: 'view-only',
  'clear-accounting': 'default',
  dump: 'backup',
  restore: 'backup',
  import: 'backup',
  shutdown: 'admin',
};
const RANK: Record<RshLevel, number> = { deny: 0, 'view-only': 1, default: 2, backup: 3, admin: 4 };

export function allowed(level: RshLevel, command: CommandName): boolean {
  return RANK[level] >= RANK[NEEDS[command]];
}

export function requiredLevel(command: CommandName): RshLevel {
  return NEEDS[command];
}

export const HELP_TEXT = [
  'Commands (words may be shortened: sh ip acc):',
  '  show ip accounting [checkpoint]  the accounting table (or the one clear moved aside)',
  '  clear ip accounting              move the table to the checkpoint, start a new one',
  '  show ip cache flow               the NetFlow flow cache',
  '  show interface NAME              the interface, from the system',
  '  show version',
  '  stat | status                    interfaces, table, memory, rsh clients, uptime',
  '  dump                             save the table to the dump file (dumpfile)',
  '  restore                          replace the table with the dump file',
  '  import                           add the dump file to the table',
  '  shutdown                         flush NetFlow, save the dump if asked (-s), exit',
  '  help',
  '',
].join('\n');
