/**
 * The generations of the queue state on disk. All state keys live under one generation number; a single
 * pointer key names the current one. A snapshot received from a leader is staged under a fresh number and
 * becomes current by rewriting the pointer, atomically with the Raft log reset; the old generation is then
 * deleted in the background, in bounded batches. Markers record staged and retired generations, so garbage
 * left by a crash is found and deleted at the next open.
 */
import {
  CURRENT_GENERATION_KEY,
  RETIRED_GENERATION_KEY,
  STAGING_GENERATION_KEY,
  decodeGeneration,
  encodeGeneration,
  generationSublevel,
  type GenerationSublevel,
  type QueueSublevel,
} from "./queue-keys.js";
import type { CompanionOperation } from "../node/state-machine.js";

/** Keys deleted per range clear while deleting a generation, so no single step holds the database long. */
const CLEAR_BATCH_KEYS = 10_000;

/** Marker key of a staged or retired generation: "<kind>/<generation>". */
function markerKey(kind: typeof STAGING_GENERATION_KEY | typeof RETIRED_GENERATION_KEY, generation: number): string {
  return `${kind}/${generation}`;
}

function markerRange(kind: typeof STAGING_GENERATION_KEY | typeof RETIRED_GENERATION_KEY): { gt: string; lt: string } {
  return { gt: `${kind}/`, lt: `${kind}0` };
}

/** The current generation, fresh generation numbers, and background deletion of dead generations. */
export class QueueGenerations {
  private readonly deletions = new Set<Promise<void>>();
  private stopping = false;

  private constructor(
    private readonly parent: QueueSublevel,
    private currentNumber: number,
    /** Above every generation number in use or being deleted. */
    private nextNumber: number,
  ) {}

  /**
   * Reads the pointer (creating generation 1 for a new store) and starts deleting the generations a crash
   * left staged or retired.
   */
  static async open(parent: QueueSublevel): Promise<QueueGenerations> {
    let current = decodeGeneration(await parent.get(CURRENT_GENERATION_KEY));
    if (current === undefined) {
      current = 1;
      await parent.put(CURRENT_GENERATION_KEY, encodeGeneration(current));
    }
    const dead: { kind: typeof STAGING_GENERATION_KEY | typeof RETIRED_GENERATION_KEY; generation: number }[] = [];
    for (const kind of [STAGING_GENERATION_KEY, RETIRED_GENERATION_KEY] as const) {
      for await (const key of parent.keys(markerRange(kind))) {
        dead.push({ kind, generation: Number(key.slice(kind.length + 1)) });
      }
    }
    const highest = Math.max(current, ...dead.map((marker) => marker.generation));
    const generations = new QueueGenerations(parent, current, highest + 1);
    for (const { kind, generation } of dead) {
      if (generation !== current) generations.deleteInBackground(kind, generation);
    }
    return generations;
  }

  /** The current generation's number. */
  get current(): number {
    return this.currentNumber;
  }

  /** The sublevel of generation `generation` (default: the current one). */
  level(generation = this.currentNumber): GenerationSublevel {
    return generationSublevel(this.parent, generation);
  }

  /** Reserves a fresh generation for staging and marks it, so a crash leaves it recognisable as garbage. */
  async beginStaging(): Promise<number> {
    const generation = this.nextNumber;
    this.nextNumber += 1;
    await this.parent.put(markerKey(STAGING_GENERATION_KEY, generation), new Uint8Array(0));
    return generation;
  }

  /** Deletes a staged generation and its marker (an aborted or superseded transfer). */
  discardStaging(generation: number): Promise<void> {
    return this.deleteGeneration(STAGING_GENERATION_KEY, generation);
  }

  /** Like discardStaging, without waiting. */
  discardStagingInBackground(generation: number): void {
    this.deleteInBackground(STAGING_GENERATION_KEY, generation);
  }

  /** The batch operations that make staged `generation` current and retire the current one. */
  switchOperations(generation: number): CompanionOperation[] {
    const parent = this.parent;
    return [
      { type: "put", key: CURRENT_GENERATION_KEY, value: encodeGeneration(generation), sublevel: parent },
      { type: "del", key: markerKey(STAGING_GENERATION_KEY, generation), sublevel: parent },
      { type: "put", key: markerKey(RETIRED_GENERATION_KEY, this.currentNumber), value: new Uint8Array(0), sublevel: parent },
    ];
  }

  /**
   * After a switch batch was written: re-reads the pointer and, if it moved, starts deleting the old
   * generation. Returns whether the current generation changed.
   */
  async followPointer(): Promise<boolean> {
    const pointed = decodeGeneration(await this.parent.get(CURRENT_GENERATION_KEY));
    if (pointed === undefined) throw new Error("the queue state's current-generation key is missing");
    if (pointed === this.currentNumber) return false;
    const retired = this.currentNumber;
    this.currentNumber = pointed;
    this.nextNumber = Math.max(this.nextNumber, pointed + 1);
    this.deleteInBackground(RETIRED_GENERATION_KEY, retired);
    return true;
  }

  /** Resolves once no background deletion is running (tests and benchmarks wait on it). */
  async settled(): Promise<void> {
    while (this.deletions.size > 0) await Promise.all([...this.deletions]);
  }

  /** Stops background deletions between batches and waits for them; the next open resumes them. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.deletions]);
  }

  private deleteInBackground(kind: typeof STAGING_GENERATION_KEY | typeof RETIRED_GENERATION_KEY, generation: number): void {
    // Failures are left for the next open (the marker stays), never thrown into the node.
    const deletion = this.deleteGeneration(kind, generation).catch(() => undefined);
    this.deletions.add(deletion);
    void deletion.finally(() => this.deletions.delete(deletion));
  }

  /** Clears a generation range by range, then its marker; stops early (marker kept) when closing. */
  private async deleteGeneration(
    kind: typeof STAGING_GENERATION_KEY | typeof RETIRED_GENERATION_KEY,
    generation: number,
  ): Promise<void> {
    if (generation === this.currentNumber) throw new Error(`refusing to delete the current queue generation ${generation}`);
    const level = this.level(generation);
    for (;;) {
      if (this.stopping) return;
      const keys = await level.keys({ limit: CLEAR_BATCH_KEYS }).all();
      const last = keys[keys.length - 1];
      if (last === undefined) break;
      await level.clear({ lte: last });
    }
    await this.parent.del(markerKey(kind, generation));
  }
}
