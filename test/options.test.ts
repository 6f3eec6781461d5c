/** Command line and config file parsing, and the rate-limited log. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine, VERSION } from '../src/config/cli-args.js';
import { DEFAULTS, UsageError, parseCollector, type ProbeOptions } from '../src/config/options.js';
import { RateLimitedLog, createLogger } from '../src/log/logger.js';

function parse(...argv: string[]): ProbeOptions {
  const result = parseCommandLine(argv);
  assert.equal(result.kind, 'run', `expected options for ${JSON.stringify(argv)}`);
  if (result.kind !== 'run') throw new Error('unreachable');
  return result.options;
}

/** Expect a UsageError whose message contains every one of `words`. */
function rejects(argv: string[], ...words: string[]): void {
  assert.throws(
    () => parseCommandLine(argv),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `${JSON.stringify(argv)}: not a UsageError: ${String(error)}`);
      assert.equal(error.code, 'E_USAGE');
      for (const word of words) assert.ok(error.message.includes(word), `${JSON.stringify(argv)}: "${error.message}" lacks "${word}"`);
      return true;
    },
  );
}

const tmp = mkdtempSync(join(tmpdir(), 'flowprobe-options-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function configFile(name: string, content: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('parseCommandLine: defaults', () => {
  it('no arguments: every default', () => {
    assert.deepEqual(parse(), {
      interfaces: [],
      read: undefined,
      collectors: [],
      exportSource: undefined,
      activeTimeout: DEFAULTS.activeTimeout,
      inactiveTimeout: DEFAULTS.inactiveTimeout,
      tcpEndTimeout: DEFAULTS.tcpEndTimeout,
      maxFlows: DEFAULTS.maxFlows,
      snaplen: DEFAULTS.snaplen,
      bufferSize: DEFAULTS.bufferSize,
      promiscuous: true,
      engineType: 0,
      engineId: 0,
      exportRate: DEFAULTS.exportRate,
      exportQueue: DEFAULTS.exportQueue,
      sourceId: 0,
      templateRefreshPackets: 20,
      templateRefreshSeconds: 60,
      exportMaxBytes: 1400,
      filter: '',
      user: undefined,
      group: undefined,
      onInterfaceLoss: 'exit',
      tickMs: 1000,
      metricsListen: { host: '127.0.0.1', port: 9464 },
      metricsLinger: 0,
      logLevel: 'info',
      statusInterval: 60,
    });
  });

  it('the defaults are the documented values', () => {
    assert.equal(DEFAULTS.activeTimeout, 1800);
    assert.equal(DEFAULTS.inactiveTimeout, 15);
    assert.equal(DEFAULTS.maxFlows, 262144);
  });

  it('--version and --help exit with output', () => {
    assert.deepEqual(parseCommandLine(['--version']), { kind: 'exit', output: VERSION });
    const help = parseCommandLine(['-h']);
    assert.equal(help.kind, 'exit');
    assert.ok(help.kind === 'exit' && help.output.includes('--collector'));
  });
});

