/**
 * A real docker-registry (Debian's distribution 2.8.2, /usr/bin/docker-registry) for tests:
 * bound to 127.0.0.1 on a free port, storage and config in fresh temp dirs, stopped by the PID
 * this module started (never by name). Auth: none, basic (bcrypt htpasswd) or token (with a
 * token issuer from ./token-issuer.ts started first, since the realm goes into the config).
 *
 * Never uses /etc/docker/registry/config.yml (it listens on all interfaces), and drops
 * REGISTRY_* variables from the child's environment (they override config keys, http.addr too).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { after } from 'node:test';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { requirePeer, runCommand } from './peers.js';
import { startTokenIssuer, type AccessFn, type TokenIssuer } from './token-issuer.js';

export type { TokenIssuer } from './token-issuer.js';

export const DOCKER_REGISTRY_BIN = '/usr/bin/docker-registry';

export interface RegistryPeer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  pid: number;
  dataDir: string;
  logFile: string;
  /** SIGTERM, up to 5 s, then SIGKILL; stops the token issuer; removes the temp dirs. Idempotent. */
  stop(): Promise<void>;
  token?: TokenIssuer;
}

export interface RegistryPeerOptions {
  /** Default none. */
  auth?: 'none' | 'basic' | 'token';
  /** user → password, for basic (bcrypt htpasswd via `htpasswd -Bbn`) and token. */
  users?: Record<string, string>;
  /** Token mode: which actions a user (or '' for anonymous) gets on a repository; default: every user
   *  gets pull,push,delete on everything, anonymous gets nothing. */
  access?: AccessFn;
  /** Token mode, default 300. */
  tokenTtlSeconds?: number;
  /** Token mode: shifts the issuer's clock. The registry allows 60 s of leeway on exp and nbf, so an
   *  already-rejected token needs e.g. tokenTtlSeconds: 1 with tokenClockOffsetSeconds: -120. */
  tokenClockOffsetSeconds?: number;
  /** Default 'warn'. */
  logLevel?: string;
  /** Keep the data and run dirs after stop() (default: removed). */
  keepDirs?: boolean;
}

