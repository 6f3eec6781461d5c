/**
 * What a test needs from the machine: root, or a tool. Where it is missing the
 * test is skipped, with the reason, except in CI (.ci/run exports CI=true): there
 * a missing privilege or tool fails, so a green run cannot hide tests that never ran.
 *
 *   const skip = needsRoot('network namespaces');
 *   describe('…', { skip }, () => …);
 *   it('…', { skip: needsTool('systemd-analyze', 'systemd') }, () => …);
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { test } from 'node:test';

/** CI=true (or 1, yes), as .ci/run and most CI services set it. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['true', '1', 'yes'].includes((env['CI'] ?? '').trim().toLowerCase());
}

const reported = new Set<string>();

/** The skip value for node:test: false when met; otherwise the reason (and in CI a failing test that says it). */
function requirement(met: boolean, reason: string): false | string {
  if (met) return false;
  if (inCi() && !reported.has(reason)) {
    reported.add(reason);
    test(`CI requires: ${reason}`, () => {
      throw new Error(`${reason}: CI=true, where a test that needs this fails instead of being skipped (scripts/install-test-deps.sh, run as root)`);
    });
  }
  return reason;
}

export function needsRoot(why: string): false | string {
  return requirement(process.getuid?.() === 0, `needs root for ${why}`);
}

/** `command` on PATH (or that absolute path) and executable; `debianPackage` installs it. */
export function needsTool(command: string, debianPackage: string): false | string {
  return requirement(executable(command), `needs ${command} (Debian package ${debianPackage}, in scripts/install-test-deps.sh)`);
}

function executable(command: string): boolean {
  const candidates = isAbsolute(command) ? [command] : (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, command));
  return candidates.some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
