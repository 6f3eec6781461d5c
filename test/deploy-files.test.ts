/**
 * The deployment files agree with each other and with the probe's options:
 * Dockerfile, .dockerignore, compose.yaml (+ prometheus.yml), the systemd unit
 * and its environment file. Nothing here needs a container engine or systemd
 * running; `systemd-analyze verify` runs where it is installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCommandLine } from '../src/config/cli-args.js';
import type { ProbeOptions } from '../src/config/options.js';
import { instructions, projectRules } from '../scripts/lint-dockerfiles.js';
import { resolveIdentity } from '../src/privileges/identity.js';
import { runtimeStage } from './helpers/container.js';
import { PROJECT_ROOT } from './helpers/processes.js';
import { needsTool } from './helpers/requirements.js';

const file = (path: string): string => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/**
 * Options the files use that another branch adds (the metrics listener). They are
 * checked like the others as soon as --help lists them.
 */
const PENDING = ['metrics-listen'];
const help = parseCommandLine(['--help']);
const known = (option: string): boolean => help.kind === 'exit' && help.output.includes(`--${option} `);
const pending = PENDING.filter((o) => !known(o));

/** Parse as the probe would, with exactly these FLOWPROBE_* variables; pending options left out. */
function probeOptions(args: string[], env: Record<string, string>): ProbeOptions {
  const argv: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (pending.includes(args[i]!.replace(/^--/, ''))) i++;
    else argv.push(args[i]!);
  }
  const saved = Object.entries(process.env).filter(([k]) => k.startsWith('FLOWPROBE_'));
  for (const [k] of saved) delete process.env[k];
  for (const [k, v] of Object.entries(env)) {
    if (!pending.some((o) => k === `FLOWPROBE_${o.toUpperCase().replace(/-/g, '_')}`)) process.env[k] = v;
  }
  try {
    const result = parseCommandLine(argv);
    assert.equal(result.kind, 'run');
    return (result as { options: ProbeOptions }).options;
  } finally {
    for (const k of Object.keys(process.env)) if (k.startsWith('FLOWPROBE_')) delete process.env[k];
    for (const [k, v] of saved) process.env[k] = v;
  }
}

function argValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i === -1 ? undefined : args[i + 1];
}

/** Compose's ${VAR}, ${VAR:-default}, ${VAR:?message} */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::([-?])([^}]*))?\}/g, (_, name: string, kind?: string, rest?: string) => {
    const value = vars[name];
    if (value !== undefined && value !== '') return value;
    if (kind === '?') throw new Error(`${name}: ${rest ?? 'required'}`);
    return kind === '-' ? (rest ?? '') : '';
  });
}

