/**
 * IPCAD's configuration language (ipcad.conf), read into a typed IpcadConfig.
 *
 * Statements end with `;` (the last one in the file may omit it), words are
 * separated by blanks, strings are in double quotes, `#` and `//` start a
 * comment to the end of the line and C comments may span lines. An unknown or
 * malformed statement is a ConfigError naming the file, the line and the
 * statement; a known IPCAD statement that flowprobe does not carry out is
 * accepted with a warning saying what is not done.
 */
import { isIP } from 'node:net';
import { parseListenAddress } from './options.js';

export type RshLevel = 'admin' | 'backup' | 'default' | 'view-only' | 'deny';
export const RSH_LEVELS: readonly RshLevel[] = ['admin', 'backup', 'default', 'view-only', 'deny'];

export interface IpcadInterface {
  name: string;
  promiscuous: boolean;
  /** BPF filter for this interface ('' for none) */
  filter: string;
  /** capture-ports was enabled where this interface was declared */
  capturePorts: boolean;
  line: number;
}

export interface RshAccessRule {
  /** undefined: any user */
  user: string | undefined;
  /** an address or a host name, resolved at start */
  host: string;
  level: RshLevel;
  line: number;
}

/** `aggregate NET/LEN strip N`: addresses in NET/LEN lose their last N bits (never below the network). */
export interface AddressAggregate {
  kind: 'address';
  network: number;
  prefixLength: number;
  strip: number;
}

/** `aggregate FROM-TO into PORT`: ports in the range are counted as PORT. The first rule that matches wins. */
export interface PortAggregate {
  kind: 'port';
  from: number;
  to: number;
  into: number;
}

export interface IpcadConfig {
  file: string;
  interfaces: IpcadInterface[];
  /** `rsh enable [at ADDR]` statements: where the rsh server listens (empty: no rsh server) */
  rshListen: string[];
  rshAccess: RshAccessRule[];
  /** seconds a client may take to send its request */
  rshTimeout: number | undefined;
  dumpFile: string | undefined;
  chroot: string | undefined;
  pidFile: string | undefined;
  uid: string | undefined;
  gid: string | undefined;
  /** flowprobe's `api-listen = ADDRESS:PORT|off`: the JSON API's listener (as --api-listen) */
  apiListen: string | undefined;
  /** bytes */
  memoryLimit: number | undefined;
  netflowDestinations: { host: string; port: number }[];
  /** seconds (the statement gives minutes) */
  netflowActiveTimeout: number | undefined;
  /** seconds */
  netflowInactiveTimeout: number | undefined;
  netflowEngineType: number | undefined;
  netflowEngineId: number | undefined;
  aggregates: (AddressAggregate | PortAggregate)[];
  /** known statements accepted but not carried out, and other remarks, each one line */
  warnings: string[];
}

/** A mistake in the configuration file: one line naming file, line and statement, exit 2. */
export class ConfigError extends Error {
  readonly code = 'E_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Token {
  text: string;
  /** a double-quoted string (never a keyword) */
  quoted: boolean;
  line: number;
}

interface Statement {
  words: Token[];
  line: number;
}

function tokenize(file: string, text: string): Statement[] {
  const statements: Statement[] = [];
  let words: Token[] = [];
  let line = 1;
  let i = 0;
  const end = (): void => {
    if (words.length > 0) statements.push({ words, line: words[0]!.line });
    words = [];
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const started = line;
      i += 2;
      while (i < text.length && !(text[i] === '*' && text[i + 1] === '/')) {
        if (text[i] === '\n') line++;
        i++;
      }
      if (i >= text.length) throw new ConfigError(`${file}:${started}: a comment opened with /* is never closed`);
      i += 2;
    } else if (c === ';') {
      if (words.length === 0) throw new ConfigError(`${file}:${line}: an empty statement (a stray ";")`);
      end();
      i++;
    } else if (c === '"') {
      const started = line;
      let value = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\n') throw new ConfigError(`${file}:${started}: a string opened with " is not closed on its line`);
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
      if (i >= text.length) throw new ConfigError(`${file}:${started}: a string opened with " is never closed`);
      i++;
      words.push({ text: value, quoted: true, line: started });
    } else if (c === '=') {
      words.push({ text: '=', quoted: false, line });
      i++;
    } else {
      let word = '';
      while (i < text.length && !/[\s;"=#]/.test(text[i]!) && !(text[i] === '/' && (text[i + 1] === '*' || text[i + 1] === '/'))) {
        word += text[i];
        i++;
      }
      words.push({ text: word, quoted: false, line });
    }
  }
  end(); // the last statement may lack its ";"
  return statements;
}

