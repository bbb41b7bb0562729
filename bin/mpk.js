#!/usr/bin/env node
// The `mpk` command. The TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
import { setFlagsFromString } from 'node:v8';
// Grow the heap less eagerly: a pull of 10,000 small blobs makes short-lived garbage that V8
// otherwise lets pile up (peak RSS 196 MiB, 113 MiB with this; bench/transfer.mjs measures it).
// Not for `mpk serve`, a long-running server where it costs ~15% of manifest GETs per second, nor
// for `mpk run`/`mpk api`, whose per-token JavaScript (node-llama-cpp) runs thousands of times.
if (!['serve', 'run', 'api'].includes(commandOf(process.argv.slice(2)))) setFlagsFromString('--optimize-for-size');
// `mpk run`/`mpk api`: the engine's module takes ~0.5 s to load; begin now, beside mpk's own modules
// (a missing engine is reported later, by the command, in one line)
if (['run', 'api'].includes(commandOf(process.argv.slice(2)))) import('node-llama-cpp').catch(() => undefined);
const { main } = await import('../dist/cli/main.js');
main();

/** The command word: the first argument after the global options (`--store DIR`, `-q`). */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--store') i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}