export const TOKEN_SERVICE = 'mpk-test-registry';
export const TOKEN_ISSUER = 'mpk-test-issuer';
export const BASIC_REALM = 'mpk-test-realm';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort if a test forgot stop(): kill exactly the PIDs this module started.
    process.once('exit', () => {
      for (const c of live) if (c.pid !== undefined && c.exitCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const q = (s: string): string => JSON.stringify(s); // a YAML double-quoted scalar

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Status of GET url, or 0 when nothing answers. */
function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitExit(child, 5000)) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitExit(child, 5000);
}

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

/**
 * Starts docker-registry on 127.0.0.1 and waits until GET /v2/ answers (200 without auth, 401 with).
 * With `t`, it is stopped and its temp dirs are removed after the test. Callers should first check
 * `requirePeer(t, 'docker-registry')` (plus htpasswd for basic, openssl for token).
 */
export async function startDockerRegistry(t: TestContext | null, opts: RegistryPeerOptions = {}): Promise<RegistryPeer> {
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? {};
  const dataDir = await mkdtemp(join(tmpdir(), 'mpk-registry-data-'));
  const runDir = await mkdtemp(join(tmpdir(), 'mpk-registry-run-'));
  const logFile = join(runDir, 'registry.log');
  const configFile = join(runDir, 'config.yml');
  let token: TokenIssuer | undefined;
  const removeDirs = async (): Promise<void> => {
    if (opts.keepDirs) return;
    await rm(dataDir, { recursive: true, force: true });
    await rm(runDir, { recursive: true, force: true });
  };

  try {
    let authYaml = '';
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const [user, password] of Object.entries(users)) {
        const r = await runCommand('htpasswd', ['-Bbn', user, password]);
        if (r.code !== 0) throw new Error(`htpasswd -Bbn ${user} failed (exit ${r.code}): ${r.stderr.trim()}`);
        lines.push(r.stdout.trim());
      }
      const htpasswd = join(runDir, 'htpasswd');
      await writeFile(htpasswd, lines.map((l) => l + '\n').join(''));
      authYaml = ['auth:', '  htpasswd:', `    realm: ${q(BASIC_REALM)}`, `    path: ${q(htpasswd)}`, ''].join('\n');
    } else if (auth === 'token') {
      token = await startTokenIssuer(null, {
        users,
        ...(opts.access ? { access: opts.access } : {}),
        ...(opts.tokenTtlSeconds !== undefined ? { tokenTtlSeconds: opts.tokenTtlSeconds } : {}),
        ...(opts.tokenClockOffsetSeconds !== undefined ? { clockOffsetSeconds: opts.tokenClockOffsetSeconds } : {}),
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
      });
      const bundle = join(runDir, 'rootcertbundle.pem');
      await writeFile(bundle, token.certPem);
      authYaml = [
        'auth:',
        '  token:',
        `    realm: ${q(token.realm)}`,
        `    service: ${q(TOKEN_SERVICE)}`,
        `    issuer: ${q(TOKEN_ISSUER)}`,
        `    rootcertbundle: ${q(bundle)}`,
        '',
      ].join('\n');
    } else if (auth !== 'none') {
      throw new Error(`startDockerRegistry: unknown auth mode ${String(auth)}`);
    }
    const expect = auth === 'none' ? 200 : 401;

    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const config = [
        'version: 0.1',
        'log:',
        `  level: ${q(opts.logLevel ?? 'warn')}`,
        '  formatter: text',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${q(dataDir)}`,
        '  delete:',
        '    enabled: true',
        '  cache:',
        '    blobdescriptor: inmemory',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: ${q(host)}`,
        `  secret: ${q('mpk-test-registry-secret')}`,
        '  headers:',
        '    X-Content-Type-Options: [nosniff]',
        authYaml,
      ].join('\n');
      await writeFile(configFile, config);
      const fd = openSync(logFile, 'a');
      let child: ChildProcess;
      try {
        child = spawn(DOCKER_REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', fd, fd], env: childEnv() });
      } finally {
        closeSync(fd);
      }
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      trackChild(child);
      const pid = child.pid;
      if (pid === undefined) throw new Error(`could not start ${DOCKER_REGISTRY_BIN}: ${String(await spawnError)}`);

      const url = `http://${host}`;
      const deadline = Date.now() + 20_000;
      let status = 0;
      let exited = false;
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
          exited = true;
          break;
        }
        status = await probe(`${url}/v2/`);
        if (status === expect) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (status === expect && child.exitCode === null) {
        let stopped: Promise<void> | undefined;
        const peer: RegistryPeer = {
          url,
          host,
          pid,
          dataDir,
          logFile,
          stop() {
            stopped ??= (async () => {
              await killChild(child);
              await token?.stop();
              await removeDirs();
            })();
            return stopped;
          },
          ...(token ? { token } : {}),
        };
        t?.after(() => peer.stop());
        return peer;
      }
      await killChild(child);
      const log = await tail(logFile);
      lastError = exited
        ? `docker-registry exited (code ${child.exitCode}, signal ${child.signalCode}) before answering on ${url}/v2/; log:\n${log}`
        : `docker-registry did not answer ${expect} on ${url}/v2/ within 20 s (last: ${status}); log:\n${log}`;
      // Someone took the port between freePort() and the registry's bind: try another one.
      if (!(exited && /address already in use/i.test(log))) break;
    }
    throw new Error(lastError);
  } catch (err) {
    await token?.stop();
    await removeDirs();
    throw err;
  }
}

/**
 * One plain docker-registry for a whole test file: `const registry = fileRegistry();` at the top
 * level, then `const reg = await registry(t); if (!reg) return;` in a test. Started on first use,
 * stopped after the file's tests; null (the test skipped, or failed under CI) without the peer.
 */
export function fileRegistry(): (t: TestContext) => Promise<RegistryPeer | null> {
  let shared: Promise<RegistryPeer> | undefined;
  after(async () => {
    if (shared) await (await shared).stop();
  });
  return async (t) => {
    if (!requirePeer(t, 'docker-registry')) return null;
    shared ??= startDockerRegistry(null);
    return shared;
  };
}
