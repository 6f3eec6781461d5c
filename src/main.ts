/** The command line's work, loaded by cli.ts once the capture thread is starting. */
import type { Worker } from 'node:worker_threads';
import { hideBin } from 'yargs/helpers';
import { ProbeError, runProbe } from './app.js';
import { parseCommandLine } from './config/cli-args.js';
import { ConfigError } from './config/ipcad-conf.js';
import { UsageError } from './config/options.js';
import { createLogger, stderrIsTerminal } from './log/logger.js';
import { TerminalStderr } from './log/progress.js';
import { DETACHED_ENV, detach, signalReady } from './control/detach.js';

export async function main(captureThread: Worker): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(hideBin(process.argv));
  } catch (error) {
    if (error instanceof UsageError) {
      const help = process.argv[2] === 'ipcad' ? 'flowprobe ipcad --help' : 'flowprobe --help';
      process.stderr.write(`flowprobe: ${error.message} (see ${help})\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`flowprobe: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.output.endsWith('\n') ? parsed.output : parsed.output + '\n');
    return 0;
  }
  const ipcad = parsed.kind === 'ipcad' ? parsed.ipcad : undefined;
  if (ipcad?.detach === true && process.env[DETACHED_ENV] !== '1') {
    return detach(hideBin(process.argv), ipcad.pidFile);
  }
  const terminal = stderrIsTerminal() ? new TerminalStderr() : undefined;
  const log = await createLogger({
    level: parsed.options.logLevel,
    pretty: terminal !== undefined,
    colour: terminal !== undefined && process.env['NO_COLOR'] === undefined,
    ...(terminal !== undefined ? { write: terminal.log } : {}),
  });
  try {
    return await runProbe(parsed.options, { log, terminal, ipcad, ready: signalReady, captureThread });
  } catch (error) {
    // --user/--group are checked against the system once the run begins
    if (error instanceof UsageError) {
      process.stderr.write(`flowprobe: ${error.message} (see flowprobe --help)\n`);
      return 2;
    }
    if (error instanceof ProbeError) {
      log.error({ code: error.code }, error.message);
      return 1;
    }
    throw error;
  }
}

