/**
 * The image's run as Docker makes it, on the host (there is no container engine
 * here): the Dockerfile's ENTRYPOINT and ENV, the process PID 1 of a PID namespace
 * of its own (with its own /proc), root with only the capabilities the README's
 * `docker run` adds in its bounding set, none inheritable. `docker stop` is a
 * SIGTERM to that PID 1 from outside; a HEALTHCHECK or `docker exec` enters its
 * namespaces with the same capabilities.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { instructions } from '../../scripts/lint-dockerfiles.js';
import { PROJECT_ROOT, run, start, stopped, waitFor, type RunResult, type Running } from './processes.js';
import type { RuntimeTree } from './runtime-tree.js';

export interface RuntimeStage {
  /** ENV of the runtime stage */
  env: Record<string, string>;
  entrypoint: string[];
  healthcheck: string;
}

/** The last stage of the Dockerfile: its ENV, ENTRYPOINT and HEALTHCHECK. */
export function runtimeStage(text = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')): RuntimeStage {
  const list = instructions(text);
  const stage = list.slice(list.map((i) => i.keyword).lastIndexOf('FROM'));
  const env: Record<string, string> = {};
  for (const i of stage.filter((x) => x.keyword === 'ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S*)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  const entrypoint = stage.find((i) => i.keyword === 'ENTRYPOINT');
  if (entrypoint === undefined) throw new Error('the Dockerfile has no ENTRYPOINT in its runtime stage');
  return {
    env,
    entrypoint: JSON.parse(entrypoint.args) as string[],
    healthcheck: stage.find((i) => i.keyword === 'HEALTHCHECK')?.args ?? '',
  };
}

/** The capabilities the README's `docker run` gives the image (`--cap-drop ALL --cap-add …`), lower case. */
export function readmeCapabilities(): string[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const block = /```sh\n((?:(?!```)[\s\S])*?docker run (?:(?!```)[\s\S])*)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md: no ```sh block with docker run');
  if (!/--cap-drop ALL\b/.test(block)) throw new Error('README.md: docker run without --cap-drop ALL');
  return [...block.matchAll(/--cap-add (\w+)/g)].map((m) => m[1]!.toLowerCase());
}

/** An image path as it is on this host: node is this node, /app is the production-only tree. */
function onHost(path: string, app: RuntimeTree): string {
  if (path === '/usr/local/bin/node') return process.execPath;
  return path.startsWith('/app/') ? join(app.dir, path.slice('/app/'.length)) : path;
}

export interface Container {
  /** the unshare process holding the namespace: its exit status is PID 1's */
  running: Running;
  /** PID 1 of the container, as the host numbers it */
  init(): Promise<number>;
  /** `docker exec`: a command in the container's PID, mount and network namespaces, with its capabilities */
  exec(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult>;
  /**
   * For `finally`: SIGKILL to PID 1, which ends every process in the namespace, and
   * wait for the exit. (Killing unshare is not enough: --kill-child's parent-death
   * signal is cleared when the probe changes its uid.)
   */
  dispose(): Promise<void>;
}

/**
 * `docker run --cap-drop ALL --cap-add … IMAGE ARGS` with the image's ENTRYPOINT,
 * in network namespace `netns`, with `env` (give it the image's ENV as well).
 */
export function startContainer(options: { app: RuntimeTree; netns: string; env: NodeJS.ProcessEnv; args?: readonly string[] }): Container {
  const { app, netns, env } = options;
  const bounding = `--bounding-set=-all,${readmeCapabilities().map((c) => `+${c}`).join(',')}`;
  const confine = ['setpriv', '--inh-caps=-all', bounding, '--'];
  const entrypoint = runtimeStage().entrypoint.map((word) => onHost(word, app));
  // ip netns exec and unshare exec in place: the child's pid is unshare's, whose one child is PID 1
  const running = start('ip', ['netns', 'exec', netns, 'unshare', '--pid', '--fork', '--mount-proc', '--kill-child', ...confine, ...entrypoint, ...(options.args ?? [])], {
    env,
  });
  let initPid: number | undefined;
  const holder = running.child.pid!;
  const child = (): number | undefined => {
    try {
      const pid = Number(readFileSync(`/proc/${holder}/task/${holder}/children`, 'utf8').trim().split(' ')[0]);
      return pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const init = async (): Promise<number> => {
    await waitFor(() => (initPid ??= child()) !== undefined, 10_000, "the container's PID 1");
    return initPid!;
  };
  return {
    running,
    init,
    exec: async (command, args, execEnv) => {
      const pid = await init();
      return run('nsenter', [`--target=${pid}`, '--pid', '--mount', '--net', '--', ...confine, command, ...args], { env: execEnv });
    },
    dispose: async () => {
      const pid = initPid ?? child();
      if (running.child.exitCode === null && running.child.signalCode === null && pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await stopped(running);
    },
  };
}
