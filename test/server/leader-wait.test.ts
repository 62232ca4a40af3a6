import { describe, expect, it } from "vitest";
import { Role } from "../../src/raft/types.js";
import { waitForLeader, type LeaderWatch } from "../../src/server/leader-wait.js";

type Listener = (leadership: { readonly role: Role; readonly leader: string }) => void;

/** A node whose leader the test sets; it counts the listeners still registered. */
class FakeNode implements LeaderWatch {
  leader = "";
  leading = false;
  readonly listeners = new Set<Listener>();

  constructor(private readonly timeoutMs: number) {}

  isLeader(): boolean {
    return this.leading;
  }

  leaderId(): string {
    return this.leader;
  }

  electionTimeoutMaxMs(): number {
    return this.timeoutMs;
  }

  onLeadershipChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  elect(leader: string): void {
    this.leader = leader;
    for (const listener of [...this.listeners]) listener({ role: Role.Follower, leader });
  }
}

const never = new AbortController().signal;

describe("waitForLeader", () => {
  it("returns at once when a leader is known", async () => {
    const node = new FakeNode(60_000);
    node.leader = "n1";
    await waitForLeader(node, Date.now() + 60_000, never);
    expect(node.listeners.size).toBe(0);
  });

  it("resolves when a leader becomes known, and stops listening", async () => {
    const node = new FakeNode(60_000);
    let resolved = false;
    const waiting = waitForLeader(node, Date.now() + 60_000, never).then(() => (resolved = true));
    node.elect("");
    await Promise.resolve();
    expect(resolved).toBe(false);
    node.elect("n2");
    await waiting;
    expect(node.listeners.size).toBe(0);
  });

  it("gives up after an election timeout, or earlier at the caller's deadline", async () => {
    const startedAt = Date.now();
    await waitForLeader(new FakeNode(50), startedAt + 60_000, never);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(45);
    const again = Date.now();
    await waitForLeader(new FakeNode(60_000), again + 30, never);
    expect(Date.now() - again).toBeLessThan(5_000);
  });

  it("ends when the call is cancelled", async () => {
    const node = new FakeNode(60_000);
    const cancel = new AbortController();
    const waiting = waitForLeader(node, Date.now() + 60_000, cancel.signal);
    cancel.abort();
    await waiting;
    expect(node.listeners.size).toBe(0);
  });
});
