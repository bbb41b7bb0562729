/**
 * For the signature tests: a store with models built from small directories, a key pair made by
 * openssl (or mpk), the CLI run in-process, JSON errors read back, and the Sigstore JS verifier
 * with key-based trust material (no Fulcio, no Rekor): an independent check of mpk's bundles.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { mpk, type CliResult } from './cli.js';
import { requirePeer } from './peers.js';
import { makeModelDir, tempDir, writeTree } from './tmp.js';
import { keyIdOf } from '../sign/keys.js';

export const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

export interface SignFixture {
  dir: string;
  store: string;
  env: NodeJS.ProcessEnv;
  run(...argv: string[]): Promise<CliResult>;
  ok(...argv: string[]): Promise<string>;
  /** Builds a model from a fresh directory (seed: its contents) as `name`; returns its digest. */
  build(name: string, seed: string, edit?: Record<string, string>, ...flags: string[]): Promise<string>;
}

/** The fixture, or null when openssl (which makes the keys, as users do) is missing: skipped, or failed under CI. */
export async function signFixture(t: TestContext, store = 'store'): Promise<SignFixture | null> {
  if (!requirePeer(t, 'openssl')) return null;
  const dir = await tempDir(t, 'mpk-sign-');
  const env = { MPK_HOME: join(dir, store), DOCKER_CONFIG: join(dir, 'docker') };
  const run = (...argv: string[]) => mpk(env, dir, ...argv);
  const ok = async (...argv: string[]) => {
    const r = await run(...argv);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  let n = 0;
  const build = async (name: string, seed: string, edit: Record<string, string> = {}, ...flags: string[]) => {
    const src = join(dir, `src-${n++}`);
    await makeModelDir(src, seed);
    await writeTree(src, edit);
    const out = JSON.parse(await ok('build', '-t', name, src, '--json', ...flags));
    return out.digest as string;
  };
  return { dir, store: join(dir, store), env, run, ok, build };
}

/** An ECDSA P-256 key pair made by openssl: `NAME.pem` (SEC1, as ecparam writes it) and `NAME.pub`. */
export function opensslKey(dir: string, name: string, curve = 'prime256v1'): { priv: string; pub: string } {
  const priv = join(dir, `${name}.pem`);
  const pub = join(dir, `${name}.pub`);
  execFileSync('openssl', ['ecparam', '-name', curve, '-genkey', '-noout', '-out', priv]);
  execFileSync('openssl', ['ec', '-in', priv, '-pubout', '-out', pub], { stdio: ['ignore', 'ignore', 'ignore'] });
  return { priv, pub };
}

/** The error a `--json` command printed on stderr. */
export function jsonError(r: CliResult): { code: string; message: string; hint?: string; exit: number } {
  const line = r.stderr.trim().split('\n').pop() ?? '';
  return JSON.parse(line).error;
}

/** The bundle bytes of a signature referrer in the store. */
export async function storedBundle(f: SignFixture, ref: string, signature: string): Promise<Buffer> {
  const tree = JSON.parse(await f.ok('referrers', ref, '--json'));
  const node = tree.referrers.find((r: { digest: string }) => r.digest === signature);
  assert.ok(node, `signature ${signature} is a referrer of ${ref}`);
  return readFile(join(f.store, 'blobs', 'sha256', node.files[0].digest.slice(7)));
}

/** Attaches `bytes` to `ref` as a signature artifact (how an attacker would copy or forge one). */
export async function attachBundle(f: SignFixture, ref: string, bytes: Buffer, file = 'forged.json'): Promise<void> {
  await writeFile(join(f.dir, file), bytes);
  await f.ok('attach', ref, '--type', BUNDLE_TYPE, file);
}

/** Verifies a bundle with @sigstore/verify, trusting only the public key in `pubPem` (throws if it fails). */
export async function sigstoreVerify(bundleBytes: Buffer, pubPath: string): Promise<void> {
  const key = createPublicKey(await readFile(pubPath));
  const bundle = bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')));
  const root = { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };
  const keys = {
    // 5 = PublicKeyDetails.PKIX_ECDSA_P256_SHA_256 (sigstore protobuf-specs)
    [keyIdOf(key)]: { rawBytes: key.export({ type: 'spki', format: 'der' }), keyDetails: 5, validFor: { start: new Date(0) } },
  };
  const trust = toTrustMaterial(root as unknown as Parameters<typeof toTrustMaterial>[0], keys as unknown as Parameters<typeof toTrustMaterial>[1]);
  new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
}
