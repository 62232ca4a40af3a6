/**
 * An opt-in timeline of where a request waits, for `make bench-trace`: each process that sets
 * RAFTQ_CYCLE_TRACE=<directory> appends one line per event to <directory>/<process>.trace, stamped with
 * the machine's clock in ms (performance.timeOrigin + now, so processes on one host line up). Off, every
 * hook is one undefined check. Lines are kept in memory and appended every FLUSH_MS and on flush(), so
 * tracing adds no write per event to the paths it measures.
 *
 * Line format: `<ms> <process> <event> [<a> [<b>]]`. The events and what reads them: bench/cycle-report.ts.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const CYCLE_TRACE_ENV = "RAFTQ_CYCLE_TRACE";
const FLUSH_MS = 200;

/** The events a traced process records (see bench/cycle-report.ts for how they are matched). */
export type CycleEvent =
  /** A follower received an Append carrying entries a..b. */
  | "recv-append"
  /** The leader received an acknowledgement from follower a, matching through index b. */
  | "recv-ack"
  /** A Ready began: new entries a (first-last or -), committed entries b (first-last or -). */
  | "ready"
  /** The Ready's committed entries are applied and their proposals answered. */
  | "answered"
  | "persist-start"
  | "persist-end"
  /** An EnqueueStream frame of a messages arrived. */
  | "frame-in"
  /** The enqueue joiner proposed what arrived in one turn. */
  | "propose"
  /** The leader wrote a frame of a answers. */
  | "answers-out"
  /** A client's first answer settled in one turn of its event loop. */
  | "client-answered"
  /** A client's first publish in one turn of its event loop (the SDK sends the turn's messages in one frame). */
  | "client-published";

class CycleTracer {
  private lines: string[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private name: string,
  ) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
    process.once("exit", () => this.flush());
  }

  /** Names this process in its lines from now on (a node learns its id after the module loads). */
  rename(name: string): void {
    this.name = name;
  }

  record(event: CycleEvent, a?: number | string, b?: number | string): void {
    const ms = (performance.timeOrigin + performance.now()).toFixed(3);
    this.lines.push(a === undefined ? `${ms} ${this.name} ${event}` : b === undefined ? `${ms} ${this.name} ${event} ${a}` : `${ms} ${this.name} ${event} ${a} ${b}`);
  }

  flush(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.join("\n") + "\n";
    this.lines = [];
    appendFileSync(this.file, text);
  }
}

function tracerFromEnv(): CycleTracer | undefined {
  const directory = process.env[CYCLE_TRACE_ENV];
  if (!directory) return undefined;
  mkdirSync(directory, { recursive: true });
  return new CycleTracer(join(directory, `${process.pid}.trace`), `p${process.pid}`);
}

/** This process's tracer, or undefined when RAFTQ_CYCLE_TRACE is not set (the usual case). */
export const cycleTrace: CycleTracer | undefined = tracerFromEnv();

/** `first-last` of a list of indexed items, or "-" when it is empty: the `ready` event's ranges. */
export function indexRange(items: readonly { readonly index: number }[]): string {
  const first = items[0];
  const last = items[items.length - 1];
  return first === undefined || last === undefined ? "-" : `${first.index}-${last.index}`;
}
