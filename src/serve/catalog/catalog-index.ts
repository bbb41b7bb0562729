/**
 * The catalog's index: every repository with its tags (digest, size, push time) and the facts of
 * its latest tag, kept in memory. Built on the first request by walking the registry through
 * the storage interface (serve/storage.ts), then kept current by `changed(name)` (called after every manifest
 * put or delete): a changed repository is read again before the next answer, nothing else is.
 * Queries (filter, sort, page) run over the in-memory list, so a page costs the same whatever
 * the store holds.
 */
import { mapBounded } from '../../internal/map-bounded.js';
import { Lru } from '../lru.js';
import type { RegistryStorage } from '../storage.js';
import { tagPushedAt } from './blob-text.js';
import { factsOf, type Facts } from './model-source.js';

export interface TagEntry {
  tag: string;
  digest: string;
  /** ms since the epoch, when known. */
  pushed?: number;
  facts: Facts;
}

export interface RepoEntry {
  name: string;
  /** Most recently pushed first. */
  tags: TagEntry[];
  /** The most recently pushed tag. */
  latest?: TagEntry;
  /** Lower-case text the free-text filter searches. */
  haystack: string;
}

export type SortKey = 'name' | 'size' | 'date';

export interface CatalogQuery {
  text?: string;
  architecture?: string;
  format?: string;
  quantization?: string;
  sort?: SortKey;
  /** 1-based. */
  page?: number;
  perPage?: number;
}

export interface CatalogPage {
  total: number;
  page: number;
  pages: number;
  perPage: number;
  items: RepoEntry[];
  /** The values the filters can take, over what the viewer may see. */
  facets: { architectures: string[]; formats: string[]; quantizations: string[] };
}

const MAX_PER_PAGE = 200;

export class CatalogIndex {
  private readonly repos = new Map<string, RepoEntry>();
  private sortedNames: string[] = [];
  private readonly dirty = new Set<string>();
  private built: Promise<void> | undefined;
  private work: Promise<void> = Promise.resolve();
  /** Facts by digest: content-addressed, so shared by every repository and tag. */
  private readonly factsCache = new Lru<string, Facts>(200_000);
  /** Bumped per repository on every change (callers key their caches with it). */
  private readonly gens = new Map<string, number>();

  private builtAt = 0;
  private rewalking: Promise<void> | undefined;

  /**
   * `rewalkMs` > 0 when other processes write the same storage (replicas on one bucket, a cache):
   * their pushes call no `changed` here, so the whole registry is walked again in the background
   * once the index is that old, and answers meanwhile come from the index as it is.
   */
  constructor(
    private readonly store: RegistryStorage,
    private readonly rewalkMs = 0,
  ) {}

  /** A manifest or tag of `name` changed: read it again before the next answer. */
  changed(name: string): void {
    this.dirty.add(name);
    this.gens.set(name, (this.gens.get(name) ?? 0) + 1);
  }

  generation(name: string): number {
    return this.gens.get(name) ?? 0;
  }

  /** Brings the index up to date (the first call walks the registry). */
  fresh(): Promise<void> {
    if (!this.built) {
      const b = this.run(() => this.build());
      this.built = b;
      b.catch(() => {
        if (this.built === b) this.built = undefined; // the next request tries again
      });
    }
    else if (this.rewalkMs > 0 && this.builtAt > 0 && !this.rewalking && Date.now() - this.builtAt > this.rewalkMs) {
      this.builtAt = Date.now();
      const r = this.run(() => this.build());
      this.rewalking = r.catch(() => undefined).finally(() => (this.rewalking = undefined));
      return this.built; // this answer from the index as it is
    }
    if (this.dirty.size === 0) return this.built.then(() => this.work);
    return this.run(async () => {
      const names = [...this.dirty];
      this.dirty.clear();
      await mapBounded(names, (n) => this.refresh(n), 8);
    });
  }

  /** One repository, or undefined. Call `fresh()` first. */
  get(name: string): RepoEntry | undefined {
    return this.repos.get(name);
  }

  /** Every repository name, sorted. Call `fresh()` first. */
  names(): readonly string[] {
    return this.sortedNames;
  }

