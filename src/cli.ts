#!/usr/bin/env node
/**
 * The entry point. The capture thread starts first, so that its start-up (a V8
 * isolate, the data plane's modules) overlaps the main thread's loading of
 * everything else; main.ts then parses the command line and hands the thread
 * its configuration.
 */
import module from 'node:module';
import { startCaptureThread } from './capture/capture-worker.js';

// Node ≥ 22 (the image runs 26) keeps compiled code between runs; a no-op where missing.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const captureThread = startCaptureThread();
const { main } = await import('./main.js');
process.exitCode = await main(captureThread);
// Unused (help, a usage error) or already finished: either way it must not hold the process.
await captureThread.terminate();
