/**
 * Checks over the Status samples of a history: Raft's election safety (at most one leader per term,
 * across every sample of every node), terms never going back on a node (they are persisted), the commit
 * index never going back while a node process lives, and applied never ahead of committed. A restart may
 * start a node's reported commit index lower (it learns the commit again from the leader): that is
 * counted as a note, not a violation.
 */
import type { HistoryEvent, StatusEvent } from "./history.js";

/** A term in which two nodes said they lead. */
export interface SplitBrain {
  readonly term: number;
  readonly leaders: readonly { readonly node: string; readonly time: number }[];
}

/** A value on one node that moved the wrong way between two samples. */
export interface Regression {
  readonly node: string;
  readonly incarnation: number;
  readonly from: number;
  readonly to: number;
  readonly fromTime: number;
  readonly toTime: number;
}

/** The cluster part of a check report. */
export interface ClusterCheck {
  readonly samples: number;
  /** Distinct terms in which some node said it leads. */
  readonly leaderTerms: number;
  readonly splitBrains: readonly SplitBrain[];
  readonly commitRegressions: readonly Regression[];
  readonly termRegressions: readonly Regression[];
  /** Samples where applied_index > commit_index. */
  readonly appliedAheadOfCommit: readonly { readonly node: string; readonly applied: number; readonly commit: number; readonly time: number }[];
  /** Restarts after which a node first reported a lower commit index than before: expected, noted. */
  readonly commitResetsAcrossRestarts: number;
}

/** Most items of each kind kept in the report (the counts stay exact in the violations). */
const MAX_ITEMS = 100;

/** Runs every cluster check over the Status samples of `events`. */
export function checkCluster(events: readonly HistoryEvent[]): ClusterCheck {
  const samples = events.filter((event): event is StatusEvent => event.type === "status");
  const leadersByTerm = new Map<number, Map<string, number>>();
  const lastByNode = new Map<string, StatusEvent>();
  const commitRegressions: Regression[] = [];
  const termRegressions: Regression[] = [];
  const appliedAheadOfCommit: ClusterCheck["appliedAheadOfCommit"][number][] = [];
  let commitResetsAcrossRestarts = 0;
  for (const sample of samples) {
    if (sample.role === "leader") {
      const leaders = leadersByTerm.get(sample.term) ?? new Map<string, number>();
      if (!leaders.has(sample.node)) leaders.set(sample.node, sample.time);
      leadersByTerm.set(sample.term, leaders);
    }
    if (sample.applied > sample.commit) appliedAheadOfCommit.push({ node: sample.node, applied: sample.applied, commit: sample.commit, time: sample.time });
    const previous = lastByNode.get(sample.node);
    if (previous) {
      const regression = (from: number, to: number): Regression => ({
        node: sample.node,
        incarnation: sample.incarnation,
        from,
        to,
        fromTime: previous.time,
        toTime: sample.time,
      });
      if (sample.term < previous.term) termRegressions.push(regression(previous.term, sample.term));
      if (sample.commit < previous.commit) {
        if (sample.incarnation === previous.incarnation) commitRegressions.push(regression(previous.commit, sample.commit));
        else commitResetsAcrossRestarts++;
      }
    }
    lastByNode.set(sample.node, sample);
  }
  const splitBrains: SplitBrain[] = [];
  for (const [term, leaders] of leadersByTerm) {
    if (leaders.size > 1) splitBrains.push({ term, leaders: [...leaders].map(([node, time]) => ({ node, time })) });
  }
  return {
    samples: samples.length,
    leaderTerms: leadersByTerm.size,
    splitBrains,
    commitRegressions: commitRegressions.slice(0, MAX_ITEMS),
    termRegressions: termRegressions.slice(0, MAX_ITEMS),
    appliedAheadOfCommit: appliedAheadOfCommit.slice(0, MAX_ITEMS),
    commitResetsAcrossRestarts,
  };
}

/** One line per violated cluster property. */
export function clusterViolations(check: ClusterCheck): string[] {
  const lines: string[] = [];
  for (const split of check.splitBrains) {
    lines.push(`two leaders in term ${split.term}: ${split.leaders.map((leader) => `${leader.node} (seen ${ms(leader.time)})`).join(", ")}`);
  }
  for (const r of check.commitRegressions) {
    lines.push(`commit index of ${r.node} went back from ${r.from} (${ms(r.fromTime)}) to ${r.to} (${ms(r.toTime)}) within one process run`);
  }
  for (const r of check.termRegressions) lines.push(`term of ${r.node} went back from ${r.from} to ${r.to} at ${ms(r.toTime)}`);
  for (const a of check.appliedAheadOfCommit) lines.push(`${a.node} reported applied ${a.applied} > commit ${a.commit} at ${ms(a.time)}`);
  return lines;
}

/** A history time for messages, e.g. "12.345s". */
export function ms(time: number): string {
  return `${(time / 1000).toFixed(3)}s`;
}
