/**
 * The capture worker's entry point. It is started first thing by the CLI, so
 * that loading the data plane's modules overlaps the main thread's own start-up;
 * it then waits for its configuration. The pcap addon (and libpcap with the
 * libraries it links) loads only when libpcap opens a source: a classic pcap
 * file is read without it.
 */
import { parentPort } from 'node:worker_threads';
// Loaded now, while the main thread parses options: worker.js finds them cached.
import '../cache/flow-cache.js';
import '../decode/decode.js';
import '../export/record-batch.js';
import '../accounting/table.js';
import './interfaces.js';
import './link-type.js';
import './pcap-file.js';
import './worker-protocol.js';
import { provideWorkerConfig } from './worker-config.js';
import type { CaptureWorkerConfig } from './worker-protocol.js';

parentPort!.once('message', (config: CaptureWorkerConfig) => {
  provideWorkerConfig(config);
  void import('./worker.js');
});
