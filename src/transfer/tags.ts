/** Tags of a remote repository, every page. */
import { PackError } from '../errors.js';
import { parseReference } from '../oci/reference.js';
import { RemoteRepository } from '../registry/repository.js';
import { makeClient, type TransferOptions } from './transfer.js';

export async function listRemoteTags(repository: string, opts: TransferOptions = {}): Promise<string[]> {
  const ref = parseReference(repository, { defaultTag: false });
  if (ref.tag || ref.digest) throw new PackError('USAGE', `${repository}: give the repository without a tag`, { hint: 'e.g. mpk tags localhost:5000/models/llama' });
  const client = makeClient(opts);
  try {
    const out: string[] = [];
    for await (const t of RemoteRepository.fromReference(client, ref).tags(opts.signal ? { signal: opts.signal } : {})) out.push(t);
    return out;
  } finally {
    client.close();
  }
}
