/**
 * Least privilege: the probe opens its captures and sockets as root (or with
 * CAP_NET_RAW), then gives up its user, group and with them every capability.
 *
 * setgroups/setgid/setuid go through glibc, which applies them to every thread of
 * the process (the capture worker included); open packet sockets stay usable, but
 * nothing that needs a privilege can be opened again.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../config/options.js';
import type { Identity } from './identity.js';

/** Linux capability numbers (linux/capability.h), lower-case without CAP_. */
export const CAPABILITY_NAMES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid',
  'setpcap', 'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw',
  'ipc_lock', 'ipc_owner', 'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct',
  'sys_admin', 'sys_boot', 'sys_nice', 'sys_resource', 'sys_time', 'sys_tty_config', 'mknod',
  'lease', 'audit_write', 'audit_control', 'setfcap', 'mac_override', 'mac_admin', 'syslog',
  'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf', 'checkpoint_restore',
] as const;
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

const CAP_SETGID = 6;
const CAP_SETUID = 7;

export function capabilityNames(mask: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; mask >> BigInt(bit) !== 0n; bit++) {
    if (((mask >> BigInt(bit)) & 1n) === 1n) names.push(CAPABILITY_NAMES[bit] ?? `cap_${bit}`);
  }
  return names;
}

/** The effective capability set (CapEff in /proc/self/status); undefined where there is none. */
export function readEffectiveCapabilities(statusText?: string): bigint | undefined {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(text);
  return match === null ? undefined : BigInt(`0x${match[1]}`);
}

export interface ProcessIds {
  uid: number;
  euid: number;
  gid: number;
  egid: number;
  /** supplementary groups (node adds the effective gid) */
  groups: number[];
}

interface Posix {
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  getegid(): number;
  getgroups(): number[];
  setgroups(groups: readonly number[]): void;
  setgid(id: number): void;
  setuid(id: number): void;
}

function posix(): Posix {
  const p = process;
  if (!p.getuid || !p.geteuid || !p.getgid || !p.getegid || !p.getgroups || !p.setgroups || !p.setgid || !p.setuid) {
    throw new Error('changing user is not supported on this platform');
  }
  return p as Posix;
}

export function currentIds(): ProcessIds {
  const p = posix();
  return { uid: p.getuid(), euid: p.geteuid(), gid: p.getgid(), egid: p.getegid(), groups: p.getgroups() };
}

function isAlready(target: Identity, ids: ProcessIds): boolean {
  return (
    ids.uid === target.uid &&
    ids.euid === target.uid &&
    ids.gid === target.gid &&
    ids.egid === target.gid &&
    ids.groups.every((g) => g === target.gid)
  );
}

/**
 * Before anything is opened: is there anything to drop, and may we? Throws
 * UsageError when switching is impossible (not root, no CAP_SETUID/CAP_SETGID).
 */
export function planDrop(target: Identity, ids: ProcessIds, capabilities: bigint | undefined): 'drop' | 'already' {
  if (isAlready(target, ids)) return 'already';
  const mayChange =
    capabilities === undefined
      ? ids.euid === 0
      : ((capabilities >> BigInt(CAP_SETUID)) & 1n) === 1n && ((capabilities >> BigInt(CAP_SETGID)) & 1n) === 1n;
  if (!mayChange) {
    throw new UsageError(
      `--user: switching to ${target.user} needs root (or CAP_SETUID and CAP_SETGID), and flowprobe runs as uid ${ids.euid} without them: start it as root or leave --user out`,
    );
  }
  return 'drop';
}

export interface DropReport {
  target: Identity;
  /** effective capabilities before and after (undefined where /proc has none) */
  before: bigint | undefined;
  after: bigint | undefined;
}

/**
 * Supplementary groups, then the group, then the user (after setuid nothing else
 * could be changed). Checks that it took, and that root cannot be had back.
 */
export function dropPrivileges(target: Identity): DropReport {
  const p = posix();
  const before = readEffectiveCapabilities();
  p.setgroups([]);
  p.setgid(target.gid);
  p.setuid(target.uid);
  const ids = currentIds();
  if (!isAlready(target, ids)) {
    throw new Error(`the switch to ${target.user}:${target.group} did not take (uid ${ids.euid}, gid ${ids.egid}, groups ${ids.groups.join(',')})`);
  }
  if (target.uid !== 0) {
    let regained = true;
    try {
      p.setuid(0);
    } catch {
      regained = false;
    }
    if (regained) throw new Error(`after switching to ${target.user}, setuid(0) still succeeded`);
  }
  return { target, before, after: readEffectiveCapabilities() };
}

/** 'capabilities net_raw, net_admin', or 'all 40 of root's capabilities' when there are many. */
export function listCapabilities(mask: bigint, uid: number): string {
  const names = capabilityNames(mask);
  if (names.length > 8) return `all ${names.length} of ${uid === 0 ? "root's" : 'its'} capabilities`;
  return names.length === 0 ? 'no capabilities' : `capabilities ${names.join(', ')}`;
}

/** What the probe says at start: what it dropped, and what no longer works. */
export function describeDrop(report: DropReport, previousUid: number): string[] {
  const { target } = report;
  const lost = report.before !== undefined && report.after !== undefined ? report.before & ~report.after : undefined;
  const had = (name: CapabilityName): boolean =>
    lost === undefined ? previousUid === 0 : ((lost >> BigInt(CAPABILITY_NAMES.indexOf(name))) & 1n) === 1n;
  const first =
    `dropped privileges: now user ${target.user} (uid ${target.uid}), group ${target.group} (gid ${target.gid}), no supplementary groups` +
    (lost === undefined ? '' : `; gave up ${listCapabilities(lost, previousUid)}`) +
    (report.after !== undefined && report.after !== 0n ? `; kept ${listCapabilities(report.after, target.uid)}` : '');
  const gone: string[] = [];
  if (had('net_raw')) {
    gone.push('opening a capture (if an interface goes away, flowprobe exports its flows and exits non-zero for systemd or Docker to restart it)');
  }
  if (had('net_admin')) gone.push('changing promiscuous mode');
  if (had('net_bind_service')) gone.push('listening on a port below 1024 (such as an rsh server on 514)');
  if (had('setuid') || had('setgid')) gone.push('switching user again');
  return gone.length === 0 ? [first] : [first, `no longer possible: ${gone.join('; ')}`];
}
