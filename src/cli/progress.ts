/**
 * A one-line progress bar on stderr: bytes done of total, rate, files. Drawn only on a TTY and
 * at most every 100 ms (the caller throttles), so 10,000 small files cost nothing to display.
 */
import { humanBytes, humanRate } from './format.js';

export interface ProgressSink {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressBar {
  private readonly start = Date.now();
  private drawn = false;
  constructor(
    private readonly out: ProgressSink,
    private readonly label: string,
    private readonly enabled: boolean,
  ) {}

  update(done: number, total: number, extra = ''): void {
    if (!this.enabled) return;
    const width = 24;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(frac * width);
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? (frac < 1 ? '>' : '=') : '') + ' '.repeat(width - filled);
    const line = `${this.label} [${bar}] ${humanBytes(done)}/${humanBytes(total)} ${humanRate(done, Date.now() - this.start)}${extra ? `  ${extra}` : ''}`;
    const cols = this.out.columns ?? 100;
    this.out.write(`\r${line.slice(0, Math.max(20, cols - 1))}\x1b[K`);
    this.drawn = true;
  }

  /** Clears the line so the next output starts clean. */
  done(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}
