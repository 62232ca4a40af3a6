/**
 * A coalescer's proposals join the Ready taken next, even one scheduled before them in the same turn.
 * The bug this guards against: a Subscribe refill waited for the end of its turn, the ack that made room
 * for it had already scheduled its Ready, and each cost a Raft round trip of its own.
 */
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { RaftNode, type NodeStorage, type ReplicatedStateMachine } from "../../src/node/raft-node.js";
import { defaultRaftConfig } from "../../src/raft/config.js";
import { votersMembership } from "../../src/raft/membership.js";
import { EntryType } from "../../src/raft/types.js";
import type { RootBatch } from "../../src/storage/level-raft-storage.js";
import { MemoryRaftStorage } from "../../src/storage/memory-raft-storage.js";
import type { PersistStep } from "../../src/storage/raft-storage.js";
import type { PeerTransport } from "../../src/transport/peer-transport.js";

/** Memory storage that records every step the node writes. */
class RecordingStorage extends MemoryRaftStorage implements NodeStorage {
  readonly steps: PersistStep[] = [];

  override save(step: PersistStep, _companions?: unknown, stage?: (batch: RootBatch) => void): Promise<void> {
    this.steps.push(step);
    stage?.({} as RootBatch);
    return super.save(step);
  }
}

/** A state machine that only remembers what it applied. */
const stateMachine: ReplicatedStateMachine<string> = {
  apply: (entry) => new TextDecoder().decode(entry.data),
  stageWrites: () => undefined,
  writesDone: () => undefined,
  openSnapshot: () => {
    throw new Error("no snapshots in this test");
  },
  startRestore: () => {
    throw new Error("no snapshots in this test");
  },
  installOperations: () => {
    throw new Error("no snapshots in this test");
  },
  reload: async () => undefined,
};

const noPeers = { send: () => undefined, close: () => undefined } as unknown as PeerTransport;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("RaftNode proposal sources", () => {
  let node: RaftNode<string> | undefined;
  afterEach(async () => {
    await node?.stop();
  });

  it("flushes every source right before it takes a Ready, so their proposals share it", async () => {
    const storage = new RecordingStorage();
    node = await RaftNode.open<string>({
      config: defaultRaftConfig("n1", Math.random),
      storage,
      stateMachine,
      applied: { appliedIndex: 0, membership: null },
      founders: votersMembership([{ id: "n1", address: "127.0.0.1:1" }]),
      logger: pino({ level: "silent" }),
      tickMs: 5,
    });
    node.start(noPeers);
    await waitFor(() => node!.isLeader(), "the lone node to lead");
    await waitFor(() => node!.status().commitIndex === node!.status().lastIndex, "its first entry to commit");

    let held: string | undefined;
    let heldResult: Promise<string> | undefined;
    node.addProposalSource(() => {
      if (held === undefined) return;
      heldResult = node!.propose(bytes(held));
      held = undefined;
    });
    const stepsBefore = storage.steps.length;
    // The ack's proposal schedules the next Ready; the lease arrives later in the same turn, held by its source.
    const ack = node.propose(bytes("ack"));
    held = "lease";
    expect(await ack).toBe("ack");
    expect(await heldResult).toBe("lease");

    const written = storage.steps.slice(stepsBefore).filter((step) => step.entries.length > 0);
    expect(written.map((step) => step.entries.filter((entry) => entry.type === EntryType.Normal).map((entry) => new TextDecoder().decode(entry.data)))).toEqual([
      ["ack", "lease"],
    ]);
  });
});
