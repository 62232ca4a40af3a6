/**
 * Reads the cycle trace of a run (node/cycle-trace.ts: one file per process) and says where a closed
 * loop's time goes: from the leader's Ready with new entries, through a follower's receipt, apply and
 * synced write, the first acknowledgement and the apply on the leader, then the answers' way to the client
 * and the next messages' way back, to the next Ready. Every stage is printed as p50 / p90 / mean (ms).
 *
 * Matching: a "round" is a leader Ready carrying new entries; its last entry stands for the round (the
 * entries of one Ready are committed together). The client loop is matched in time order: after the
 * leader answers, the next answers-out, client-answered, client-published, frame-in, propose and Ready
 * with entries, each the first of its kind after the one before.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface TraceEvent {
  readonly ms: number;
  readonly process: string;
  readonly event: string;
  readonly a: string | undefined;
  readonly b: string | undefined;
}

export interface StageFigures {
  readonly stage: string;
  readonly p50: number;
  readonly p90: number;
  readonly mean: number;
  readonly samples: number;
}

export interface CycleReport {
  readonly leader: string;
  readonly rounds: number;
  readonly messages: number;
  readonly stages: readonly StageFigures[];
}

/** Parses the lines of trace files (blank and malformed lines are skipped). */
export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  for (const line of text.split("\n")) {
    const [ms, process, event, a, b] = line.split(" ");
    if (ms === undefined || process === undefined || event === undefined || !Number.isFinite(Number(ms))) continue;
    events.push({ ms: Number(ms), process, event, a, b });
  }
  return events;
}

/** Every *.trace file in `directory`, in time order. */
export function readTraceDirectory(directory: string): TraceEvent[] {
  const events = readdirSync(directory)
    .filter((name) => name.endsWith(".trace"))
    .flatMap((name) => parseTrace(readFileSync(join(directory, name), "utf8")));
  return events.sort((x, y) => x.ms - y.ms);
}

function range(text: string | undefined): [number, number] | undefined {
  if (text === undefined || text === "-") return undefined;
  const [first, last] = text.split("-").map(Number);
  return first !== undefined && last !== undefined && Number.isFinite(first) && Number.isFinite(last) ? [first, last] : undefined;
}

function figures(stage: string, samples: readonly number[]): StageFigures {
  const sorted = [...samples].sort((x, y) => x - y);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  return { stage, p50: at(0.5), p90: at(0.9), mean, samples: sorted.length };
}

/** One leader Ready with new entries, and when each later step touching its last entry happened. */
interface Round {
  readonly readyMs: number;
  readonly last: number;
  leaderWrittenMs?: number;
  ackMs?: number;
  commitReadyMs?: number;
  answeredMs?: number;
  readonly followers: Map<string, FollowerSteps>;
}

/** When one follower received a round's entries, began its Ready with them, and wrote them. */
interface FollowerSteps {
  receivedMs?: number;
  readyMs?: number;
  writeStartMs?: number;
  writtenMs?: number;
}

