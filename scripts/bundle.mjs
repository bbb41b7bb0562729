// The `mpk` command's code as a few bundled ES modules (dist/cli-bundle/), made from src/ by
// esbuild (`npm run build` runs it after tsc). Node loads ~90 small modules per command otherwise,
// each resolved, read and compiled on its own: bundled, a pull of a 3 MB model takes ~28 ms less
// (308 -> 279 ms, medians of 11 here). The library (dist/index.js) stays tsc's output.
// Every command stays its own chunk, loaded when run (code splitting); npm packages are imported
// from node_modules as usual (`packages: 'external'`).
//   usage: node scripts/bundle.mjs [OUTDIR]
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { rmSync } from 'node:fs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles the CLI into `outdir` (replaced): main.js and commands-table.js are its entries. */
export async function bundleCli(outdir = join(root, 'dist', 'cli-bundle')) {
  rmSync(outdir, { recursive: true, force: true });
  await build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts'), join(root, 'src', 'cli', 'commands-table.ts')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    entryNames: '[name]',
    chunkNames: 'chunk-[hash]',
    logLevel: 'warning',
  });
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundleCli(process.argv[2]);
