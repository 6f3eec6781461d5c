import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/**
 * Two network namespaces joined by a veth pair, made and removed by the test:
 *   ns `a` (veth `a`, 10.99.<n>.1/24)  <->  ns `b` (veth `b`, 10.99.<n>.2/24)
 * Traffic stays inside them.
 */
export class VethPair {
  readonly nsA: string;
  readonly nsB: string;
  readonly ifA: string;
  readonly ifB: string;
  readonly addrA: string;
  readonly addrB: string;

  constructor(tag: string) {
    const id = `${process.pid % 100000}${tag}`;
    this.nsA = `fp-${id}-a`;
    this.nsB = `fp-${id}-b`;
    this.ifA = `fpa${id}`.slice(0, 15);
    this.ifB = `fpb${id}`.slice(0, 15);
    const subnet = 1 + (process.pid % 200);
    this.addrA = `10.99.${subnet}.1`;
    this.addrB = `10.99.${subnet}.2`;
  }

  create(): void {
    this.remove();
    ip('netns', 'add', this.nsA);
    ip('netns', 'add', this.nsB);
    this.link();
    for (const ns of [this.nsA, this.nsB]) ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** (Re)create the veth pair between the existing namespaces, addressed and up. */
  link(): void {
    ip('link', 'add', this.ifA, 'netns', this.nsA, 'type', 'veth', 'peer', 'name', this.ifB, 'netns', this.nsB);
    ip('-n', this.nsA, 'addr', 'add', `${this.addrA}/24`, 'dev', this.ifA);
    ip('-n', this.nsB, 'addr', 'add', `${this.addrB}/24`, 'dev', this.ifB);
    for (const [ns, dev] of [
      [this.nsA, this.ifA],
      [this.nsB, this.ifB],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
  }

  /** argv prefix that runs a command inside a namespace */
  exec(ns: string): string[] {
    return ['ip', 'netns', 'exec', ns];
  }

  remove(): void {
    for (const ns of [this.nsA, this.nsB]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // not there
      }
    }
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * One network namespace with only its loopback up, and its own /etc/hosts and
 * /etc/resolv.conf: `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc, so a
 * name resolves exactly when the test writes it into `hosts`, and the resolver asks
 * 127.0.0.1 (nothing listens) — no lookup ever leaves the namespace.
 */
export class IsolatedNamespace {
  readonly name: string;
  private readonly etc: string;

  constructor(tag: string) {
    this.name = `fp-${process.pid % 100000}${tag}`;
    this.etc = `/etc/netns/${this.name}`;
  }

  create(): void {
    this.remove();
    mkdirSync(this.etc, { recursive: true });
    writeFileSync(join(this.etc, 'hosts'), '127.0.0.1\tlocalhost\n');
    writeFileSync(join(this.etc, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    ip('netns', 'add', this.name);
    ip('-n', this.name, 'link', 'set', 'lo', 'up');
  }

  /** Rewrite the namespace's /etc/hosts in place (a new file would not be seen through the bind mount). */
  setHosts(lines: string[]): void {
    writeFileSync(join(this.etc, 'hosts'), ['127.0.0.1\tlocalhost', ...lines, ''].join('\n'));
  }

  /** argv prefix that runs a command inside the namespace */
  exec(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  remove(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // not there
    }
    rmSync(this.etc, { recursive: true, force: true });
  }
}

/**
 * For a describe block: `space` is created before its tests and removed after
 * them, with a scratch directory (returned) removed alongside.
 */
export function namespaceForSuite(space: VethPair | IsolatedNamespace, name: string): string {
  const work = mkdtempSync(join(tmpdir(), `flowprobe-${name}-`));
  before(() => space.create());
  after(() => {
    space.remove();
    rmSync(work, { recursive: true, force: true });
  });
  return work;
}
