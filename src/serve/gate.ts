/**
 * An in-process shared/exclusive gate between writers and online garbage collection. Writers that
 * link content into a repository (upload close, mount, manifest PUT) hold it shared; a collection
 * pass holds it exclusively, so it never sweeps a blob between a writer's check and its link.
 * A waiting collection lets no new writer in, so a steady stream of pushes cannot starve it.
 */
export class Gate {
  private shared = 0;
  private exclusive = false;
  private exclusiveWaiting = 0;
  private readonly waiters: Array<() => void> = [];

  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusive || this.exclusiveWaiting > 0) await this.wait();
    this.shared++;
    try {
      return await fn();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  async withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.exclusiveWaiting++;
    try {
      while (this.exclusive || this.shared > 0) await this.wait();
    } finally {
      this.exclusiveWaiting--;
    }
    this.exclusive = true;
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
