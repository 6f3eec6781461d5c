/**
 * The capture worker's entry point. It is started first thing by the CLI, so
 * that loading the data plane's modules and the pcap addon overlaps the main
 * thread's own start-up; it then waits for its configuration.
 */
import { parentPort } from 'node:worker_threads';
// Loaded now, while the main thread parses options: worker.js finds them cached.
import '../cache/flow-cache.js';
import '../decode/decode.js';
import '../export/record-batch.js';
import '../accounting/table.js';
import { pcapBinding } from './pcap-binding.js';
import { provideWorkerConfig } from './worker-config.js';
import type { CaptureWorkerConfig } from './worker-protocol.js';

pcapBinding();
parentPort!.once('message', (config: CaptureWorkerConfig) => {
  provideWorkerConfig(config);
  void import('./worker.js');
});
