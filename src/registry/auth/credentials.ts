/**
 * Registry credentials kept the way docker keeps them: `<$DOCKER_CONFIG or ~/.docker>/config.json`,
 * with `credHelpers` (per host), `credsStore` (default helper) and `auths` (in the file). Helpers
 * are run by ./cred-helper.ts. Every field of config.json that is not ours is kept as it was.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, readlink, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PackError, fsError } from '../../errors.js';
import { helperErase, helperGet, helperStore, type HelperCall } from './cred-helper.js';

export interface Credential {
  username?: string;
  password?: string;
  /** refresh token ("identitytoken" in config.json) */
  identityToken?: string;
}

export interface CredentialStore {
  /** undefined when nothing is stored */
  get(host: string): Promise<Credential | undefined>;
  put(host: string, cred: Credential): Promise<void>;
  /** false when there was nothing to remove */
  delete(host: string): Promise<boolean>;
}

type Json = Record<string, unknown>;
interface ConfigFile extends Json {
  auths?: Record<string, Json>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** Docker Hub's key in `auths`, and the server URL its helpers are asked about. */
const HUB_KEY = 'https://index.docker.io/v1/';
const HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** $DOCKER_CONFIG, else ~/.docker (HOME from env when set). */
export function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return env.DOCKER_CONFIG;
  return join(env.HOME || homedir(), '.docker');
}

