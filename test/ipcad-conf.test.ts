/** ipcad.conf: the reference configuration, IPCAD's other statements, and the errors a user meets. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PROJECT_ROOT } from './helpers/processes.js';
import { ConfigError, parseIpcadConf, parseSize } from '../src/config/ipcad-conf.js';
import { parseIpcadCommandLine, translateIpcadConfig, DEFAULT_MEMORY_LIMIT } from '../src/config/ipcad-options.js';
import { UsageError } from '../src/config/options.js';

const REFERENCE = `capture-ports disable;
interface wi0;
rsh enable at 127.0.0.1;
rsh root@127.0.0.1 admin;
dumpfile = ipcad.dump;
chroot = /var/ipcad;
memory_limit = 1m;
netflow export destination 127.0.0.1 9995
`;

const cli = {
  configFile: '/etc/ipcad.conf',
  detach: false,
  restoreOnStart: false,
  saveOnExit: false,
  metricsListen: '127.0.0.1:9464',
  logLevel: 'info',
  statusInterval: 0,
};

function error(text: string): string {
  try {
    parseIpcadConf('ipcad.conf', text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail(`expected an error for ${JSON.stringify(text)}`);
}

describe('the reference ipcad.conf', () => {
  it('is read as is (its last statement has no ";")', () => {
    const conf = parseIpcadConf('ipcad.conf', REFERENCE);
    assert.deepEqual(conf.interfaces, [{ name: 'wi0', promiscuous: false, filter: '', capturePorts: false, line: 2 }]);
    assert.deepEqual(conf.rshListen, ['127.0.0.1']);
    assert.deepEqual(conf.rshAccess, [{ user: 'root', host: '127.0.0.1', level: 'admin', line: 4 }]);
    assert.equal(conf.dumpFile, 'ipcad.dump');
    assert.equal(conf.chroot, '/var/ipcad');
    assert.equal(conf.memoryLimit, 1024 * 1024);
    assert.deepEqual(conf.netflowDestinations, [{ host: '127.0.0.1', port: 9995 }]);
    assert.deepEqual(conf.warnings, []);
  });

  it('becomes the probe options: the interface, the collector, the dump inside the chroot directory', () => {
    const { options, ipcad } = translateIpcadConfig(parseIpcadConf('/etc/ipcad.conf', REFERENCE), cli);
    assert.deepEqual(options.interfaces, [{ name: 'wi0', ifIndex: undefined, promiscuous: false, filter: '' }]);
    assert.deepEqual(options.collectors, [{ host: '127.0.0.1', port: 9995, version: 5 }]);
    assert.equal(options.activeTimeout, 1800);
    assert.equal(options.inactiveTimeout, 15);
    assert.equal(ipcad.dumpFile, '/var/ipcad/ipcad.dump');
    assert.equal(ipcad.chroot, '/var/ipcad');
    assert.equal(ipcad.accounting.memoryLimit, 1048576);
    assert.deepEqual(ipcad.accounting.capturePorts, [false]);
    assert.deepEqual(ipcad.rsh.listen, ['127.0.0.1']);
    assert.equal(ipcad.rsh.port, 514);
    assert.equal(ipcad.pidFile, undefined);
  });
});

describe('config/ipcad.conf, the commented example', () => {
  it('parses without a warning and matches the reference configuration', () => {
    const file = join(PROJECT_ROOT, 'config/ipcad.conf');
    const example = parseIpcadConf(file, readFileSync(file, 'utf8'));
    const reference = parseIpcadConf(file, REFERENCE.replace('wi0', 'eth0'));
    assert.deepEqual(example.warnings, []);
    assert.deepEqual(
      { ...example, interfaces: example.interfaces.map((i) => ({ ...i, line: 0 })), rshAccess: example.rshAccess.map((r) => ({ ...r, line: 0 })) },
      { ...reference, interfaces: reference.interfaces.map((i) => ({ ...i, line: 0 })), rshAccess: reference.rshAccess.map((r) => ({ ...r, line: 0 })) },
    );
  });
});

describe('IPCAD statements', () => {
  it('interfaces with promisc and a filter; capture-ports for the interfaces after it', () => {
    const conf = parseIpcadConf(
      'x.conf',
      `interface eth0;
       capture-ports enable;
       interface eth1 promisc filter "ip and not port 22";
       interface eth2 filter "tcp" promisc;`,
    );
    assert.deepEqual(
      conf.interfaces.map((i) => [i.name, i.promiscuous, i.filter, i.capturePorts]),
      [
        ['eth0', false, '', false],
        ['eth1', true, 'ip and not port 22', true],
        ['eth2', true, 'tcp', true],
      ],
    );
  });

  it('netflow timeouts (active in minutes, inactive in seconds), engine, version 5', () => {
    const conf = parseIpcadConf(
      'x.conf',
      `interface eth0; netflow timeout active 5; netflow timeout inactive 20;
       netflow engine-type 3; netflow engine-id 7; netflow export version 5;
       netflow export destination 10.0.0.5 2055; netflow export destination 10.0.0.6 9996;`,
    );
    const { options } = translateIpcadConfig(conf, cli);
    assert.equal(options.activeTimeout, 300);
    assert.equal(options.inactiveTimeout, 20);
    assert.equal(options.engineType, 3);
    assert.equal(options.engineId, 7);
    assert.deepEqual(options.collectors, [
      { host: '10.0.0.5', port: 2055, version: 5 },
      { host: '10.0.0.6', port: 9996, version: 5 },
    ]);
  });

  it('rsh lines: levels, any user, host names, timeout; pidfile, uid/gid, comments of every kind', () => {
    const conf = parseIpcadConf(
      'x.conf',
      `# a comment
       interface eth0; /* a C comment
       over two lines */ rsh enable;
       rsh localhost;            // default level
       rsh bob@10.0.0.1 view-only;
       rsh 10.0.0.2 backup;
       rsh 10.0.0.3 deny;
       rsh timeout = 5;
       pidfile = /run/ipcad.pid;
       uid = 65534; gid = 65534;`,
    );
    // IPCAD's "rsh enable" is every address; ours is the loopback unless `at` says otherwise
    assert.deepEqual(conf.rshListen, ['127.0.0.1']);
    assert.ok(conf.warnings.some((w) => /"rsh enable" listens on 127\.0\.0\.1 only/.test(w)), conf.warnings.join('\n'));
    assert.deepEqual(
      conf.rshAccess.map((r) => [r.user, r.host, r.level, r.line]),
      [
        [undefined, 'localhost', 'default', 4],
        ['bob', '10.0.0.1', 'view-only', 5],
        [undefined, '10.0.0.2', 'backup', 6],
        [undefined, '10.0.0.3', 'deny', 7],
      ],
    );
    assert.equal(conf.rshTimeout, 5);
    assert.equal(conf.pidFile, '/run/ipcad.pid');
    assert.equal(conf.uid, '65534');
    assert.equal(conf.gid, '65534');
    // uid/gid are carried out (the probe drops to them once open): no warning but rsh's address
    assert.equal(conf.warnings.length, 1, conf.warnings.join('\n'));
  });

  it('aggregate rules for addresses and ports', () => {
    const conf = parseIpcadConf('x.conf', 'interface eth0; aggregate 10.0.0.0/8 strip 8; aggregate 1024-65535 into 65535;');
    assert.deepEqual(conf.aggregates, [
      { kind: 'address', network: 0x0a000000, prefixLength: 8, strip: 8 },
      { kind: 'port', from: 1024, to: 65535, into: 65535 },
    ]);
  });

  it('known statements flowprobe does not carry out: a warning naming them and what is not done', () => {
    const conf = parseIpcadConf('x.conf', 'interface eth0;\nrsh ttl = 3;\nnetflow ifclass ppp* 5;');
    assert.equal(conf.warnings.length, 2);
    assert.match(conf.warnings[0]!, /^x\.conf:2: "rsh ttl = 3" is accepted but not carried out: the IP TTL/);
    assert.match(conf.warnings[1]!, /^x\.conf:3: "netflow ifclass ppp\* 5" is accepted but not carried out/);
  });

  it('memory_limit with IPCAD suffixes', () => {
    assert.equal(parseSize('1m'), 1048576);
    assert.equal(parseSize('512k'), 524288);
    assert.equal(parseSize('2048'), 2048);
    assert.equal(parseSize('1x'), undefined);
    const { ipcad } = translateIpcadConfig(parseIpcadConf('x.conf', 'interface eth0;'), cli);
    assert.equal(ipcad.accounting.memoryLimit, DEFAULT_MEMORY_LIMIT);
  });
});

describe('mistakes: one line naming the file, the line and the statement', () => {
  it('an unknown statement', () => {
    assert.equal(error('interface eth0;\n\nfrobnicate yes;'), 'ipcad.conf:3: unknown statement "frobnicate yes"');
  });
  it('a missing ";" joins two statements into a malformed one', () => {
    assert.match(error('capture-ports disable\ninterface eth0;'), /^ipcad\.conf:1: malformed statement "capture-ports disable interface eth0": expected capture-ports enable\|disable$/);
  });
  it('malformed values', () => {
    assert.match(error('memory_limit = lots;'), /^ipcad\.conf:1: malformed statement "memory_limit = lots"/);
    assert.match(error('netflow export destination 127.0.0.1 99999;'), /^ipcad\.conf:1: malformed statement .*port 1 to 65535/);
    assert.match(error('netflow export version 9;'), /NetFlow v5 only/);
    assert.match(error('rsh root@127.0.0.1 superuser;'), /^ipcad\.conf:1: malformed statement "rsh root@127.0.0.1 superuser": expected a level/);
    assert.match(error('rsh enable at nowhere;'), /rsh enable \[at ADDRESS\]/);
    assert.match(error('netflow timeout active soon;'), /netflow timeout active MINUTES/);
    assert.match(error('interface eth0 filter tcp;'), /filter "BPF expression" in double quotes/);
  });
  it('unclosed comments and strings, stray semicolons, an interface given twice', () => {
    assert.match(error('interface eth0; /* never closed'), /^ipcad\.conf:1: a comment opened with \/\* is never closed$/);
    assert.match(error('interface eth0 filter "tcp;'), /^ipcad\.conf:1: a string opened with " is never closed$/);
    assert.match(error('interface eth0;;'), /^ipcad\.conf:1: an empty statement/);
    assert.match(error('interface eth0;\ninterface eth0;'), /^ipcad\.conf:2: interface eth0 is given twice$/);
  });
  it('paths that would depend on the working directory: a relative dumpfile without chroot, a relative chroot', () => {
    const translate = (text: string) => translateIpcadConfig(parseIpcadConf('x.conf', text), cli);
    assert.throws(
      () => translate('interface eth0; dumpfile = ipcad.dump;'),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === 'x.conf: dumpfile = ipcad.dump: a relative path needs chroot = DIR (it is then DIR/ipcad.dump); otherwise give an absolute path',
    );
    assert.throws(() => translate('interface eth0; dumpfile = ipcad.dump; chroot = var/ipcad;'), /^ConfigError: x\.conf: chroot = var\/ipcad: give an absolute directory$/);
    assert.equal(translate('interface eth0; dumpfile = /var/lib/ipcad.dump;').ipcad.dumpFile, '/var/lib/ipcad.dump');
    assert.equal(translate('interface eth0; dumpfile = ipcad.dump; chroot = /var/ipcad;').ipcad.dumpFile, '/var/ipcad/ipcad.dump');
  });

  it('uid/gid: looked up at start and named as statements; gid alone is refused (it would leave the probe root)', () => {
    const translate = (text: string) => translateIpcadConfig(parseIpcadConf('x.conf', text), cli);
    assert.deepEqual([translate('interface eth0; uid = 65534; gid = 65534;').options.user, translate('interface eth0; uid = 65534; gid = 65534;').options.group], ['65534', '65534']);
    const refused = (text: string, message: string): void =>
      assert.throws(() => translate(text), (e: unknown) => e instanceof ConfigError && e.message === message, message);
    refused('interface eth0; gid = 65534;', 'x.conf: gid = 65534 without uid: changing the group alone would leave the probe root; give uid = N too');
    refused('interface eth0; uid = nosuchuser;', 'x.conf: uid = nosuchuser: no user named "nosuchuser" in /etc/passwd (give a name from it, or a uid)');
    refused('interface eth0; uid = nobody; gid = nosuchgroup;', 'x.conf: gid = nosuchgroup: no group named "nosuchgroup" in /etc/group (give a name from it, or a gid)');
    refused('interface eth0; uid = 4000000;', 'x.conf: uid = 4000000: uid 4000000 is not in /etc/passwd, so it has no primary group: give gid = N too');
  });

  it('what cannot run: no interface, a memory_limit too small', () => {
    assert.throws(() => translateIpcadConfig(parseIpcadConf('x.conf', 'rsh enable;'), cli), /x\.conf: no interface statement/);
    assert.throws(() => translateIpcadConfig(parseIpcadConf('x.conf', 'interface eth0; memory_limit = 100;'), cli), /memory_limit 100 is too small/);
  });
});

describe('the JSON API\'s listener: off unless asked for, by flag, FLOWPROBE_API_LISTEN or ipcad.conf', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-api-'));
  after(() => rmSync(work, { recursive: true, force: true }));
  const confFile = (text: string): string => {
    const path = join(work, `${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(path, text);
    return path;
  };
  /** parseIpcadCommandLine with exactly these FLOWPROBE_* variables */
  function parse(argv: string[], env: Record<string, string> = {}): ReturnType<typeof parseIpcadCommandLine> {
    const saved = Object.entries(process.env).filter(([k]) => k.startsWith('FLOWPROBE_'));
    for (const [k] of saved) delete process.env[k];
    Object.assign(process.env, env);
    try {
      return parseIpcadCommandLine(argv);
    } finally {
      for (const k of Object.keys(process.env)) if (k.startsWith('FLOWPROBE_')) delete process.env[k];
      for (const [k, v] of saved) process.env[k] = v;
    }
  }
  const apiOf = (result: ReturnType<typeof parseIpcadCommandLine>) => (result.kind === 'ipcad' ? result.ipcad.apiListen : 'exit');

  it('off by default; the metrics listener is on as before', () => {
    const result = parse(['-c', confFile('interface eth0;')]);
    assert.equal(apiOf(result), undefined);
    assert.deepEqual(result.kind === 'ipcad' ? result.options.metricsListen : undefined, { host: '127.0.0.1', port: 9464 });
  });

  it('flag > environment > ipcad.conf', () => {
    const withStatement = confFile('interface eth0; api-listen = 127.0.0.1:9466;');
    assert.deepEqual(apiOf(parse(['-c', withStatement])), { host: '127.0.0.1', port: 9466 });
    assert.deepEqual(apiOf(parse(['-c', withStatement], { FLOWPROBE_API_LISTEN: '[::1]:9467' })), { host: '::1', port: 9467 });
    assert.equal(apiOf(parse(['-c', withStatement], { FLOWPROBE_API_LISTEN: 'off' })), undefined);
    assert.deepEqual(apiOf(parse(['-c', withStatement, '--api-listen', '127.0.0.1:9468'], { FLOWPROBE_API_LISTEN: 'off' })), { host: '127.0.0.1', port: 9468 });
    // the other long options of flowprobe ipcad read the environment too
    const result = parse(['-c', withStatement], { FLOWPROBE_METRICS_LISTEN: 'off', FLOWPROBE_LOG_LEVEL: 'debug', FLOWPROBE_STATUS_INTERVAL: '30' });
    assert.equal(result.kind === 'ipcad' ? result.options.metricsListen : 'exit', undefined);
    assert.equal(result.kind === 'ipcad' ? result.options.logLevel : 'exit', 'debug');
    assert.equal(result.kind === 'ipcad' ? result.options.statusInterval : 'exit', 30);
  });

  it('a bad value is one line naming where it came from (exit 2)', () => {
    const plain = confFile('interface eth0;');
    const usage = (argv: string[], env: Record<string, string>, message: string): void =>
      assert.throws(() => parse(argv, env), (e: unknown) => e instanceof UsageError && e.message === message, message);
    usage(['-c', plain, '--api-listen', 'everywhere'], {}, '--api-listen: expected ADDRESS:PORT, [IPv6]:PORT or off, got "everywhere"');
    usage(['-c', plain], { FLOWPROBE_API_LISTEN: '0.0.0.0' }, '--api-listen (from FLOWPROBE_API_LISTEN): expected ADDRESS:PORT, [IPv6]:PORT or off, got "0.0.0.0"');
    usage(['-c', plain], { FLOWPROBE_METRICS_LISTEN: 'x' }, '--metrics-listen (from FLOWPROBE_METRICS_LISTEN): expected ADDRESS:PORT, [IPv6]:PORT or off, got "x"');
    assert.throws(
      () => parse(['-c', confFile('interface eth0;\napi-listen = localhost;')]),
      (e: unknown) => e instanceof ConfigError && /:2: malformed statement "api-listen = localhost": expected api-listen = ADDRESS:PORT, \[IPv6\]:PORT or off$/.test(e.message),
    );
  });
});
