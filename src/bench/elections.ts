/**
 * Counts elections over the whole benchmark: polls every node's Cluster.Status every ~250 ms and records
 * each rise of the highest term seen. Rises inside a window opened on purpose (a deliberate leader kill)
 * are the failover's; one election per such window is expected, every other term is spurious.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { NodeStatus } from "../client/index.js";

/** How often the nodes are asked. */
export const ELECTION_POLL_INTERVAL_MS = 250;

/** One rise of the highest term seen. */
export interface TermChange {
  /** Milliseconds since the watcher started. */
  readonly atMs: number;
  readonly fromTerm: number;
  readonly toTerm: number;
  /** The deliberate window it fell in (e.g. "failover run 2"), if any. */
  readonly deliberate: string | undefined;
}

/** What the watcher saw. */
export interface ElectionCount {
  /** Elections not caused on purpose: terms outside deliberate windows plus each window's terms beyond its first. */
  readonly spurious: number;
  /** Deliberate windows opened (one leader kill each). */
  readonly deliberateWindows: number;
  /** Status polls made, and polls in which no node answered. */
  readonly polls: number;
  readonly silentPolls: number;
  readonly changes: readonly TermChange[];
}

/** Polls the nodes until stopped. */
export class ElectionWatcher {
  private readonly changes: TermChange[] = [];
  private readonly startedAtMs = Date.now();
  private highestTerm = 0;
  private window: string | undefined;
  private windows = 0;
  private polls = 0;
  private silentPolls = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  /** `sample` asks every node once; undefined for a node that did not answer. */
  constructor(private readonly sample: () => Promise<ReadonlyArray<NodeStatus | undefined>>) {
    this.loop = this.run();
  }

  /** Term rises from now on are caused on purpose, until `endDeliberate`. */
  beginDeliberate(label: string): void {
    this.window = label;
    this.windows++;
  }

  /** Closes the deliberate window once the watcher itself has seen `term` (bounded wait). */
  async endDeliberate(term: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.highestTerm < term && Date.now() < deadline && !this.stopped) await delay(ELECTION_POLL_INTERVAL_MS / 2);
    this.window = undefined;
  }

  /** Stops polling and returns the count. */
  async stop(): Promise<ElectionCount> {
    this.stopped = true;
    await this.loop;
    const spuriousOutside = this.changes.filter((c) => c.deliberate === undefined).reduce((sum, c) => sum + c.toTerm - c.fromTerm, 0);
    const perWindow = new Map<string, number>();
    for (const change of this.changes) {
      if (change.deliberate !== undefined) perWindow.set(change.deliberate, (perWindow.get(change.deliberate) ?? 0) + change.toTerm - change.fromTerm);
    }
    const spuriousInside = [...perWindow.values()].reduce((sum, terms) => sum + Math.max(0, terms - 1), 0);
    return {
      spurious: spuriousOutside + spuriousInside,
      deliberateWindows: this.windows,
      polls: this.polls,
      silentPolls: this.silentPolls,
      changes: this.changes,
    };
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const startedMs = Date.now();
      const statuses = await this.sample();
      this.polls++;
      const terms = statuses.filter((status) => status !== undefined).map((status) => status.term);
      if (terms.length === 0) this.silentPolls++;
      const highest = Math.max(0, ...terms);
      // The first answer sets the starting term: the cluster's own first election is not counted.
      if (this.highestTerm > 0 && highest > this.highestTerm) {
        this.changes.push({ atMs: Date.now() - this.startedAtMs, fromTerm: this.highestTerm, toTerm: highest, deliberate: this.window });
      }
      this.highestTerm = Math.max(this.highestTerm, highest);
      await delay(Math.max(0, ELECTION_POLL_INTERVAL_MS - (Date.now() - startedMs)));
    }
  }
}