function seconds(duration: string): number {
  const m = /^(\d+)(s|m)$/.exec(duration);
  assert.ok(m, `a duration like 30s: ${duration}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

// ---------------------------------------------------------------------------

const dockerfile = instructions(file('Dockerfile'));
const of = (keyword: string) => dockerfile.filter((i) => i.keyword === keyword);
const runtimeStart = dockerfile.map((i) => i.keyword).lastIndexOf('FROM');
const runtime = dockerfile.slice(runtimeStart);

/** ENV KEY=value pairs of the runtime stage */
const imageEnv = (): Record<string, string> => runtimeStage().env;

describe('Dockerfile', () => {
  it('two stages from one base (same Debian release and Node), Node 26 on Debian 12', () => {
    const froms = of('FROM').map((i) => i.args);
    assert.deepEqual(froms, ['${NODE_IMAGE} AS build', '${NODE_IMAGE} AS runtime']);
    assert.ok(of('ARG').some((i) => i.args === 'NODE_IMAGE=node:26-bookworm-slim'));
  });

  it('the build stage has the toolchain and libpcap-dev; the runtime only libpcap0.8', () => {
    const installs = (stage: typeof dockerfile): string[] =>
      stage
        .filter((i) => i.keyword === 'RUN')
        .flatMap((i) => /apt-get install (?:-\S+ )*([^&]+)/.exec(i.args)?.[1]?.trim().split(/\s+/) ?? []);
    assert.deepEqual(installs(dockerfile.slice(0, runtimeStart)).sort(), ['g++', 'libpcap-dev', 'make', 'python3']);
    assert.deepEqual(installs(runtime).sort(), ['libpcap0.8']);
  });

  it('node-gyp gets the image\'s Node headers on the npm ci command, not from npm configuration in the environment', () => {
    const ci = dockerfile.slice(0, runtimeStart).filter((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.equal(ci.length, 1);
    assert.match(ci[0]!.args, /^npm_package_config_node_gyp_nodedir=\/usr\/local npm ci /);
    // npm 11 warns about configuration it does not know, such as nodedir; its next major refuses it
    for (const i of of('ENV').concat(of('ARG'))) assert.doesNotMatch(i.args, /npm_config_/i, i.args);
  });

  it('exec-form ENTRYPOINT: node straight on dist/cli.js as PID 1 (a root init without CAP_KILL cannot signal nobody)', () => {
    assert.deepEqual(JSON.parse(of('ENTRYPOINT')[0]!.args), ['/usr/local/bin/node', '/app/dist/cli.js']);
    assert.equal(of('CMD').length, 0, 'arguments go to the probe');
  });

  it('HEALTHCHECK runs dist/healthcheck.js with node, and the build makes it', () => {
    const healthcheck = of('HEALTHCHECK')[0]!.args;
    assert.match(healthcheck, /CMD \["\/usr\/local\/bin\/node", "\/app\/dist\/healthcheck\.js"\]$/);
    assert.ok(existsSync(join(PROJECT_ROOT, 'dist/healthcheck.js')), 'npm run build writes dist/healthcheck.js');
    assert.ok(existsSync(join(PROJECT_ROOT, 'dist/cli.js')));
  });

  it("the image's environment is valid configuration: nobody, whose own group is nogroup", () => {
    const env = imageEnv();
    const options = probeOptions([], Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('FLOWPROBE_'))));
    assert.equal(options.user, 'nobody');
    assert.equal(options.group, undefined, "nobody's own group");
    // this Debian's accounts stand in for the base image's (Debian 12 too)
    assert.deepEqual(resolveIdentity('nobody', undefined), { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 });
  });

  it('FLOWPROBE_USER= (empty) on top of the image\'s environment turns the drop off, as the README says', () => {
    const env = { ...imageEnv(), FLOWPROBE_USER: '' };
    const options = probeOptions([], Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('FLOWPROBE_'))));
    assert.equal(options.user, undefined);
    assert.equal(options.group, undefined);
    assert.match(file('README.md'), /`FLOWPROBE_USER=` \(empty\) means no `--user`: it turns the container image's\s+privilege drop off/);
  });

  it('labels the image', () => {
    const labels = runtime.filter((i) => i.keyword === 'LABEL').map((i) => i.args).join(' ');
    for (const key of ['title', 'description', 'version', 'licenses']) assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`));
    const pkg = JSON.parse(file('package.json')) as { version: string; license: string };
    assert.ok(of('ARG').some((i) => i.args === `VERSION=${pkg.version}`));
    assert.match(labels, new RegExp(`licenses="${pkg.license}"`));
  });

  it('.dockerignore lets in exactly what the build stage copies', () => {
    const allowed = file('.dockerignore')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    const copied = of('COPY')
      .filter((i) => !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    assert.deepEqual([...new Set(copied)].sort(), allowed.sort());
    assert.ok(file('.dockerignore').split('\n').includes('*'), 'everything else stays out');
  });

  it("the binding needs libpcap.so.0.8, which is Debian's libpcap0.8 (the runtime stage's only library)", () => {
    const ldd = spawnSync('ldd', [join(PROJECT_ROOT, 'node_modules/pcap/build/Release/pcap_binding.node')], { encoding: 'utf8' });
    const libpcap = /libpcap\.so\.\S+ => (\S+)/.exec(ldd.stdout);
    assert.ok(libpcap, ldd.stdout);
    assert.match(libpcap[0], /libpcap\.so\.0\.8 /);
    const owner = spawnSync('dpkg', ['-S', 'libpcap.so.0.8'], { encoding: 'utf8' });
    if (owner.status === 0) assert.match(owner.stdout, /^libpcap0\.8(:\w+)?: /m);
  });

  it('the lint rules catch what they are for', () => {
    const bad = ['FROM debian', 'RUN cd /x && apt-get install foo | cat', 'ENTRYPOINT node x', ''].join('\n');
    const found = projectRules(bad).join('\n');
    for (const word of ['name a tag', '--no-install-recommends', 'apt-get update', 'lists', 'cd in RUN', 'pipefail', 'shell form', 'title label']) {
      assert.ok(found.includes(word), `${word} in\n${found}`);
    }
    assert.deepEqual(projectRules(file('Dockerfile')), []);
    assert.deepEqual(projectRules(file('config/nfcapd.Dockerfile')), []);
  });
});

