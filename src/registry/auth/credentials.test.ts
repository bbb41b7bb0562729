import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerCredentialStore, dockerConfigDir } from './credentials.js';
import { runHelper } from './cred-helper.js';
import { PackError, hasErrorCode } from '../../errors.js';
import { tempDir } from '../../test-support/tmp.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function configDir(t: Parameters<typeof tempDir>[0], config?: unknown): Promise<string> {
  const dir = join(await tempDir(t), 'docker');
  if (config !== undefined) {
    await mkdir(dir);
    await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  }
  return dir;
}

async function readConfig(dir: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
}

/**
 * A real credential helper: one file per server URL under $HELPER_DB, every call logged in
 * $HELPER_DB/log as "<name> <action> <server URL>".
 */
const FILE_HELPER = `#!/bin/sh
name=\${0##*docker-credential-}
db="\${HELPER_DB:?}"
if [ "$1" = store ]; then
  input=$(cat)
  url=$(printf '%s' "$input" | sed -n 's/.*"ServerURL": *"\\([^"]*\\)".*/\\1/p')
else
  url=$(cat)
fi
echo "$name $1 $url" >> "$db/log"
f="$db/$name-$(printf '%s' "$url" | tr '/:' '__')"
case "$1" in
  store) printf '%s' "$input" > "$f" ;;
  get|erase)
    if [ ! -f "$f" ]; then echo "credentials not found in native keychain"; exit 1; fi
    if [ "$1" = get ]; then cat "$f"; else rm "$f"; fi ;;
  *) echo "unknown action $1" >&2; exit 2 ;;
esac
`;

interface Helpers {
  env: NodeJS.ProcessEnv;
  db: string;
  bin: string;
  log(): Promise<string[]>;
  /** Stores an entry directly in the helper's database. */
  seed(name: string, url: string, user: string, secret: string): Promise<void>;
}

