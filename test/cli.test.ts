/** The command line as a user meets it: errors, file-mode edge cases, stdin, stopping. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Nfcapd } from './helpers/nfcapd.js';
import { CLI, PROJECT_ROOT, runProbe, startProbe, stopped, waitFor } from './helpers/processes.js';
import { pcapBytes, udpFrame, writePcap } from './helpers/pcap-writer.js';
import { writeSyntheticCapture } from './helpers/synthetic-pcap.js';

const work = mkdtempSync(join(tmpdir(), 'flowprobe-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
const basic = join(PROJECT_ROOT, 'test/fixtures/basic.pcap');

function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

describe('bad options: one line naming the option, exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['--active-timeout=-5', '-r', basic], /--active-timeout.*-5/],
    [['--inactive-timeout', 'soon', '-r', basic], /--inactive-timeout.*soon/],
    [['-n', '127.0.0.1:0', '-r', basic], /--collector.*port.*0/],
    [['-n', '127.0.0.1', '-r', basic], /--collector.*HOST:PORT/],
    [['-n', '[::1]:99999', '-r', basic], /--collector/],
    [['--engine-id', '256', '-r', basic], /--engine-id.*256/],
    [['--max-flows', '0', '-r', basic], /--max-flows/],
    [['--frobnicate', '-r', basic], /frobnicate/i],
    [['-r', basic, '-i', 'lo'], /--read and --interface/],
    [['--export-source', 'not-an-address', '-r', basic], /--export-source/],
  ];
  for (const [args, pattern] of cases) {
    test(args.filter((a) => a !== basic && a !== '-r').join(' '), async () => {
      const result = await runProbe(args);
      assert.equal(result.code, 2, result.stderr);
      assertOneLineError(result.stderr, pattern);
      assert.equal(result.stdout, '');
    });
  }

  test('a config file with an unknown key, and one that is not JSON', async () => {
    const unknown = join(work, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ 'active-timeout': 60, 'colour': 'blue' }));
    let result = await runProbe(['-c', unknown, '-r', basic]);
    assert.equal(result.code, 2);
    assertOneLineError(result.stderr, /colour/);
    const broken = join(work, 'broken.json');
    writeFileSync(broken, '{ "active-timeout": ');
    result = await runProbe(['-c', broken, '-r', basic]);
    assert.equal(result.code, 2);
    assertOneLineError(result.stderr, /--config: .*broken\.json is not valid JSON/);
  });

  test('--help and --version exit 0 on stdout', async () => {
    const help = await runProbe(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--collector/);
    const version = await runProbe(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('capture files a user might hand it', () => {
  test('a missing file: one line, exit 1', async () => {
    const result = await runProbe(['-r', join(work, 'nope.pcap')]);
    assert.equal(result.code, 1);
    assertOneLineError(result.stderr, /nope\.pcap: No such file/);
  });

  test('not a capture file: one line, exit 1', async () => {
    const text = join(work, 'text.pcap');
    writeFileSync(text, 'this is not a capture file\n'.repeat(10));
    const result = await runProbe(['-r', text]);
    assert.equal(result.code, 1);
    assertOneLineError(result.stderr, /text\.pcap: .*(format|magic)/i);
  });

  test('an empty file: one line, exit 1', async () => {
    const empty = join(work, 'empty.pcap');
    writeFileSync(empty, '');
    const result = await runProbe(['-r', empty]);
    assert.equal(result.code, 1);
    assertOneLineError(result.stderr, /empty\.pcap/);
  });

  test('an unsupported link type is named', async () => {
    const wifi = join(work, 'wifi.pcap');
    writePcap(wifi, 105, [{ time: 1767225600, frame: new Uint8Array(40) }]);
    const result = await runProbe(['-r', wifi]);
    assert.equal(result.code, 1);
    assertOneLineError(result.stderr, /unsupported IEEE 802\.11 \(link type 105\)/);
  });

  test('a truncated file: flows read so far are exported, then one error line and exit 1', async () => {
    const whole = readFileSync(basic);
    const cut = join(work, 'cut.pcap');
    writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2) + 7));
    const result = await runProbe(['-r', cut]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /cut\.pcap: read error after \d+ packets \(truncated or corrupt capture file\)/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
    assert.ok(result.stdout.split('\n').length > 3, 'the flows before the cut were printed');
  });

  test('stdin (-r -) gives the same flows as the file', async () => {
    const fromFile = await runProbe(['-r', basic]);
    const child = spawn(process.execPath, [CLI, '-r', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    createReadStream(basic).pipe(child.stdin);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    assert.equal(stdout, fromFile.stdout);
    assert.ok(stdout.length > 0);
  });
});

describe('file mode runs on capture time', () => {
  test('timeouts fire in capture time and record times are capture times', async () => {
    const t0 = 1767225600; // 2026-01-01T00:00:00Z
    const a = udpFrame('192.0.2.1', '198.51.100.1', 1000, 53, 10);
    const frames = [
      { time: t0, frame: a },
      { time: t0 + 1, frame: a },
      { time: t0 + 2, frame: a },
      // 20 s of silence: with --inactive-timeout 15 the first record closes
      { time: t0 + 22, frame: a },
      { time: t0 + 23, frame: a },
    ];
    const file = join(work, 'gap.pcap');
    writePcap(file, 1, frames);
    const result = await runProbe(['-r', file, '--inactive-timeout', '15']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n').slice(1);
    assert.equal(lines.length, 2, result.stdout);
    assert.match(lines[0]!, /^2026-01-01 00:00:00\.000 +2\.000 UDP .* 3 +114$/);
    assert.match(lines[1]!, /^2026-01-01 00:00:22\.000 +1\.000 UDP .* 2 +76$/);
    assert.match(result.stderr, /inactive 1, .*shutdown 1/);
  });

  test('out-of-order timestamps never move record times back', async () => {
    const t0 = 1767225600;
    const a = udpFrame('192.0.2.1', '198.51.100.1', 1000, 53, 10);
    const file = join(work, 'backwards.pcap');
    writeFileSync(file, pcapBytes(1, [{ time: t0 + 5, frame: a }, { time: t0, frame: a }, { time: t0 + 6, frame: a }]));
    const result = await runProbe(['-r', file]);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /2026-01-01 00:00:05\.000 +1\.000 UDP .* 3 /);
    assert.match(result.stderr, /out of time order .*: 1/);
  });
});

describe('stopping', () => {
  test('SIGTERM in the middle of a file: reading stops there and every flow read is exported', async () => {
    // Mid-file by construction, however fast or slow the machine: with a cache of
    // 1024 flows, 100k flows give about one record per packet; the exporter sends
    // at most 100 datagrams (3000 records) a second and the reader waits while more
    // than 30 records are unsent (--export-queue 64), so reading these 400k packets
    // takes at least 130 s. A second collector (this test's socket) shows when the
    // first records have left, i.e. when packets have been read.
    const packets = 400_000;
    const big = join(work, 'big.pcap');
    writeSyntheticCapture({ path: big, packets, flows: 100_000, seed: 5 });
    const watcher = createSocket('udp4');
    let watched = 0;
    watcher.on('message', () => watched++);
    await new Promise<void>((resolve) => watcher.bind(0, '127.0.0.1', resolve));
    const nfcapd = await Nfcapd.start();
    const probe = startProbe([
      '-r', big, '-n', `127.0.0.1:${nfcapd.port}`, '-n', `127.0.0.1:${watcher.address().port}`,
      '-m', '1024', '--export-rate', '100', '--export-queue', '64',
    ]);
    try {
      await waitFor(() => watched > 0 || probe.child.exitCode !== null, 60_000, 'the first datagram');
      const signalledAt = performance.now();
      probe.child.kill('SIGTERM');
      const result = await probe.result;
      const stopMs = performance.now() - signalledAt;
      assert.equal(result.code, 0, result.stderr);
      const captured = Number(/packets captured: (\d+)/.exec(result.stderr)?.[1]);
      assert.ok(captured > 0 && captured < packets, `stopped part way (${captured} of ${packets} packets)`);
      const sent = Number(/(\d+) records sent/.exec(result.stderr)?.[1]);
      const created = Number(/flows created: (\d+)/.exec(result.stderr)?.[1]);
      assert.equal(sent, created, 'every flow created was exported');
      await nfcapd.stop();
      const stat = await nfcapd.stat();
      assert.equal(stat['Flows'], sent);
      assert.equal(stat['Packets'], captured, 'every packet read is in a record');
      // a figure to read, not a bound: how long the stop took here
      process.stdout.write(`# file stop: ${stopMs.toFixed(0)} ms after SIGTERM, ${captured} packets, ${sent} records\n`);
    } finally {
      await stopped(probe);
      await nfcapd.dispose();
      watcher.close();
    }
  });
});
