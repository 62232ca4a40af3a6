/** Leases of one turn joined into one command per queue and lease length, each caller getting its own part. */
import { describe, expect, it } from "vitest";
import type { LeaseCommand } from "../../src/queue/commands.js";
import { ErrorCode, QueueError } from "../../src/queue/errors.js";
import { MAX_LEASE_MESSAGES } from "../../src/queue/limits.js";
import type { LeaseResult, LeasedMessage } from "../../src/queue/results.js";
import { LeaseCoalescer } from "../../src/server/lease-coalescer.js";

const FAR = Date.now() + 60_000;

function lease(queue: string, maxMessages: number, visibilityTimeoutMs = 0): LeaseCommand {
  return { kind: "lease", nowMs: 1, queue, maxMessages, visibilityTimeoutMs };
}

const leased = (id: number): LeasedMessage => ({ id, bodyId: id, deliveryCount: 1, enqueuedAtMs: 0, receipt: `r${id}` });
const ids = (messages: readonly LeasedMessage[]): number[] => messages.map((message) => message.id);

/**
 * A fake queue holding `ready` messages numbered from 1: a lease takes the next ones, at most
 * `perLease` whatever it asks (as the byte budget cuts a lease of large messages short).
 */
function fakeQueue(ready: number, options: { perLease?: number; missing?: boolean } = {}) {
  const proposed: LeaseCommand[] = [];
  let next = 1;
  const propose = async (command: LeaseCommand): Promise<LeaseResult> => {
    proposed.push(command);
    if (options.missing) throw new QueueError(ErrorCode.NotFound, `queue "${command.queue}" does not exist`);
    const count = Math.min(command.maxMessages, options.perLease ?? Infinity, ready - next + 1);
    const deliveries = Array.from({ length: count }, () => leased(next++));
    return { deliveries };
  };
  return { proposed, propose, hasReady: () => next <= ready };
}

const deadline = (): Error => new Error("deadline exceeded");

describe("LeaseCoalescer", () => {
  it("proposes the leases of one turn as one command per queue and lease length, parts in order", async () => {
    const queue = fakeQueue(100);
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const answers = await Promise.all([
      joiner.lease(lease("a", 3), FAR),
      joiner.lease(lease("a", 2, 5_000), FAR),
      joiner.lease(lease("a", 0), FAR),
      joiner.lease(lease("b", 4), FAR),
      joiner.lease(lease("a", 5), FAR),
    ]);
    expect(queue.proposed.map((command) => [command.queue, command.maxMessages, command.visibilityTimeoutMs])).toEqual([
      ["a", 9, 0],
      ["a", 2, 5_000],
      ["b", 4, 0],
    ]);
    // max_messages 0 means 1, as for a lone lease.
    expect(answers.map(ids)).toEqual([[1, 2, 3], [10, 11], [4], [12, 13, 14, 15], [5, 6, 7, 8, 9]]);
  });

  it("keeps every joined command within MAX_LEASE_MESSAGES", async () => {
    const queue = fakeQueue(5_000);
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const answers = await Promise.all([600, 600, 400].map((count) => joiner.lease(lease("q", count), FAR)));
    expect(queue.proposed.map((command) => command.maxMessages)).toEqual([600, 1_000]);
    expect(queue.proposed.every((command) => command.maxMessages <= MAX_LEASE_MESSAGES)).toBe(true);
    expect(answers.map((answer) => answer.length)).toEqual([600, 600, 400]);
    expect(new Set(answers.flatMap(ids)).size).toBe(1_600);
  });

  it("shares out what a queue running dry has, answering the rest empty without proposing again", async () => {
    const queue = fakeQueue(4);
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const answers = await Promise.all([3, 3, 3].map((count) => joiner.lease(lease("q", count), FAR)));
    expect(answers.map(ids)).toEqual([[1, 2, 3], [4], []]);
    expect(queue.proposed).toHaveLength(1);
  });

  it("leases again alone for a caller a cut-short lease left with nothing while messages are ready", async () => {
    const queue = fakeQueue(10, { perLease: 2 });
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const answers = await Promise.all([2, 2, 2].map((count) => joiner.lease(lease("q", count), FAR)));
    expect(answers.map(ids)).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(queue.proposed.map((command) => command.maxMessages)).toEqual([6, 2, 2]);
  });

  it("proposes at once when flushed before the end of the turn (the node's next Ready), and nothing twice", async () => {
    const queue = fakeQueue(10);
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const first = joiner.lease(lease("q", 2), FAR);
    const second = joiner.lease(lease("q", 3), FAR);
    joiner.flushNow();
    expect(queue.proposed.map((command) => command.maxMessages)).toEqual([5]);
    const third = joiner.lease(lease("q", 1), FAR);
    expect((await Promise.all([first, second, third])).map(ids)).toEqual([[1, 2], [3, 4, 5], [6]]);
    expect(queue.proposed.map((command) => command.maxMessages)).toEqual([5, 1]);
  });

  it("gives every caller the error of a refused lease", async () => {
    const queue = fakeQueue(10, { missing: true });
    const joiner = new LeaseCoalescer(queue.propose, queue.hasReady, deadline);
    const outcomes = await Promise.allSettled([1, 2].map((count) => joiner.lease(lease("gone", count), FAR)));
    expect(queue.proposed).toHaveLength(1);
    expect(outcomes.every((outcome) => outcome.status === "rejected" && outcome.reason instanceof QueueError)).toBe(true);
  });

  it("answers a caller whose deadline passes first with the deadline error", async () => {
    const joiner = new LeaseCoalescer(() => new Promise<LeaseResult>(() => undefined), () => true, deadline);
    await expect(joiner.lease(lease("q", 1), Date.now() + 20)).rejects.toThrow("deadline exceeded");
  });
});
