/**
 * The accounting table as text: what `show ip accounting` prints, and the dump
 * file (the same table, then the data age and the time it was saved), which is
 * IPCAD's dump format. Reading takes rows of 4 columns (source, destination,
 * packets, bytes) or 8 (then source port, destination port, protocol,
 * interface); the header and the `Accounting …` lines are skipped.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SNAPSHOT_FIELDS, SnapshotField } from './table.js';

export interface AccountingRow {
  src: number;
  dst: number;
  packets: number;
  bytes: number;
  /** present when the row was counted with ports (capture-ports) */
  ports?: { srcPort: number; dstPort: number; protocol: number; interface: string };
}

const PROTOCOL_NAMES: Record<number, string> = {
  1: 'icmp',
  2: 'igmp',
  4: 'ipencap',
  6: 'tcp',
  17: 'udp',
  41: 'ipv6',
  47: 'gre',
  50: 'esp',
  51: 'ah',
  89: 'ospf',
  103: 'pim',
  112: 'vrrp',
  132: 'sctp',
  136: 'udplite',
};
const PROTOCOL_NUMBERS = new Map(Object.entries(PROTOCOL_NAMES).map(([n, name]) => [name, Number(n)]));

export function protocolName(protocol: number): string {
  return PROTOCOL_NAMES[protocol] ?? String(protocol);
}

export function protocolNumber(text: string): number | undefined {
  const named = PROTOCOL_NUMBERS.get(text.toLowerCase());
  if (named !== undefined) return named;
  return /^\d{1,3}$/.test(text) && Number(text) <= 255 ? Number(text) : undefined;
}

export function formatIpv4(address: number): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

export function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Rows of a snapshot (SnapshotField layout), interface slots named by `interfaces`. */
export function rowsFromSnapshot(buffer: ArrayBuffer, interfaces: readonly string[]): AccountingRow[] {
  const f = new Float64Array(buffer);
  const rows: AccountingRow[] = [];
  for (let o = 0; o + SNAPSHOT_FIELDS <= f.length; o += SNAPSHOT_FIELDS) {
    const row: AccountingRow = {
      src: f[o + SnapshotField.src]!,
      dst: f[o + SnapshotField.dst]!,
      packets: f[o + SnapshotField.packets]!,
      bytes: f[o + SnapshotField.bytes]!,
    };
    if (f[o + SnapshotField.withPorts] !== 0) {
      const slot = f[o + SnapshotField.ifSlot]!;
      row.ports = {
        srcPort: f[o + SnapshotField.srcPort]!,
        dstPort: f[o + SnapshotField.dstPort]!,
        protocol: f[o + SnapshotField.protocol]!,
        interface: interfaces[slot] ?? `if${slot}`,
      };
    }
    rows.push(row);
  }
  return rows;
}

/** Rows back into a snapshot buffer, naming interfaces through `slotOf` (which may add names). */
export function snapshotFromRows(rows: readonly AccountingRow[], slotOf: (name: string) => number): ArrayBuffer {
  const f = new Float64Array(rows.length * SNAPSHOT_FIELDS);
  rows.forEach((row, i) => {
    const o = i * SNAPSHOT_FIELDS;
    f[o + SnapshotField.src] = row.src;
    f[o + SnapshotField.dst] = row.dst;
    f[o + SnapshotField.packets] = row.packets;
    f[o + SnapshotField.bytes] = row.bytes;
    if (row.ports !== undefined) {
      f[o + SnapshotField.withPorts] = 1;
      f[o + SnapshotField.srcPort] = row.ports.srcPort;
      f[o + SnapshotField.dstPort] = row.ports.dstPort;
      f[o + SnapshotField.protocol] = row.ports.protocol;
      f[o + SnapshotField.ifSlot] = slotOf(row.ports.interface);
    }
  });
  return f.buffer;
}

// Column widths: the header and every row use the same ones, so columns line up.
const ADDRESS = 16;
const PACKETS = 12;
const BYTES = 16;
const PORT = 5;
const PROTO = 5;

function line(src: string, dst: string, packets: string, bytes: string, ports?: [string, string, string, string]): string {
  let text = ` ${src.padEnd(ADDRESS)} ${dst.padEnd(ADDRESS)}${packets.padStart(PACKETS)} ${bytes.padStart(BYTES)}`;
  if (ports !== undefined) text += ` ${ports[0].padStart(PORT)} ${ports[1].padStart(PORT)} ${ports[2].padEnd(PROTO)} ${ports[3]}`;
  return text;
}

/** The `Source Destination Packets Bytes [SrcPt DstPt Proto IF]` table, one line per row, newline-terminated. */
export function formatAccountingRows(rows: readonly AccountingRow[], withPortsHeader: boolean): string {
  const header = withPortsHeader || rows.some((r) => r.ports !== undefined);
  const out: string[] = [line('  Source', 'Destination', 'Packets', 'Bytes', header ? ['SrcPt', 'DstPt', 'Proto', 'IF'] : undefined)];
  for (const r of rows) {
    const p = r.ports;
    out.push(
      line(
        formatIpv4(r.src),
        formatIpv4(r.dst),
        String(r.packets),
        String(r.bytes),
        p === undefined ? undefined : [String(p.srcPort), String(p.dstPort), protocolName(p.protocol), p.interface],
      ),
    );
  }
  return out.join('\n') + '\n';
}

export interface DumpMeta {
  /** seconds the table had been counting when saved */
  ageSeconds: number;
  /** unix seconds of the save */
  savedAt: number;
}