/** A bin dir on PATH holding the given helpers (the file helper unless a script is given). */
async function helpers(t: Parameters<typeof tempDir>[0], scripts: Record<string, string>): Promise<Helpers> {
  const root = await tempDir(t);
  const bin = join(root, 'bin');
  const db = join(root, 'db');
  await mkdir(bin);
  await mkdir(db);
  for (const [name, script] of Object.entries(scripts)) {
    const p = join(bin, `docker-credential-${name}`);
    await writeFile(p, script);
    await chmod(p, 0o755);
  }
  return {
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HELPER_DB: db, HOME: root },
    db,
    bin,
    log: async () => (await readFile(join(db, 'log'), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    seed: (name, url, user, secret) =>
      writeFile(join(db, `${name}-${url.replace(/[/:]/g, '_')}`), JSON.stringify({ ServerURL: url, Username: user, Secret: secret })),
  };
}

test('auths: base64 "auth" splits at the first colon; username/password fields; identitytoken', async (t) => {
  const dir = await configDir(t, {
    auths: {
      'a.example': { auth: b64('alice:pa:ss:word') },
      'b.example': { username: 'bob', password: 'hunter2' },
      'c.example': { auth: b64('carol:'), identitytoken: 'refresh-1' },
      'd.example': { identitytoken: 'refresh-2' },
      'e.example': { auth: 'bm9jb2xvbg==' }, // "nocolon"
    },
  });
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  assert.deepEqual(await s.get('a.example'), { username: 'alice', password: 'pa:ss:word' });
  assert.deepEqual(await s.get('b.example'), { username: 'bob', password: 'hunter2' });
  assert.deepEqual(await s.get('c.example'), { username: 'carol', identityToken: 'refresh-1' });
  assert.deepEqual(await s.get('d.example'), { identityToken: 'refresh-2' });
  assert.equal(await s.get('z.example'), undefined);
  await assert.rejects(s.get('e.example'), (e: unknown) => hasErrorCode(e, 'IO') && /auths\["e\.example"\]\.auth/.test((e as Error).message));
});

test('auths: URL-form keys and host spellings match; Docker Hub aliases share one key', async (t) => {
  const dir = await configDir(t, {
    auths: {
      'https://reg.example:5000/v2/': { auth: b64('u1:p1') },
      'http://other.example': { auth: b64('u2:p2') },
      'https://index.docker.io/v1/': { auth: b64('hub:secret') },
      'ghcr.io': {},
    },
  });
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  assert.deepEqual(await s.get('reg.example:5000'), { username: 'u1', password: 'p1' });
  assert.deepEqual(await s.get('HTTPS://Reg.Example:5000/v1/'), { username: 'u1', password: 'p1' });
  assert.equal(await s.get('reg.example'), undefined, 'the port is part of the host');
  assert.deepEqual(await s.get('other.example'), { username: 'u2', password: 'p2' });
  for (const hub of ['docker.io', 'registry-1.docker.io', 'index.docker.io', 'https://index.docker.io/v1/']) {
    assert.deepEqual(await s.get(hub), { username: 'hub', password: 'secret' }, hub);
  }
  assert.equal(await s.get('ghcr.io'), undefined, 'an empty entry without a credsStore is nothing');

  await s.put('registry-1.docker.io', { username: 'hub2', password: 'x' });
  const cfg = await readConfig(dir);
  assert.deepEqual(cfg.auths['https://index.docker.io/v1/'], { auth: b64('hub2:x') });
  assert.equal(await s.delete('https://reg.example:5000'), true);
  assert.equal((await readConfig(dir)).auths['https://reg.example:5000/v2/'], undefined);
  assert.equal(await s.delete('reg.example:5000'), false);
});

test('credHelpers beats credsStore beats auths, each falling through when it has nothing', async (t) => {
  const h = await helpers(t, { one: FILE_HELPER, two: FILE_HELPER });
  const dir = await configDir(t, {
    credHelpers: { 'reg.example': 'one' },
    credsStore: 'two',
    auths: { 'reg.example': { auth: b64('file:user') } },
  });
  const s = new DockerCredentialStore({ configDir: dir, env: h.env });
  assert.equal(await s.storeFor('reg.example'), 'one');
  assert.equal(await s.storeFor('other.example'), 'two');
  assert.deepEqual(await s.get('reg.example'), { username: 'file', password: 'user' });
  await h.seed('two', 'reg.example', 'store-user', 's2');
  assert.deepEqual(await s.get('reg.example'), { username: 'store-user', password: 's2' });
  await h.seed('one', 'reg.example', 'helper-user', 's1');
  assert.deepEqual(await s.get('https://reg.example/v2/'), { username: 'helper-user', password: 's1' });
  assert.deepEqual(await h.log(), ['one get reg.example', 'two get reg.example', 'one get reg.example', 'two get reg.example', 'one get reg.example']);
});

test('a helper round trip: put stores through it and leaves {} in auths; get; delete erases', async (t) => {
  const h = await helpers(t, { filedb: FILE_HELPER });
  const dir = await configDir(t, { credsStore: 'filedb', auths: { 'reg.example': { auth: b64('old:plain') }, 'https://reg.example': { auth: b64('x:y') } } });
  const s = new DockerCredentialStore({ configDir: dir, env: h.env });
  await s.put('Reg.Example', { username: 'alice', password: 'p:w' });
  assert.deepEqual((await readConfig(dir)).auths, { 'reg.example': {} }, 'secrets leave the file; aliases go');
  assert.deepEqual(JSON.parse(await readFile(join(h.db, 'filedb-reg.example'), 'utf8')), { ServerURL: 'reg.example', Username: 'alice', Secret: 'p:w' });
  assert.deepEqual(await s.get('reg.example'), { username: 'alice', password: 'p:w' });

  await s.put('tok.example', { identityToken: 'refresh-xyz' });
  assert.equal(JSON.parse(await readFile(join(h.db, 'filedb-tok.example'), 'utf8')).Username, '<token>');
  assert.deepEqual(await s.get('tok.example'), { identityToken: 'refresh-xyz' });

  await s.put('docker.io', { username: 'hub', password: 'pw' });
  assert.deepEqual((await readConfig(dir)).auths['https://index.docker.io/v1/'], {});
  assert.deepEqual(await s.get('index.docker.io'), { username: 'hub', password: 'pw' });

  assert.equal(await s.delete('reg.example'), true);
  assert.equal(await s.get('reg.example'), undefined);
  assert.equal((await readConfig(dir)).auths['reg.example'], undefined);
  assert.equal(await s.delete('reg.example'), false, 'helper says "credentials not found", file has nothing');
  const log = await h.log();
  assert.ok(log.includes('filedb store https://index.docker.io/v1/'), 'Docker Hub is asked about by its URL');
  assert.deepEqual(log.filter((l) => l.includes(' erase ')), ['filedb erase reg.example', 'filedb erase reg.example']);
});

test('helper failures: missing program, error output, bad JSON, timeout', async (t) => {
  const h = await helpers(t, {
    broken: '#!/bin/sh\ncat >/dev/null\necho "  keychain is locked  " >&2\necho second line >&2\nexit 3\n',
    liar: '#!/bin/sh\ncat >/dev/null\necho "{not json"\n',
    slow: '#!/bin/sh\nexec sleep 10\n',
  });
  const io = (re: RegExp) => (e: unknown) => hasErrorCode(e, 'IO') && re.test((e as Error).message);

  const missingDir = await configDir(t, { credHelpers: { 'reg.example': 'nope' } });
  const missing = new DockerCredentialStore({ configDir: missingDir, env: h.env });
  const where = join(missingDir, 'config.json').replace(/[.[\]]/g, '\\$&');
  await assert.rejects(missing.get('reg.example'), io(new RegExp(`^docker-credential-nope: not found on PATH \\(named by credHelpers\\["reg\\.example"\\] in ${where}\\)$`)));
  await assert.rejects(missing.put('reg.example', { username: 'u', password: 'p' }), io(/docker-credential-nope: not found/));
  assert.deepEqual(await readConfig(missingDir), { credHelpers: { 'reg.example': 'nope' } }, 'nothing written when the helper fails');

  const broken = new DockerCredentialStore({ configDir: await configDir(t, { credsStore: 'broken' }), env: h.env });
  await assert.rejects(broken.get('reg.example'), io(/^docker-credential-broken get: keychain is locked$/));
  await assert.rejects(broken.delete('reg.example'), io(/^docker-credential-broken erase: keychain is locked$/));
  const liar = new DockerCredentialStore({ configDir: await configDir(t, { credsStore: 'liar' }), env: h.env });
  await assert.rejects(liar.get('reg.example'), io(/docker-credential-liar get: answer is not valid JSON/));

  const started = Date.now();
  const call = { name: 'slow', source: 'credsStore', configPath: 'x', env: h.env, timeoutMs: 150 };
  await assert.rejects(runHelper(call, 'get', 'reg.example'), io(/docker-credential-slow get: no answer after/));
  assert.ok(Date.now() - started < 2000);
  await assert.rejects(runHelper({ ...call, name: '../slow' }, 'get', 'x'), io(/not a credential helper name/));
});

test('put keeps every other field, writes mode 0600 by rename, and leaves no temp file', async (t) => {
  const original = {
    auths: { 'other.example': { auth: b64('o:p'), email: 'o@example.com' } },
    proxies: { default: { httpProxy: 'http://proxy:3128' } },
    plugins: { debug: { hooks: 'exec' } },
    currentContext: 'remote',
    detachKeys: 'ctrl-e,e',
  };
  const dir = await configDir(t, original);
  const before = await stat(join(dir, 'config.json'));
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  await s.put('reg.example', { username: 'u', password: 'p', identityToken: 'tok' });
  const cfg = await readConfig(dir);
  assert.deepEqual(cfg, { ...original, auths: { ...original.auths, 'reg.example': { auth: b64('u:p'), identitytoken: 'tok' } } });
  const after = await stat(join(dir, 'config.json'));
  assert.equal(after.mode & 0o777, 0o600);
  assert.notEqual(after.ino, before.ino, 'replaced by rename, not rewritten in place');
  assert.deepEqual(await readdir(dir), ['config.json']);
  assert.equal(await s.delete('reg.example'), true);
  assert.deepEqual(await readConfig(dir), original);
});

test('put creates the config dir (0700) and file; concurrent puts on one store all land', async (t) => {
  const dir = join(await configDir(t), 'nested');
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  assert.equal(await s.get('reg.example'), undefined);
  assert.equal(await s.delete('reg.example'), false);
  await Promise.all(Array.from({ length: 8 }, (_, i) => s.put(`r${i}.example`, { username: `u${i}`, password: 'p' })));
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal(Object.keys((await readConfig(dir)).auths).length, 8);
  await assert.rejects(s.put('reg.example', {}), (e: unknown) => hasErrorCode(e, 'USAGE'));
  await assert.rejects(s.put('reg.example', { username: 'a:b', password: 'p' }), (e: unknown) => hasErrorCode(e, 'USAGE'));
});

test('a symlinked config.json is followed: the target is replaced, the link stays', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'docker');
  const real = join(root, 'dotfiles');
  await mkdir(dir);
  await mkdir(real);
  await writeFile(join(real, 'docker-config.json'), JSON.stringify({ currentContext: 'x' }));
  await symlink('../dotfiles/docker-config.json', join(dir, 'config.json'));
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  await s.put('reg.example', { username: 'u', password: 'p' });
  assert.ok((await lstat(join(dir, 'config.json'))).isSymbolicLink());
  const target = JSON.parse(await readFile(join(real, 'docker-config.json'), 'utf8'));
  assert.deepEqual(target, { currentContext: 'x', auths: { 'reg.example': { auth: b64('u:p') } } });
  assert.deepEqual((await readdir(real)).sort(), ['docker-config.json']);
  assert.deepEqual(await readdir(dir), ['config.json']);
  assert.deepEqual(await s.get('reg.example'), { username: 'u', password: 'p' });
});

