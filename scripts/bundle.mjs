/**
 * `npm run build`: type checking is tsc's job (run before this); the output is
 * made by esbuild, one bundle per entry point, all in dist/ itself:
 *
 *   dist/cli.js           the command: starts the capture thread, then imports the rest
 *   dist/healthcheck.js   the image's HEALTHCHECK
 *   dist/connect-back-helper.js   flowprobe ipcad's rsh connect-back helper (uid = in ipcad.conf)
 *   dist/*-HASH.js        chunks: what cli.js imports later (main, metrics, IPCAD control)
 *                         and code those bundles share
 *   dist/worker-entry.js  the capture thread, a build of its own: the entry, one chunk it
 *                         loads at once, the data plane after the configuration
 *
 * Why bundle: Node 20 spends ~170 ms of a run's start-up resolving and loading
 * some two hundred ES modules (yargs alone ~120 ms); a few files load in about
 * half that (BENCHMARKS.md). Splitting keeps cli.js tiny, so the capture thread
 * starts before the main thread compiles the rest. The capture thread is a
 * separate build: its start-up is the longer of the two, and three files of its
 * own load a few ms sooner than the eight it would otherwise share with the main
 * thread (each thread compiles its own copy either way). Left outside: the
 * pcap addon (native), and prom-client and pino-pretty, which load only when used.
 */
import { readFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * string-width (yargs' help layout; three copies in the tree) builds an
 * Intl.Segmenter, and the newest also a \p{RGI_Emoji} expression, as it loads:
 * ~30 ms of ICU set-up on every start (BENCHMARKS.md) for text only `--help`
 * measures. This makes both lazy: the same objects, built on first use. The
 * build fails if a new string-width no longer reads as expected.
 */
const LAZY_STRING_WIDTH = [
  {
    name: 'segmenter',
    eager: 'const segmenter = new Intl.Segmenter();',
    lazy: 'let segmenterOnce; const segmenter = { segment: (text) => (segmenterOnce ??= new Intl.Segmenter()).segment(text) };',
    use: 'segmenter.segment(',
  },
  {
    name: 'rgiEmojiRegex',
    eager: 'const rgiEmojiRegex = /^\\p{RGI_Emoji}$/v;',
    lazy: 'let rgiEmojiOnce; const rgiEmojiRegex = { test: (text) => (rgiEmojiOnce ??= /^\\p{RGI_Emoji}$/v).test(text) };',
    use: 'rgiEmojiRegex.test(',
  },
];

const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/](?:.+[\\/])?string-width[\\/]index\.js$/ }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      for (const { name, eager, lazy, use } of LAZY_STRING_WIDTH) {
        if (!source.includes(eager)) {
          if (source.includes(`${name} =`)) throw new Error(`${args.path}: \`${name}\` is declared differently; revisit scripts/bundle.mjs`);
          continue; // this version has no such object
        }
        // every use (comments aside) is a call of the one method the lazy object has
        const code = source.replace(/^\s*\/\/.*$/gm, '');
        const count = (text) => code.split(text).length - 1;
        if (count(eager) !== 1 || count(name) !== 1 + count(use)) {
          throw new Error(`${args.path}: \`${name}\` is not declared and used as expected; revisit scripts/bundle.mjs`);
        }
        source = source.replace(eager, lazy);
      }
      if (source.includes('new Intl.Segmenter()') && !source.includes('segmenterOnce')) {
        throw new Error(`${args.path}: an eager Intl.Segmenter is left; revisit scripts/bundle.mjs`);
      }
      return { contents: source, loader: 'js' };
    });
  },
};
rmSync(`${root}/dist`, { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  outdir: 'dist',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  external: ['pcap', 'prom-client', 'pino-pretty'],
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  plugins: [lazyStringWidth],
};

await build({
  ...common,
  entryPoints: { cli: 'src/cli.ts', healthcheck: 'src/healthcheck.ts', 'connect-back-helper': 'src/control/connect-back-helper.ts' },
});
await build({
  ...common,
  entryPoints: { 'worker-entry': 'src/capture/worker-entry.ts' },
});
