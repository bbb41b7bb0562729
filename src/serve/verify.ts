/**
 * `mpk serve verify`: checks a registry root the way `mpk verify` checks a store. Every pool blob
 * is rehashed against its name; every link must have its content; every manifest must parse and
 * name only content of its repository; every tag must point at a manifest of its repository.
 * Problems are reported by digest and place; nothing is changed.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrorCode } from '../errors.js';
import { parseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../oci/manifest.js';
import { RepoStore } from './repo-store.js';
import { hashFile } from './upload-hash.js';

export interface RegistryProblem {
  problem: 'corrupt' | 'missing' | 'invalid-manifest' | 'dangling-tag' | 'unreadable';
  /** A digest, or `repo@digest`, or `repo:tag`. */
  where: string;
  detail: string;
}

export interface RegistryVerifyResult {
  blobs: number;
  bytes: number;
  repositories: number;
  manifests: number;
  tags: number;
  problems: RegistryProblem[];
}

const list = (dir: string): Promise<string[]> => readdir(dir).then((l) => l.sort(), () => []);

export async function verifyRegistry(root: string, onBlob?: (digest: string) => void): Promise<RegistryVerifyResult> {
  const store = new RepoStore(root);
  const r: RegistryVerifyResult = { blobs: 0, bytes: 0, repositories: 0, manifests: 0, tags: 0, problems: [] };
  for (const alg of ['sha256', 'sha512'] as DigestAlgorithm[]) {
    for (const hex of await list(join(root, 'blobs', alg))) {
      const digest = `${alg}:${hex}`;
      onBlob?.(digest);
      try {
        parseDigest(digest);
        const got = await hashFile(join(root, 'blobs', alg, hex), alg);
        r.blobs++;
        r.bytes += got.size;
        if (got.digest !== digest) r.problems.push({ problem: 'corrupt', where: digest, detail: `content has digest ${got.digest}` });
      } catch (e) {
        r.problems.push({ problem: 'unreadable', where: digest, detail: (e as Error).message });
      }
    }
  }
  for (const repo of await store.listRepositories()) {
    r.repositories++;
    for (const alg of ['sha256', 'sha512']) {
      for (const hex of await list(join(store.repoDir(repo), '_blobs', alg))) {
        const digest = `${alg}:${hex}`;
        if ((await store.pool.size(digest).catch(() => undefined)) === undefined) r.problems.push({ problem: 'missing', where: `${repo}@${digest}`, detail: 'linked blob missing from the pool' });
      }
      for (const hex of await list(join(store.repoDir(repo), '_manifests', alg))) {
        const digest = `${alg}:${hex}`;
        r.manifests++;
        const where = `${repo}@${digest}`;
        try {
          const size = await store.pool.size(digest);
          if (size === undefined) {
            r.problems.push({ problem: 'missing', where, detail: 'manifest content missing from the pool' });
            continue;
          }
          const mediaType = (await readFile(store.manifestLink(repo, parseDigest(digest)), 'utf8')).trim();
          const parsed = parseManifest(await store.pool.read({ mediaType, digest, size }, MAX_MANIFEST_BYTES), mediaType, where);
          const children = parsed.kind === 'manifest' ? [parsed.manifest.config, ...parsed.manifest.layers] : parsed.index.manifests;
          for (const c of children) {
            if (c.urls?.length) continue;
            if ((await store.contentSize(repo, c.digest)) === undefined) r.problems.push({ problem: 'missing', where, detail: `references ${c.digest}, which the repository does not hold` });
          }
        } catch (e) {
          const problem = hasErrorCode(e, 'DIGEST_MISMATCH') || hasErrorCode(e, 'SIZE_MISMATCH') ? 'corrupt' : 'invalid-manifest';
          r.problems.push({ problem, where, detail: (e as Error).message });
        }
      }
    }
    for (const tag of (await store.listTags(repo)) ?? []) {
      r.tags++;
      const digest = await store.resolveTag(repo, tag).catch(() => undefined);
      if (!digest || !(await store.getManifest(repo, digest).catch(() => undefined))) {
        r.problems.push({ problem: 'dangling-tag', where: `${repo}:${tag}`, detail: `points at ${digest ?? 'nothing readable'}, not a manifest of the repository` });
      }
    }
  }
  return r;
}