describe('parseCommandLine: collectors', () => {
  it('-n HOST:PORT repeated', () => {
    assert.deepEqual(parse('-n', '127.0.0.1:9995', '-n', '10.1.2.3:2055').collectors, [
      { host: '127.0.0.1', port: 9995, version: 5 },
      { host: '10.1.2.3', port: 2055, version: 5 },
    ]);
    assert.deepEqual(parse('--collector', 'collector.example:65535').collectors, [{ host: 'collector.example', port: 65535, version: 5 }]);
  });

  it('HOST:PORT/VERSION sets that collector\'s version; --export-version (-v) the others\'', () => {
    assert.deepEqual(parse('-n', '127.0.0.1:9995/9', '-n', '[::1]:4739/10', '-n', '10.0.0.1:2055').collectors, [
      { host: '127.0.0.1', port: 9995, version: 9 },
      { host: '::1', port: 4739, version: 10 },
      { host: '10.0.0.1', port: 2055, version: 5 },
    ]);
    assert.deepEqual(parse('-v', '10', '-n', '10.0.0.1:2055', '-n', '10.0.0.2:2055/5').collectors, [
      { host: '10.0.0.1', port: 2055, version: 10 },
      { host: '10.0.0.2', port: 2055, version: 5 },
    ]);
    assert.equal(parse('--engine-id', '7').sourceId, 7, 'the source id defaults to the engine id');
  });

  for (const [args, names] of [
    [['-n', '127.0.0.1:9995/7'], '--collector'],
    [['-n', '127.0.0.1:9995/'], '--collector'],
    [['--export-version', '6'], '--export-version'],
    [['--template-refresh-seconds', '601'], '--template-refresh-seconds'],
    [['--template-refresh-packets', '0'], '--template-refresh-packets'],
    [['--export-max-bytes', '511'], '--export-max-bytes'],
    [['--source-id', '4294967296'], '--source-id'],
  ] as const) {
    it(`rejects ${args.join(' ')} naming ${names}`, () => rejects([...args], names));
  }

  it('[::1]:2055', () => {
    assert.deepEqual(parse('-n', '[::1]:2055').collectors, [{ host: '::1', port: 2055, version: 5 }]);
    assert.deepEqual(parse('-n', '[2001:db8::1]:1').collectors, [{ host: '2001:db8::1', port: 1, version: 5 }]);
  });

  for (const bad of ['127.0.0.1', 'host', 'host:0', 'host:70000', 'host:abc', 'host:', ':2055', '::1:2055', '[::1]', '[127.0.0.1]:2055', '[::1]:0', 'host:-1']) {
    it(`rejects ${JSON.stringify(bad)} naming --collector`, () => {
      rejects(['-n', bad], '--collector');
    });
  }

  it('parseCollector names the option it is given', () => {
    assert.throws(() => parseCollector('x', 'export-to'), /--export-to/);
  });
});

describe('parseCommandLine: numbers', () => {
  it('timeouts in seconds, fractions allowed', () => {
    const o = parse('--active-timeout', '60', '--inactive-timeout=2.5', '--tcp-end-timeout', '0');
    assert.equal(o.activeTimeout, 60);
    assert.equal(o.inactiveTimeout, 2.5);
    assert.equal(o.tcpEndTimeout, 0);
  });

  it('--active-timeout=-5 throws naming the option', () => {
    rejects(['--active-timeout=-5'], '--active-timeout');
    rejects(['--active-timeout', '-5'], '--active-timeout');
  });

  it('--inactive-timeout=0 throws naming the option', () => {
    rejects(['--inactive-timeout=0'], '--inactive-timeout');
  });

  it('non-numbers and empty values throw naming the option', () => {
    rejects(['--active-timeout', 'soon'], '--active-timeout');
    rejects(['--inactive-timeout='], '--inactive-timeout');
    rejects(['--max-flows', '1e3x'], '--max-flows');
  });

  it('--engine-id 256 throws; 0..255 pass', () => {
    rejects(['--engine-id', '256'], '--engine-id');
    rejects(['--engine-type', '-1'], '--engine-type');
    rejects(['--engine-id', '1.5'], '--engine-id');
    const o = parse('--engine-id', '255', '--engine-type', '0');
    assert.equal(o.engineId, 255);
    assert.equal(o.engineType, 0);
  });

  it('other integer options', () => {
    const o = parse('-m', '1000', '-C', '1500', '-B', '1048576', '--export-rate', '100', '--export-queue', '64');
    assert.equal(o.maxFlows, 1000);
    assert.equal(o.snaplen, 1500);
    assert.equal(o.bufferSize, 1048576);
    assert.equal(o.exportRate, 100);
    assert.equal(o.exportQueue, 64);
    rejects(['-m', '0'], '--max-flows');
    rejects(['-C', '63'], '--snaplen');
    rejects(['--export-queue', '63'], '--export-queue');
  });

  it('--export-source must be an address', () => {
    assert.equal(parse('--export-source', '192.0.2.1').exportSource, '192.0.2.1');
    assert.equal(parse('--export-source', '::1').exportSource, '::1');
    rejects(['--export-source', 'myhost'], '--export-source');
  });
});

