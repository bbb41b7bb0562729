/**
 * Interop peers (skopeo, docker-registry). Where one is missing its tests skip with a visible
 * reason, except under CI (CI=true), where a missing peer fails the test.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** True when the peer is there; otherwise skips the test (or fails it under CI). */
export function requirePeer(t: TestContext, cmd: string, pkg = cmd): boolean {
  if (hasCommand(cmd)) return true;
  const reason = `${cmd} is not installed (apt-get install ${pkg}, or run .ci/run)`;
  if (process.env.CI === 'true') throw new Error(`CI: ${reason}`);
  t.skip(reason);
  return false;
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing output. */
export function runCommand(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const BIN = new URL('./mpk-bin.ts', import.meta.url).pathname;

/** Runs mpk from source in its own process. */
export function mpkProcess(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<Ran> {
  return runCommand(process.execPath, ['--import', 'tsx', BIN, ...args], { env: { ...process.env, ...env }, ...(cwd ? { cwd } : {}) });
}

/**
 * A self-signed certificate for 127.0.0.1 (EC P-256, one day) made by openssl in dir: the files
 * `key.pem` and `cert.pem`. The caller checks `requirePeer(t, 'openssl')` first.
 */
export async function selfSignedCert(dir: string): Promise<{ key: string; cert: string }> {
  const key = `${dir}/key.pem`;
  const cert = `${dir}/cert.pem`;
  const r = await runCommand('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { key, cert };
}