// ---------------------------------------------------------------------------

interface ComposeService {
  build?: string | { context: string; dockerfile?: string };
  image?: string;
  network_mode?: string;
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  read_only?: boolean;
  environment?: Record<string, string>;
  command?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  restart?: string;
  volumes?: string[];
  depends_on?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

describe('compose.yaml', () => {
  const compose = parseYaml(interpolate(file('compose.yaml'), { FLOWPROBE_INTERFACE: 'eth1' })) as Compose;
  const probe = compose.services['flowprobe']!;
  const nfcapd = compose.services['nfcapd']!;
  const prometheus = compose.services['prometheus']!;

  it('the SPAN interface must be given: compose stops with a message otherwise', () => {
    assert.throws(() => interpolate(file('compose.yaml'), {}), /FLOWPROBE_INTERFACE: set FLOWPROBE_INTERFACE to the NIC/);
  });

  it('flowprobe: host network, only the four capabilities, read-only, restarts, a grace period of at least 10 s', () => {
    assert.equal(probe.build, '.');
    assert.equal(probe.network_mode, 'host');
    assert.deepEqual(probe.cap_drop, ['ALL']);
    assert.deepEqual([...probe.cap_add!].sort(), ['NET_ADMIN', 'NET_RAW', 'SETGID', 'SETUID']);
    assert.ok(probe.security_opt?.includes('no-new-privileges:true'));
    assert.equal(probe.read_only, true);
    assert.equal(probe.restart, 'unless-stopped');
    assert.ok(seconds(probe.stop_grace_period!) >= 10);
  });

  it("flowprobe's command and environment are valid options, on top of the image's", () => {
    const env = { ...imageEnv(), ...probe.environment };
    const options = probeOptions(probe.command!, Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('FLOWPROBE_'))));
    assert.deepEqual(options.interfaces, [{ name: 'eth1', ifIndex: undefined }]);
    assert.equal(options.user, 'nobody', 'drops to nobody as the image says');
    assert.equal(options.group, undefined, "and nobody's own group");
    assert.ok(options.promiscuous, 'a SPAN port needs promiscuous mode');
    assert.equal(options.collectors.length, 1);
  });

