/** Maps with at most `limit` calls in flight; keeps input order; the first failure stops new calls. */
export async function mapBounded<T, R>(items: readonly T[], fn: (t: T, i: number) => Promise<R>, limit: number): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let error: unknown;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        if (!failed) [failed, error] = [true, e];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw error;
  return out;
}
