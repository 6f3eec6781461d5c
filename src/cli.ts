#!/usr/bin/env node
import { hideBin } from 'yargs/helpers';
import { ProbeError, runProbe } from './app.js';
import { parseCommandLine } from './config/cli-args.js';
import { UsageError } from './config/options.js';
import { createLogger, stderrIsTerminal } from './log/logger.js';
import { TerminalStderr } from './log/progress.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(hideBin(process.argv));
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`flowprobe: ${error.message} (see flowprobe --help)\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.output.endsWith('\n') ? parsed.output : parsed.output + '\n');
    return 0;
  }
  const terminal = stderrIsTerminal() ? new TerminalStderr() : undefined;
  const log = await createLogger({
    level: parsed.options.logLevel,
    pretty: terminal !== undefined,
    colour: terminal !== undefined && process.env['NO_COLOR'] === undefined,
    ...(terminal !== undefined ? { write: terminal.log } : {}),
  });
  try {
    return await runProbe(parsed.options, { log, terminal });
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

process.exitCode = await main();
