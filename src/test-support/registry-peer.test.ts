import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request, type IncomingHttpHeaders } from 'node:http';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { requirePeer } from './peers.js';
import { startDockerRegistry, TOKEN_ISSUER, TOKEN_SERVICE, BASIC_REALM, type RegistryPeer } from './registry-peer.js';
import { startFaultProxy } from './fault-proxy.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** set when the response body did not complete (socket closed, or our own timeout) */
  error?: string;
}

/** One request on a fresh connection; resolves with whatever body arrived, even if cut short. */
function http(
  method: string,
  url: string,
  opts: { headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer>; idleTimeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: opts.headers ?? {}, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let settled = false;
      const finish = (error?: string): void => {
        if (settled) return;
        settled = true;
        const reply: Reply = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) };
        if (error !== undefined) reply.error = error;
        resolve(reply);
      };
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => finish());
      res.on('error', (e) => finish(e.message));
      res.on('close', () => finish(res.complete ? undefined : 'closed before the end'));
      if (opts.idleTimeoutMs) {
        res.socket.setTimeout(opts.idleTimeoutMs, () => {
          finish('idle timeout');
          req.destroy();
        });
      }
    });
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch((e: unknown) => req.destroy(e as Error));
    }
  });
}

const sha256 = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
const basic = (user: string, pw: string): string => 'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64');
const json = (r: Reply): any => JSON.parse(r.body.toString('utf8'));

/** Monolithic upload: POST, then PUT to Location with ?digest= (octet-stream body). */
async function pushBlob(base: string, repo: string, blob: Buffer, headers: Record<string, string> = {}): Promise<{ location: string; digest: string }> {
  const post = await http('POST', `${base}/v2/${repo}/blobs/uploads/`, { headers });
  assert.equal(post.status, 202, post.body.toString());
  const location = String(post.headers.location);
  const digest = sha256(blob);
  const put = await http('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
    headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
    body: blob,
  });
  assert.equal(put.status, 201, put.body.toString());
  return { location, digest };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function parseChallenge(h: string | undefined): Record<string, string> {
  assert.ok(h, 'WWW-Authenticate present');
  const m = /^Bearer\s+(.*)$/.exec(h);
  assert.ok(m, h);
  const out: Record<string, string> = {};
  for (const p of m[1]!.matchAll(/(\w+)="([^"]*)"/g)) out[p[1]!] = p[2]!;
  return out;
}

