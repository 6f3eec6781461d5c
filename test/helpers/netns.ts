import { execFileSync } from 'node:child_process';

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
    ip('link', 'add', this.ifA, 'netns', this.nsA, 'type', 'veth', 'peer', 'name', this.ifB, 'netns', this.nsB);
    ip('-n', this.nsA, 'addr', 'add', `${this.addrA}/24`, 'dev', this.ifA);
    ip('-n', this.nsB, 'addr', 'add', `${this.addrB}/24`, 'dev', this.ifB);
    for (const [ns, dev] of [
      [this.nsA, this.ifA],
      [this.nsB, this.ifB],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
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