export function formatDump(rows: readonly AccountingRow[], withPortsHeader: boolean, meta: DumpMeta): string {
  return (
    formatAccountingRows(rows, withPortsHeader) +
    `Accounting data age is ${Math.floor(meta.ageSeconds / 60)}\n` +
    `Accounting data age exact ${Math.floor(meta.ageSeconds)}\n` +
    `Accounting data saved ${Math.floor(meta.savedAt)}\n`
  );
}

/** A dump file that could not be used; `message` is the one line to show. */
export class DumpError extends Error {
  constructor(
    readonly code: 'E_DUMP_OPEN' | 'E_DUMP_EMPTY' | 'E_DUMP_CORRUPT' | 'E_DUMP_WRITE',
    message: string,
  ) {
    super(message);
    this.name = 'DumpError';
  }
}

const TRAILER = /^Accounting data (age is|age exact|saved) \d+$/;

/** Parse a dump's text. Throws DumpError (empty, corrupt) naming `path` and the line. */
export function parseDump(path: string, text: string): { rows: AccountingRow[]; ageSeconds: number | undefined } {
  const rows: AccountingRow[] = [];
  let ageSeconds: number | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed === '' || /^Source\s+Destination\s+Packets\s+Bytes(\s+SrcPt\s+DstPt\s+Proto\s+IF)?$/.test(trimmed)) continue;
    if (TRAILER.test(trimmed)) {
      const exact = /^Accounting data age exact (\d+)$/.exec(trimmed);
      if (exact !== null) ageSeconds = Number(exact[1]);
      continue;
    }
    const row = parseRow(trimmed.split(/\s+/));
    if (row === undefined) {
      const shown = trimmed.length > 60 ? trimmed.slice(0, 57) + '...' : trimmed;
      throw new DumpError('E_DUMP_CORRUPT', `${path}:${i + 1}: not an accounting entry: "${shown}"`);
    }
    rows.push(row);
  }
  if (rows.length === 0) throw new DumpError('E_DUMP_EMPTY', `No valid entries found in ${path}`);
  return { rows, ageSeconds };
}

function count(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

function parseRow(f: string[]): AccountingRow | undefined {
  if (f.length !== 4 && f.length !== 8) return undefined;
  const src = parseIpv4(f[0]!);
  const dst = parseIpv4(f[1]!);
  const packets = count(f[2]);
  const bytes = count(f[3]);
  if (src === undefined || dst === undefined || packets === undefined || bytes === undefined) return undefined;
  const row: AccountingRow = { src, dst, packets, bytes };
  if (f.length === 8) {
    const srcPort = count(f[4]);
    const dstPort = count(f[5]);
    const protocol = protocolNumber(f[6]!);
    const name = f[7]!;
    if (srcPort === undefined || srcPort > 65535 || dstPort === undefined || dstPort > 65535 || protocol === undefined) return undefined;
    row.ports = { srcPort, dstPort, protocol, interface: name };
  }
  return row;
}

/**
 * Read a dump file. A missing or unreadable file, an empty one and a corrupt
 * one are DumpErrors with IPCAD's messages; a corrupt file is renamed aside
 * (PATH.corrupt-UNIXTIME), so a later save never overwrites it.
 */
export function readDump(path: string, now = Date.now()): { rows: AccountingRow[]; ageSeconds: number | undefined } {
  let text: string;
  let fd: number | undefined;
  try {
    // never through a symbolic link; O_NONBLOCK so that a FIFO put there cannot hang the read
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'E_NOT_FILE' });
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    throw new DumpError('E_DUMP_OPEN', `Can't open dump file ${path}: ${openFailure(error)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  try {
    return parseDump(path, text);
  } catch (error) {
    if (error instanceof DumpError && error.code === 'E_DUMP_CORRUPT') {
      const aside = `${path}.corrupt-${Math.floor(now / 1000)}`;
      try {
        renameSync(path, aside);
      } catch (renameError) {
        throw new DumpError('E_DUMP_CORRUPT', `${error.message}; could not keep it aside (${(renameError as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      throw new DumpError('E_DUMP_CORRUPT', `${error.message}; kept as ${basename(aside)}, nothing restored`);
    }
    throw error;
  }
}

function openFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code ?? String(error);
  switch (code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
      return 'Permission denied';
    case 'ELOOP':
      return 'it is a symbolic link (not followed)';
    case 'E_NOT_FILE':
      return 'not a regular file';
    default:
      return code;
  }
}

/** Dump files are written readable by their owner only. */
export const DUMP_FILE_MODE = 0o600;

/**
 * Write `text` to `path` atomically: a temporary file beside it (a name nobody can
 * guess, created afresh: O_EXCL, never through a symbolic link, mode 0600), fsync,
 * rename over `path`, fsync the directory. A `path` that is a symbolic link or not a
 * regular file is refused before anything is written.
 */
export function writeFileAtomic(path: string, text: string, mode = DUMP_FILE_MODE): void {
  try {
    const existing = lstatSync(path);
    if (existing.isSymbolicLink()) throw new DumpError('E_DUMP_WRITE', `Can't write dump file ${path}: it is a symbolic link (not replaced)`);
    if (!existing.isFile()) throw new DumpError('E_DUMP_WRITE', `Can't write dump file ${path}: not a regular file`);
  } catch (error) {
    if (error instanceof DumpError) throw error;
    // missing: written afresh; anything else shows when the temporary file is made
  }
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    created = true;
    writeSync(fd, text);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    if (created) rmSync(temporary, { force: true });
    throw new DumpError('E_DUMP_WRITE', `Can't write dump file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
