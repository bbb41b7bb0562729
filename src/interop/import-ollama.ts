/**
 * `mpk import ollama NAME[:TAG]`: brings a model from an Ollama models directory into the store
 * without copying its weights. Every blob is hard-linked into the store's ingest directory, rehashed
 * there (the store's rule: nothing unverified becomes visible), and only when all of them check out
 * are they renamed into `blobs/`; then the manifest bytes are stored unchanged and tagged. A corrupt
 * or missing blob stores nothing. Across file systems (or for a file another user owns) the blob
 * is copied instead, verified as it is written, and a warning says so.
 *
 * The pool makes every blob read-only (0444); a linked blob shares its inode with Ollama's file,
 * so that file becomes read-only too. Ollama only reads blobs (it writes new ones by rename and
 * deletes by unlink), so it is unaffected, and a stray write can no longer change the store's bytes.
 */
import type { Stats } from 'node:fs';
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import { PackError, fsError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestBytes } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { DOCKER_MANIFEST, OCI_MANIFEST } from '../oci/media-types.js';
import { parseReference } from '../oci/reference.js';
import type { LocalStore } from '../store/store.js';
import { copyVerified, tryLink, verifyFile } from './link-blob.js';
import { OLLAMA_MANIFEST_LIST, isOllamaManifest } from './ollama.js';
import { blobFile, formatOllamaName, isDefaultHost, OLLAMA_DEFAULT_NAMESPACE, parseOllamaName, readOllamaManifest, type OllamaName } from './ollama-dir.js';

export interface ImportOllamaOptions {
  /** The Ollama models directory (see ollamaModelsDir). */
  modelsDir: string;
  /** Name in the store; default ollamaStoreReference(name). */
  reference?: string;
  signal?: AbortSignal;
}

export interface TransferredBlob {
  digest: string;
  size: number;
  /** linked: hard link, no new bytes; copied: a verified copy; present: already there. */
  how: 'linked' | 'copied' | 'present';
}

export interface ImportOllamaResult {
  /** The Ollama name, fully qualified. */
  name: string;
  reference: string;
  /** Manifest digest (Ollama's model ID is the same sha256). */
  digest: string;
  manifestPath: string;
  blobs: TransferredBlob[];
  bytes: number;
  warnings: string[];
}

/**
 * The store name of an imported model: `ollama/MODEL:TAG` for the public library, `ollama/NS/MODEL:TAG`
 * for other namespaces, `ollama/HOST/NS/MODEL:TAG` for other registries. It names no registry host,
 * so `mpk push` never sends it anywhere by accident; lowercase, as OCI names must be.
 */
export function ollamaStoreReference(n: OllamaName): string {
  const parts = ['ollama'];
  if (!isDefaultHost(n.host)) parts.push(n.host.toLowerCase().replace(/:/g, '-'));
  if (!isDefaultHost(n.host) || n.namespace !== OLLAMA_DEFAULT_NAMESPACE) parts.push(n.namespace.toLowerCase());
  parts.push(n.model.toLowerCase());
  const ref = `${parts.join('/')}:${n.tag}`;
  try {
    parseReference(ref);
  } catch (e) {
    throw new PackError('INVALID_REFERENCE', `${formatOllamaName(n)}: cannot be a store name as it is (${(e as Error).message})`, {
      cause: e,
      hint: 'name it with -t NAME:TAG',
    });
  }
  return ref;
}