describe('parseCommandLine: capture source', () => {
  it('-i 7:eth0 gives ifIndex 7; -i eth0 leaves it to the system', () => {
    assert.deepEqual(parse('-i', '7:eth0').interfaces, [{ name: 'eth0', ifIndex: 7 }]);
    assert.deepEqual(parse('-i', 'eth0', '-i', '12:eth1').interfaces, [
      { name: 'eth0', ifIndex: undefined },
      { name: 'eth1', ifIndex: 12 },
    ]);
    rejects(['-i', '70000:eth0'], '--interface');
    rejects(['-i', ''], '--interface');
  });

  it('-r FILE and -r - (stdin)', () => {
    assert.equal(parse('-r', 'capture.pcap').read, 'capture.pcap');
    assert.equal(parse('-r', '-').read, '-');
  });

  it('-r with -i together throws', () => {
    rejects(['-r', 'capture.pcap', '-i', 'eth0'], '--read', '--interface');
  });

  it('-N sets promiscuous false', () => {
    assert.equal(parse().promiscuous, true);
    assert.equal(parse('-N').promiscuous, false);
    assert.equal(parse('--no-promisc').promiscuous, false);
  });
});

describe('parseCommandLine: monitoring', () => {
  it('metrics on 127.0.0.1:9464 live by default; off when reading a file unless asked', () => {
    assert.deepEqual(parse('-i', 'eth0').metricsListen, { host: '127.0.0.1', port: 9464 });
    assert.equal(parse('-r', 'x.pcap').metricsListen, undefined);
    assert.deepEqual(parse('-r', 'x.pcap', '--metrics-listen', '127.0.0.1:0').metricsListen, { host: '127.0.0.1', port: 0 });
  });

  it('--metrics-listen ADDRESS:PORT, [IPv6]:PORT or off', () => {
    assert.deepEqual(parse('--metrics-listen', '0.0.0.0:9100').metricsListen, { host: '0.0.0.0', port: 9100 });
    assert.deepEqual(parse('--metrics-listen', '[::1]:9464').metricsListen, { host: '::1', port: 9464 });
    assert.equal(parse('--metrics-listen', 'off').metricsListen, undefined);
    for (const bad of ['9464', 'localhost:9464', '127.0.0.1:65536', '127.0.0.1:x', '[127.0.0.1]:9464', '']) {
      rejects(['--metrics-listen', bad], '--metrics-listen');
    }
  });

  it('--metrics-linger, --log-level, --status-interval', () => {
    const o = parse('--metrics-linger', '30', '--log-level', 'debug', '--status-interval', '5');
    assert.equal(o.metricsLinger, 30);
    assert.equal(o.logLevel, 'debug');
    assert.equal(o.statusInterval, 5);
    assert.equal(parse('--status-interval', '0').statusInterval, 0);
    rejects(['--log-level', 'verbose'], '--log-level', 'verbose', 'debug, info, warn, error');
    rejects(['--status-interval', '0.5'], '--status-interval');
    rejects(['--metrics-linger', '-1'], '--metrics-linger');
  });

  it('the config file takes them too', () => {
    const o = parse('-c', configFile('monitoring.json', { 'metrics-listen': '127.0.0.2:9500', 'log-level': 'warn' }));
    assert.deepEqual(o.metricsListen, { host: '127.0.0.2', port: 9500 });
    assert.equal(o.logLevel, 'warn');
  });
});

describe('parseCommandLine: unknown options', () => {
  it('--frobnicate throws UsageError', () => {
    rejects(['--frobnicate'], 'frobnicate');
    rejects(['-n', '127.0.0.1:2055', '--frobnicate=1'], 'frobnicate');
  });
});

describe('parseCommandLine: BPF filter', () => {
  it('words after -- are the filter, joined with spaces', () => {
    const o = parse('-i', 'eth0', '--', 'tcp', 'port', '80');
    assert.equal(o.filter, 'tcp port 80');
    assert.deepEqual(o.interfaces, [{ name: 'eth0', ifIndex: undefined }]);
    assert.equal(parse('-r', 'x.pcap', '--', 'udp and not port 53').filter, 'udp and not port 53');
  });

  it(
    'positional words "tcp port 80" are the filter, joined with spaces',
    () => {
      assert.equal(parse('tcp', 'port', '80').filter, 'tcp port 80');
      assert.equal(parse('-r', 'x.pcap', 'tcp', 'port', '80').filter, 'tcp port 80');
    },
  );

  it(
    'filter words after -i are not taken as more interfaces',
    () => {
      const o = parse('-i', 'eth0', 'tcp', 'port', '80');
      assert.deepEqual(o.interfaces, [{ name: 'eth0', ifIndex: undefined }]);
      assert.equal(o.filter, 'tcp port 80');
    },
  );

  it(
    'filter words after -n are not taken as more collectors',
    () => {
      const o = parse('-n', '127.0.0.1:2055', 'tcp', 'port', '80');
      assert.deepEqual(o.collectors, [{ host: '127.0.0.1', port: 2055, version: 5 }]);
      assert.equal(o.filter, 'tcp port 80');
    },
  );
});