/** Where the time of the traced closed loop went. */
export function cycleReport(events: readonly TraceEvent[]): CycleReport {
  const acks = new Map<string, number>();
  for (const e of events) if (e.event === "recv-ack") acks.set(e.process, (acks.get(e.process) ?? 0) + 1);
  const leader = [...acks].sort((x, y) => y[1] - x[1])[0]?.[0];
  if (leader === undefined) throw new Error("the trace holds no acknowledgement: was a cluster traced under load (RAFTQ_CYCLE_TRACE)?");

  const rounds: Round[] = [];
  /** Per process: the rounds its last Ready carried entries of (persist events follow their Ready). */
  const lastReadyRounds = new Map<string, Round[]>();
  let awaitingAnswer: Round[] = [];
  let messages = 0;

  for (const e of events) {
    if (e.process === leader) {
      switch (e.event) {
        case "ready": {
          const entries = range(e.a);
          const committed = range(e.b);
          const round: Round | undefined = entries ? { readyMs: e.ms, last: entries[1], followers: new Map() } : undefined;
          if (round) rounds.push(round);
          lastReadyRounds.set(leader, round ? [round] : []);
          if (committed) {
            const done = rounds.filter((r) => r.commitReadyMs === undefined && r.last <= committed[1]);
            for (const r of done) r.commitReadyMs = e.ms;
            awaitingAnswer = done;
          }
          break;
        }
        case "answered":
          for (const r of awaitingAnswer) r.answeredMs ??= e.ms;
          awaitingAnswer = [];
          break;
        case "persist-end":
          for (const r of lastReadyRounds.get(leader) ?? []) r.leaderWrittenMs ??= e.ms;
          break;
        case "recv-ack": {
          const match = Number(e.b);
          for (const r of rounds) if (r.ackMs === undefined && r.last <= match) r.ackMs = e.ms;
          break;
        }
        case "frame-in":
          messages += Number(e.a ?? 0);
          break;
      }
      continue;
    }
    const follower = (round: Round): FollowerSteps => {
      let steps = round.followers.get(e.process);
      if (steps === undefined) round.followers.set(e.process, (steps = {}));
      return steps;
    };
    switch (e.event) {
      case "recv-append": {
        const last = Number(e.b);
        for (const r of rounds) if (r.last <= last) follower(r).receivedMs ??= e.ms;
        break;
      }
      case "ready": {
        const entries = range(e.a);
        const carried = entries ? rounds.filter((r) => r.last >= entries[0] && r.last <= entries[1]) : [];
        for (const r of carried) follower(r).readyMs ??= e.ms;
        lastReadyRounds.set(e.process, carried);
        break;
      }
      case "persist-start":
        for (const r of lastReadyRounds.get(e.process) ?? []) follower(r).writeStartMs ??= e.ms;
        break;
      case "persist-end":
        for (const r of lastReadyRounds.get(e.process) ?? []) follower(r).writtenMs ??= e.ms;
        break;
    }
  }

  const complete = rounds.filter((r) => r.answeredMs !== undefined && r.ackMs !== undefined);
  const followerIds = [...new Set(complete.flatMap((r) => [...r.followers.keys()]))].sort();
  const since = (pick: (r: Round) => number | undefined, from: (r: Round) => number | undefined) =>
    complete.flatMap((r) => {
      const end = pick(r);
      const start = from(r);
      return end === undefined || start === undefined ? [] : [end - start];
    });
  const firstReceipt = (r: Round): number | undefined => {
    const times = [...r.followers.values()].flatMap((f) => (f.receivedMs === undefined ? [] : [f.receivedMs]));
    return times.length === 0 ? undefined : Math.min(...times);
  };
  const stages: StageFigures[] = [
    figures("Raft: Ready → Append at the first follower", since(firstReceipt, (r) => r.readyMs)),
  ];
  for (const id of followerIds) {
    const of = (r: Round) => r.followers.get(id);
    stages.push(figures(`  ${id}: Append received → its Ready`, since((r) => of(r)?.readyMs, (r) => of(r)?.receivedMs)));
    stages.push(figures(`  ${id}: its Ready → its write starts (applying)`, since((r) => of(r)?.writeStartMs, (r) => of(r)?.readyMs)));
    stages.push(figures(`  ${id}: its synced write`, since((r) => of(r)?.writtenMs, (r) => of(r)?.writeStartMs)));
  }
  stages.push(
    figures("Raft: Ready → leader's own write done", since((r) => r.leaderWrittenMs, (r) => r.readyMs)),
    figures("Raft: Ready → first acknowledgement", since((r) => r.ackMs, (r) => r.readyMs)),
    figures("Raft: acknowledgement → commit Ready", since((r) => r.commitReadyMs, (r) => r.ackMs)),
    figures("Raft: commit Ready → applied and answered", since((r) => r.answeredMs, (r) => r.commitReadyMs)),
    figures("Raft: Ready → answered (total)", since((r) => r.answeredMs, (r) => r.readyMs)),
  );
  stages.push(...clientLoop(events, leader));
  const readies = rounds.map((r) => r.readyMs);
  stages.push(figures("cycle: Ready with entries → the next", readies.slice(1).map((ms, at) => ms - readies[at]!)));
  return { leader, rounds: rounds.length, messages, stages };
}

/** The way back to the client and forward again, matched in time order after each answered commit. */
function clientLoop(events: readonly TraceEvent[], leader: string): StageFigures[] {
  const steps = ["answered", "answers-out", "client-answered", "client-published", "frame-in", "propose", "ready"] as const;
  const gaps: number[][] = steps.slice(1).map(() => []);
  let at = -1;
  let lastMs = 0;
  let commitSeen = false;
  for (const e of events) {
    const fromLeader = e.process === leader;
    if (fromLeader && e.event === "ready" && range(e.b) !== undefined) commitSeen = true;
    let step = -1;
    if (fromLeader && e.event === "answered" && commitSeen) {
      commitSeen = false;
      at = 0;
      lastMs = e.ms;
      continue;
    }
    if (fromLeader && (e.event === "answers-out" || e.event === "frame-in" || e.event === "propose")) step = steps.indexOf(e.event);
    else if (!fromLeader && (e.event === "client-answered" || e.event === "client-published")) step = steps.indexOf(e.event);
    else if (fromLeader && e.event === "ready" && range(e.a) !== undefined) step = steps.indexOf("ready");
    if (at >= 0 && step === at + 1) {
      gaps[step - 1]!.push(e.ms - lastMs);
      lastMs = e.ms;
      at = step === steps.length - 1 ? -1 : step;
    }
  }
  const names = [
    "client: answered → answers frame written",
    "client: → answers reach the client",
    "client: → client publishes the next messages",
    "client: → their frame reaches the leader",
    "client: → proposed",
    "client: → the next Ready with entries",
  ];
  return gaps.map((samples, index) => figures(names[index]!, samples));
}

/** The report as a table. */
export function renderCycleReport(report: CycleReport): string {
  const lines = [
    `leader ${report.leader}; ${report.rounds} Readies with new entries; ${report.messages} messages arrived in EnqueueStream frames` +
      (report.rounds > 0 ? ` (${(report.messages / report.rounds).toFixed(1)} a Ready)` : ""),
    "",
    `${"stage".padEnd(52)} ${"p50 ms".padStart(7)} ${"p90 ms".padStart(7)} ${"mean ms".padStart(8)} ${"n".padStart(6)}`,
  ];
  const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : "–");
  for (const s of report.stages) {
    lines.push(`${s.stage.padEnd(52)} ${ms(s.p50).padStart(7)} ${ms(s.p90).padStart(7)} ${ms(s.mean).padStart(8)} ${String(s.samples).padStart(6)}`);
  }
  return lines.join("\n");
}
