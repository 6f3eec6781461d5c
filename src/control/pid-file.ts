/**
 * The pid file (`pidfile = PATH`, `-d`): written once the probe is up, removed at exit
 * when it still names this process. It is never written through a symbolic link, nor
 * into anything but a regular file: a link planted at that path is refused, and what
 * it points to stays untouched.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

export class PidFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PidFileError';
  }
}

export function writePidFile(path: string, pid = process.pid): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
    if (!fstatSync(fd).isFile()) throw new PidFileError(`pidfile ${path}: not a regular file; not written`);
    ftruncateSync(fd, 0);
    writeSync(fd, `${pid}\n`);
  } catch (error) {
    if (error instanceof PidFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new PidFileError(`pidfile ${path}: cannot write it (${code === 'ELOOP' ? 'it is a symbolic link, not followed' : code})`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Remove the pid file if it names `pid`; a file that is gone or names another process is left. Throws if it cannot go. */
export function removePidFile(path: string, pid = process.pid): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFile() || readFileSync(fd, 'utf8').trim() !== String(pid)) return;
  } catch {
    return; // gone already, or not ours to remove
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  rmSync(path, { force: true });
}
