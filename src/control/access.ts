/**
 * Who may run what over rsh: the `rsh [user@]host LEVEL` lines, in file order;
 * the first line matching the client's address (and user, when it names one)
 * gives the level. Anything not listed is denied.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RshAccessRule, RshLevel } from '../config/ipcad-conf.js';

interface ResolvedRule {
  user: string | undefined;
  addresses: Set<string>;
  level: RshLevel;
}

export class RshAccess {
  private constructor(private readonly rules: ResolvedRule[]) {}

  /** Resolve host names once, at start. A name that does not resolve matches nothing (and is reported). */
  static async resolve(rules: readonly RshAccessRule[], warn: (message: string) => void): Promise<RshAccess> {
    const resolved: ResolvedRule[] = [];
    for (const rule of rules) {
      let addresses: string[];
      if (isIP(rule.host) !== 0) addresses = [rule.host];
      else {
        try {
          addresses = (await lookup(rule.host, { all: true })).map((a) => a.address);
        } catch (error) {
          warn(`rsh ${rule.user === undefined ? '' : rule.user + '@'}${rule.host}: cannot resolve ${rule.host} (${(error as NodeJS.ErrnoException).code ?? 'error'}); the line matches nobody`);
          addresses = [];
        }
      }
      resolved.push({ user: rule.user, addresses: new Set(addresses.map(normalizeAddress)), level: rule.level });
    }
    return new RshAccess(resolved);
  }

  /** The level of `user` connecting from `address`; 'deny' when no line matches. */
  levelOf(address: string, user: string): RshLevel {
    const from = normalizeAddress(address);
    for (const rule of this.rules) {
      if (!rule.addresses.has(from)) continue;
      if (rule.user !== undefined && rule.user !== user) continue;
      return rule.level;
    }
    return 'deny';
  }

  /**
   * Could any user from `address` be let in? Asked before the rsh server connects back
   * to the client, which it does only for a host some line may admit: lines are read in
   * order as levelOf reads them, and a line for any user ends the search.
   */
  admitsHost(address: string): boolean {
    const from = normalizeAddress(address);
    for (const rule of this.rules) {
      if (!rule.addresses.has(from)) continue;
      if (rule.level !== 'deny') return true;
      if (rule.user === undefined) return false;
    }
    return false;
  }
}

/** ::ffff:127.0.0.1 → 127.0.0.1 */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address.toLowerCase();
}
