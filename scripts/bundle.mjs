/**
 * `npm run build`: type checking is tsc's job (run before this); the output is
 * made by esbuild, one bundle per entry point, all in dist/ itself:
 *
 *   dist/cli.js           the command: starts the capture thread, then imports the rest
 *   dist/worker-entry.js  the capture thread (started from a chunk beside it)
 *   dist/healthcheck.js   the image's HEALTHCHECK
 *   dist/*-HASH.js        chunks: what cli.js imports later (main, metrics, IPCAD control)
 *                         and code the bundles share
 *
 * Why bundle: Node 20 spends ~170 ms of a run's start-up resolving and loading
 * some two hundred ES modules (yargs alone ~120 ms); a few files load in about
 * half that (BENCHMARKS.md). Splitting keeps cli.js tiny, so the capture thread
 * starts before the main thread compiles the rest. Left outside: the pcap addon
 * (native), and prom-client and pino-pretty, which load only when used.
 */
import { rmSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}/dist`, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: {
    cli: 'src/cli.ts',
    'worker-entry': 'src/capture/worker-entry.ts',
    healthcheck: 'src/healthcheck.ts',
  },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  external: ['pcap', 'prom-client', 'pino-pretty'],
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
});