/** 1m, 512k, 1048576 (IPCAD's suffixes; g too). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text);
  if (m === null) return undefined;
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * scale;
}

export function ipv4ToNumber(address: string): number | undefined {
  if (isIP(address) !== 4) return undefined;
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** Parse the text of an ipcad.conf. `file` names it in messages. Throws ConfigError. */
export function parseIpcadConf(file: string, text: string): IpcadConfig {
  const config: IpcadConfig = {
    file,
    interfaces: [],
    rshListen: [],
    rshAccess: [],
    rshTimeout: undefined,
    dumpFile: undefined,
    chroot: undefined,
    pidFile: undefined,
    uid: undefined,
    gid: undefined,
    apiListen: undefined,
    memoryLimit: undefined,
    netflowDestinations: [],
    netflowActiveTimeout: undefined,
    netflowInactiveTimeout: undefined,
    netflowEngineType: undefined,
    netflowEngineId: undefined,
    aggregates: [],
    warnings: [],
  };
  let capturePorts = false;

  for (const statement of tokenize(file, text)) {
    const words = statement.words.map((w) => w.text);
    const shown = statement.words.map((w) => (w.quoted ? JSON.stringify(w.text) : w.text)).join(' ');
    const where = `${file}:${statement.line}`;
    const malformed = (expected: string): never => {
      throw new ConfigError(`${where}: malformed statement "${shown}": expected ${expected}`);
    };
    const notDone = (what: string): void => {
      config.warnings.push(`${where}: "${shown}" is accepted but not carried out: ${what}`);
    };
    const integer = (text: string | undefined, min: number, max: number, expected: string): number => {
      const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : Number.NaN;
      if (!Number.isInteger(n) || n < min || n > max) malformed(expected);
      return n;
    };
    /** `KEY = VALUE` or `KEY VALUE` */
    const assigned = (keyWords: number): string => {
      const rest = words.slice(keyWords);
      if (rest[0] === '=') rest.shift();
      if (rest.length !== 1 || rest[0] === '') malformed(`${words.slice(0, keyWords).join(' ')} = VALUE`);
      return rest[0]!;
    };
    const keyword = statement.words[0]!;
    if (keyword.quoted) malformed('a statement, not a string');

    switch (keyword.text) {
      case 'capture-ports': {
        if (words.length !== 2 || (words[1] !== 'enable' && words[1] !== 'disable')) malformed('capture-ports enable|disable');
        // applies to the interfaces declared after it (all of them when it comes first)
        capturePorts = words[1] === 'enable';
        break;
      }
      case 'interface': {
        const name = words[1];
        if (name === undefined || name === '' || statement.words[1]!.quoted) malformed('interface NAME [promisc] [filter "BPF"]');
        const entry: IpcadInterface = { name: name!, promiscuous: false, filter: '', capturePorts, line: statement.line };
        for (let k = 2; k < words.length; k++) {
          const word = statement.words[k]!;
          if (word.text === 'promisc' && !word.quoted) entry.promiscuous = true;
          else if (word.text === 'filter' && !word.quoted) {
            const value = statement.words[k + 1];
            if (value === undefined || !value.quoted) malformed('filter "BPF expression" in double quotes');
            entry.filter = value!.text;
            k++;
          } else if (word.text === 'iflabel' || word.text === 'netflow-disable') {
            notDone(`interface option ${word.text}`);
            k += word.text === 'iflabel' ? 1 : 0;
          } else malformed('interface NAME [promisc] [filter "BPF"]');
        }
        if (config.interfaces.some((i) => i.name === entry.name)) {
          throw new ConfigError(`${where}: interface ${entry.name} is given twice`);
        }
        config.interfaces.push(entry);
        break;
      }
      case 'rsh':
        parseRsh(words, statement.line, config, malformed, notDone, integer);
        break;
      case 'dumpfile':
        config.dumpFile = assigned(1);
        break;
      case 'chroot':
        config.chroot = assigned(1);
        break;
      case 'pidfile':
        config.pidFile = assigned(1);
        break;
      case 'uid':
        // dropped once the captures and sockets are open, as --user does
        config.uid = assigned(1);
        break;
      case 'gid':
        config.gid = assigned(1);
        break;
      case 'api-listen': {
        // flowprobe's own statement (IPCAD has no JSON API): the same value as --api-listen
        const value = assigned(1);
        try {
          parseListenAddress('api-listen', value);
        } catch {
          malformed('api-listen = ADDRESS:PORT, [IPv6]:PORT or off');
        }
        config.apiListen = value;
        break;
      }
      case 'memory_limit': {
        const size = parseSize(assigned(1));
        if (size === undefined) malformed('memory_limit = BYTES, with an optional k, m or g suffix');
        config.memoryLimit = size;
        break;
      }
      case 'netflow':
        parseNetflow(words, config, malformed, notDone, integer);
        break;
      case 'aggregate':
        config.aggregates.push(parseAggregate(words, malformed, integer));
        break;
      case 'buffering':
      case 'ulog':
      case 'ipq':
      case 'divert':
      case 'tee':
        notDone(`flowprobe captures with libpcap only (${words[0]} is not supported)`);
        break;
      default:
        throw new ConfigError(`${where}: unknown statement "${shown}"`);
    }
  }
  return config;
}

