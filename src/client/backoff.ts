/** Retry pacing: exponential backoff with full jitter, and a sleep that an AbortSignal can cut short. */

/** The delay before retry number `attempt` (0-based): uniform in [0, min(max, initial·2^attempt)]. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceilingMs = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceilingMs);
}

/** Resolves after `ms`, or as soon as `signal` aborts (without throwing: callers check the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Paces the reconnects of a long-lived stream: a growing, jittered delay per consecutive failure, and a
 * give-up once the stream has failed for `timeoutMs` without making progress in between.
 */
export class ReconnectPacer {
  private failures = 0;
  private failingSinceMs: number | undefined;

  constructor(
    private readonly initialBackoffMs: number,
    private readonly maxBackoffMs: number,
    private readonly timeoutMs: number,
  ) {}

  /** The stream works again (it delivered data, or lived long enough): the next failure starts afresh. */
  progressed(): void {
    this.failures = 0;
    this.failingSinceMs = undefined;
  }

  /** Records a failure; returns the delay before reconnecting, or undefined when it is time to give up. */
  failed(nowMs: number = Date.now()): number | undefined {
    this.failingSinceMs ??= nowMs;
    const delayMs = backoffDelayMs(this.failures++, this.initialBackoffMs, this.maxBackoffMs);
    return nowMs + delayMs - this.failingSinceMs > this.timeoutMs ? undefined : delayMs;
  }
}
