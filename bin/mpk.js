#!/usr/bin/env node
// The `mpk` command. The TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
import { main } from '../dist/cli/main.js';
main();