/** 'HTTPS://Ghcr.io/v2/' → 'ghcr.io'; every Docker Hub name → 'docker.io'. */
function hostOf(s: string): string {
  const h = s.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '').split(/[/?#]/)[0] ?? '';
  return HUB_NAMES.has(h) ? 'docker.io' : h;
}

/** The key docker writes for a host (and the server URL given to helpers). */
function keyFor(host: string): string {
  return host === 'docker.io' ? HUB_KEY : host;
}

/** Keys of obj that name host, the one docker would write first. */
function keysFor(obj: object | undefined, host: string): string[] {
  const key = keyFor(host);
  const keys = Object.keys(obj ?? {}).filter((k) => hostOf(k) === host);
  return keys.sort((a, b) => Number(b === key) - Number(a === key));
}

export class DockerCredentialStore implements CredentialStore {
  private readonly dir: string;
  private readonly path: string;
  private readonly env: NodeJS.ProcessEnv;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: { configDir?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.env = opts.env ?? process.env;
    this.dir = opts.configDir ?? dockerConfigDir(this.env);
    this.path = join(this.dir, 'config.json');
  }

  /** Asks credHelpers[host], then credsStore, then reads auths; the first answer wins. */
  async get(host: string): Promise<Credential | undefined> {
    const h = hostName(host);
    const cfg = await this.read();
    for (const helper of this.helpers(cfg, h)) {
      const cred = await helperGet(helper, keyFor(h));
      if (cred) return cred;
    }
    for (const k of keysFor(cfg.auths, h)) {
      const cred = this.decode(cfg.auths![k]!, k);
      if (cred) return cred;
    }
    return undefined;
  }

  /** Stores with the helper that applies (leaving `auths[host]: {}` in the file), else in the file. */
  async put(host: string, cred: Credential): Promise<void> {
    const h = hostName(host);
    if (!cred.username && !cred.password && !cred.identityToken) {
      throw new PackError('USAGE', `${h}: no username, password or identity token to store`);
    }
    if (cred.username?.includes(':')) {
      throw new PackError('USAGE', `${h}: a user name cannot contain ":"`, { hint: 'docker stores "user:password"; use another user name' });
    }
    return this.serial(async () => {
      const cfg = await this.read();
      const helper = this.helpers(cfg, h)[0];
      if (helper) await helperStore(helper, keyFor(h), cred);
      const auths = (cfg.auths ??= {});
      const key = keyFor(h);
      for (const k of keysFor(auths, h)) if (k !== key) delete auths[k];
      if (helper) {
        auths[key] = {};
      } else {
        const entry: Json = {};
        if (cred.username || cred.password) entry.auth = Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`, 'utf8').toString('base64');
        if (cred.identityToken) entry.identitytoken = cred.identityToken;
        auths[key] = entry;
      }
      await this.write(cfg);
    });
  }

  /** Erases with the helper that applies, and removes every auths key naming host. */
  async delete(host: string): Promise<boolean> {
    const h = hostName(host);
    return this.serial(async () => {
      const cfg = await this.read();
      const helper = this.helpers(cfg, h)[0];
      const erased = helper ? await helperErase(helper, keyFor(h)) : false;
      const keys = keysFor(cfg.auths, h);
      for (const k of keys) delete cfg.auths![k];
      if (keys.length) await this.write(cfg);
      return erased || keys.length > 0;
    });
  }

  /** Where put() stores for this host: 'file' or the helper name, e.g. 'pass'. */
  async storeFor(host: string): Promise<string> {
    return this.helpers(await this.read(), hostName(host))[0]?.name ?? 'file';
  }

  /** The helpers that apply to host, in lookup order: credHelpers[host], then credsStore. */
  private helpers(cfg: ConfigFile, host: string): HelperCall[] {
    const call = (name: string, source: string): HelperCall => ({ name, source, configPath: this.path, env: this.env });
    const out: HelperCall[] = [];
    const k = keysFor(cfg.credHelpers, host).find((key) => cfg.credHelpers![key]);
    if (k !== undefined) out.push(call(cfg.credHelpers![k]!, `credHelpers["${k}"]`));
    if (cfg.credsStore) out.push(call(cfg.credsStore, 'credsStore'));
    return out;
  }

  private decode(e: Json, key: string): Credential | undefined {
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    let username = str(e.username);
    let password = str(e.password);
    const auth = str(e.auth);
    if (auth) {
      const plain = Buffer.from(auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon < 0) throw this.invalid(`auths["${key}"].auth is not base64 of "user:password"`);
      username = plain.slice(0, colon) || undefined;
      password = plain.slice(colon + 1) || undefined;
    }
    const identityToken = str(e.identitytoken);
    if (!username && !password && !identityToken) return undefined; // {}: the helper holds it
    return { ...(username ? { username } : {}), ...(password ? { password } : {}), ...(identityToken ? { identityToken } : {}) };
  }

  private async read(): Promise<ConfigFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw fsError(e, this.path);
    }
    if (!text.trim()) return {};
    let cfg: unknown;
    try {
      cfg = JSON.parse(text);
    } catch (e) {
      throw this.invalid(`not valid JSON (${(e as Error).message})`, e);
    }
    const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!isObject(cfg)) throw this.invalid('not a JSON object');
    if (cfg.auths !== undefined && !(isObject(cfg.auths) && Object.values(cfg.auths).every(isObject))) {
      throw this.invalid('"auths" is not an object of objects');
    }
    if (cfg.credHelpers !== undefined && !(isObject(cfg.credHelpers) && Object.values(cfg.credHelpers).every((v) => typeof v === 'string'))) {
      throw this.invalid('"credHelpers" is not an object of strings');
    }
    if (cfg.credsStore !== undefined && typeof cfg.credsStore !== 'string') throw this.invalid('"credsStore" is not a string');
    return cfg as ConfigFile;
  }

  /** Replaces config.json (or the file it links to) by a new file: temp file, then rename. */
  private async write(cfg: ConfigFile): Promise<void> {
    let target = this.path;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      target = await linkTarget(this.path);
    } catch (e) {
      throw fsError(e, target);
    }
    const tmp = join(dirname(target), `.config.json.${randomBytes(8).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(cfg, null, '\t')}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw fsError(e, target);
    }
  }

  private invalid(why: string, cause?: unknown): PackError {
    return new PackError('IO', `${this.path}: ${why}`, { cause, hint: 'fix or remove the file' });
  }

  /** Runs read-modify-write steps of this store one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

function hostName(host: string): string {
  const h = hostOf(host);
  if (!h) throw new PackError('USAGE', `"${host}": not a registry host`);
  return h;
}

/** The file a chain of symbolic links ends at (which may not exist yet). */
async function linkTarget(path: string): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const st = await lstat(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (!st?.isSymbolicLink()) return path;
    path = resolve(dirname(path), await readlink(path));
  }
  throw new PackError('IO', `${path}: too many levels of symbolic links`, { hint: 'fix the symbolic link loop' });
}
