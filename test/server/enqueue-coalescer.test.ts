/** Single enqueues of one turn joined into one command per queue, each caller answered as if alone. */
import { describe, expect, it } from "vitest";
import type { EnqueueCommand } from "../../src/queue/commands.js";
import { ErrorCode, QueueError } from "../../src/queue/errors.js";
import type { EnqueueResult } from "../../src/queue/results.js";
import { EnqueueCoalescer, MAX_JOINED_MESSAGES } from "../../src/server/enqueue-coalescer.js";

const FAR = Date.now() + 60_000;

function single(queue: string, body: string, key = ""): EnqueueCommand {
  return { kind: "enqueue", nowMs: 1, queue, autoCreate: true, messages: [{ body: new TextEncoder().encode(body), idempotencyKey: key, delayMs: 0, headers: {} }] };
}

const bodiesOf = (command: EnqueueCommand): string[] => command.messages.map((message) => new TextDecoder().decode(message.body));

/** A fake proposer: numbers messages from 1, refuses a command holding a body named "too-big". */
function fakeProposer(calls: string[][], options: { unknown?: boolean } = {}) {
  let nextId = 1;
  return async (command: EnqueueCommand): Promise<EnqueueResult> => {
    const bodies = bodiesOf(command);
    calls.push(bodies);
    if (options.unknown) throw new Error("node n1 is no longer the leader");
    if (bodies.includes("too-big")) throw new QueueError(ErrorCode.InvalidArgument, "a message is over the queue's max_message_bytes");
    return { ids: bodies.map(() => nextId++), duplicates: bodies.map(() => false) };
  };
}

const deadline = (): Error => new Error("deadline exceeded");

describe("EnqueueCoalescer", () => {
  it("proposes the enqueues of one turn as one command per queue, in order", async () => {
    const calls: string[][] = [];
    const joiner = new EnqueueCoalescer(fakeProposer(calls), deadline);
    const answers = await Promise.all([
      joiner.enqueue(single("a", "a1"), FAR),
      joiner.enqueue(single("b", "b1"), FAR),
      joiner.enqueue(single("a", "a2"), FAR),
      joiner.enqueue(single("a", "a3"), FAR),
    ]);
    expect(calls).toEqual([["a1", "a2", "a3"], ["b1"]]);
    expect(answers.map((answer) => answer.id)).toEqual([1, 4, 2, 3]);
  });

  it("proposes a refused batch again message by message, so each gets its own outcome", async () => {
    const calls: string[][] = [];
    const joiner = new EnqueueCoalescer(fakeProposer(calls), deadline);
    const outcomes = await Promise.allSettled(["m1", "too-big", "m3"].map((body) => joiner.enqueue(single("q", body), FAR)));
    expect(calls).toEqual([["m1", "too-big", "m3"], ["m1"], ["too-big"], ["m3"]]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(QueueError);
  });

  it("fails every caller of a batch whose outcome is unknown, without proposing again", async () => {
    const calls: string[][] = [];
    const joiner = new EnqueueCoalescer(fakeProposer(calls, { unknown: true }), deadline);
    const outcomes = await Promise.allSettled(["m1", "m2"].map((body) => joiner.enqueue(single("q", body), FAR)));
    expect(calls).toEqual([["m1", "m2"]]);
    expect(outcomes.every((outcome) => outcome.status === "rejected" && /no longer the leader/.test(String(outcome.reason)))).toBe(true);
  });

  it("cuts a turn's enqueues into commands of at most MAX_JOINED_MESSAGES", async () => {
    const calls: string[][] = [];
    const joiner = new EnqueueCoalescer(fakeProposer(calls), deadline);
    await Promise.all(Array.from({ length: MAX_JOINED_MESSAGES + 1 }, (_, n) => joiner.enqueue(single("q", `m${n}`), FAR)));
    expect(calls.map((bodies) => bodies.length)).toEqual([MAX_JOINED_MESSAGES, 1]);
  });

  it("answers a caller whose own deadline passes first with the deadline error", async () => {
    const joiner = new EnqueueCoalescer(() => new Promise<EnqueueResult>(() => undefined), deadline);
    await expect(joiner.enqueue(single("q", "m"), Date.now() + 20)).rejects.toThrow("deadline exceeded");
  });
});
