/**
 * Calls `onIdle` once when `touch()` has not been called for `idleMs`: bounds how long a transfer may
 * stall (a peer that stopped reading, a connection that died without a reset) without bounding its length.
 */
export class IdleWatchdog {
  private readonly timer: NodeJS.Timeout;
  private done = false;

  constructor(idleMs: number, onIdle: () => void) {
    this.timer = setTimeout(() => {
      this.done = true;
      onIdle();
    }, idleMs);
  }

  /** The transfer made progress: the idle time starts again. */
  touch(): void {
    // refresh() would re-arm a timer that already fired.
    if (!this.done) this.timer.refresh();
  }

  stop(): void {
    this.done = true;
    clearTimeout(this.timer);
  }
}
