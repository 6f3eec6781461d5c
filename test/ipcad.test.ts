/**
 * IPCAD compatibility with real parts: flowprobe runs the reference ipcad.conf
 * (interface renamed, paths in a temporary directory) in a network namespace,
 * traffic comes over a veth pair, and Debian's real rsh client drives it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Nfcapd } from './helpers/nfcapd.js';
import { VethPair } from './helpers/netns.js';
import { CLI, run, runProbe, startProbe, stopped, waitFor, type Running } from './helpers/processes.js';
import { needsRoot, needsTool } from './helpers/requirements.js';
import { accountingRows, rsh } from './helpers/rsh.js';
import { copyRuntimeTree, type RuntimeTree } from './helpers/runtime-tree.js';

const skip = needsRoot('network namespaces and reserved ports') || needsTool('/usr/bin/netkit-rsh', 'rsh-client');

function referenceConfig(iface: string, dir: string): string {
  return `capture-ports disable;
interface ${iface};
rsh enable at 127.0.0.1;
rsh root@127.0.0.1 admin;
dumpfile = ipcad.dump;
chroot = ${dir};
memory_limit = 1m;
netflow export destination 127.0.0.1 9995
`;
}

/** A counter of the Tcp: lines of /proc/net/snmp (names on one line, values on the next). */
function tcpCounter(snmp: { stdout: string }, name: string): number {
  const [names, values] = snmp.stdout.split('\n').filter((l) => l.startsWith('Tcp:')).map((l) => l.split(/\s+/));
  const at = names?.indexOf(name) ?? -1;
  assert.ok(at > 0 && values !== undefined, `Tcp ${name} in /proc/net/snmp`);
  return Number(values[at]);
}

