/** What every route handler gets: the request, the storage, and who is asking. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth, Identity } from './auth.js';
import type { Gate } from './gate.js';
import type { RegistryStorage, UploadStore } from './storage.js';

/** Which DELETEs are allowed: everything, manifests and blobs by digest only, or none. */
export type DeleteMode = 'all' | 'digest' | 'none';

export interface Services {
  store: RegistryStorage;
  uploads: UploadStore;
  gate: Gate;
  auth: Auth;
  deletes: DeleteMode;
  /** A blob link older than this is touched when checked (keeps it from the collector). */
  touchOlderMs: number;
  /** Told after a manifest or tag of a repository was stored or deleted (the web catalog's index). */
  onRepoChange?: (name: string) => void;
}

export interface RequestCtx extends Services {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  who: Identity;
}
