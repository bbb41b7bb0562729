#!/usr/bin/env node
// The `mpk` command. Its code is bundled from src/ into dist/cli-bundle/ by `npm ci` (the prepare
// script runs `npm run build`; see scripts/bundle.mjs).
import { setFlagsFromString } from 'node:v8';
// `mpk run`/`mpk api`: the engine's module takes ~0.5 s to load; begin now, beside mpk's own modules
// (a missing engine is reported later, by the command, in one line)
if (['run', 'api'].includes(commandOf(process.argv.slice(2)))) import('node-llama-cpp').catch(() => undefined);
const { main } = await import('../dist/cli-bundle/main.js');
// Grow the heap less eagerly: a pull of 10,000 small blobs makes short-lived garbage that V8
// otherwise lets pile up (peak RSS 170 MiB, 127 MiB with this; bench/transfer.mjs measures it).
// And optimize less eagerly: a command lives a second or a few, and on two cores the optimizing
// compiler's background compiles (and deoptimizations) take CPU from the transfer and the registry
// beside it. With 15 times V8's default budget before a function is optimized, only really hot
// ones are: a 2,000-blob pull from mpk serve took 0.89-0.91 s instead of 1.01-1.14 (0.56-0.62 s of
// user CPU instead of 0.73-0.85); a 512 MiB pull is unchanged.
// Set once the command's modules are loaded (they stay cached for main): set before, it costs
// their loading ~40 ms of collections (a pull of a 3 MB model took 329 ms instead of 289). Not
// for `mpk serve`, a long-running server where it costs ~15% of manifest GETs per second, nor for
// `mpk run`/`mpk api`, whose per-token JavaScript (node-llama-cpp) runs thousands of times.
const command = commandOf(process.argv.slice(2));
if (!['serve', 'run', 'api'].includes(command)) {
  const { COMMANDS } = await import('../dist/cli-bundle/commands-table.js');
  if (command && Object.hasOwn(COMMANDS, command)) await COMMANDS[command].load().catch(() => undefined);
  setFlagsFromString('--optimize-for-size');
  setFlagsFromString('--interrupt-budget=1000000');
}
main();

/** The command word: the first argument after the global options (`--store DIR`, `-q`). */
function commandOf(args) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--store') i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return undefined;
}