describe('flowprobe ipcad with the reference ipcad.conf, driven by the real rsh client', { skip }, () => {
  const net = new VethPair('i');
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-'));
  const conf = join(work, 'ipcad.conf');
  const inB = net.exec(net.nsB);
  const dump = join(work, 'ipcad.dump');
  let probe: Running | undefined;
  let nfcapd: Nfcapd | undefined;
  before(async () => {
    net.create();
    writeFileSync(conf, referenceConfig(net.ifB, work));
    nfcapd = await Nfcapd.start({ prefix: inB, port: 9995 });
  });
  after(async () => {
    if (probe !== undefined && probe.child.exitCode === null) probe.child.kill('SIGKILL');
    await nfcapd?.dispose();
    net.remove();
    rmSync(work, { recursive: true, force: true });
  });
  const icmpBytes = 10 * 84 + 5 * 1028;

  async function ping(count: number, size: number): Promise<void> {
    const result = await run('ip', ['netns', 'exec', net.nsA, 'ping', '-q', '-c', String(count), '-i', '0.2', '-s', String(size), net.addrB]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  }

  async function show(command = 'show ip accounting'): Promise<string> {
    const result = await rsh('127.0.0.1', command, { prefix: inB });
    assert.equal(result.code, 0, `rsh ${command}: ${result.stderr}`);
    return result.stdout;
  }

  /** Wait until the table holds what was sent (the capture reads every 2 ms; no timing is asserted). */
  async function tableSettles(expected: Record<string, { packets: number; bytes: number }>, command = 'show ip accounting'): Promise<Map<string, { packets: number; bytes: number }>> {
    let last = new Map<string, { packets: number; bytes: number }>();
    const wanted = JSON.stringify(Object.entries(expected).sort());
    await waitFor(
      async () => {
        const rows = accountingRows(await show(command));
        last = new Map([...rows].map(([k, r]) => [k, { packets: r.packets, bytes: r.bytes }]));
        return JSON.stringify([...last].sort()) === wanted;
      },
      10_000,
      `the table to hold ${wanted}`,
    ).catch(() => undefined);
    return last;
  }

  test('start-up messages in IPCAD\'s spirit; the table matches the traffic sent', async () => {
    probe = startProbe(['ipcad', '-r', '-s', '-c', conf, '--api-listen', '127.0.0.1:9465'], { prefix: inB });
    const startupMessages = [
      new RegExp(`Opening ${net.ifB}\\.\\.\\. Initialized`),
      /Configured NetFlow destination at 127\.0\.0\.1:9995/,
      /the process is NOT confined/,
      /Configured RSH Server listening at 127\.0\.0\.1/,
      /serving metrics on http:\/\/127\.0\.0\.1:9464\/metrics \(\/healthz, \/readyz\)/,
      /serving the read-only JSON API on http:\/\/127\.0\.0\.1:9465\/api\/v1\//,
      /root or CAP_NET_BIND_SERVICE/,
      // -r on a first start: no dump yet, said in IPCAD's words, and the probe goes on
      new RegExp(`Can't open dump file ${dump}: No such file or directory`),
    ];
    // each log line is its own write: wait for all of them, not just one
    await waitFor(() => startupMessages.every((p) => p.test(probe!.stderrSoFar())) || probe!.child.exitCode !== null, 15_000, 'the start-up messages');
    const started = probe.stderrSoFar();
    for (const pattern of startupMessages) assert.match(started, pattern);

    // 10 echo requests of 84 IP bytes and 5 of 1028; as many replies
    await ping(10, 56);
    await ping(5, 1000);
    const expected = {
      [`${net.addrA} ${net.addrB}`]: { packets: 15, bytes: icmpBytes },
      [`${net.addrB} ${net.addrA}`]: { packets: 15, bytes: icmpBytes },
    };
    assert.deepEqual(Object.fromEntries(await tableSettles(expected)), expected);
    const text = await show('sh ip acc');
    assert.match(text, /^\s+Source\s+Destination\s+Packets\s+Bytes\n/);
    for (const line of [
      /^Accounting data age is \d+$/m,
      /^Accounting data age exact \d+$/m,
      /^Accounting data saved 0$/m,
      /^Accounting threshold exceeded for 0 packets and 0 bytes$/m,
      new RegExp(`^Interface ${net.ifB}: received \\d+, 5 m average \\d+ bytes/sec, \\d+ pkts/sec, dropped \\d+$`, 'm'),
      /^Flow entries made: 2$/m,
      /^NetFlow cached flows: 2$/m,
      /^Memory usage: 0% \(\d+ from 1048576\)$/m,
      /^Free slots for rsh clients: 9$/m,
      /^IPCAD uptime is \d+ minutes?$/m,
      /^System uptime is /m,
    ]) {
      assert.match(text, line);
    }
  });

  test('a user not in the access lines is refused; wrong commands get one line on stderr', async () => {
    const denied = await rsh('127.0.0.1', 'show ip accounting', { prefix: inB, user: 'nobody' });
    assert.notEqual(denied.code, 0);
    assert.equal(denied.stdout, '');
    assert.match(denied.stderr, /Permission denied\./);
    const wrong = await rsh('127.0.0.1', 'show ip frobnicate', { prefix: inB });
    assert.equal(wrong.stdout, '');
    assert.match(wrong.stderr, /^% Invalid input "frobnicate" after "show ip"; expected accounting, cache\n$/);
  });

  test('show ip cache flow, show interface, stat, show version; the read-only commands as JSON on their own listener', async () => {
    const cache = await show('sh ip cache flow');
    assert.match(cache, /^IP Flow Switching Cache, 2 active flows, capacity 262144$/m);
    assert.match(cache, new RegExp(`^${net.ifB}\\s+${net.addrA.replace(/\./g, '\\.')}\\s+Null\\s+${net.addrB.replace(/\./g, '\\.')}\\s+01 0000 0800\\s+15\\s+${icmpBytes}$`, 'm'));
    const iface = await show(`show interface ${net.ifB}`);
    assert.match(iface, new RegExp(`^${net.ifB} is up, line protocol is up$`, 'm'));
    assert.match(iface, new RegExp(`Internet address is ${net.addrB.replace(/\./g, '\\.')}/24, mask 255\\.255\\.255\\.0`));
    assert.match(iface, /Hardware is Ethernet, address is [0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}/);
    assert.match(iface, /^\s+\d+ packets input, \d+ bytes, \d+ dropped$/m);
    assert.match(iface, /^ {2}5 minute input rate \d+ bits\/sec, \d+ packets\/sec$/m);
    assert.match((await rsh('127.0.0.1', 'show interface nosuch0', { prefix: inB })).stderr, /% No such interface: nosuch0/);
    const stat = await show('stat');
    assert.match(stat, /^Flow entries made: 2$/m);
    assert.match(stat, /^Free slots for rsh clients: 9$/m);
    assert.match(stat, /^rsh: \d+ connections \(served \d+, denied 1, unreserved_port 0/m);
    assert.match(await show('show version'), /^flowprobe \d+\.\d+\.\d+, IPCAD-compatible/);

    // the same table as JSON, on the API's own listener (inside the namespace)
    const inNs = (url: string, method = 'GET') =>
      run('ip', ['netns', 'exec', net.nsB, process.execPath, '-e', `
        const http = require('node:http');
        const req = http.request(${JSON.stringify(url)}, { method: ${JSON.stringify(method)} }, (res) => {
          let body = ''; res.on('data', (d) => (body += d));
          res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
        });
        req.end();`]).then((r) => JSON.parse(r.stdout) as { status: number; body: string });
    const json = await inNs('http://127.0.0.1:9465/api/v1/accounting');
    assert.equal(json.status, 200);
    const body = JSON.parse(json.body) as { view: string; total: number; limit: number; entries: { source: string; destination: string; packets: number; bytes: number }[] };
    assert.equal(body.view, 'active');
    assert.equal(body.total, 2);
    assert.equal(body.limit, 1000, 'at most 1000 rows unless ?limit= asks for more');
    assert.deepEqual(
      body.entries.sort((a, b) => a.source.localeCompare(b.source)),
      [
        { source: net.addrA, destination: net.addrB, packets: 15, bytes: icmpBytes },
        { source: net.addrB, destination: net.addrA, packets: 15, bytes: icmpBytes },
      ],
    );
    const stat2 = JSON.parse((await inNs('http://127.0.0.1:9465/api/v1/stat')).body) as { accounting: { entries: number; memoryLimit: number } };
    assert.equal(stat2.accounting.entries, 2);
    assert.equal(stat2.accounting.memoryLimit, 1048576);
    const flows = JSON.parse((await inNs('http://127.0.0.1:9465/api/v1/cache')).body) as { flows: number; limit: number; entries: { family: number }[] };
    // IPv4's two flows, and whatever IPv6 the veth pair's own neighbour discovery made (listed too, with its family)
    assert.equal(flows.entries.filter((e) => e.family === 4).length, 2);
    assert.ok(flows.entries.every((e) => e.family === 4 || e.family === 6));
    assert.equal(flows.flows, flows.entries.length);
    assert.equal(flows.limit, 1000);
    assert.equal((JSON.parse((await inNs('http://127.0.0.1:9465/api/v1/cache?limit=1')).body) as { entries: unknown[] }).entries.length, 1);
    assert.equal((await inNs('http://127.0.0.1:9465/api/v1/cache?limit=100001')).status, 400);
    assert.equal((await inNs(`http://127.0.0.1:9465/api/v1/interface/${net.ifB}`)).status, 200);
    // the metrics listener serves no table (it may be opened to a remote Prometheus)
    for (const path of ['/api/v1/accounting', '/api/v1/cache', '/api/v1/stat']) {
      const onMetrics = await inNs(`http://127.0.0.1:9464${path}`);
      assert.equal(onMetrics.status, 404, path);
      assert.doesNotMatch(onMetrics.body, new RegExp(net.addrA.replace(/\./g, '\\.')), path);
    }
    // nothing that changes state is on the API's listener
    assert.equal((await inNs('http://127.0.0.1:9465/api/v1/accounting', 'POST')).status, 405);
    assert.equal((await inNs('http://127.0.0.1:9465/api/v1/clear')).status, 404);
    assert.equal((await inNs('http://127.0.0.1:9465/api/v1/shutdown')).status, 404);
    assert.equal(accountingRows(await show()).size, 2, 'the table is still there');
    // and as Prometheus metrics, beside the probe's own
    const metrics = (await inNs('http://127.0.0.1:9464/metrics')).body;
    assert.match(metrics, /^flowprobe_accounting_entries\{table="active"\} 2$/m);
    assert.match(metrics, /^flowprobe_accounting_memory_limit_bytes 1048576$/m);
    assert.match(metrics, /^flowprobe_accounting_unaccounted_packets_total 0$/m);
    assert.match(metrics, /^flowprobe_rsh_connections_total\{outcome="denied"\} 1$/m);
    assert.match(metrics, /^flowprobe_rsh_commands_total\{command="show-accounting"\} [1-9]\d*$/m);
    assert.match(metrics, /^flowprobe_rsh_commands_total\{command="invalid"\} 1$/m);
  });

  test('clear ip accounting empties the table into the checkpoint', async () => {
    assert.equal(await show('clear ip accounting'), 'IP accounting cleared\n');
    assert.equal(accountingRows(await show()).size, 0);
    const checkpoint = accountingRows(await show('show ip accounting checkpoint'));
    assert.deepEqual(
      Object.fromEntries([...checkpoint].map(([k, r]) => [k, { packets: r.packets, bytes: r.bytes }])),
      {
        [`${net.addrA} ${net.addrB}`]: { packets: 15, bytes: icmpBytes },
        [`${net.addrB} ${net.addrA}`]: { packets: 15, bytes: icmpBytes },
      },
    );
    await ping(3, 56);
    const now = { [`${net.addrA} ${net.addrB}`]: { packets: 3, bytes: 252 }, [`${net.addrB} ${net.addrA}`]: { packets: 3, bytes: 252 } };
    assert.deepEqual(Object.fromEntries(await tableSettles(now)), now);
  });

  test('dump, restore and import over rsh use the dump file only: other names are refused and touch nothing', async () => {
    const confText = readFileSync(conf, 'utf8');
    const files = readdirSync(work).sort();
    for (const command of ['restore ipcad.conf', 'import ipcad.conf', 'dump ipcad.conf', `restore ${conf}`, 'dump ../escape.dump', 'dump copy.dump', 'import /etc/passwd']) {
      const refused = await rsh('127.0.0.1', command, { prefix: inB });
      assert.equal(refused.stdout, '', command);
      const name = command.split(' ')[1]!;
      assert.equal(refused.stderr, `% ${name}: refused: dump, restore and import use only the dump file ${dump} (dumpfile in ipcad.conf); give no file name\n`, command);
    }
    assert.equal(readFileSync(conf, 'utf8'), confText, 'ipcad.conf untouched');
    assert.deepEqual(readdirSync(work).sort(), files, 'no file made, renamed or removed');
    assert.equal(existsSync(join(work, '..', 'escape.dump')), false);

    // the dump file itself, by no name or by its own
    assert.equal(await show('dump'), `Dump saved to ${dump}: 2 entries\n`);
    assert.equal(await show('dump ipcad.dump'), `Dump saved to ${dump}: 2 entries\n`);
    assert.equal(statSync(dump).mode & 0o777, 0o600, 'readable by its owner only');
    const saved = readFileSync(dump, 'utf8');
    assert.equal(accountingRows(saved).get(`${net.addrA} ${net.addrB}`)?.packets, 3);
    assert.match(saved, /^Accounting data saved \d+$/m);
    assert.deepEqual(readdirSync(work).filter((f) => f.includes('.tmp')), [], 'no temporary file left');

    // a symbolic link at the dump file's path is neither followed nor replaced
    rmSync(dump);
    symlinkSync(conf, dump);
    try {
      assert.equal((await rsh('127.0.0.1', 'dump', { prefix: inB })).stderr, `% Can't write dump file ${dump}: it is a symbolic link (not replaced)\n`);
      assert.equal((await rsh('127.0.0.1', 'restore', { prefix: inB })).stderr, `% Can't open dump file ${dump}: it is a symbolic link (not followed)\n`);
      assert.equal(readFileSync(conf, 'utf8'), confText, 'what the link points to is untouched');
      assert.ok(lstatSync(dump).isSymbolicLink(), 'the link stays as it was');
    } finally {
      rmSync(dump);
    }
  });

  test('shutdown flushes NetFlow to nfcapd, saves the dump (-s) and exits 0', async () => {
    assert.equal(await show('shutdown'), 'Shutdown process started\n');
    const result = await probe!.result;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`Accounting data saved to ${dump}: 2 entries`));
    assert.deepEqual(readdirSync(work).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
    assert.equal(statSync(dump).mode & 0o777, 0o600);
    const sentRecords = Number(/(\d+) records sent/.exec(result.stderr)?.[1]);
    await nfcapd!.stop();
    const totals = await nfcapd!.totals();
    // echo requests 8/0 (port 2048) and replies 0/0, every one of the 18 each way
    assert.deepEqual(totals.get(`${net.addrA} ${net.addrB} 1 0 2048`), { packets: 18, octets: icmpBytes + 252 });
    assert.deepEqual(totals.get(`${net.addrB} ${net.addrA} 1 0 0`), { packets: 18, octets: icmpBytes + 252 });
    assert.equal((await nfcapd!.stat())['Flows'], sentRecords);
    const rows = accountingRows(readFileSync(dump, 'utf8'));
    assert.deepEqual([...rows.values()].map((r) => [r.source, r.destination, r.packets, r.bytes]).sort(), [
      [net.addrA, net.addrB, 3, 252],
      [net.addrB, net.addrA, 3, 252],
    ]);
  });

  test('the dump survives a restart: started with -r, the same table', async () => {
    probe = startProbe(['ipcad', '-r', '-c', conf], { prefix: inB });
    await waitFor(() => probe!.stderrSoFar().includes('Configured RSH Server listening') || probe!.child.exitCode !== null, 15_000, 'the rsh server');
    await waitFor(() => probe!.stderrSoFar().includes('elements got from') || probe!.child.exitCode !== null, 10_000, 'the dump to be imported');
    assert.match(probe.stderrSoFar(), new RegExp(`2 elements got from ${dump}`));
    const restored = accountingRows(await show());
    assert.deepEqual([...restored.values()].map((r) => [r.source, r.destination, r.packets, r.bytes]).sort(), [
      [net.addrA, net.addrB, 3, 252],
      [net.addrB, net.addrA, 3, 252],
    ]);
    probe.child.kill('SIGTERM');
    const result = await probe.result;
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /Accounting data saved to/, 'no -s: nothing saved');
  });
});

