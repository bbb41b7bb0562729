/**
 * Docker credential helpers: the program `docker-credential-<name>` found on PATH, run (without a
 * shell) with one action — `get`, `store` or `erase` — the request on stdin, the answer on stdout.
 * The protocol is the one of docker-credential-helpers: `get` and `erase` take the server URL,
 * `store` takes and `get` answers {"ServerURL","Username","Secret"}; a Username of "<token>" means
 * the Secret is an identity token. A missing entry is reported as "credentials not found ...".
 */
import type { spawn as spawnType } from 'node:child_process';
import { constants } from 'node:fs';
import { createRequire } from 'node:module';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { PackError } from '../../errors.js';
import type { Credential } from './credentials.js';

/** node:child_process, loaded when a helper first runs (most pulls run none: ~1.5 ms of start-up). */
const requireBuiltin = createRequire(import.meta.url);
const spawn = (): typeof spawnType => (requireBuiltin('node:child_process') as { spawn: typeof spawnType }).spawn;

export const HELPER_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 1 << 20;
const TOKEN_USER = '<token>';

/** Which helper to run, and where it was named (for messages). */
export interface HelperCall {
  name: string;
  /** The setting that names the helper: 'credsStore' or 'credHelpers["host"]'. */
  source: string;
  configPath: string;
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface HelperRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The helper's answer for serverURL, or undefined when it has none. */
export async function helperGet(h: HelperCall, serverURL: string): Promise<Credential | undefined> {
  const r = await runHelper(h, 'get', serverURL);
  if (r.code !== 0) {
    if (isNotFound(r)) return undefined;
    throw failed(h, 'get', r, serverURL);
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(r.stdout) as typeof answer;
  } catch (e) {
    // Never quote stdout: it may hold a secret.
    throw new PackError('IO', `${exe(h.name)} get: answer is not valid JSON`, { cause: e, hint: hintFor(h, serverURL) });
  }
  const user = typeof answer?.Username === 'string' ? answer.Username : '';
  const secret = typeof answer?.Secret === 'string' ? answer.Secret : '';
  if (user === TOKEN_USER) return secret ? { identityToken: secret } : undefined;
  if (!user && !secret) return undefined;
  return { ...(user ? { username: user } : {}), ...(secret ? { password: secret } : {}) };
}

/** Stores cred for serverURL; an identity token is stored with the user name "<token>". */
export async function helperStore(h: HelperCall, serverURL: string, cred: Credential): Promise<void> {
  const body = cred.identityToken
    ? { ServerURL: serverURL, Username: TOKEN_USER, Secret: cred.identityToken }
    : { ServerURL: serverURL, Username: cred.username ?? '', Secret: cred.password ?? '' };
  const r = await runHelper(h, 'store', JSON.stringify(body));
  if (r.code !== 0) throw failed(h, 'store', r, serverURL);
}

/** Erases serverURL's entry; false when the helper had none. */
export async function helperErase(h: HelperCall, serverURL: string): Promise<boolean> {
  const r = await runHelper(h, 'erase', serverURL);
  if (r.code === 0) return true;
  if (isNotFound(r)) return false;
  throw failed(h, 'erase', r, serverURL);
}

/** Runs the helper once with input on stdin; rejects when it is missing, cannot start or times out. */
export async function runHelper(h: HelperCall, action: 'get' | 'store' | 'erase', input: string): Promise<HelperRun> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(h.name)) {
    throw new PackError('IO', `${h.configPath}: ${h.source} is "${h.name}", not a credential helper name`, { hint: 'fix or remove the setting' });
  }
  const program = await findOnPath(exe(h.name), h.env.PATH ?? '');
  if (!program) throw missing(h);
  const timeoutMs = h.timeoutMs ?? HELPER_TIMEOUT_MS;
  return new Promise<HelperRun>((resolve, reject) => {
    const child = spawn()(program, [action], { env: h.env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    let stdout = '';
    let stderr = '';
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      settle(() =>
        reject(new PackError('IO', `${exe(h.name)} ${action}: no answer after ${Math.round(timeoutMs / 1000)} s`, {
          hint: 'the helper may be waiting for a locked keychain or a prompt; check it by hand',
        })),
      );
    }, timeoutMs);
    const collect = (which: 'out' | 'err') => (d: Buffer) => {
      if (which === 'out' && stdout.length < MAX_OUTPUT) stdout += d.toString('utf8');
      if (which === 'err' && stderr.length < MAX_OUTPUT) stderr += d.toString('utf8');
    };
    child.stdout.on('data', collect('out'));
    child.stderr.on('data', collect('err'));
    child.stdin.on('error', () => {}); // a helper that exits without reading its input: EPIPE
    child.stdin.end(input);
    child.on('error', (e: NodeJS.ErrnoException) =>
      settle(() =>
        reject(e.code === 'ENOENT' ? missing(h) : new PackError('IO', `${exe(h.name)} ${action}: ${e.message}`, { cause: e, hint: `check ${program}` })),
      ),
    );
    child.on('close', (code, signal) => settle(() => resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr })));
  });
}

function exe(name: string): string {
  return `docker-credential-${name}`;
}

/** The first executable regular file named `file` in an absolute PATH directory. */
async function findOnPath(file: string, path: string): Promise<string | undefined> {
  const names = process.platform === 'win32' ? [`${file}.exe`, file] : [file];
  for (const dir of path.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue; // never run helpers found relative to the working directory
    for (const n of names) {
      const p = join(dir, n);
      try {
        if (!(await stat(p)).isFile()) continue;
        await access(p, constants.X_OK);
        return p;
      } catch {
        // not there, or not executable: keep looking
      }
    }
  }
  return undefined;
}

function isNotFound(r: HelperRun): boolean {
  return /credentials not found/i.test(`${r.stdout}\n${r.stderr}`);
}

function missing(h: HelperCall): PackError {
  return new PackError('IO', `${exe(h.name)}: not found on PATH (named by ${h.source} in ${h.configPath})`, {
    hint: `install ${exe(h.name)}, or remove ${h.source} from ${h.configPath}`,
  });
}

/** A failure, quoting the first line of stderr (or of stdout, where the usual helpers print errors). */
function failed(h: HelperCall, action: string, r: HelperRun, serverURL: string): PackError {
  const first = (s: string) => s.split('\n').map((l) => l.trim()).find((l) => l) ?? '';
  const why = first(r.stderr) || first(r.stdout) || `exited with code ${r.code}`;
  return new PackError('IO', `${exe(h.name)} ${action}: ${why}`, { hint: hintFor(h, serverURL) });
}

function hintFor(h: HelperCall, serverURL: string): string {
  return `check the helper by hand: echo ${serverURL} | ${exe(h.name)} get`;
}