function parseRsh(
  words: string[],
  line: number,
  config: IpcadConfig,
  malformed: (expected: string) => never,
  notDone: (what: string) => void,
  integer: (text: string | undefined, min: number, max: number, expected: string) => number,
): void {
  const second = words[1];
  if (second === 'enable') {
    if (words.length === 2) {
      // IPCAD listens on every address; exposing a listener is an explicit choice here
      config.rshListen.push('127.0.0.1');
      config.warnings.push(
        `line ${line}: "rsh enable" listens on 127.0.0.1 only (IPCAD listens on every address); write "rsh enable at 0.0.0.0" to expose it`,
      );
    } else if (words.length === 4 && words[2] === 'at' && isIP(words[3]!) !== 0) config.rshListen.push(words[3]!);
    else malformed('rsh enable [at ADDRESS]');
    return;
  }
  if (second === 'disable') {
    if (words.length !== 2) malformed('rsh disable');
    config.rshListen = [];
    return;
  }
  if (second === 'timeout') {
    const rest = words.slice(2);
    if (rest[0] === '=') rest.shift();
    if (rest.length !== 1) malformed('rsh timeout = SECONDS');
    config.rshTimeout = integer(rest[0], 1, 3600, 'rsh timeout = SECONDS (1 to 3600)');
    return;
  }
  if (second === 'ttl') {
    notDone('the IP TTL of rsh replies is the system default');
    return;
  }
  // rsh [user@]host [LEVEL]
  if (second === undefined || words.length > 3) malformed('rsh [USER@]HOST [admin|backup|default|view-only|deny]');
  const level = words[2] ?? 'default';
  if (!(RSH_LEVELS as readonly string[]).includes(level)) malformed(`a level: ${RSH_LEVELS.join(', ')}`);
  const at = second.lastIndexOf('@');
  const user = at >= 0 ? second.slice(0, at) : undefined;
  const host = at >= 0 ? second.slice(at + 1) : second;
  if (host === '' || user === '' || !/^[A-Za-z0-9.:_-]+$/.test(host)) malformed('rsh [USER@]HOST [LEVEL]');
  config.rshAccess.push({ user, host, level: level as RshLevel, line });
}