  /** One page of the repositories `visible` lets through that match the query. */
  query(q: CatalogQuery, visible: (name: string) => boolean): CatalogPage {
    const text = (q.text ?? '').trim().toLowerCase();
    const words = text === '' ? [] : text.split(/\s+/);
    const facets = { architectures: new Set<string>(), formats: new Set<string>(), quantizations: new Set<string>() };
    const hits: RepoEntry[] = [];
    for (const name of this.sortedNames) {
      if (!visible(name)) continue;
      const r = this.repos.get(name)!;
      const f = r.latest?.facts;
      if (f?.architecture) facets.architectures.add(f.architecture);
      if (f?.format) facets.formats.add(f.format);
      for (const quant of f?.quantization?.split(',') ?? []) facets.quantizations.add(quant);
      if (q.architecture && f?.architecture !== q.architecture) continue;
      if (q.format && f?.format !== q.format) continue;
      if (q.quantization && !(f?.quantization ?? '').split(',').includes(q.quantization)) continue;
      if (words.some((w) => !r.haystack.includes(w))) continue;
      hits.push(r);
    }
    if (q.sort === 'size') hits.sort((a, b) => (b.latest?.facts.size ?? 0) - (a.latest?.facts.size ?? 0));
    else if (q.sort === 'date') hits.sort((a, b) => (b.latest?.pushed ?? 0) - (a.latest?.pushed ?? 0));
    const perPage = Math.max(1, Math.min(q.perPage ?? 50, MAX_PER_PAGE));
    const pages = Math.max(1, Math.ceil(hits.length / perPage));
    const page = Math.min(Math.max(1, q.page ?? 1), pages);
    const sorted = (s: Set<string>): string[] => [...s].sort();
    return {
      total: hits.length,
      page,
      pages,
      perPage,
      items: hits.slice((page - 1) * perPage, page * perPage),
      facets: { architectures: sorted(facets.architectures), formats: sorted(facets.formats), quantizations: sorted(facets.quantizations) },
    };
  }

  /** Runs index changes one at a time. */
  private run(fn: () => Promise<void>): Promise<void> {
    const next = this.work.then(fn, fn);
    this.work = next.catch(() => undefined);
    return next;
  }

  private async build(): Promise<void> {
    this.dirty.clear();
    const names = await this.store.listRepositories();
    const listed = new Set(names);
    for (const gone of [...this.repos.keys()].filter((n) => !listed.has(n))) {
      this.repos.delete(gone);
      this.gens.set(gone, (this.gens.get(gone) ?? 0) + 1);
    }
    await mapBounded(names, (n) => this.refresh(n, false), 16);
    this.resort();
    this.builtAt = Date.now();
  }

  private async refresh(name: string, resort = true): Promise<void> {
    const tagNames = await this.store.listTags(name).catch(() => undefined);
    const prev = this.repos.get(name);
    if (!tagNames || tagNames.length === 0) {
      // A repository with no tag has nothing to list (its untagged manifests are reachable by digest).
      if (prev) {
        this.repos.delete(name);
        if (resort) this.resort();
      }
      return;
    }
    const old = new Map(prev?.tags.map((t) => [t.tag, t]));
    const tags: TagEntry[] = [];
    for (const tag of tagNames) {
      const digest = await this.store.resolveTag(name, tag).catch(() => undefined);
      if (!digest) continue;
      const was = old.get(tag);
      const pushed = await tagPushedAt(this.store, name, tag);
      if (was && was.digest === digest && was.pushed === pushed) {
        tags.push(was);
        continue;
      }
      if (was) this.gens.set(name, (this.gens.get(name) ?? 0) + 1); // moved (by another replica, when not through `changed`)
      const entry: TagEntry = { tag, digest, facts: await this.facts(name, digest) };
      if (pushed !== undefined) entry.pushed = pushed;
      tags.push(entry);
    }
    tags.sort((a, b) => (b.pushed ?? 0) - (a.pushed ?? 0) || (a.tag < b.tag ? -1 : 1));
    const latest = tags[0];
    const f = latest?.facts;
    const haystack = [name, ...tags.map((t) => t.tag), f?.architecture, f?.format, f?.quantization, f?.paramSize, f?.name].filter(Boolean).join(' ').toLowerCase();
    this.repos.set(name, { name, tags, ...(latest ? { latest } : {}), haystack });
    if (resort && !prev) this.resort();
  }

  private async facts(name: string, digest: string): Promise<Facts> {
    const hit = this.factsCache.get(digest);
    if (hit) return hit;
    const f = await factsOf(this.store, name, digest);
    if (f.kind !== 'unreadable') this.factsCache.set(digest, f);
    return f;
  }

  private resort(): void {
    this.sortedNames = [...this.repos.keys()].sort();
  }
}
