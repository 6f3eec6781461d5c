/** The accounting table (typed arrays, memory_limit, checkpoint, aggregation) and the dump format. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  AccountingStat,
  AccountingTable,
  AccountingView,
  accountingLayout,
  aggregationRules,
} from '../src/accounting/table.js';
import {
  DumpError,
  formatAccountingRows,
  formatDump,
  parseDump,
  parseIpv4,
  readDump,
  rowsFromSnapshot,
  snapshotFromRows,
  writeFileAtomic,
} from '../src/accounting/dump.js';

const ip = (text: string): number => parseIpv4(text)!;
const work = mkdtempSync(join(tmpdir(), 'flowprobe-accounting-'));
after(() => rmSync(work, { recursive: true, force: true }));

function rows(table: AccountingTable, view: AccountingView = AccountingView.active, names = ['eth0', 'eth1']): string[] {
  return rowsFromSnapshot(table.snapshot(view), names).map(
    (r) => `${r.src} ${r.dst} ${r.packets} ${r.bytes}${r.ports === undefined ? '' : ` ${r.ports.srcPort} ${r.ports.dstPort} ${r.ports.protocol} ${r.ports.interface}`}`,
  );
}

describe('AccountingTable', () => {
  it('counts packets and IP bytes per (source, destination)', () => {
    const t = new AccountingTable(1 << 20);
    t.account(ip('10.0.0.1'), ip('10.0.0.2'), 1000, 80, 6, 0, 0, 60);
    t.account(ip('10.0.0.1'), ip('10.0.0.2'), 1001, 443, 6, 1, 0, 1500);
    t.account(ip('10.0.0.2'), ip('10.0.0.1'), 80, 1000, 6, 0, 0, 40);
    assert.deepEqual(rows(t), [`${ip('10.0.0.1')} ${ip('10.0.0.2')} 2 1560`, `${ip('10.0.0.2')} ${ip('10.0.0.1')} 1 40`]);
    assert.equal(t.stats[AccountingStat.activeEntries], 2);
    assert.equal(t.stats[AccountingStat.packets], 3);
  });

  it('with capture-ports: per (source, destination, ports, protocol, interface)', () => {
    const t = new AccountingTable(1 << 20);
    t.account(1, 2, 1000, 80, 6, 0, 1, 60);
    t.account(1, 2, 1000, 80, 6, 0, 1, 60);
    t.account(1, 2, 1000, 80, 6, 1, 1, 60);
    t.account(1, 2, 1000, 80, 17, 0, 1, 60);
    t.account(1, 2, 1000, 80, 6, 0, 0, 60); // an interface without capture-ports
    assert.deepEqual(rows(t), ['1 2 2 120 1000 80 6 eth0', '1 2 1 60 1000 80 6 eth1', '1 2 1 60 1000 80 17 eth0', '1 2 1 60']);
  });

  it('clear moves the table to the checkpoint; the next clear drops the old checkpoint', () => {
    const t = new AccountingTable(1 << 20);
    t.account(1, 2, 0, 0, 1, 0, 0, 100);
    t.clear();
    assert.deepEqual(rows(t), []);
    assert.deepEqual(rows(t, AccountingView.checkpoint), ['1 2 1 100']);
    t.account(3, 4, 0, 0, 1, 0, 0, 50);
    t.account(1, 2, 0, 0, 1, 0, 0, 10);
    assert.deepEqual(rows(t), ['3 4 1 50', '1 2 1 10']);
    t.clear();
    assert.deepEqual(rows(t, AccountingView.checkpoint), ['3 4 1 50', '1 2 1 10']);
    assert.equal(t.stats[AccountingStat.checkpointEntries], 2);
    assert.equal(t.stats[AccountingStat.activeEntries], 0);
  });

  it('memory_limit bounds both tables together; what does not fit is counted, not lost silently', () => {
    const limit = 4096;
    const { capacity, indexSlots } = accountingLayout(limit);
    assert.ok(capacity * 40 + indexSlots * 8 <= limit, 'the arrays fit in the limit');
    const t = new AccountingTable(limit);
    assert.equal(t.capacity, capacity);
    for (let i = 0; i < capacity; i++) t.account(i, 1, 0, 0, 17, 0, 0, 100);
    assert.equal(t.stats[AccountingStat.unaccountedPackets], 0);
    assert.ok(t.stats[AccountingStat.memoryUsed]! <= limit);
    t.account(capacity, 1, 0, 0, 17, 0, 0, 100); // a new pair: no room
    t.account(capacity + 1, 1, 0, 0, 17, 0, 0, 200);
    t.account(0, 1, 0, 0, 17, 0, 0, 100); // a known pair still counts
    assert.equal(t.stats[AccountingStat.unaccountedPackets], 2);
    assert.equal(t.stats[AccountingStat.unaccountedBytes], 300);
    assert.equal(rows(t)[0], '0 1 2 200');
    // the checkpoint holds its entries: a new table after clear has no room until the next clear
    t.clear();
    t.account(5, 6, 0, 0, 17, 0, 0, 1);
    assert.equal(t.stats[AccountingStat.unaccountedPackets], 3);
    t.clear(); // drops the full checkpoint
    t.account(5, 6, 0, 0, 17, 0, 0, 1);
    assert.deepEqual(rows(t), ['5 6 1 1']);
  });

  it('aggregate: addresses lose their last bits (never the network part), ports fall into ranges, first rule wins', () => {
    const rules = aggregationRules([
      { kind: 'address', network: ip('192.168.0.0'), prefixLength: 16, strip: 8 },
      { kind: 'address', network: ip('10.0.0.0'), prefixLength: 8, strip: 32 },
      { kind: 'port', from: 3128, to: 3128, into: 3128 },
      { kind: 'port', from: 1024, to: 65535, into: 65535 },
    ]);
    const t = new AccountingTable(1 << 20, rules);
    t.account(ip('192.168.5.77'), ip('10.200.3.4'), 40000, 3128, 6, 0, 1, 10);
    t.account(ip('192.168.5.78'), ip('10.1.1.1'), 50000, 3128, 6, 0, 1, 10);
    t.account(ip('172.16.0.1'), ip('192.168.9.9'), 80, 2000, 6, 0, 1, 10);
    assert.deepEqual(rows(t), [
      `${ip('192.168.5.0')} ${ip('10.0.0.0')} 2 20 65535 3128 6 eth0`,
      `${ip('172.16.0.1')} ${ip('192.168.9.0')} 1 10 80 65535 6 eth0`,
    ]);
  });

  it('restore adds rows, or replaces the table', () => {
    const t = new AccountingTable(1 << 20);
    t.account(1, 2, 0, 0, 1, 0, 0, 100);
    const saved = t.snapshot(AccountingView.active);
    t.restore(new Float64Array(saved.slice(0)));
    assert.deepEqual(rows(t), ['1 2 2 200']);
    t.clearActive();
    assert.deepEqual(t.restore(new Float64Array(saved)), { added: 1, dropped: 0 });
    assert.deepEqual(rows(t), ['1 2 1 100']);
  });
});

describe('the show ip accounting table and the dump file', () => {
  const sample = [
    { src: ip('10.0.0.1'), dst: ip('192.168.1.20'), packets: 12, bytes: 3456 },
    { src: ip('192.168.1.20'), dst: ip('10.0.0.1'), packets: 3, bytes: 120 },
  ];
  const withPorts = [{ ...sample[0]!, ports: { srcPort: 40000, dstPort: 53, protocol: 17, interface: 'eth0' } }];

  it('aligned columns', () => {
    const text = formatAccountingRows(sample, false);
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0]!, /^\s+Source\s+Destination\s+Packets\s+Bytes$/);
    assert.equal(lines[1], ' 10.0.0.1         192.168.1.20              12             3456');
    // every Packets and Bytes column ends where its header does
    const end = (line: string, word: string): number => line.indexOf(word) + word.length;
    assert.equal(end(lines[0]!, 'Packets'), end(lines[1], '12'));
    assert.equal(end(lines[0]!, 'Bytes'), lines[1].length);
    const ports = formatAccountingRows(withPorts, true).split('\n');
    assert.match(ports[0]!, /Source\s+Destination\s+Packets\s+Bytes\s+SrcPt\s+DstPt\s+Proto\s+IF$/);
    assert.match(ports[1]!, /^ 10\.0\.0\.1\s+192\.168\.1\.20\s+12\s+3456\s+40000\s+53 udp\s+eth0$/);
  });

  it('a dump reads back to the same rows (with and without ports)', () => {
    for (const set of [sample, withPorts]) {
      const text = formatDump(set, set === withPorts, { ageSeconds: 125, savedAt: 1700000000 });
      assert.match(text, /\nAccounting data age is 2\nAccounting data age exact 125\nAccounting data saved 1700000000\n$/);
      const parsed = parseDump('x.dump', text);
      assert.deepEqual(parsed.rows, set);
      assert.equal(parsed.ageSeconds, 125);
    }
  });

  it('snapshot ↔ rows keeps interface names (a name a dump brings gets a new slot)', () => {
    const names = ['eth0'];
    const buffer = snapshotFromRows([...withPorts, { ...withPorts[0]!, ports: { ...withPorts[0]!.ports, interface: 'ppp9' } }], (name) => {
      const at = names.indexOf(name);
      return at >= 0 ? at : names.push(name) - 1;
    });
    assert.deepEqual(
      rowsFromSnapshot(buffer, names).map((r) => r.ports?.interface),
      ['eth0', 'ppp9'],
    );
  });

  it("IPCAD's messages: a missing file, an empty one; a corrupt one is kept aside and never overwritten", () => {
    const missing = join(work, 'missing.dump');
    assert.throws(() => readDump(missing), (e: unknown) => e instanceof DumpError && e.message === `Can't open dump file ${missing}: No such file or directory`);
    const empty = join(work, 'empty.dump');
    writeFileSync(empty, '');
    assert.throws(() => readDump(empty), (e: unknown) => e instanceof DumpError && e.message === `No valid entries found in ${empty}`);
    writeFileSync(empty, '   Source  Destination  Packets  Bytes\nAccounting data age is 0\n');
    assert.throws(() => readDump(empty), /No valid entries found/);
    const corrupt = join(work, 'corrupt.dump');
    writeFileSync(corrupt, ' 10.0.0.1 10.0.0.2 5 500\n 10.0.0.1 10.0.0.300 5 500\n');
    assert.throws(
      () => readDump(corrupt, 1_700_000_000_000),
      (e: unknown) =>
        e instanceof DumpError && e.message === `${corrupt}:2: not an accounting entry: "10.0.0.1 10.0.0.300 5 500"; kept as corrupt.dump.corrupt-1700000000, nothing restored`,
    );
    assert.equal(existsSync(corrupt), false);
    assert.equal(readFileSync(`${corrupt}.corrupt-1700000000`, 'utf8').length > 0, true);
  });

  it('writes are atomic: a temporary file renamed over the old one, nothing left behind', () => {
    const path = join(work, 'atomic.dump');
    writeFileAtomic(path, 'one\n');
    writeFileAtomic(path, 'two\n');
    assert.equal(readFileSync(path, 'utf8'), 'two\n');
    assert.deepEqual(readdirSync(work).filter((f) => f.startsWith('atomic')), ['atomic.dump']);
    assert.throws(() => writeFileAtomic(join(work, 'no/such/dir.dump'), 'x'), /Can't write dump file .*ENOENT/);
  });
});
