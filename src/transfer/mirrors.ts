/**
 * Registry mirrors for pulls, in the spirit of containerd's hosts.toml and docker's
 * registry-mirrors: `$MPK_HOME/mirrors.json` names, per upstream registry, the site caches to ask
 * first (an `mpk serve --proxy` of it, say):
 *
 *   { "mirrors": { "registry.example.com": ["http://cache.site:5000", "https://cache2.site"] } }
 *
 * `mpk pull registry.example.com/team/model:v1` then tries each mirror in order (same name and
 * reference, the model stored under the upstream name), and the upstream itself last. A mirror
 * that fails in any way (down, 5xx, does not have it, a digest that does not match) is skipped
 * with a warning; an interrupted pull is not retried elsewhere.
 */
import { readFile } from 'node:fs/promises';
import { PackError } from '../errors.js';

export type Mirrors = Record<string, string[]>;

const MAX_FILE = 256 * 1024;
const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

/** The mirrors file, checked; {} when there is none. */
export async function loadMirrors(file: string): Promise<Mirrors> {
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_FILE) throw bad(file, `larger than ${MAX_FILE} bytes`);
    text = bytes.toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(file, `not JSON (${(e as Error).message})`);
  }
  const mirrors = (doc as { mirrors?: unknown })?.mirrors;
  if (typeof mirrors !== 'object' || mirrors === null || Array.isArray(mirrors)) throw bad(file, 'no "mirrors" object');
  const out: Mirrors = {};
  for (const [host, list] of Object.entries(mirrors)) {
    if (!HOST.test(host)) throw bad(file, `${JSON.stringify(host)} is not a registry HOST[:PORT]`);
    if (!Array.isArray(list) || list.some((u) => typeof u !== 'string' || !/^https?:\/\/[^/\s?#]+\/?$/.test(u))) {
      throw bad(file, `the mirrors of ${host} must be a list of "http(s)://HOST[:PORT]"`);
    }
    out[host] = (list as string[]).map((u) => u.replace(/\/$/, ''));
  }
  return out;
}

function bad(file: string, why: string): PackError {
  return new PackError('USAGE', `${file}: ${why}`, { hint: 'write {"mirrors": {"registry.example.com": ["http://cache.site:5000"]}}, or remove the file' });
}

/** `http://cache:5000` → the host to pull from and whether it speaks plain HTTP. */
export function mirrorHost(url: string): { host: string; plainHttp: boolean } {
  const u = new URL(url);
  return { host: u.host, plainHttp: u.protocol === 'http:' };
}
