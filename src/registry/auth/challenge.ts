/**
 * `WWW-Authenticate` challenges (RFC 7235): `Bearer realm="…",service="…",scope="…"` or
 * `Basic realm="…"`. Quoted strings may hold commas and `\"` escapes.
 * Reference: https://distribution.github.io/distribution/spec/auth/token/
 */

export interface Challenge {
  /** Lowercase scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameter names lowercased. */
  params: Record<string, string>;
}

/** Parses every challenge in the header (a registry may offer several); unknown junk is skipped. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(text[i]!)) i++;
    return text.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (text[i] === ',') {
      i++;
      continue;
    }
    const word = token();
    if (!word) {
      i++; // not a token character: skip it
      continue;
    }
    skipSpace();
    if (text[i] === '=' && current) {
      i++;
      skipSpace();
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i++];
        }
        i++; // closing quote
      } else {
        value = token();
      }
      current.params[word.toLowerCase()] = value;
    } else {
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** Scope strings of the token protocol: `repository:NAME:pull,push`. */
export function repositoryScope(name: string, actions: string[]): string {
  return `repository:${name}:${actions.join(',')}`;
}

/**
 * Merges scopes, joining the actions asked for the same resource: `repository:a:pull` and
 * `repository:a:push` → `repository:a:pull,push`. Sorted, so equal sets give one cache key.
 */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const s of scopes) {
    if (!s) continue;
    const cut = s.lastIndexOf(':');
    if (cut <= 0) continue;
    const resource = s.slice(0, cut);
    const set = byResource.get(resource) ?? new Set<string>();
    for (const a of s.slice(cut + 1).split(',')) if (a) set.add(a);
    byResource.set(resource, set);
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(',')}`).sort();
}