function parseNetflow(
  words: string[],
  config: IpcadConfig,
  malformed: (expected: string) => never,
  notDone: (what: string) => void,
  integer: (text: string | undefined, min: number, max: number, expected: string) => number,
): void {
  const sub = words.slice(1).join(' ');
  if (words[1] === 'export' && words[2] === 'destination') {
    if (words.length !== 5) malformed('netflow export destination HOST PORT');
    const port = integer(words[4], 1, 65535, 'netflow export destination HOST PORT (port 1 to 65535)');
    config.netflowDestinations.push({ host: words[3]!, port });
  } else if (words[1] === 'export' && words[2] === 'version') {
    if (words.length !== 4) malformed('netflow export version 5');
    if (words[3] !== '5') malformed('netflow export version 5 (flowprobe exports NetFlow v5 only)');
  } else if (words[1] === 'timeout' && words[2] === 'active') {
    if (words.length !== 4) malformed('netflow timeout active MINUTES');
    config.netflowActiveTimeout = integer(words[3], 1, 10080, 'netflow timeout active MINUTES (1 to 10080)') * 60;
  } else if (words[1] === 'timeout' && words[2] === 'inactive') {
    if (words.length !== 4) malformed('netflow timeout inactive SECONDS');
    config.netflowInactiveTimeout = integer(words[3], 1, 86400, 'netflow timeout inactive SECONDS (1 to 86400)');
  } else if (words[1] === 'engine-type') {
    if (words.length !== 3) malformed('netflow engine-type N');
    config.netflowEngineType = integer(words[2], 0, 255, 'netflow engine-type N (0 to 255)');
  } else if (words[1] === 'engine-id') {
    if (words.length !== 3) malformed('netflow engine-id N');
    config.netflowEngineId = integer(words[2], 0, 255, 'netflow engine-id N (0 to 255)');
  } else if (words[1] === 'ifclass') {
    notDone('records carry the capturing interface\'s ifIndex; interface classes are not mapped');
  } else if (words[1] === 'sampling-mode' || words[1] === 'sampled') {
    notDone('every packet is counted (no sampling)');
  } else {
    malformed(`a known netflow statement (export destination, export version, timeout active|inactive, engine-type, engine-id), not "netflow ${sub}"`);
  }
}

function parseAggregate(
  words: string[],
  malformed: (expected: string) => never,
  integer: (text: string | undefined, min: number, max: number, expected: string) => number,
): AddressAggregate | PortAggregate {
  const usage = 'aggregate NET/LEN strip BITS, or aggregate FROM-TO into PORT';
  const target = words[1] ?? '';
  const range = /^(\d+)-(\d+)$/.exec(target);
  if (range !== null) {
    if (words.length !== 4 || words[2] !== 'into') malformed(usage);
    const from = integer(range[1], 0, 65535, usage);
    const to = integer(range[2], 0, 65535, usage);
    if (from > to) malformed(`${usage} (FROM not above TO)`);
    return { kind: 'port', from, to, into: integer(words[3], 0, 65535, usage) };
  }
  const net = /^([\d.]+)\/(\d+)$/.exec(target);
  if (net === null || words.length !== 4 || words[2] !== 'strip') malformed(usage);
  const address = ipv4ToNumber(net[1]!);
  if (address === undefined) malformed(usage);
  const prefixLength = integer(net[2], 0, 32, usage);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return {
    kind: 'address',
    network: (address & mask) >>> 0,
    prefixLength,
    strip: integer(words[3], 0, 32, usage),
  };
}
