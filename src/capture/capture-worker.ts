import { Worker } from 'node:worker_threads';
import type { RecordBatch } from '../export/record-batch.js';
import { ControlWord } from '../counters/data-plane.js';
import type { CaptureWorkerConfig, CaptureWorkerMessage } from './worker-protocol.js';

export class CaptureOpenError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CaptureOpenError';
  }
}

export interface CaptureWorkerEvents {
  onRecords(batch: RecordBatch): void;
  onWarning(message: string): void;
}

export type CaptureOutcome = Extract<CaptureWorkerMessage, { type: 'finished' }>;
export type OpenedSource = Extract<CaptureWorkerMessage, { type: 'opened' }>['sources'][number];

/** The main thread's handle on the capture worker (the data plane of every source). */
export class CaptureWorker {
  private readonly worker: Worker;
  readonly opened: Promise<OpenedSource[]>;
  readonly finished: Promise<CaptureOutcome>;

  constructor(
    readonly config: CaptureWorkerConfig,
    events: CaptureWorkerEvents,
  ) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: config });
    let resolveOpened!: (v: OpenedSource[]) => void;
    let rejectOpened!: (e: Error) => void;
    this.opened = new Promise((resolve, reject) => {
      resolveOpened = resolve;
      rejectOpened = reject;
    });
    let resolveFinished!: (v: CaptureOutcome) => void;
    let rejectFinished!: (e: Error) => void;
    this.finished = new Promise((resolve, reject) => {
      resolveFinished = resolve;
      rejectFinished = reject;
    });
    // Whoever awaits `opened` sees a failure; `finished` must not also reject unobserved.
    this.finished.catch(() => undefined);
    let outcome: CaptureOutcome | undefined;
    this.worker.on('message', (message: CaptureWorkerMessage) => {
      switch (message.type) {
        case 'opened':
          resolveOpened(message.sources);
          break;
        case 'failed':
          rejectOpened(new CaptureOpenError(message.code, message.message));
          break;
        case 'warning':
          events.onWarning(message.message);
          break;
        case 'records':
          events.onRecords(message.batch);
          break;
        case 'finished':
          outcome = message;
          break;
      }
    });
    this.worker.on('error', (error) => {
      rejectOpened(error);
      rejectFinished(error);
    });
    this.worker.on('exit', (code) => {
      rejectOpened(new CaptureOpenError('E_CAPTURE_OPEN', 'capture worker exited before opening'));
      if (outcome !== undefined) resolveFinished(outcome);
      else rejectFinished(new Error(`capture worker exited (code ${code}) without finishing`));
    });
  }

  /** Ask the worker to stop capturing, flush its cache and finish. */
  stop(): void {
    Atomics.store(this.config.control, ControlWord.stop, 1);
    Atomics.notify(this.config.control, ControlWord.pendingRecords);
    this.worker.postMessage({ type: 'stop' });
  }

  /** The exporter sent (or dropped) `count` records of this worker's. */
  acknowledge(count: number): void {
    Atomics.sub(this.config.control, ControlWord.pendingRecords, count);
    Atomics.notify(this.config.control, ControlWord.pendingRecords);
  }
}
