/**
 * A bounded ring buffer of readable trace lines (`t=123 n1→n2 Append …`). Lines may be given lazily as
 * functions, so a sweep that never fails pays almost nothing for formatting. On a replay an `echo` sink
 * prints every line as it happens, so nothing is lost to the bound.
 */
export type TraceLine = string | (() => string);

/** Default capacity: enough context to read a failure, bounded so long runs stay cheap. */
export const DEFAULT_TRACE_CAPACITY = 2_000;

export class Trace {
  private readonly ticks: number[];
  private readonly lines: TraceLine[];
  private next = 0;
  private count = 0;

  constructor(
    private readonly capacity = DEFAULT_TRACE_CAPACITY,
    private readonly echo?: (line: string) => void,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new Error(`trace capacity ${capacity} must be a positive integer`);
    this.ticks = new Array<number>(capacity);
    this.lines = new Array<TraceLine>(capacity);
  }

  /** Records one line at simulated time `tick`. */
  add(tick: number, line: TraceLine): void {
    if (this.echo) this.echo(render(tick, line));
    this.ticks[this.next] = tick;
    this.lines[this.next] = line;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  /** The newest `maxLines` lines, oldest first, rendered. */
  tail(maxLines = this.capacity): string[] {
    const n = Math.min(maxLines, this.count);
    const out: string[] = [];
    for (let k = n; k > 0; k--) {
      const slot = (this.next - k + this.capacity) % this.capacity;
      out.push(render(this.ticks[slot]!, this.lines[slot]!));
    }
    return out;
  }
}

function render(tick: number, line: TraceLine): string {
  return `t=${tick} ${typeof line === "string" ? line : line()}`;
}
