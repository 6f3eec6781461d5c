#!/usr/bin/env node
import { hideBin } from 'yargs/helpers';
import { ProbeError, runProbe } from './app.js';
import { parseCommandLine } from './config/cli-args.js';
import { UsageError } from './config/options.js';
import { createStderrLogger } from './log/logger.js';

async function main(): Promise<number> {
  const log = createStderrLogger();
  try {
    const parsed = parseCommandLine(hideBin(process.argv));
    if (parsed.kind === 'exit') {
      process.stdout.write(parsed.output.endsWith('\n') ? parsed.output : parsed.output + '\n');
      return 0;
    }
    return await runProbe(parsed.options, log);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`flowprobe: ${error.message} (see flowprobe --help)\n`);
      return 2;
    }
    if (error instanceof ProbeError) {
      log.error(error.message);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main();