export async function importOllama(store: LocalStore, nameText: string, opts: ImportOllamaOptions): Promise<ImportOllamaResult> {
  const name = parseOllamaName(nameText);
  const display = formatOllamaName(name);
  const reference = opts.reference ?? ollamaStoreReference(name);
  if (!parseReference(reference).tag) throw new PackError('INVALID_REFERENCE', `${reference}: a tag is needed to name a model`, { hint: 'add :TAG' });
  const { path: manifestPath, bytes } = await readOllamaManifest(opts.modelsDir, name);
  const desc = manifestDescriptor(bytes, manifestPath);
  const parsed = parseManifest(bytes, desc.mediaType, manifestPath);
  if (parsed.kind !== 'manifest') {
    throw new PackError('UNSUPPORTED', `${manifestPath}: an index, not a model manifest`, { hint: 'mpk imports single Ollama manifests: pull the model again with ollama pull' });
  }
  const m = parsed.manifest;
  const warnings: string[] = [];
  if (!isOllamaManifest(m)) warnings.push(`${display}: has no application/vnd.ollama.image.* layer; imported as it is`);

  const unique = new Map<string, Descriptor>();
  for (const d of [m.config, ...m.layers]) if (!unique.has(d.digest)) unique.set(d.digest, d);
  const blobs: TransferredBlob[] = [];
  const staged: { tmp: string; digest: string; restoreMode?: number }[] = [];
  const uid = process.getuid?.();
  let copied = 0;
  try {
    for (const d of unique.values()) {
      opts.signal?.throwIfAborted();
      const src = blobFile(opts.modelsDir, d.digest);
      if (await store.blobs.exists(d)) {
        await store.blobs.hold(d.digest);
        blobs.push({ digest: d.digest, size: d.size, how: 'present' });
        continue;
      }
      const { lst, st } = await blobStat(src, display);
      if (!st.isFile()) throw corrupt(src, display, 'not a regular file'); // a FIFO would block the read for ever
      if (st.size !== d.size) throw corrupt(src, display, `has ${st.size} bytes, the manifest says ${d.size}`);
      const tmp = await store.blobs.tempPath();
      const entry: { tmp: string; digest: string; restoreMode?: number } = { tmp, digest: d.digest };
      staged.push(entry);
      // Only a regular file we own is linked (a symbolic link is copied: link(2) would link the
      // link itself): the pool makes it read-only, which only the owner may. It is made read-only
      // before it is hashed, so a write into Ollama's file cannot slip in between check and commit
      // (its mode is given back if the import fails).
      const linked = lst.isFile() && (uid === undefined || lst.uid === uid) && (await tryLink(src, tmp));
      if (linked) {
        entry.restoreMode = lst.mode & 0o7777;
        await chmod(tmp, 0o444);
      }
      try {
        if (linked) await verifyFile(tmp, d, opts.signal);
        else await copyVerified(src, tmp, d, 0o644, opts.signal);
      } catch (e) {
        const c = (e as PackError).code;
        if (c === 'DIGEST_MISMATCH' || c === 'SIZE_MISMATCH') throw corrupt(src, display, (e as Error).message.replace(`${d.digest}: `, ''));
        throw fsError(e, src, 'cannot read');
      }
      if (!linked) copied++;
      blobs.push({ digest: d.digest, size: d.size, how: linked ? 'linked' : 'copied' });
    }
    opts.signal?.throwIfAborted();
    // Every blob checked: only now do they become visible.
    for (const s of staged) {
      await store.blobs.commit(s.tmp, s.digest, { readOnly: s.restoreMode !== undefined });
      s.tmp = '';
    }
  } catch (e) {
    const left = staged.filter((s) => s.tmp);
    await Promise.all(left.map(async (s) => (s.restoreMode !== undefined ? chmod(s.tmp, s.restoreMode).catch(() => undefined) : undefined)));
    await Promise.all(left.map((s) => unlink(s.tmp).catch(() => undefined)));
    throw e;
  }
  if (copied > 0) {
    warnings.push(`${copied} blob${copied === 1 ? ' was' : 's were'} copied, not hard-linked (another file system, files you do not own, or symbolic links): they take space twice`);
  }
  await store.push(desc, bytes);
  await store.tag(desc, reference);
  return {
    name: `${name.host}/${name.namespace}/${name.model}:${name.tag}`,
    reference,
    digest: desc.digest,
    manifestPath,
    blobs,
    bytes: [...unique.values()].reduce((n, d) => n + d.size, 0),
    warnings,
  };
}

/** The blob file (lst) and what it is once links are followed (st); a missing one (or a dangling link) is NOT_FOUND. */
async function blobStat(src: string, display: string): Promise<{ lst: Stats; st: Stats }> {
  try {
    const lst = await lstat(src);
    return { lst, st: lst.isSymbolicLink() ? await stat(src) : lst };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PackError('NOT_FOUND', `${src}: blob of ${display} is missing`, { hint: `run ollama pull ${display} to fetch it again; nothing was imported` });
    }
    throw fsError(e, src);
  }
}

/** The manifest's own media type (Docker v2 for Ollama), checked to be a single manifest. */
function manifestDescriptor(bytes: Buffer, where: string): Descriptor {
  let declared: unknown;
  try {
    declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
  } catch (e) {
    throw new PackError('INVALID_MANIFEST', `${where}: not JSON (${(e as Error).message.slice(0, 80)})`, {
      cause: e,
      hint: 'the Ollama models directory is damaged: run ollama pull NAME again',
    });
  }
  if (declared === OLLAMA_MANIFEST_LIST) {
    throw new PackError('UNSUPPORTED', `${where}: an Ollama manifest list (several runners); mpk imports single manifests`, {
      hint: 'import one of the manifests it lists, or pull the model with an Ollama version that writes single manifests',
    });
  }
  const mediaType = declared === OCI_MANIFEST ? OCI_MANIFEST : DOCKER_MANIFEST;
  return { mediaType, digest: digestBytes(bytes), size: bytes.length };
}

function corrupt(src: string, display: string, why: string): PackError {
  return new PackError('CORRUPT', `${src}: Ollama blob is corrupt (${why})`, { hint: `run ollama pull ${display} to fetch it again; nothing was imported` });
}
