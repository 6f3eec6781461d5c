import { createRequire } from 'node:module';

/**
 * The `pcap` package's native session, used directly: its JS wrapper allocates an
 * object and emits an event per packet, and hides read errors.
 */
export interface PcapNativeSession {
  open_live(
    device: string,
    filter: string,
    bufferSize: number,
    snapLength: number,
    outFile: string,
    packetReady: () => void,
    monitor: boolean,
    bufferTimeoutMs: number,
    warning: (message: string) => void,
    promiscuous: boolean,
  ): string;
  open_offline(
    path: string,
    filter: string,
    bufferSize: number,
    snapLength: number,
    outFile: string,
    packetReady: () => void,
    monitor: boolean,
    bufferTimeoutMs: number,
    warning: (message: string) => void,
    promiscuous: boolean,
  ): string;
  /**
   * Copies each packet into `buffer` and its header into `header`, calling
   * packetReady once per packet, until a file ends or the live buffer is empty.
   * Returns 0 at end of file / nothing more to read, -1 on a read error, -2 after close().
   */
  dispatch(buffer: Buffer, header: Buffer): number;
  close(): void;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
}

interface PcapBinding {
  PcapSession: new () => PcapNativeSession;
  /** undefined when libpcap finds no device */
  default_device(): string | undefined;
  lib_version(): string;
}

const require = createRequire(import.meta.url);
let binding: PcapBinding | undefined;

export function pcapBinding(): PcapBinding {
  binding ??= require('pcap/build/Release/pcap_binding.node') as PcapBinding;
  return binding;
}
