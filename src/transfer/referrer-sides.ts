/**
 * The two ends of `--referrers` (graph/copy-referrers.ts) over mpk's Targets: a registry lists
 * referrers through its API or the `sha256-<hex>` tag and takes a referrer by a PUT by digest
 * (RemoteRepository keeps that tag up to date where the registry has no API); the local store
 * lists and records them as nameless index.json entries (store/referrers.ts).
 */
import { PackError } from '../errors.js';
import type { CallOptions, Target } from '../content/storage.js';
import type { ReferrerSink, ReferrerSource } from '../graph/copy-referrers.js';
import type { Descriptor } from '../oci/descriptor.js';
import { RemoteRepository } from '../registry/repository.js';
import { addLocalReferrer, localReferrers } from '../store/referrers.js';
import { LocalStore } from '../store/store.js';

export function referrerSource(t: Target): ReferrerSource {
  if (t instanceof RemoteRepository) return t;
  if (t instanceof LocalStore) return { referrers: (subject, artifactType) => localReferrers(t, subject.digest, artifactType) };
  throw new PackError('UNSUPPORTED', 'this source cannot list referrers');
}

export function referrerSink(t: Target): ReferrerSink {
  if (t instanceof RemoteRepository) {
    return {
      async writeReferrer(desc: Descriptor, bytes: Buffer, subject: Descriptor, opts?: CallOptions): Promise<boolean> {
        // Present and listed: nothing to do. Present but not listed (pushed by a tool that left the
        // sha256-<hex> tag alone): pushed again, which lists it.
        if ((await t.exists(desc, opts)) && (await t.referrers(subject, undefined, opts)).some((d) => d.digest === desc.digest)) return false;
        await t.push(desc, bytes, opts);
        return true;
      },
    };
  }
  if (t instanceof LocalStore) {
    return {
      async writeReferrer(desc: Descriptor, bytes: Buffer, subject: Descriptor): Promise<boolean> {
        const had = (await localReferrers(t, subject.digest)).some((d) => d.digest === desc.digest);
        await t.push(desc, bytes);
        await addLocalReferrer(t, desc, subject);
        return !had;
      },
    };
  }
  throw new PackError('UNSUPPORTED', 'this destination cannot record referrers');
}