describe('parseCommandLine: config file', () => {
  it('-c config.json sets options', () => {
    const path = configFile('basic.json', {
      collector: ['192.0.2.10:2055', '[2001:db8::10]:9995'],
      'active-timeout': 120,
      'inactive-timeout': 10,
      'engine-id': 7,
      'max-flows': 5000,
    });
    const o = parse('-c', path);
    assert.deepEqual(o.collectors, [
      { host: '192.0.2.10', port: 2055, version: 5 },
      { host: '2001:db8::10', port: 9995, version: 5 },
    ]);
    assert.equal(o.activeTimeout, 120);
    assert.equal(o.inactiveTimeout, 10);
    assert.equal(o.engineId, 7);
    assert.equal(o.maxFlows, 5000);
    assert.equal(o.snaplen, DEFAULTS.snaplen, 'untouched options keep their default');
  });

  it('flags override the config file', () => {
    const path = configFile('override.json', { collector: ['192.0.2.10:2055'], 'active-timeout': 120, 'engine-id': 7 });
    const o = parse('--active-timeout', '30', '-c', path, '-n', '198.51.100.1:9996');
    assert.equal(o.activeTimeout, 30);
    assert.deepEqual(o.collectors, [{ host: '198.51.100.1', port: 9996, version: 5 }]);
    assert.equal(o.engineId, 7);
  });

  it('config values are validated like flags', () => {
    rejects(['-c', configFile('bad-engine.json', { 'engine-id': 256 })], '--engine-id');
    rejects(['-c', configFile('bad-collector.json', { collector: ['nowhere'] })], '--collector');
  });

  it('a config file with an unknown key throws', () => {
    rejects(['-c', configFile('unknown.json', { 'active-timeout': 60, frobnicate: true })], 'frobnicate');
  });

  it('a missing, non-JSON or non-object config file throws naming --config', () => {
    rejects(['-c', join(tmp, 'does-not-exist.json')], '--config', 'ENOENT');
    rejects(['-c', configFile('broken.json', '{"active-timeout": ')], '--config', 'not valid JSON');
    rejects(['-c', configFile('array.json', [1, 2])], '--config', 'JSON object');
  });
});

// ---------------------------------------------------------------------------

describe('RateLimitedLog', () => {
  function setup(intervalMs = 10_000): { log: RateLimitedLog; lines: string[]; at: (t: number) => void } {
    const lines: string[] = [];
    let now = 0;
    const log = new RateLimitedLog((m) => lines.push(m), intervalMs, () => now);
    return { log, lines, at: (t) => (now = t) };
  }

  it('passes the first message, suppresses repeats within the interval, then reports the count', () => {
    const { log, lines, at } = setup();
    at(1000);
    log.log('send', 'send failed: ECONNREFUSED');
    assert.deepEqual(lines, ['send failed: ECONNREFUSED']);
    at(1001);
    log.log('send', 'send failed: ECONNREFUSED');
    at(5000);
    log.log('send', 'send failed: ENOBUFS');
    at(10_999);
    log.log('send', 'send failed: ECONNREFUSED');
    assert.equal(lines.length, 1, 'three repeats within 10 s suppressed');
    at(11_000);
    log.log('send', 'send failed: EHOSTUNREACH');
    assert.deepEqual(lines, ['send failed: ECONNREFUSED', 'send failed: EHOSTUNREACH (3 more like this suppressed)']);
    // a new interval starts at the message that got through
    at(20_999);
    log.log('send', 'again');
    assert.equal(lines.length, 2);
    at(21_000);
    log.log('send', 'again');
    assert.deepEqual(lines.slice(2), ['again (1 more like this suppressed)']);
  });

  it('no suffix when nothing was suppressed', () => {
    const { log, lines, at } = setup(100);
    at(0);
    log.log('k', 'one');
    at(100);
    log.log('k', 'two');
    at(250);
    log.log('k', 'three');
    assert.deepEqual(lines, ['one', 'two', 'three']);
  });

  it('keys are limited independently', () => {
    const { log, lines, at } = setup(1000);
    at(0);
    log.log('a', 'a1');
    log.log('b', 'b1');
    log.log('a', 'a2');
    log.log('b', 'b2');
    log.log('b', 'b3');
    at(1000);
    log.log('a', 'a4');
    log.log('b', 'b4');
    assert.deepEqual(lines, ['a1', 'b1', 'a4 (1 more like this suppressed)', 'b4 (2 more like this suppressed)']);
  });
});

