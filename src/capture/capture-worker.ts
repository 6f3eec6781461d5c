import { Worker } from 'node:worker_threads';
import type { RecordBatch } from '../export/record-batch.js';
import { ControlWord } from '../counters/data-plane.js';
import type { CaptureWorkerConfig, CaptureWorkerMessage, DataPlaneReply, DataPlaneRequest } from './worker-protocol.js';

/** How long the control plane waits for the data plane's answer (it answers between two 2 ms polls). */
const REQUEST_TIMEOUT_MS = 10_000;

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
  onNotice(message: string): void;
  /** the active accounting table as the data plane ended */
  onFinalAccounting?(rows: ArrayBuffer): void;
}

/** The data plane could not answer (it has finished, or is busy reading a file). */
export class DataPlaneUnavailable extends Error {
  readonly code = 'E_DATA_PLANE_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'DataPlaneUnavailable';
  }
}

export type CaptureOutcome = Extract<CaptureWorkerMessage, { type: 'finished' }>;
export type OpenedSource = Extract<CaptureWorkerMessage, { type: 'opened' }>['sources'][number];

/** The main thread's handle on the capture worker (the data plane of every source). */
/** Start the capture thread early; it waits for its configuration (see worker-entry.ts). */
export function startCaptureThread(): Worker {
  return new Worker(new URL('./worker-entry.js', import.meta.url));
}

export class CaptureWorker {
  private readonly worker: Worker;
  readonly opened: Promise<OpenedSource[]>;
  readonly finished: Promise<CaptureOutcome>;
  private nextRequest = 1;
  private readonly pending = new Map<number, { resolve(reply: DataPlaneReply): void; reject(error: Error): void; timer: NodeJS.Timeout }>();
  private exited = false;

  constructor(
    readonly config: CaptureWorkerConfig,
    events: CaptureWorkerEvents,
    /** a thread started early by startCaptureThread(), or undefined to start one now */
    prestarted?: Worker,
  ) {
    this.worker = prestarted ?? startCaptureThread();
    this.worker.postMessage(config);
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
        case 'notice':
          events.onNotice(message.message);
          break;
        case 'records':
          events.onRecords(message.batch);
          break;
        case 'reply': {
          const waiting = this.pending.get(message.id);
          if (waiting === undefined) break; // timed out already
          this.pending.delete(message.id);
          clearTimeout(waiting.timer);
          waiting.resolve(message.reply);
          break;
        }
        case 'accounting-final':
          events.onFinalAccounting?.(message.rows);
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
      this.exited = true;
      for (const [id, waiting] of this.pending) {
        clearTimeout(waiting.timer);
        waiting.reject(new DataPlaneUnavailable('the capture has ended'));
        this.pending.delete(id);
      }
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

  /** Ask the data plane a question (an accounting snapshot, a clear, the flow cache). */
  request(request: DataPlaneRequest, transfer: ArrayBuffer[] = []): Promise<DataPlaneReply> {
    if (this.exited) return Promise.reject(new DataPlaneUnavailable('the capture has ended'));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DataPlaneUnavailable(`the data plane did not answer in ${REQUEST_TIMEOUT_MS / 1000} s`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ type: 'request', id, request }, transfer);
    });
  }

  /** The exporter sent (or dropped) `count` records of this worker's. */
  acknowledge(count: number): void {
    Atomics.sub(this.config.control, ControlWord.pendingRecords, count);
    Atomics.notify(this.config.control, ControlWord.pendingRecords);
  }
}
