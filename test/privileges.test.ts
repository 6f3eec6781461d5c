/** --user/--group resolution, the drop plan, and what the probe says about the drop. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../src/config/options.js';
import {
  CAPABILITY_NAMES,
  capabilityNames,
  describeDrop,
  listCapabilities,
  planDrop,
  readEffectiveCapabilities,
  type ProcessIds,
} from '../src/privileges/drop.js';
import { resolveIdentity, type AccountFiles } from '../src/privileges/identity.js';

const files: AccountFiles = {
  passwd: [
    'root:x:0:0:root:/root:/bin/bash',
    '# a comment',
    'flowprobe:x:990:985::/nonexistent:/usr/sbin/nologin',
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
    'broken line',
    '',
  ].join('\n'),
  group: ['root:x:0:', 'flowprobe:x:985:', 'pcap:x:120:flowprobe', 'nogroup:x:65534:', ''].join('\n'),
};

function usageError(fn: () => unknown, ...words: string[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof UsageError, String(error));
    for (const w of words) assert.ok(error.message.includes(w), `"${error.message}" lacks "${w}"`);
    return true;
  });
}

describe('resolveIdentity', () => {
  it('a user name takes its primary group from /etc/passwd', () => {
    assert.deepEqual(resolveIdentity('flowprobe', undefined, files), { user: 'flowprobe', uid: 990, group: 'flowprobe', gid: 985 });
    assert.deepEqual(resolveIdentity('nobody', 'nogroup', files), { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 });
  });

  it('--group by name or number replaces the primary group', () => {
    assert.deepEqual(resolveIdentity('flowprobe', 'pcap', files), { user: 'flowprobe', uid: 990, group: 'pcap', gid: 120 });
    assert.deepEqual(resolveIdentity('flowprobe', '4242', files), { user: 'flowprobe', uid: 990, group: '4242', gid: 4242 });
  });

  it('numbers work, named when /etc/passwd knows them', () => {
    assert.deepEqual(resolveIdentity('65534', undefined, files), { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 });
    assert.deepEqual(resolveIdentity('5000', '5000', files), { user: '5000', uid: 5000, group: '5000', gid: 5000 });
  });

  it('unknown names, a uid without a group, and (uid_t)-1 are usage errors', () => {
    usageError(() => resolveIdentity('nobdy', undefined, files), '--user', '"nobdy"', '/etc/passwd');
    usageError(() => resolveIdentity('nobody', 'nogrp', files), '--group', '"nogrp"', '/etc/group');
    usageError(() => resolveIdentity('5000', undefined, files), '--user', 'give --group');
    usageError(() => resolveIdentity('4294967295', '0', files), '--user', 'not a valid id');
  });
});

const NET_RAW = 1n << 13n;
const NET_ADMIN = 1n << 12n;
const SETUID = 1n << 7n;
const SETGID = 1n << 6n;
const NET_BIND_SERVICE = 1n << 10n;
const nobody = { user: 'nobody', uid: 65534, group: 'nogroup', gid: 65534 };
const root: ProcessIds = { uid: 0, euid: 0, gid: 0, egid: 0, groups: [0] };

describe('capabilities', () => {
  it('CapEff from /proc/<pid>/status, named as in capability.h', () => {
    const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t00000000000030c0\nCapEff:\t00000000000030c0\n';
    const mask = readEffectiveCapabilities(status);
    assert.equal(mask, NET_RAW | NET_ADMIN | SETUID | SETGID);
    assert.deepEqual(capabilityNames(mask ?? 0n), ['setgid', 'setuid', 'net_admin', 'net_raw']);
    assert.equal(readEffectiveCapabilities('Name:\tnode\n'), undefined);
    assert.equal(CAPABILITY_NAMES[40], 'checkpoint_restore');
  });

  it('many capabilities are summed up', () => {
    assert.equal(listCapabilities((1n << 41n) - 1n, 0), "all 41 of root's capabilities");
    assert.equal(listCapabilities(NET_RAW, 990), 'capabilities net_raw');
    assert.equal(listCapabilities(0n, 990), 'no capabilities');
  });
});

describe('planDrop', () => {
  it('root, or CAP_SETUID and CAP_SETGID, may switch', () => {
    assert.equal(planDrop(nobody, root, (1n << 41n) - 1n), 'drop');
    assert.equal(planDrop(nobody, root, NET_RAW | NET_ADMIN | SETUID | SETGID), 'drop', "a container's root with only the added capabilities");
    assert.equal(planDrop(nobody, root, undefined), 'drop', 'without /proc, root is enough');
  });

  it('nothing to do when already that user with no other groups', () => {
    const ids = { uid: 65534, euid: 65534, gid: 65534, egid: 65534, groups: [65534] };
    assert.equal(planDrop(nobody, ids, 0n), 'already');
    assert.equal(planDrop(nobody, { ...ids, groups: [] }, 0n), 'already');
  });

  it('anything else is a usage error before a capture is opened', () => {
    const flowprobe = { uid: 990, euid: 990, gid: 985, egid: 985, groups: [985] };
    usageError(() => planDrop(nobody, flowprobe, NET_RAW | NET_ADMIN), '--user', 'needs root', 'uid 990');
    usageError(() => planDrop(nobody, root, NET_RAW | SETUID), '--user', 'CAP_SETGID');
    usageError(() => planDrop(nobody, { ...flowprobe, uid: 65534, euid: 65534, gid: 65534, egid: 65534, groups: [65534, 120] }, 0n), '--user');
  });
});

describe('describeDrop', () => {
  it("says who the probe is now, what it gave up and what no longer works (a container's root)", () => {
    const lines = describeDrop({ target: nobody, before: NET_RAW | NET_ADMIN | SETUID | SETGID, after: 0n }, 0);
    assert.equal(
      lines[0],
      'dropped privileges: now user nobody (uid 65534), group nogroup (gid 65534), no supplementary groups; gave up capabilities setgid, setuid, net_admin, net_raw',
    );
    assert.match(lines[1]!, /^no longer possible: opening a capture \(if an interface goes away.*restart it\); changing promiscuous mode; switching user again$/);
    assert.equal(lines.length, 2);
  });

  it('names the rsh port when NET_BIND_SERVICE was given up', () => {
    const lines = describeDrop({ target: nobody, before: NET_RAW | NET_BIND_SERVICE | SETUID | SETGID, after: 0n }, 0);
    assert.match(lines[1]!, /listening on a port below 1024 \(such as an rsh server on 514\)/);
    assert.doesNotMatch(lines[1]!, /promiscuous/);
  });

  it('reports capabilities that were kept', () => {
    const lines = describeDrop({ target: nobody, before: NET_RAW | SETUID | SETGID, after: NET_RAW }, 0);
    assert.match(lines[0]!, /gave up capabilities setgid, setuid; kept capabilities net_raw$/);
  });
});
