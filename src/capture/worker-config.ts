import type { CaptureWorkerConfig } from './worker-protocol.js';

/**
 * The capture worker starts before the command line is parsed (its start-up
 * overlaps the main thread's); its configuration arrives later, by message,
 * and is handed to the data plane through here.
 */
let provided: CaptureWorkerConfig | undefined;

export function provideWorkerConfig(config: CaptureWorkerConfig): void {
  provided = config;
}

export function workerConfig(): CaptureWorkerConfig {
  if (provided === undefined) throw new Error('the capture worker ran before its configuration arrived');
  return provided;
}
