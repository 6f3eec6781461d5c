/**
 * Lints the Dockerfiles: dockerfile-utils (the validator behind VS Code's Docker
 * support) with every check switched on, plus the project's rules for images.
 * Any finding fails, warnings included.
 *
 *   tsx scripts/lint-dockerfiles.ts [FILE…]   (default: Dockerfile config/*.Dockerfile)
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationSeverity, validate, type ValidatorSettings } from 'dockerfile-utils';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
};

export interface Instruction {
  /** 1-based line of the instruction's first line */
  line: number;
  keyword: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
export function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { line: number; text: string } | undefined;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') && pending === undefined) return;
    if (trimmed.startsWith('#')) return; // a comment inside a continuation
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1) : trimmed;
    pending = pending === undefined ? { line: i + 1, text: part } : { line: pending.line, text: `${pending.text} ${part}` };
    if (continued) return;
    const match = /^(\S+)\s*(.*)$/.exec(pending.text.trim());
    if (match !== null) out.push({ line: pending.line, keyword: match[1]!.toUpperCase(), args: match[2]! });
    pending = undefined;
  });
  return out;
}

function isJsonArray(args: string): boolean {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string');
  } catch {
    return false;
  }
}

/** The project's rules (in the spirit of hadolint's): each finding is "line: message". */
export function projectRules(text: string): string[] {
  const found: string[] = [];
  const list = instructions(text);
  const args = new Map<string, string>();
  const stages = new Set<string>();
  let finalLabels = '';
  for (const { line, keyword, args: a } of list) {
    const problem = (message: string): void => void found.push(`${line}: ${message}`);
    switch (keyword) {
      case 'ARG': {
        const m = /^(\w+)(?:=(\S+))?$/.exec(a);
        if (m?.[2] !== undefined) args.set(m[1]!, m[2]);
        break;
      }
      case 'FROM': {
        const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(a);
        const image = (m?.[1] ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, x: string | undefined, y: string | undefined) => args.get(x ?? y ?? '') ?? '');
        if (!stages.has(image) && image !== 'scratch' && !/^[^@]+:[^:/@]+(@sha256:[0-9a-f]{64})?$/.test(image)) {
          problem(`FROM ${image}: name a tag (and not latest) so builds are repeatable`);
        }
        if (/:latest(@|$)/.test(image)) problem(`FROM ${image}: latest is not a version`);
        if (m?.[2] !== undefined) stages.add(m[2]);
        finalLabels = '';
        break;
      }
      case 'RUN': {
        if (/\bapt-get\s+(?:\S+\s+)*install\b/.test(a)) {
          if (!/--no-install-recommends/.test(a)) problem('apt-get install without --no-install-recommends');
          if (!/\s-y\b|--yes\b|--assume-yes\b/.test(a)) problem('apt-get install without -y');
          if (!/apt-get update/.test(a)) problem('apt-get install without apt-get update in the same RUN (a stale cached layer)');
          if (!/rm -rf \/var\/lib\/apt\/lists\/\*/.test(a)) problem('apt-get install without removing /var/lib/apt/lists/* in the same RUN');
        }
        if (/(^|&&|;)\s*cd\s/.test(a)) problem('cd in RUN: use WORKDIR');
        if (/\bsudo\b/.test(a)) problem('sudo in RUN: the build runs as root');
        if (/[^|]\|[^|]/.test(a) && !/pipefail/.test(a)) problem('a pipe in RUN without set -o pipefail hides failures');
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD':
        if (!isJsonArray(a)) problem(`${keyword} in shell form: a shell would stand between the signals and the process`);
        break;
      case 'HEALTHCHECK': {
        const cmd = /\bCMD\s+(.*)$/.exec(a);
        if (cmd !== null && !isJsonArray(cmd[1]!)) problem('HEALTHCHECK CMD in shell form: the image has no need of a shell');
        break;
      }
      case 'ADD':
        if (!/^(--\S+\s+)*(https?:|git@)/.test(a)) problem('ADD of local files: use COPY');
        break;
      case 'COPY': {
        const from = /--from=(\S+)/.exec(a);
        if (from !== null && !stages.has(from[1]!) && !from[1]!.includes(':') && !/^\d+$/.test(from[1]!)) {
          problem(`COPY --from=${from[1]}: no such stage`);
        }
        break;
      }
      case 'LABEL':
        finalLabels += ` ${a}`;
        break;
      case 'MAINTAINER':
        problem('MAINTAINER: use LABEL org.opencontainers.image.authors');
        break;
      default:
        break;
    }
  }
  for (const key of ['title', 'description', 'licenses']) {
    if (!finalLabels.includes(`org.opencontainers.image.${key}=`)) {
      found.push(`0: the final stage has no org.opencontainers.image.${key} label`);
    }
  }
  return found;
}

function lint(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const name = relative(ROOT, path);
  const problems = validate(text, STRICT).map((d) => {
    const level = d.severity === 1 ? 'error' : 'warning';
    const message = typeof d.message === 'string' ? d.message : d.message.value;
    return `${name}:${d.range.start.line + 1}: ${level}: ${message}`;
  });
  for (const finding of projectRules(text)) {
    const [line, ...rest] = finding.split(': ');
    problems.push(`${name}${line === '0' ? '' : `:${line}`}: error: ${rest.join(': ')}`);
  }
  return problems;
}

function defaultFiles(): string[] {
  const config = join(ROOT, 'config');
  return [join(ROOT, 'Dockerfile'), ...readdirSync(config).filter((f) => f.endsWith('.Dockerfile')).map((f) => join(config, f))];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = process.argv.length > 2 ? process.argv.slice(2) : defaultFiles();
  const problems = files.flatMap(lint);
  for (const p of problems) process.stderr.write(`${p}\n`);
  process.stdout.write(`lint-dockerfiles: ${files.length} Dockerfiles, ${problems.length} problems\n`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
