/**
 * The client's side of the story: which proposals were made and which were acknowledged. A proposal is
 * acknowledged once the leader that accepted it has applied it at the index it was given (what a real
 * client would be told "ok" for). Acknowledged writes must survive every fault: at the end of a run every
 * node must have applied them.
 */
import { EntryType, type Entry, type NodeId } from "../../src/raft/types.js";
import { asciiText, entryPayload, proposalPayload } from "./payload.js";

/** A proposal the leader accepted, not yet known to be applied. */
interface Pending {
  readonly node: NodeId;
  /** Which life of the node accepted it: after a crash the answer never reaches the client. */
  readonly incarnation: number;
  readonly index: number;
  readonly term: number;
}

/** An acknowledged write: the client was told it succeeded. */
export interface Acknowledged {
  readonly payload: string;
  readonly index: number;
  readonly term: number;
}

export class ProposalLedger {
  private nextSeq = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly acked: Acknowledged[] = [];
  proposed = 0;
  accepted = 0;

  /** `count` fresh, unique payloads. */
  newPayloads(count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = 0; i < count; i++) out.push(proposalPayload(this.nextSeq++));
    this.proposed += count;
    return out;
  }

  /** `node` accepted `payloads` as entries firstIndex.. of `term`. */
  onAccepted(node: NodeId, incarnation: number, term: number, firstIndex: number, payloads: readonly Uint8Array[]): void {
    payloads.forEach((bytes, offset) => {
      this.pending.set(asciiText(bytes), { node, incarnation, index: firstIndex + offset, term });
    });
    this.accepted += payloads.length;
  }

  /** `node` (in its `incarnation`-th life) applied `entry`. */
  onApplied(node: NodeId, incarnation: number, entry: Entry): void {
    if (entry.type !== EntryType.Normal) return;
    const payload = entryPayload(entry);
    const pending = this.pending.get(payload);
    if (!pending || pending.node !== node || pending.incarnation !== incarnation) return;
    this.pending.delete(payload);
    if (pending.index === entry.index && pending.term === entry.term) {
      this.acked.push({ payload, index: entry.index, term: entry.term });
    }
  }

  /** Every acknowledged write so far, in acknowledgement order. */
  acknowledged(): readonly Acknowledged[] {
    return this.acked;
  }
}
