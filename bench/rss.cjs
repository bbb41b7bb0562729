// Preloaded into the measured mpk process: prints its peak RSS (all threads) on exit.
process.on('exit', () => {
  require('node:fs').writeSync(2, `\nBENCH_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
});
