import { existsSync, readFileSync } from 'node:fs';
import { pcapBinding } from './pcap-binding.js';
import type { CaptureDeviceKind } from './pcap-stats.js';

/** The system's ifIndex for an interface (0 for "any" or when unknown). */
export function systemIfIndex(name: string): number {
  if (name === 'any') return 0;
  try {
    const index = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
    return Number.isInteger(index) && index > 0 ? index : 0;
  } catch {
    return 0;
  }
}

/** libpcap's default capture device, or '' when it finds none (loads the addon: call it in the capture worker only). */
export function defaultDevice(): string {
  return pcapBinding().default_device() ?? '';
}

/** Whether the system still has this interface ("any" always exists). */
export function interfaceExists(name: string): boolean {
  return name === 'any' || existsSync(`/sys/class/net/${name}`);
}

/** How libpcap's received count relates to the packets it hands over, for this device (see PcapHandleFigures). */
export function captureDeviceKind(name: string): CaptureDeviceKind {
  if (name === 'any') return 'any';
  try {
    // IFF_LOOPBACK
    return (Number(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim()) & 0x8) !== 0 ? 'loopback' : 'interface';
  } catch {
    return 'interface';
  }
}