test('dockerConfigDir honours DOCKER_CONFIG, then HOME', async (t) => {
  assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/etc/dc', HOME: '/home/x' }), '/etc/dc');
  assert.equal(dockerConfigDir({ HOME: '/home/x' }), '/home/x/.docker');
  const dir = await configDir(t, { auths: { 'reg.example': { auth: b64('env:yes') } } });
  assert.deepEqual(await new DockerCredentialStore({ env: { DOCKER_CONFIG: dir } }).get('reg.example'), { username: 'env', password: 'yes' });
});

test('an invalid config.json is an IO error naming the file', async (t) => {
  const dir = await configDir(t, '{ "auths": ');
  const s = new DockerCredentialStore({ configDir: dir, env: {} });
  const path = join(dir, 'config.json');
  for (const call of [() => s.get('reg.example'), () => s.put('reg.example', { username: 'u', password: 'p' }), () => s.storeFor('reg.example')]) {
    await assert.rejects(call, (e: unknown) => {
      assert.ok(e instanceof PackError && e.code === 'IO');
      assert.ok(e.message.startsWith(`${path}: not valid JSON (`), e.message);
      assert.equal(e.hint, 'fix or remove the file');
      return true;
    });
  }
  assert.equal(await readFile(path, 'utf8'), '{ "auths": ', 'left as it was');
  await writeFile(path, '{"auths": []}');
  await assert.rejects(s.get('reg.example'), (e: unknown) => hasErrorCode(e, 'IO') && /"auths"/.test((e as Error).message));
});