describe('createLogger', () => {
  it('JSON lines (not a terminal): level, message and fields; below the level dropped', async () => {
    const out: string[] = [];
    const log = await createLogger({ level: 'info', pretty: false, write: (text) => out.push(text) });
    log.debug('hidden');
    log.info({ source: 'eth0' }, 'capturing on eth0');
    log.warn('queue full');
    log.error('cannot open');
    assert.equal(out.length, 3);
    const records = out.map((line) => {
      assert.ok(line.endsWith('\n'), 'one record per line');
      return JSON.parse(line) as Record<string, unknown>;
    });
    assert.deepEqual(
      records.map((r) => [r['level'], r['msg']]),
      [
        [30, 'capturing on eth0'],
        [40, 'queue full'],
        [50, 'cannot open'],
      ],
    );
    assert.equal(records[0]!['source'], 'eth0');
    assert.equal(records[0]!['name'], 'flowprobe');
    assert.equal(typeof records[0]!['time'], 'number');
  });

  it('readable lines (a terminal): level name and message, no JSON, no fields', async () => {
    const out: string[] = [];
    const log = await createLogger({ level: 'debug', pretty: true, write: (text) => out.push(text) });
    log.debug('resolving');
    log.warn({ suppressed: 3 }, 'export to 127.0.0.1:9995 failed');
    assert.equal(out.length, 2);
    assert.match(out[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] DEBUG: resolving\n$/);
    assert.match(out[1]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: export to 127\.0\.0\.1:9995 failed\n$/);
  });

  it('a multi-line message (the statistics) stays one JSON record', async () => {
    const out: string[] = [];
    (await createLogger({ level: 'info', pretty: false, write: (text) => out.push(text) })).info('statistics:\n  packets captured: 3');
    assert.equal(out.length, 1);
    assert.equal(out[0]!.split('\n').length, 2, 'one line and its newline');
    assert.equal((JSON.parse(out[0]!) as { msg: string }).msg, 'statistics:\n  packets captured: 3');
  });
});

// ---------------------------------------------------------------------------

/** Run `fn` with these FLOWPROBE_* variables set (and every other FLOWPROBE_* unset). */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const saved = Object.entries(process.env).filter(([k]) => k.startsWith('FLOWPROBE_'));
  for (const [k] of saved) delete process.env[k];
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const k of Object.keys(process.env)) if (k.startsWith('FLOWPROBE_')) delete process.env[k];
    for (const [k, v] of saved) process.env[k] = v;
  }
}

