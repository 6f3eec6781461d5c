/**
 * The files flowprobe ipcad writes and reads besides its configuration: the dump file
 * (never through a symbolic link, never a FIFO, 0600, temporary names nobody can
 * guess) and the pid file (never through a symbolic link).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DumpError, readDump, writeFileAtomic } from '../src/accounting/dump.js';
import { PidFileError, removePidFile, writePidFile } from '../src/control/pid-file.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-files-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ROW = ' 10.0.0.1         10.0.0.2                    5              500\n';

function dumpError(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof DumpError && e.message === message, message);
}

describe('dump file writes', () => {
  it('mode 0600, through a temporary file of an unguessable name that does not stay', () => {
    const path = join(work, 'mode.dump');
    writeFileAtomic(path, ROW);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    writeFileAtomic(path, ROW + ROW);
    assert.equal(readFileSync(path, 'utf8'), ROW + ROW);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(work).filter((f) => f.includes('mode.dump')), ['mode.dump']);
  });

  it('a link planted under a predictable temporary name is not written through (the name holds 64 random bits)', () => {
    const path = join(work, 'names.dump');
    const victim = join(work, 'victim');
    writeFileSync(victim, 'victim\n');
    symlinkSync(victim, join(work, `names.dump.tmp-${process.pid}`));
    writeFileAtomic(path, ROW);
    assert.equal(readFileSync(victim, 'utf8'), 'victim\n');
    assert.equal(readFileSync(path, 'utf8'), ROW);
  });

  it('a symbolic link or a directory at the dump path is refused, and nothing is touched', () => {
    const victim = join(work, 'victim.conf');
    writeFileSync(victim, 'interface eth0;\n');
    const link = join(work, 'link.dump');
    symlinkSync(victim, link);
    dumpError(() => writeFileAtomic(link, ROW), `Can't write dump file ${link}: it is a symbolic link (not replaced)`);
    assert.equal(readFileSync(victim, 'utf8'), 'interface eth0;\n');
    assert.ok(lstatSync(link).isSymbolicLink());
    const dir = join(work, 'dir.dump');
    execFileSync('mkdir', [dir]);
    dumpError(() => writeFileAtomic(dir, ROW), `Can't write dump file ${dir}: not a regular file`);
    assert.deepEqual(readdirSync(work).filter((f) => f.endsWith('.tmp')), []);
  });
});

describe('dump file reads', () => {
  it('a symbolic link is not followed: no read, and no rename even when its target is no dump', () => {
    const victim = join(work, 'ipcad.conf');
    writeFileSync(victim, 'interface eth0;\nrsh enable;\n');
    const link = join(work, 'read-link.dump');
    symlinkSync(victim, link);
    dumpError(() => readDump(link), `Can't open dump file ${link}: it is a symbolic link (not followed)`);
    assert.equal(readFileSync(victim, 'utf8'), 'interface eth0;\nrsh enable;\n');
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.deepEqual(readdirSync(work).filter((f) => f.includes('corrupt')), []);
  });

  it('a FIFO is refused at once (a read would wait for a writer forever)', () => {
    const fifo = join(work, 'fifo.dump');
    execFileSync('mkfifo', [fifo]);
    // in a child process with a generous bound: a read that blocks must fail the test, not hang it
    const script = `import { readDump } from ${JSON.stringify(new URL('../src/accounting/dump.ts', import.meta.url).href)};
      try { readDump(${JSON.stringify(fifo)}); } catch (e) { process.stdout.write(e.message); }`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.signal, null, 'the read did not return');
    assert.equal(child.stdout, `Can't open dump file ${fifo}: not a regular file`, child.stderr);
    assert.ok(existsSync(fifo));
  });
});

describe('pid file', () => {
  it('written and removed; removed only while it names this process', () => {
    const path = join(work, 'ipcad.pid');
    writePidFile(path, 4242);
    assert.equal(readFileSync(path, 'utf8'), '4242\n');
    writePidFile(path, 42); // a shorter number replaces all of the longer one
    assert.equal(readFileSync(path, 'utf8'), '42\n');
    removePidFile(path, 43);
    assert.ok(existsSync(path), 'another process\'s pid file stays');
    removePidFile(path, 42);
    assert.equal(existsSync(path), false);
  });

  it('never written through a symbolic link: refused, the target untouched', () => {
    const victim = join(work, 'passwd');
    writeFileSync(victim, 'root:x:0:0::/root:/bin/bash\n');
    const link = join(work, 'link.pid');
    symlinkSync(victim, link);
    assert.throws(
      () => writePidFile(link, 4242),
      (e: unknown) => e instanceof PidFileError && e.message === `pidfile ${link}: cannot write it (it is a symbolic link, not followed)`,
    );
    assert.equal(readFileSync(victim, 'utf8'), 'root:x:0:0::/root:/bin/bash\n');
    removePidFile(link, 4242);
    assert.ok(lstatSync(link).isSymbolicLink(), 'nor removed');
  });
});
