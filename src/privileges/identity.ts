/**
 * --user/--group → numeric ids, from /etc/passwd and /etc/group. Names are looked
 * up before anything is opened, so a typo is a usage error and not a capture that
 * opened as root and then had to be closed. (Users known only to a directory
 * service can be given by number.)
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../config/options.js';

export interface Identity {
  user: string;
  uid: number;
  group: string;
  gid: number;
}

/** The text of /etc/passwd and /etc/group ('' when unreadable). */
export interface AccountFiles {
  passwd: string;
  group: string;
}

export function readAccountFiles(): AccountFiles {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  return { passwd: read('/etc/passwd'), group: read('/etc/group') };
}

interface Entry {
  name: string;
  id: number;
  /** passwd only: the primary group */
  gid: number;
}

/** name:password:id[:gid:…] lines; comments and malformed lines are skipped. */
function entries(text: string): Entry[] {
  const out: Entry[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const id = Number(fields[2]);
    if (fields[0] === undefined || fields[0] === '' || !Number.isInteger(id)) continue;
    out.push({ name: fields[0], id, gid: Number(fields[3]) });
  }
  return out;
}

const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 means "unchanged" to the kernel

function numericId(option: string, text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const id = Number(text);
  if (id > MAX_ID) throw new UsageError(`--${option}: ${text} is not a valid id (0 to ${MAX_ID})`);
  return id;
}

/** Resolve --user and --group (names or numbers). Throws UsageError. */
export function resolveIdentity(user: string, group: string | undefined, files: AccountFiles = readAccountFiles()): Identity {
  const users = entries(files.passwd);
  const groups = entries(files.group);

  const uid = numericId('user', user);
  const userEntry = uid === undefined ? users.find((u) => u.name === user) : users.find((u) => u.id === uid);
  if (userEntry === undefined && uid === undefined) {
    throw new UsageError(`--user: no user named ${JSON.stringify(user)} in /etc/passwd (give a name from it, or a uid)`);
  }

  let gid: number;
  if (group === undefined) {
    if (userEntry === undefined || !Number.isInteger(userEntry.gid)) {
      throw new UsageError(`--user: uid ${user} is not in /etc/passwd, so it has no primary group: give --group too`);
    }
    gid = userEntry.gid;
  } else {
    const numeric = numericId('group', group);
    if (numeric === undefined) {
      const groupEntry = groups.find((g) => g.name === group);
      if (groupEntry === undefined) {
        throw new UsageError(`--group: no group named ${JSON.stringify(group)} in /etc/group (give a name from it, or a gid)`);
      }
      gid = groupEntry.id;
    } else {
      gid = numeric;
    }
  }
  return {
    user: userEntry?.name ?? String(uid),
    uid: userEntry?.id ?? uid!,
    group: groups.find((g) => g.id === gid)?.name ?? String(gid),
    gid,
  };
}
