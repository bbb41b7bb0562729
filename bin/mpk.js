#!/usr/bin/env node
// The `mpk` command. The TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
import { setFlagsFromString } from 'node:v8';
// Grow the heap less eagerly: a pull of 10,000 small blobs makes short-lived garbage that V8
// otherwise lets pile up (peak RSS 196 MiB, 113 MiB with this; bench/transfer.mjs measures it).
setFlagsFromString('--optimize-for-size');
const { main } = await import('../dist/cli/main.js');
main();
