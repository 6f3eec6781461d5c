/**
 * What the system says about a network interface (Linux: /sys/class/net and
 * the kernel's address list), for `show interface`, and Cisco's 5-minute
 * averages of counters sampled every few seconds.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

export interface SystemInterface {
  name: string;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** the link has a carrier (line protocol) */
  running: boolean;
  hardware: string;
  /** aa:bb:cc:dd:ee:ff, or undefined when the interface has none */
  address: string | undefined;
  mtu: number;
  ipv4: { address: string; prefixLength: number; netmask: string }[];
  ifIndex: number;
  rx: { packets: number; bytes: number; errors: number; dropped: number; multicast: number };
  tx: { packets: number; bytes: number; errors: number; dropped: number; collisions: number };
}

const HARDWARE: Record<number, string> = {
  1: 'Ethernet',
  24: 'IEEE 1394',
  32: 'InfiniBand',
  512: 'PPP',
  768: 'IPIP tunnel',
  772: 'Loopback',
  776: 'IPv6-in-IPv4 tunnel',
  778: 'GRE tunnel',
  65534: 'none (tun)',
};

/** The interface as /sys/class/net shows it; undefined when there is no such interface. */
export function readSystemInterface(name: string, sysfs = '/sys/class/net'): SystemInterface | undefined {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(name) || name === '.' || name === '..') return undefined;
  const dir = `${sysfs}/${name}`;
  const text = (file: string): string | undefined => {
    try {
      return readFileSync(`${dir}/${file}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const number = (file: string): number => {
    const value = Number(text(file));
    return Number.isFinite(value) ? value : 0;
  };
  const flags = text('flags');
  if (flags === undefined) return undefined;
  const type = number('type');
  const address = text('address');
  const ipv4 = (networkInterfaces()[name] ?? [])
    .filter((a) => a.family === 'IPv4')
    .map((a) => ({ address: a.address, prefixLength: Number(a.cidr?.split('/')[1] ?? 32), netmask: a.netmask }));
  return {
    name,
    up: (Number(flags) & 0x1) !== 0,
    running: text('carrier') === '1',
    hardware: HARDWARE[type] ?? `type ${type}`,
    address: address === undefined || address === '' || /^(00:)*00$/.test(address) ? undefined : address,
    mtu: number('mtu'),
    ipv4,
    ifIndex: number('ifindex'),
    rx: {
      packets: number('statistics/rx_packets'),
      bytes: number('statistics/rx_bytes'),
      errors: number('statistics/rx_errors'),
      dropped: number('statistics/rx_dropped'),
      multicast: number('statistics/multicast'),
    },
    tx: {
      packets: number('statistics/tx_packets'),
      bytes: number('statistics/tx_bytes'),
      errors: number('statistics/tx_errors'),
      dropped: number('statistics/tx_dropped'),
      collisions: number('statistics/collisions'),
    },
  };
}

/**
 * Cisco's 5-minute rate: an exponentially weighted average of the rate between
 * samples, with a 5-minute time constant. Fed with a counter's readings.
 */
export class FiveMinuteRate {
  private last: { at: number; value: number } | undefined;
  private average = 0;

  constructor(private readonly windowMs = 300_000) {}

  sample(atMs: number, value: number): void {
    if (this.last !== undefined && atMs > this.last.at) {
      const seconds = (atMs - this.last.at) / 1000;
      const rate = Math.max(0, value - this.last.value) / seconds;
      const keep = Math.exp(-(atMs - this.last.at) / this.windowMs);
      this.average = this.average * keep + rate * (1 - keep);
    }
    this.last = { at: atMs, value };
  }

  /** per second */
  get value(): number {
    return this.average;
  }
}

/** Several FiveMinuteRates by name (interface, counter). */
export class RateSet {
  private readonly rates = new Map<string, FiveMinuteRate>();

  sample(key: string, atMs: number, value: number): void {
    let rate = this.rates.get(key);
    if (rate === undefined) {
      rate = new FiveMinuteRate();
      this.rates.set(key, rate);
    }
    rate.sample(atMs, value);
  }

  get(key: string): number {
    return this.rates.get(key)?.value ?? 0;
  }

  has(key: string): boolean {
    return this.rates.has(key);
  }
}

/** 0a:1b:2c:3d:4e:5f → 0a1b.2c3d.4e5f (Cisco's way) */
export function ciscoMac(address: string): string {
  const hex = address.replace(/:/g, '');
  return hex.length === 12 ? `${hex.slice(0, 4)}.${hex.slice(4, 8)}.${hex.slice(8)}` : address;
}
