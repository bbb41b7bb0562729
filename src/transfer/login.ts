/**
 * `mpk login` / `mpk logout`: check the credentials against the registry (GET /v2/, answering a
 * Basic or bearer challenge), then store them where docker would (config.json or a credential
 * helper), so docker, oras, skopeo and mpk share one login.
 */
import { PackError } from '../errors.js';
import type { Credential } from '../registry/auth/credentials.js';
import { DockerCredentialStore } from '../registry/auth/credentials.js';
import { RegistryClient, type ClientOptions } from '../registry/client.js';
import { responseError } from '../registry/errcode.js';
import { discard } from '../registry/transport.js';

export interface LoginOptions extends ClientOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** Normalises what users type after `login`: a host, `https://host/`, `host/v2/`. */
export function loginHost(input: string): string {
  const h = input.trim().replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  if (!h || !/^[a-z0-9.-]+(:\d+)?$|^\[[0-9a-f:.]+\](:\d+)?$/.test(h)) {
    throw new PackError('USAGE', `${JSON.stringify(input)}: not a registry host`, { hint: 'write HOST or HOST:PORT, e.g. localhost:5000' });
  }
  return h;
}

/** Verifies the credentials with the registry and saves them; returns where they went. */
export async function login(hostInput: string, cred: Credential, opts: LoginOptions = {}): Promise<{ host: string; storedIn: string }> {
  const host = loginHost(hostInput);
  const client = new RegistryClient({ ...opts, credential: cred, credentialHosts: [host], retries: 2 });
  try {
    const res = await client.request(host, { method: 'GET', path: '/v2/', scopes: [], signal: opts.signal });
    if (res.status !== 200) throw await responseError('GET', res, `${host}: login`);
    await discard(res);
  } finally {
    client.close();
  }
  const store = new DockerCredentialStore({ env: opts.env ?? process.env });
  await store.put(host, cred);
  return { host, storedIn: await store.storeFor(host) };
}

/** Removes stored credentials; false when there were none. */
export async function logout(hostInput: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ host: string; removed: boolean }> {
  const host = loginHost(hostInput);
  const removed = await new DockerCredentialStore({ env: opts.env ?? process.env }).delete(host);
  return { host, removed };
}