describe('flowprobe ipcad -d, a denied host, view-only, a corrupt dump', { skip }, () => {
  const net = new VethPair('j');
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-d-'));
  const conf = join(work, 'ipcad.conf');
  const pidFile = join(work, 'ipcad.pid');
  const inB = net.exec(net.nsB);
  let pid: number | undefined;
  before(() => {
    net.create();
    writeFileSync(
      conf,
      `interface ${net.ifB};
       rsh enable at 0.0.0.0;
       rsh root@127.0.0.1 view-only;
       dumpfile = ${join(work, 'ipcad.dump')};
       pidfile = ${pidFile};
       rsh ttl = 2;`,
    );
    writeFileSync(join(work, 'ipcad.dump'), ' 10.0.0.1 10.0.0.2 5 500\ngarbage here\n');
  });
  after(() => {
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    net.remove();
    rmSync(work, { recursive: true, force: true });
  });

  function alive(p: number): boolean {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  }

  test('-d: the parent exits once the detached child is up; the pid file names the child', async () => {
    // spawned by hand: the child keeps the parent's stderr, so wait for the parent's exit, not its pipes
    const parent = spawn(inB[0]!, [...inB.slice(1), process.execPath, CLI, 'ipcad', '-dr', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    parent.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => parent.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, stderr);
    pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(Number.isInteger(pid) && pid !== parent.pid && alive(pid), `pid file: ${pid}`);
    assert.match(stderr, new RegExp(`running in the background as pid ${pid} \\(pid file ${pidFile}\\)`));
    // the known-but-not-done statement and the corrupt dump, each one line
    assert.match(stderr, /\\"rsh ttl = 2\\" is accepted but not carried out/); // a JSON log line
    assert.match(stderr, /ipcad\.dump:2: not an accounting entry: \\"garbage here\\"; kept as ipcad\.dump\.corrupt-\d+, nothing restored/);
    assert.ok(readdirSync(work).some((f) => f.startsWith('ipcad.dump.corrupt-')), 'the corrupt dump is kept aside');
    assert.equal(existsSync(join(work, 'ipcad.dump')), false);
  });

  test('a host not in the access lines is refused before any connect-back; view-only may look but not clear or shut down', async () => {
    // The client's namespace counts the connections it accepted (the kernel's TcpPassiveOpens):
    // its stderr listener is the only thing listening there, so the count is the connect-backs.
    const passiveOpens = async (): Promise<number> => tcpCounter(await run('ip', ['netns', 'exec', net.nsA, 'cat', '/proc/net/snmp']), 'PassiveOpens');
    const opensBefore = await passiveOpens();
    const fromA = await rsh(net.addrB, 'show ip accounting', { prefix: net.exec(net.nsA) });
    assert.notEqual(fromA.code, 0);
    assert.equal(fromA.stdout, '');
    assert.equal(await passiveOpens(), opensBefore, `no connection back to a denied host (client said: ${fromA.stderr.trim()})`);
    // the client waited for the connect-back that never came, and says so
    assert.match(fromA.stderr, /protocol failure in circuit setup/);
    assert.match((await rsh('127.0.0.1', 'stat', { prefix: inB })).stdout, /^Free slots for rsh clients: 9$/m);
    const clear = await rsh('127.0.0.1', 'clear ip accounting', { prefix: inB });
    assert.match(clear.stderr, /% Permission denied: "clear ip accounting" needs the default level; root@127\.0\.0\.1 has view-only/);
    const shutdown = await rsh('127.0.0.1', 'shutdown', { prefix: inB });
    assert.match(shutdown.stderr, /needs the admin level/);
    assert.ok(alive(pid!));
    // the refusal is counted as denied
    assert.match((await rsh('127.0.0.1', 'stat', { prefix: inB })).stdout, /^rsh: \d+ connections \(served \d+, denied 1, /m);
  });

  test('SIGTERM ends the detached probe, which removes its pid file', async () => {
    process.kill(pid!, 'SIGTERM');
    await waitFor(() => !alive(pid!), 10_000, 'the detached probe to exit');
    assert.equal(existsSync(pidFile), false);
  });
});

describe('flowprobe ipcad with uid/gid: every listener first, then the drop; rsh still answers', { skip }, () => {
  const net = new VethPair('u');
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-uid-'));
  const conf = join(work, 'ipcad.conf');
  const dump = join(work, 'ipcad.dump');
  const pidFile = join(work, 'ipcad.pid');
  const inB = net.exec(net.nsB);
  const NOBODY = 65534;
  let probe: Running | undefined;
  /** the connect-back helper runs as nobody: it must read dist/, which a root-only work tree would not let it */
  let app: RuntimeTree | undefined;
  before(() => {
    net.create();
    app = copyRuntimeTree();
    writeFileSync(
      conf,
      `interface ${net.ifB};
       rsh enable at 127.0.0.1;
       rsh root@127.0.0.1 admin;
       dumpfile = ipcad.dump;
       chroot = ${work};
       pidfile = ${pidFile};
       uid = ${NOBODY};
       gid = ${NOBODY};`,
    );
    // the dump's directory belongs to the user the probe becomes, as README says
    chownSync(work, NOBODY, NOBODY);
  });
  after(async () => {
    if (probe !== undefined) await stopped(probe);
    net.remove();
    app?.remove();
    rmSync(work, { recursive: true, force: true });
  });

  function status(pid: number): Record<string, string> {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Object.fromEntries(text.split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  }

  test('starts as root, binds rsh on 514 and writes the pid file, then runs as nobody; the real rsh client is answered', async () => {
    probe = startProbe(['ipcad', '-s', '-c', conf], { prefix: inB, cli: app!.cli });
    await waitFor(() => /dropped privileges/.test(probe!.stderrSoFar()) || probe!.child.exitCode !== null, 30_000, 'the drop');
    const started = probe.stderrSoFar();
    assert.match(started, /Configured RSH Server listening at 127\.0\.0\.1/);
    assert.match(started, /dropped privileges: now user nobody \(uid 65534\), group nogroup \(gid 65534\), no supplementary groups/);
    const helper = /connect-backs go through a helper process \(pid (\d+), uid 65534, capabilities net_bind_service\)/.exec(started);
    assert.ok(helper, started);
    assert.equal(readFileSync(pidFile, 'utf8'), `${probe.child.pid}\n`, 'written before the drop');

    // the probe: nobody, no capability left, on every thread
    for (const task of readdirSync(`/proc/${probe.child.pid}/task`)) {
      const t = status(Number(task));
      assert.equal(t['Uid'], `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`, `task ${task}`);
      assert.equal(t['CapEff'], '0000000000000000', `task ${task}`);
    }
    // the helper: nobody too, with CAP_NET_BIND_SERVICE (bit 10) and nothing else, for good
    const h = status(Number(helper[1]));
    assert.equal(h['Uid'], `${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`);
    for (const set of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb']) assert.equal(h[set], '0000000000000400', set);
    assert.equal(h['NoNewPrivs'], '1');

    const ping = await run('ip', ['netns', 'exec', net.nsA, 'ping', '-q', '-c', '4', '-i', '0.2', net.addrB]);
    assert.equal(ping.code, 0, ping.stderr);
    let table = new Map<string, { packets: number }>();
    await waitFor(
      async () => {
        const answer = await rsh('127.0.0.1', 'show ip accounting', { prefix: inB });
        assert.equal(answer.code, 0, `rsh: ${answer.stderr}`);
        table = accountingRows(answer.stdout);
        return table.get(`${net.addrA} ${net.addrB}`)?.packets === 4;
      },
      10_000,
      'the four echo requests in the table',
    );
    assert.equal(table.get(`${net.addrB} ${net.addrA}`)?.packets, 4);
    assert.match((await rsh('127.0.0.1', 'stat', { prefix: inB })).stdout, /^rsh: \d+ connections \(served \d+, denied 0, unreserved_port 0, bad_stderr_port 0, connect_back_failed 0,/m);

    // the dump, written by nobody
    assert.equal((await rsh('127.0.0.1', 'dump', { prefix: inB })).stdout, `Dump saved to ${dump}: 2 entries\n`);
    assert.equal(statSync(dump).uid, NOBODY);
    assert.equal(statSync(dump).mode & 0o777, 0o600);

    assert.equal((await rsh('127.0.0.1', 'shutdown', { prefix: inB })).stdout, 'Shutdown process started\n');
    const result = await probe.result;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`Accounting data saved to ${dump}: 2 entries`));
    assert.equal(existsSync(pidFile), false, 'removed at exit (its directory is nobody\'s)');
    await waitFor(() => !existsSync(`/proc/${helper[1]}`), 10_000, 'the helper to go with the probe');
  });
});

describe('flowprobe ipcad: mistakes in the command line and the configuration', () => {
  const work = mkdtempSync(join(tmpdir(), 'flowprobe-ipcad-cli-'));
  after(() => rmSync(work, { recursive: true, force: true }));

  function oneLine(stderr: string, pattern: RegExp): void {
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
    assert.match(lines[0]!, pattern);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  }

  test('an unknown statement: file, line and statement, exit 2', async () => {
    const bad = join(work, 'bad.conf');
    writeFileSync(bad, 'interface eth0;\nrsh enable at 127.0.0.1;\nfrobnicate 7;\n');
    const result = await runProbe(['ipcad', '-c', bad]);
    assert.equal(result.code, 2);
    oneLine(result.stderr, new RegExp(`^flowprobe: ${bad}:3: unknown statement "frobnicate 7"$`));
  });

  test('a malformed statement, a missing file, an unknown option: exit 2', async () => {
    const bad = join(work, 'malformed.conf');
    writeFileSync(bad, 'interface eth0;\nmemory_limit = plenty;\n');
    let result = await runProbe(['ipcad', '-c', bad]);
    assert.equal(result.code, 2);
    oneLine(result.stderr, /malformed\.conf:2: malformed statement "memory_limit = plenty"/);
    result = await runProbe(['ipcad', '-c', join(work, 'none.conf')]);
    assert.equal(result.code, 2);
    oneLine(result.stderr, /-c: cannot read .*none\.conf \(ENOENT\)/);
    result = await runProbe(['ipcad', '-x']);
    assert.equal(result.code, 2);
    oneLine(result.stderr, /Unknown argument: x/);
  });

  test('--help shows IPCAD\'s flags', async () => {
    const result = await runProbe(['ipcad', '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /-d, --detach/);
    assert.match(result.stdout, /-r, --restore/);
    assert.match(result.stdout, /-s, --save/);
    assert.match(result.stdout, /\/usr\/local\/etc\/ipcad\.conf/);
  });
});
