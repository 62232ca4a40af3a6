/**
 * Feeds a queue store the way a node's Ready loop does, for the in-process benchmarks (bench-apply,
 * bench-backlog-store): each command becomes the next log entry, is applied, and its state changes are
 * written as one LevelDB batch (not synced), with the applied index and a one-node membership.
 */
import { encodeCommand } from "../queue/command-codec.js";
import type { Command } from "../queue/commands.js";
import type { QueueApplyResult } from "../queue/results.js";
import { EntryType, type Membership } from "../raft/types.js";
import type { QueueStore } from "../storage/queue-store.js";

const MEMBERSHIP: Membership = { members: [{ id: "bench", address: "127.0.0.1:0", voter: true }] };

export class StoreFeeder {
  private index: number;

  constructor(private readonly store: QueueStore) {
    this.index = store.appliedState().appliedIndex;
  }

  /** The log time of the next command: the index of the last entry (a clock that only moves forward). */
  get nowMs(): number {
    return this.index;
  }

  /** Applies `command` as the next entry and writes its changes; throws if the state machine refused it. */
  async apply(command: Command): Promise<QueueApplyResult> {
    this.index++;
    const result = this.store.apply({ index: this.index, term: 1, type: EntryType.Normal, data: encodeCommand(command) });
    if (!result.ok) throw new Error(`entry ${this.index} (${command.kind}) was refused: ${result.error.message}`);
    await this.store.persist(this.index, MEMBERSHIP);
    return result;
  }
}