function jwtClaims(token: string): any {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

test('docker-registry without auth: blob round trip, 127.0.0.1 only, stop by PID', async (t) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const reg = await startDockerRegistry(t);
  assert.match(reg.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(reg.url, `http://${reg.host}`);
  const v2 = await http('GET', `${reg.url}/v2/`);
  assert.equal(v2.status, 200);
  assert.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0');

  const blob = randomBytes(4096);
  const { location, digest } = await pushBlob(reg.url, 'test/none', blob);
  assert.ok(location.startsWith(`${reg.url}/v2/test/none/blobs/uploads/`), location);
  const got = await http('GET', `${reg.url}/v2/test/none/blobs/${digest}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, blob);
  const onDisk = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
  assert.equal((await stat(onDisk)).size, blob.length);

  assert.ok(alive(reg.pid));
  await reg.stop();
  assert.equal(alive(reg.pid), false);
  await reg.stop(); // idempotent
  await assert.rejects(stat(reg.dataDir), { code: 'ENOENT' });
});

test('docker-registry with basic auth: right and wrong password', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'htpasswd', 'apache2-utils')) return;
  const reg = await startDockerRegistry(t, { auth: 'basic', users: { alice: 's3cret', bob: 'pw2' } });
  const anon = await http('GET', `${reg.url}/v2/`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers['www-authenticate'], `Basic realm="${BASIC_REALM}"`);
  assert.equal(json(anon).errors[0].code, 'UNAUTHORIZED');
  assert.equal((await http('GET', `${reg.url}/v2/`, { headers: { authorization: basic('alice', 's3cret') } })).status, 200);
  assert.equal((await http('GET', `${reg.url}/v2/`, { headers: { authorization: basic('bob', 'pw2') } })).status, 200);
  assert.equal((await http('GET', `${reg.url}/v2/`, { headers: { authorization: basic('alice', 'wrong') } })).status, 401);
  await pushBlob(reg.url, 'test/basic', Buffer.from('hello'), { authorization: basic('alice', 's3cret') });
});

test('docker-registry with token auth: challenge, anonymous, user, push denied, refresh', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'openssl')) return;
  const reg = await startDockerRegistry(t, {
    auth: 'token',
    users: { alice: 'pw-a', bob: 'pw-b' },
    // anonymous may pull public/*; bob may only pull; alice gets everything
    access: (user, repo) => (user === '' ? (repo.startsWith('public/') ? ['pull'] : []) : user === 'bob' ? ['pull'] : ['pull', 'push', 'delete']),
  });
  const issuer = reg.token!;
  assert.ok(issuer);

  // The challenge names the realm and service; with a repository route it adds the scope.
  const v2 = await http('GET', `${reg.url}/v2/`);
  assert.equal(v2.status, 401);
  assert.deepEqual(parseChallenge(v2.headers['www-authenticate'] as string), { realm: `${issuer.url}/token`, service: TOKEN_SERVICE });
  const tags = await http('GET', `${reg.url}/v2/private/m/tags/list`);
  assert.equal(tags.status, 401);
  const ch = parseChallenge(tags.headers['www-authenticate'] as string);
  assert.equal(ch.scope, 'repository:private/m:pull');
  assert.equal(json(tags).errors[0].code, 'UNAUTHORIZED');

  const getToken = async (scopes: string[], auth?: string, extra = ''): Promise<any> => {
    const q = `service=${encodeURIComponent(ch.service!)}${scopes.map((s) => `&scope=${encodeURIComponent(s)}`).join('')}${extra}`;
    const r = await http('GET', `${ch.realm}?${q}`, auth ? { headers: { authorization: auth } } : {});
    assert.equal(r.status, 200, r.body.toString());
    return json(r);
  };
  const bearer = (tok: string): Record<string, string> => ({ authorization: `Bearer ${tok}` });

  // Anonymous: a token is issued but grants nothing on private/m → 401 insufficient_scope.
  const anonPrivate = await getToken(['repository:private/m:pull']);
  assert.deepEqual(jwtClaims(anonPrivate.token).access, [{ type: 'repository', name: 'private/m', actions: [] }]);
  const denied = await http('GET', `${reg.url}/v2/private/m/tags/list`, { headers: bearer(anonPrivate.token) });
  assert.equal(denied.status, 401);
  assert.equal(parseChallenge(denied.headers['www-authenticate'] as string).error, 'insufficient_scope');
  // Anonymous pull on public/* gets past auth (the repository does not exist: 404 NAME_UNKNOWN).
  const anonPublic = await getToken(['repository:public/m:pull']);
  const pub = await http('GET', `${reg.url}/v2/public/m/tags/list`, { headers: bearer(anonPublic.access_token) });
  assert.equal(pub.status, 404);
  assert.equal(json(pub).errors[0].code, 'NAME_UNKNOWN');

  // alice: pull+push, then a blob upload with the token.
  const alice = await getToken(['repository:private/m:pull,push'], basic('alice', 'pw-a'), '&account=alice');
  assert.equal(alice.expires_in, 300);
  assert.ok(!Number.isNaN(Date.parse(alice.issued_at)));
  const claims = jwtClaims(alice.token);
  assert.equal(claims.iss, TOKEN_ISSUER);
  assert.equal(claims.aud, TOKEN_SERVICE);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.exp - claims.iat, 300);
  assert.deepEqual(claims.access, [{ type: 'repository', name: 'private/m', actions: ['pull', 'push'] }]);
  const header = JSON.parse(Buffer.from(alice.token.split('.')[0], 'base64url').toString());
  assert.equal(header.alg, 'RS256');
  assert.equal(header.x5c.length, 1);
  assert.equal((await http('GET', `${reg.url}/v2/private/m/tags/list`, { headers: bearer(alice.token) })).status, 404);
  await pushBlob(reg.url, 'private/m', Buffer.from('token-blob'), bearer(alice.token));

  // Wrong password at the issuer: 401 JSON.
  const wrong = await http('GET', `${ch.realm}?service=${TOKEN_SERVICE}&scope=repository:private/m:pull`, { headers: { authorization: basic('alice', 'nope') } });
  assert.equal(wrong.status, 401);
  assert.equal(json(wrong).errors[0].code, 'UNAUTHORIZED');

  // bob asks for pull,push but only gets pull: reads pass, an upload is refused.
  const bob = await getToken(['repository:private/m:pull,push'], basic('bob', 'pw-b'));
  assert.deepEqual(jwtClaims(bob.token).access[0].actions, ['pull']);
  assert.equal((await http('GET', `${reg.url}/v2/private/m/tags/list`, { headers: bearer(bob.token) })).status, 404);
  const push = await http('POST', `${reg.url}/v2/private/m/blobs/uploads/`, { headers: bearer(bob.token) });
  assert.equal(push.status, 401);
  const pushCh = parseChallenge(push.headers['www-authenticate'] as string);
  assert.equal(pushCh.error, 'insufficient_scope');
  // docker-registry lists the actions in either order (Go map iteration): compare them as a set.
  const [kind, repo, actions] = String(pushCh.scope).split(':');
  assert.deepEqual([kind, repo, actions?.split(',').sort()], ['repository', 'private/m', ['pull', 'push']]);

  // OAuth2 POST: password grant with access_type=offline gives a refresh token; the refresh grant works.
  const form = (f: Record<string, string>): Buffer => Buffer.from(new URLSearchParams(f).toString());
  const formHeaders = { 'content-type': 'application/x-www-form-urlencoded' };
  const pw = await http('POST', ch.realm!, {
    headers: formHeaders,
    body: form({ grant_type: 'password', username: 'alice', password: 'pw-a', service: TOKEN_SERVICE, scope: 'repository:private/m:pull repository:other/x:pull', access_type: 'offline', client_id: 'mpk-test' }),
  });
  assert.equal(pw.status, 200, pw.body.toString());
  const pwBody = json(pw);
  assert.ok(pwBody.refresh_token);
  assert.equal(jwtClaims(pwBody.access_token).access.length, 2);
  const refreshed = await http('POST', ch.realm!, {
    headers: formHeaders,
    body: form({ grant_type: 'refresh_token', refresh_token: pwBody.refresh_token, service: TOKEN_SERVICE, scope: 'repository:private/m:pull,push' }),
  });
  assert.equal(refreshed.status, 200);
  const rTok = json(refreshed).access_token;
  assert.equal(jwtClaims(rTok).sub, 'alice');
  assert.equal((await http('POST', `${reg.url}/v2/private/m/blobs/uploads/`, { headers: bearer(rTok) })).status, 202);
  const badRefresh = await http('POST', ch.realm!, { headers: formHeaders, body: form({ grant_type: 'refresh_token', refresh_token: 'nope', service: TOKEN_SERVICE }) });
  assert.equal(badRefresh.status, 401);
  const badPw = await http('POST', ch.realm!, { headers: formHeaders, body: form({ grant_type: 'password', username: 'alice', password: 'x', service: TOKEN_SERVICE }) });
  assert.equal(badPw.status, 401);
  // GET with offline_token=true also gives a refresh token.
  assert.ok((await getToken(['repository:private/m:pull'], basic('alice', 'pw-a'), '&offline_token=true')).refresh_token);

  const r0 = issuer.requests.find((r) => r.account === 'alice');
  assert.deepEqual(r0, { account: 'alice', scopes: ['repository:private/m:pull,push'], service: TOKEN_SERVICE, method: 'GET', user: 'alice', status: 200 });
  assert.deepEqual(issuer.requests.find((r) => r.grantType === 'password')?.scopes, ['repository:private/m:pull', 'repository:other/x:pull']);
  assert.equal(issuer.tokensIssued, 7);
});

test('docker-registry with token auth: expired tokens (the registry allows 60 s of leeway)', async (t) => {
  if (!requirePeer(t, 'docker-registry') || !requirePeer(t, 'openssl')) return;
  // The issuer's clock runs 120 s behind, so a 1 s token is expired beyond the registry's leeway.
  const reg = await startDockerRegistry(t, { auth: 'token', users: { alice: 'pw' }, tokenTtlSeconds: 1, tokenClockOffsetSeconds: -120 });
  const issuer = reg.token!;
  const r = await http('GET', `${issuer.url}/token?service=${TOKEN_SERVICE}&scope=repository:a/b:pull`, { headers: { authorization: basic('alice', 'pw') } });
  assert.equal(r.status, 200);
  const body = json(r);
  assert.equal(body.expires_in, 1);
  const expired = await http('GET', `${reg.url}/v2/a/b/tags/list`, { headers: { authorization: `Bearer ${body.token}` } });
  assert.equal(expired.status, 401);
  assert.equal(parseChallenge(expired.headers['www-authenticate'] as string).error, 'invalid_token');

  // Quirk: a token that expired 30 s ago is still accepted (exp + 60 s leeway)...
  const now = Math.floor(Date.now() / 1000);
  const access = [{ type: 'repository', name: 'a/b', actions: ['pull'] }];
  const recent = issuer.mint({ user: 'alice', access, issuedAt: now - 31, ttlSeconds: 1 });
  assert.equal((await http('GET', `${reg.url}/v2/a/b/tags/list`, { headers: { authorization: `Bearer ${recent}` } })).status, 404);
  // ...and a token for another audience is not.
  const otherAud = issuer.mint({ user: 'alice', access, audience: 'someone-else' });
  assert.equal((await http('GET', `${reg.url}/v2/a/b/tags/list`, { headers: { authorization: `Bearer ${otherAud}` } })).status, 401);
});

test('fault proxy in front of docker-registry', async (t: TestContext) => {
  if (!requirePeer(t, 'docker-registry')) return;
  const reg: RegistryPeer = await startDockerRegistry(t);
  const blob = randomBytes(1 << 20);
  const { digest } = await pushBlob(reg.url, 'test/proxy', blob);
  const blobPath = `/v2/test/proxy/blobs/${digest}`;
  const isBlobGet = (r: { method: string; url: string }): boolean => r.method === 'GET' && r.url === blobPath;

  await t.test('forwards a chunked upload and a GET, rewriting Location', async (t) => {
    const proxy = await startFaultProxy(t, reg.url);
    const big = randomBytes(8 << 20);
    const post = await http('POST', `${proxy.url}/v2/test/up/blobs/uploads/`);
    assert.equal(post.status, 202);
    const loc = String(post.headers.location);
    assert.ok(loc.startsWith(`${proxy.url}/v2/test/up/blobs/uploads/`), loc);
    async function* chunks(): AsyncIterable<Buffer> {
      for (let i = 0; i < big.length; i += 256 * 1024) yield big.subarray(i, i + 256 * 1024);
    }
    // PATCH with a streamed body (no content-length: chunked through the proxy).
    const patch = await http('PATCH', loc, { headers: { 'content-type': 'application/octet-stream' }, body: chunks() });
    assert.equal(patch.status, 202, patch.body.toString());
    assert.equal(patch.headers.range, `0-${big.length - 1}`);
    const loc2 = String(patch.headers.location);
    assert.ok(loc2.startsWith(proxy.url), loc2);
    const d = sha256(big);
    const put = await http('PUT', `${loc2}&digest=${d}`, { headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 201, put.body.toString());
    assert.equal(put.headers.location, `${proxy.url}/v2/test/up/blobs/${d}`);
    const got = await http('GET', `${proxy.url}/v2/test/up/blobs/${d}`);
    assert.equal(got.status, 200);
    assert.equal(sha256(got.body), d);
    const head = await http('HEAD', `${proxy.url}/v2/test/up/blobs/${d}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(big.length));
    const ranged = await http('GET', `${proxy.url}/v2/test/up/blobs/${d}`, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(ranged.body, big.subarray(10, 20));
    assert.deepEqual(
      proxy.log.map((e) => [e.method, e.status]),
      [['POST', 202], ['PATCH', 202], ['PUT', 201], ['GET', 200], ['HEAD', 200], ['GET', 206]],
    );
    assert.equal(proxy.log[3]!.bodyBytesSent, big.length);
    assert.equal(proxy.log[4]!.bodyBytesSent, 0);
    assert.equal(proxy.log[5]!.range, 'bytes=10-19');
    assert.ok(proxy.log.every((e) => e.faulted === undefined));
  });

  await t.test('cut after N bytes aborts the response once', async (t) => {
    const proxy = await startFaultProxy(t, reg.url);
    proxy.rules.push({ match: isBlobGet, cutAfterBytes: 100_000 });
    const cut = await http('GET', proxy.url + blobPath);
    assert.equal(cut.status, 200);
    assert.equal(cut.headers['content-length'], String(blob.length));
    assert.ok(cut.error, 'the response must not complete');
    assert.equal(cut.body.length, 100_000);
    assert.deepEqual(cut.body, blob.subarray(0, 100_000));
    assert.equal(proxy.log[0]!.bodyBytesSent, 100_000);
    assert.equal(proxy.log[0]!.faulted, 'cut@100000');
    const again = await http('GET', proxy.url + blobPath);
    assert.equal(again.error, undefined);
    assert.deepEqual(again.body, blob);

    // cut at 0: headers only, then the connection closes.
    proxy.rules.push({ match: isBlobGet, cutAfterBytes: 0 });
    const zero = await http('GET', proxy.url + blobPath);
    assert.equal(zero.status, 200);
    assert.ok(zero.error);
    assert.equal(zero.body.length, 0);
  });

  await t.test('flips one byte', async (t) => {
    const proxy = await startFaultProxy(t, reg.url);
    proxy.rules.push({ match: isBlobGet, flipByteAt: 123_457 });
    const got = await http('GET', proxy.url + blobPath);
    assert.equal(got.status, 200);
    assert.equal(got.error, undefined);
    assert.equal(got.body.length, blob.length);
    assert.notEqual(sha256(got.body), digest);
    assert.equal(got.body[123_457], blob[123_457]! ^ 0xff);
    got.body[123_457] = blob[123_457]!;
    assert.deepEqual(got.body, blob);
    assert.equal(proxy.log[0]!.faulted, 'flip@123457');
  });

  await t.test('503 once, then forwards; 429 with Retry-After always', async (t) => {
    const proxy = await startFaultProxy(t, reg.url);
    proxy.rules.push({ match: isBlobGet, status: 503 });
    const first = await http('GET', proxy.url + blobPath);
    assert.equal(first.status, 503);
    assert.equal(json(first).errors[0].code, 'UNAVAILABLE');
    const second = await http('GET', proxy.url + blobPath);
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, blob);
    assert.deepEqual(proxy.log.map((e) => [e.status, e.faulted]), [[503, 'status 503'], [200, undefined]]);

    proxy.rules.push({ match: (r) => r.method === 'HEAD', status: 429, retryAfter: 2, times: Infinity });
    for (let i = 0; i < 3; i++) {
      const h = await http('HEAD', proxy.url + blobPath);
      assert.equal(h.status, 429);
      assert.equal(h.headers['retry-after'], '2');
    }
  });

  await t.test('stalls after N bytes', async (t) => {
    const proxy = await startFaultProxy(t, reg.url);
    proxy.rules.push({ match: isBlobGet, stallAfterBytes: 5000 });
    const started = Date.now();
    const stalled = await http('GET', proxy.url + blobPath, { idleTimeoutMs: 300 });
    assert.equal(stalled.status, 200);
    assert.equal(stalled.error, 'idle timeout');
    assert.equal(stalled.body.length, 5000);
    assert.ok(Date.now() - started >= 250);
    assert.equal(proxy.log[0]!.faulted, 'stall@5000');
  });
});
