/** What every remote-repository operation needs: the client, the host, the name and its scopes. */
import type { RegistryClient } from './client.js';
import { repositoryScope } from './auth/challenge.js';

export class RepoContext {
  readonly pull: string[];
  readonly push: string[];
  readonly del: string[];
  constructor(
    readonly client: RegistryClient,
    readonly host: string,
    readonly name: string,
  ) {
    this.pull = [repositoryScope(name, ['pull'])];
    this.push = [repositoryScope(name, ['pull', 'push'])];
    this.del = [repositoryScope(name, ['delete'])];
  }

  /** `/v2/<name>/<suffix>` */
  path(suffix: string): string {
    return `/v2/${this.name}/${suffix}`;
  }
}
