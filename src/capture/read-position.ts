import { fstatSync, readFileSync, readdirSync, readlinkSync, realpathSync, statSync } from 'node:fs';

/**
 * How far libpcap has read a capture file, from outside the worker: the worker's
 * descriptor is the process's too, and Linux shows its offset in
 * /proc/self/fdinfo. Nothing is added to the packet path. The offset runs ahead
 * of the packets by at most one stdio buffer.
 */
export interface ReadPosition {
  /** the file's size; undefined for a pipe */
  size: number | undefined;
  /** bytes read so far; undefined once the file is closed, or without /proc */
  offset(): number | undefined;
}

export function watchReadPosition(path: string): ReadPosition {
  if (path === '-') {
    let size: number | undefined;
    try {
      const stat = fstatSync(0);
      size = stat.isFile() ? stat.size : undefined;
    } catch {
      size = undefined;
    }
    return { size, offset: () => (size === undefined ? undefined : fdOffset(0)) };
  }
  let target: string;
  let size: number | undefined;
  try {
    target = realpathSync(path);
    size = statSync(target).size;
  } catch {
    return { size: undefined, offset: () => undefined };
  }
  let fd: number | undefined;
  return {
    size,
    offset: () => {
      if (fd === undefined || linkOf(fd) !== target) fd = findDescriptor(target);
      return fd === undefined ? undefined : fdOffset(fd);
    },
  };
}

function linkOf(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function findDescriptor(target: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    const fd = Number(entry);
    if (linkOf(fd) === target) return fd;
  }
  return undefined;
}

function fdOffset(fd: number): number | undefined {
  try {
    const match = /^pos:\s+(\d+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}
