/** Entry point for tests that run mpk as a separate process from source (`node --import tsx`). */
import { main } from '../cli/main.js';

await main();
