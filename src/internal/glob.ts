/** Path globs for selections (`--include`, `--exclude`, `.mpkignore`): `**` allowed, dot files matched. */
import picomatch from 'picomatch';

/**
 * A matcher over relative POSIX paths; a pattern that names a directory also covers everything
 * below it (`data` selects `data/a.jsonl`). With no globs it answers `whenEmpty`.
 */
export function pathMatcher(globs: readonly string[] | undefined, whenEmpty: boolean): (rel: string) => boolean {
  if (!globs?.length) return () => whenEmpty;
  const m = picomatch(
    globs.map((g) => g.replace(/^\.\/+/, '').replace(/\/+$/, '')),
    { dot: true },
  );
  return (rel) => m(rel) || rel.split('/').some((_, i, parts) => i > 0 && m(parts.slice(0, i).join('/')));
}