describe('parseCommandLine: environment', () => {
  it('FLOWPROBE_<LONG NAME> sets every kind of option', () => {
    const o = withEnv(
      {
        FLOWPROBE_INTERFACE: 'eth1',
        FLOWPROBE_COLLECTOR: '127.0.0.1:9995',
        FLOWPROBE_EXPORT_SOURCE: '192.0.2.1',
        FLOWPROBE_ACTIVE_TIMEOUT: '300',
        FLOWPROBE_INACTIVE_TIMEOUT: '2.5',
        FLOWPROBE_TCP_END_TIMEOUT: '0',
        FLOWPROBE_MAX_FLOWS: '1000',
        FLOWPROBE_SNAPLEN: '128',
        FLOWPROBE_BUFFER_SIZE: '1048576',
        FLOWPROBE_NO_PROMISC: 'true',
        FLOWPROBE_ENGINE_TYPE: '1',
        FLOWPROBE_ENGINE_ID: '2',
        FLOWPROBE_EXPORT_RATE: '100',
        FLOWPROBE_EXPORT_QUEUE: '64',
        FLOWPROBE_EXPORT_VERSION: '10',
        FLOWPROBE_SOURCE_ID: '70000',
        FLOWPROBE_TEMPLATE_REFRESH_PACKETS: '5',
        FLOWPROBE_TEMPLATE_REFRESH_SECONDS: '30',
        FLOWPROBE_EXPORT_MAX_BYTES: '1200',
        FLOWPROBE_FILTER: 'not port 22',
        FLOWPROBE_USER: 'nobody',
        FLOWPROBE_GROUP: 'nogroup',
        FLOWPROBE_METRICS_LISTEN: '127.0.0.1:9465',
        FLOWPROBE_METRICS_LINGER: '5',
        FLOWPROBE_LOG_LEVEL: 'warn',
        FLOWPROBE_STATUS_INTERVAL: '30',
      },
      () => parse(),
    );
    assert.deepEqual(o, {
      interfaces: [{ name: 'eth1', ifIndex: undefined }],
      read: undefined,
      collectors: [{ host: '127.0.0.1', port: 9995, version: 10 }],
      exportSource: '192.0.2.1',
      activeTimeout: 300,
      inactiveTimeout: 2.5,
      tcpEndTimeout: 0,
      maxFlows: 1000,
      snaplen: 128,
      bufferSize: 1048576,
      promiscuous: false,
      engineType: 1,
      engineId: 2,
      exportRate: 100,
      exportQueue: 64,
      sourceId: 70000,
      templateRefreshPackets: 5,
      templateRefreshSeconds: 30,
      exportMaxBytes: 1200,
      filter: 'not port 22',
      user: 'nobody',
      group: 'nogroup',
      onInterfaceLoss: 'exit',
      tickMs: 1000,
      metricsListen: { host: '127.0.0.1', port: 9465 },
      metricsLinger: 5,
      logLevel: 'warn',
      statusInterval: 30,
    });
    assert.equal(withEnv({ FLOWPROBE_READ: 'capture.pcap' }, () => parse()).read, 'capture.pcap');
    assert.equal(withEnv({ FLOWPROBE_NO_PROMISC: 'false' }, () => parse()).promiscuous, true);
  });

  it('precedence: flags > environment > config file > defaults, option by option', () => {
    const path = configFile('precedence.json', {
      'active-timeout': 111,
      'inactive-timeout': 22,
      'tcp-end-timeout': 3,
      collector: ['192.0.2.30:3000'],
    });
    const o = withEnv(
      { FLOWPROBE_ACTIVE_TIMEOUT: '222', FLOWPROBE_INACTIVE_TIMEOUT: '33', FLOWPROBE_COLLECTOR: '192.0.2.20:2000' },
      () => parse('-c', path, '--active-timeout', '333', '-n', '192.0.2.10:1000'),
    );
    assert.equal(o.activeTimeout, 333, 'flag beats environment and file');
    assert.equal(o.inactiveTimeout, 33, 'environment beats file');
    assert.equal(o.tcpEndTimeout, 3, 'file beats default');
    assert.equal(o.engineId, DEFAULTS.engineId, 'default when nothing sets it');
    assert.deepEqual(o.collectors, [{ host: '192.0.2.10', port: 1000, version: 5 }], 'a repeatable flag replaces the others, not adds');
    const fromEnv = withEnv({ FLOWPROBE_COLLECTOR: '192.0.2.20:2000' }, () => parse('-c', path));
    assert.deepEqual(fromEnv.collectors, [{ host: '192.0.2.20', port: 2000, version: 5 }]);
  });

  it('FLOWPROBE_CONFIG names the config file; a flag or variable still beats it', () => {
    const path = configFile('from-env.json', { 'active-timeout': 120, 'engine-id': 9 });
    const o = withEnv({ FLOWPROBE_CONFIG: path, FLOWPROBE_ENGINE_ID: '4' }, () => parse('--active-timeout', '60'));
    assert.equal(o.activeTimeout, 60);
    assert.equal(o.engineId, 4);
    assert.equal(withEnv({ FLOWPROBE_CONFIG: path }, () => parse()).engineId, 9);
  });

  it('repeatable options take several values separated by commas or spaces', () => {
    const o = withEnv({ FLOWPROBE_COLLECTOR: '10.0.0.5:9995, [2001:db8::5]:2055 collector.example:1', FLOWPROBE_INTERFACE: 'eth1,7:eth2' }, () =>
      parse(),
    );
    assert.deepEqual(o.collectors, [
      { host: '10.0.0.5', port: 9995, version: 5 },
      { host: '2001:db8::5', port: 2055, version: 5 },
      { host: 'collector.example', port: 1, version: 5 },
    ]);
    assert.deepEqual(o.interfaces, [
      { name: 'eth1', ifIndex: undefined },
      { name: 'eth2', ifIndex: 7 },
    ]);
    assert.deepEqual(parse('-n', '10.0.0.5:9995,10.0.0.6:2055').collectors.length, 2, 'in one flag too');
  });

  it('filter words on the command line replace FLOWPROBE_FILTER', () => {
    assert.equal(withEnv({ FLOWPROBE_FILTER: 'udp' }, () => parse('tcp', 'port', '80')).filter, 'tcp port 80');
    assert.equal(withEnv({ FLOWPROBE_FILTER: 'udp' }, () => parse('-i', 'eth0')).filter, 'udp');
    assert.equal(parse('--filter', 'icmp').filter, 'icmp');
  });

  it('an empty FLOWPROBE_USER means no drop (turns the image default off)', () => {
    assert.equal(withEnv({ FLOWPROBE_USER: '' }, () => parse()).user, undefined);
    assert.equal(withEnv({ FLOWPROBE_USER: '', FLOWPROBE_GROUP: '' }, () => parse()).group, undefined);
  });

  it('an unknown FLOWPROBE_ variable, or a short alias as one, is named', () => {
    withEnv({ FLOWPROBE_ACTIV_TIMEOUT: '5' }, () => rejects([], 'FLOWPROBE_ACTIV_TIMEOUT', 'no such option'));
    withEnv({ FLOWPROBE_N: '127.0.0.1:9995' }, () => rejects([], 'FLOWPROBE_N'));
    withEnv({ FLOWPROBE_HELP: 'true' }, () => rejects([], 'FLOWPROBE_HELP'));
    withEnv({ FLOWPROBE_active_timeout: '5' }, () => rejects([], 'FLOWPROBE_active_timeout'));
  });

  it('booleans take true or false only', () => {
    withEnv({ FLOWPROBE_NO_PROMISC: '1' }, () => rejects([], 'FLOWPROBE_NO_PROMISC', 'true or false', '"1"'));
    withEnv({ FLOWPROBE_NO_PROMISC: 'yes' }, () => rejects([], 'FLOWPROBE_NO_PROMISC'));
  });

  it('a bad value from the environment names the variable; from the file, the file', () => {
    withEnv({ FLOWPROBE_ACTIVE_TIMEOUT: 'soon' }, () => rejects([], '--active-timeout (from FLOWPROBE_ACTIVE_TIMEOUT)', '"soon"'));
    withEnv({ FLOWPROBE_COLLECTOR: 'nowhere' }, () => rejects([], '--collector (from FLOWPROBE_COLLECTOR)', 'nowhere'));
    withEnv({ FLOWPROBE_MAX_FLOWS: '' }, () => rejects([], '--max-flows (from FLOWPROBE_MAX_FLOWS)'));
    // the flag's value is the bad one: no mention of the variable
    withEnv({ FLOWPROBE_ENGINE_ID: '3' }, () => {
      assert.throws(() => parseCommandLine(['--engine-id', '300']), (e: Error) => /^--engine-id: /.test(e.message));
    });
    const path = configFile('bad-rate.json', { 'export-rate': 0 });
    rejects(['-c', path], `--export-rate (from ${path})`);
  });

  it('--group needs --user; --user and --group are kept as given', () => {
    rejects(['--group', 'nogroup'], '--group', '--user');
    const o = parse('--user', 'nobody', '--group', 'nogroup');
    assert.equal(o.user, 'nobody');
    assert.equal(o.group, 'nogroup');
    assert.equal(parse('--user', '65534').user, '65534');
  });

  it('--help still answers when a variable is wrong', () => {
    const help = withEnv({ FLOWPROBE_COLECTOR: 'x' }, () => parseCommandLine(['--help']));
    assert.equal(help.kind, 'exit');
  });

  it('--help names the environment variables', () => {
    const help = parseCommandLine(['--help']);
    assert.ok(help.kind === 'exit' && help.output.includes('FLOWPROBE_ACTIVE_TIMEOUT'));
    assert.ok(help.kind === 'exit' && help.output.includes('--user'));
  });
});
