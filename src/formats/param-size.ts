/**
 * Parameter counts as people write them: `494M`, `7.24B`, `1.1T` (three significant digits,
 * trailing zeros dropped), the form Hugging Face, Ollama and ModelPack's `paramSize` use.
 */
export function formatParamCount(count: number | bigint): string {
  const n = typeof count === 'bigint' ? Number(count) : count;
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`not a parameter count: ${String(count)}`);
  const units: Array<[number, string]> = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [scale, suffix] of units) {
    if (n >= scale * 0.9995) return `${trim((n / scale).toPrecision(3))}${suffix}`;
  }
  return String(Math.round(n));
}

function trim(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}