  it("an explicit --metrics-listen; Prometheus uses that address, and the image's healthcheck reads it from the command", () => {
    const listen = argValue(probe.command!, '--metrics-listen');
    assert.equal(listen, '127.0.0.1:9464');
    // an address written here as well could disagree with the command
    assert.equal(probe.healthcheck, undefined, "the image's HEALTHCHECK, not one of compose's");
    const scrape = parseYaml(file('config/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    assert.deepEqual(scrape.scrape_configs[0]!.static_configs[0]!.targets, [listen]);
    assert.equal(prometheus.network_mode, 'host', 'reaches the loopback listener');
    assert.ok(prometheus.volumes!.some((v) => v.startsWith('./config/prometheus.yml:/etc/prometheus/prometheus.yml')));
    assert.match(prometheus.image!, /^prom\/prometheus:v\d+\.\d+\.\d+$/, 'a pinned version');
  });

  it('the collector flowprobe sends to is where nfcapd listens', () => {
    const collector = argValue(probe.command!, '--collector');
    const args = nfcapd.command!;
    assert.equal(collector, `${argValue(args, '-b')}:${argValue(args, '-p')}`);
    assert.equal(nfcapd.network_mode, 'host');
    assert.ok(nfcapd.volumes!.includes(`flows:${argValue(args, '-w')}`), 'flow files in a volume');
    assert.ok(probe.depends_on?.includes('nfcapd'));
    const build = nfcapd.build as { context: string; dockerfile: string };
    assert.ok(existsSync(join(PROJECT_ROOT, build.context, build.dockerfile)));
  });

  it('every service restarts unless stopped and drops its capabilities; named volumes are declared', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      assert.equal(service.restart, 'unless-stopped', name);
      assert.deepEqual(service.cap_drop, ['ALL'], name);
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.')) assert.ok(compose.volumes && source in compose.volumes, `${name}: volume ${source}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------

function unitFile(): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const line of file('config/flowprobe.service').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(t);
    if (header) {
      section = header[1]!;
      continue;
    }
    const m = /^(\w+)=(.*)$/.exec(t);
    assert.ok(m, `unit line: ${t}`);
    const key = `${section}.${m[1]}`;
    keys.set(key, [...(keys.get(key) ?? []), m[2]!]);
  }
  return keys;
}

function environmentFileVars(text: string): { set: Record<string, string>; commented: string[] } {
  const set: Record<string, string> = {};
  const commented: string[] = [];
  for (const line of text.split('\n')) {
    const on = /^(FLOWPROBE_\w+)=(.*)$/.exec(line);
    if (on) set[on[1]!] = on[2]!;
    const off = /^#(FLOWPROBE_\w+)=/.exec(line);
    if (off) commented.push(off[1]!);
  }
  return { set, commented };
}

describe('config/flowprobe.service and config/flowprobe.env', () => {
  const unit = unitFile();
  const one = (key: string): string => {
    const values = unit.get(key);
    assert.equal(values?.length, 1, `${key} once`);
    return values[0]!;
  };

  it('an unprivileged user with the capture capabilities, nothing more', () => {
    assert.match(one('Service.User'), /^\w+$/);
    const ambient = one('Service.AmbientCapabilities').split(/\s+/).sort();
    assert.deepEqual(ambient, ['CAP_NET_ADMIN', 'CAP_NET_RAW']);
    assert.deepEqual(one('Service.CapabilityBoundingSet').split(/\s+/).sort(), ambient, 'the bounding set matches');
    assert.equal(one('Service.NoNewPrivileges'), 'yes');
    assert.equal(one('Service.ProtectSystem'), 'strict');
  });

  it('restarts on failure (a vanished interface), but not on bad options (exit 2); waits for the flush', () => {
    assert.equal(one('Service.Restart'), 'on-failure');
    assert.equal(one('Service.RestartPreventExitStatus'), '2');
    assert.ok(seconds(one('Service.TimeoutStopSec')) >= 10);
    assert.equal(unit.get('Service.KillSignal'), undefined, 'SIGTERM, the default');
  });

  it('starts node on dist/cli.js directly, configured by the environment file, without a runtime drop', () => {
    const exec = one('Service.ExecStart').split(/\s+/);
    assert.deepEqual(exec, ['/usr/bin/node', '/opt/flowprobe/dist/cli.js']);
    assert.equal(one('Service.EnvironmentFile'), '/etc/flowprobe/flowprobe.env');
    const { set } = environmentFileVars(file('config/flowprobe.env'));
    assert.equal(set['FLOWPROBE_USER'], undefined, 'systemd starts it as its user already');
  });

  it('the environment file holds valid options, commented ones included', () => {
    const text = file('config/flowprobe.env');
    const { set, commented } = environmentFileVars(text);
    const options = probeOptions([], set);
    assert.deepEqual(options.interfaces, [{ name: 'eth1', ifIndex: undefined }]);
    assert.deepEqual(options.collectors, [{ host: '127.0.0.1', port: 9995, version: 5 }]);
    // uncomment every example: still valid
    const all = environmentFileVars(text.replace(/^#(FLOWPROBE_)/gm, '$1')).set;
    assert.ok(commented.length >= 5);
    const everything = probeOptions([], all);
    assert.equal(everything.filter, 'not port 22');
    assert.equal(everything.promiscuous, false);
  });

  it('systemd-analyze verify finds nothing', { skip: needsTool('systemd-analyze', 'systemd') }, () => {
    const result = spawnSync('systemd-analyze', ['verify', join(PROJECT_ROOT, 'config/flowprobe.service')], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), '', 'no warnings either');
  });
});
