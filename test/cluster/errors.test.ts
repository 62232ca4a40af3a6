/**
 * Every error code of the public API, provoked with malformed or impossible requests over raw gRPC (the SDK
 * would validate or retry some of them): the status code must be the documented one and the message must
 * say what is wrong, whether the call reaches the leader directly or is forwarded by a follower. Afterwards
 * the nodes must still be up, healthy and serving. A node cut off from the majority must refuse calls with
 * UNAVAILABLE and report NOT_SERVING.
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { EnqueueStreamResponse__Output } from "../../src/generated/raftq/v1/EnqueueStreamResponse.js";
import type { QueueClient } from "../../src/generated/raftq/v1/Queue.js";
import { acceptsPackedFrames } from "../../src/protocol/frames.js";
import { startCluster, useSharedCluster, type TestCluster } from "./harness.js";
import { callUnary, codeName, expectOk, expectRefused, streamOutcome, type Outcome } from "./raw-grpc.js";

const TEST_TIMEOUT_MS = 30_000;
const MiB = 1024 * 1024;

/** A node's Queue stub, and which node that is. */
interface ViaNode {
  readonly via: string;
  readonly queue: QueueClient;
}

/** The leader's Queue stub and a follower's, so each case is checked both ways. */
async function queueStubs(cluster: TestCluster): Promise<[ViaNode, ViaNode]> {
  const leader = await cluster.leader();
  const [follower] = await cluster.followers();
  if (!follower) throw new Error("a three-node cluster has followers");
  return [
    { via: `leader ${leader.id}`, queue: cluster.stubs(leader.id).queue },
    { via: `follower ${follower.id}`, queue: cluster.stubs(follower.id).queue },
  ];
}

/** A request that must be refused: a label, what the error message must mention, and the call. */
interface BadRequest {
  readonly what: string;
  readonly mentions: RegExp;
  readonly call: (queue: QueueClient) => Promise<Outcome<unknown>>;
}

/** Sends every bad request through the leader and through a follower; each must fail with `code`. */
async function expectAllRefused(cluster: TestCluster, cases: readonly BadRequest[], code: grpc.status): Promise<void> {
  for (const { via, queue } of await queueStubs(cluster)) {
    for (const bad of cases) {
      const outcome = await bad.call(queue);
      expect(outcome.ok ? "OK" : codeName(outcome.code), `${bad.what} via ${via}`).toBe(codeName(code));
      expectRefused(outcome, code, bad.mentions);
    }
  }
}

/** A body of `bytes` bytes. */
function body(bytes: number): Buffer {
  return Buffer.alloc(bytes, "b");
}

/** `count` distinct headers. */
function manyHeaders(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, n) => [`h${n}`, "v"]));
}

describe("error codes", () => {
  const cluster = useSharedCluster();

  it("INVALID_ARGUMENT for malformed requests, with a message naming the problem", async () => {
    await callUnary(cluster().stubs("n1").queue, cluster().stubs("n1").queue.CreateQueue, { queue: "small", maxMessageBytes: 1024 });
    const cases: BadRequest[] = [
      { what: "queue name with a space", mentions: /queue name "a b" is invalid/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "a b", body: body(1) }) },
      { what: "empty queue name", mentions: /queue name "" is invalid/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "", body: body(1) }) },
      { what: "queue name of 129 characters", mentions: /queue name/,
        call: (q) => callUnary(q, q.CreateQueue, { queue: "q".repeat(129) }) },
      { what: "queue name starting with '-'", mentions: /queue name "-x"/,
        call: (q) => callUnary(q, q.Dequeue, { queue: "-x" }) },
      { what: "queue name with '/' in stats", mentions: /queue name "a\/b"/,
        call: (q) => callUnary(q, q.GetQueueStats, { queue: "a/b" }) },
      { what: "body one byte over the queue's max_message_bytes", mentions: /1025 bytes, over max_message_bytes 1024/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "small", body: body(1025) }) },
      { what: "body one byte over the default max_message_bytes", mentions: /over max_message_bytes 1048576/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "default-size", body: body(MiB + 1) }) },
      { what: "body over the largest max_message_bytes of any queue", mentions: /max_message_bytes/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "default-size", body: body(4 * MiB + 1) }) },
      { what: "max_messages 1001", mentions: /max_messages 1001 is out of range/,
        call: (q) => callUnary(q, q.Dequeue, { queue: "small", maxMessages: 1001 }) },
      { what: "wait_ms 20001", mentions: /wait_ms 20001 is out of range/,
        call: (q) => callUnary(q, q.Dequeue, { queue: "small", waitMs: 20_001 }) },
      { what: "visibility_timeout_ms over 12 h", mentions: /visibility_timeout_ms/,
        call: (q) => callUnary(q, q.Dequeue, { queue: "small", visibilityTimeoutMs: 43_200_001 }) },
      { what: "malformed receipt in Ack", mentions: /receipt "not-a-receipt" is malformed/,
        call: (q) => callUnary(q, q.Ack, { queue: "small", receipts: ["not-a-receipt"] }) },
      { what: "malformed receipt in Nack", mentions: /receipt "1\.2" is malformed/,
        call: (q) => callUnary(q, q.Nack, { queue: "small", receipts: ["1.2"] }) },
      { what: "empty receipt in ExtendLease", mentions: /receipt "" is malformed/,
        call: (q) => callUnary(q, q.ExtendLease, { queue: "small", receipts: [""] }) },
      { what: "message id 0 in Ack", mentions: /message id 0 is invalid/,
        call: (q) => callUnary(q, q.Ack, { queue: "small", ids: [0] }) },
      { what: "delay_ms over 12 h", mentions: /delay_ms 43200001 is out of range/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "small", body: body(1), delayMs: 43_200_001 }) },
      { what: "idempotency key of 257 bytes", mentions: /idempotency_key is 257 bytes/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "small", body: body(1), idempotencyKey: "k".repeat(257) }) },
      { what: "65 headers", mentions: /65 headers/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "small", body: body(1), headers: manyHeaders(65) }) },
      { what: "header key with a space", mentions: /header key "bad key" is invalid/,
        call: (q) => callUnary(q, q.Enqueue, { queue: "small", body: body(1), headers: { "bad key": "v" } }) },
      { what: "empty batch", mentions: /batch has 0 messages/,
        call: (q) => callUnary(q, q.EnqueueBatch, { queue: "small", messages: [] }) },
      { what: "batch of 1001 messages", mentions: /batch has 1001 messages/,
        call: (q) => callUnary(q, q.EnqueueBatch, { queue: "small", messages: Array.from({ length: 1001 }, () => ({ body: body(1) })) }),
      },
      { what: "max_deliveries 1001", mentions: /max_deliveries 1001 is out of range/,
        call: (q) => callUnary(q, q.CreateQueue, { queue: "bad-settings", maxDeliveries: 1001 }) },
      { what: "a queue as its own dead-letter queue", mentions: /dead_letter_queue "selfish" is the queue itself/,
        call: (q) => callUnary(q, q.CreateQueue, { queue: "selfish", maxDeliveries: 3, deadLetterQueue: "selfish" }) },
      { what: "a dead-letter queue without max_deliveries", mentions: /would never receive anything/,
        call: (q) => callUnary(q, q.CreateQueue, { queue: "no-limit", deadLetterQueue: "no-limit-dlq" }) },
      { what: "max_message_bytes over 4 MiB", mentions: /max_message_bytes 4194305 is out of range/,
        call: (q) => callUnary(q, q.CreateQueue, { queue: "huge", maxMessageBytes: 4 * MiB + 1 }) },
      { what: "Subscribe with prefetch 1001", mentions: /prefetch 1001 is out of range/,
        call: (q) => streamOutcome(q.Subscribe({ queue: "small", prefetch: 1001 })) },
    ];

    await expectAllRefused(cluster(), cases, grpc.status.INVALID_ARGUMENT);
  }, TEST_TIMEOUT_MS);

  it("accepts the boundary values next to those refusals", async () => {
    const [{ queue: q }] = await queueStubs(cluster());
    expectOk(await callUnary(q, q.CreateQueue, { queue: "edge", maxMessageBytes: 1024 }));

    expectOk(await callUnary(q, q.Enqueue, { queue: "edge", body: body(1024) }));
    expectOk(await callUnary(q, q.Enqueue, { queue: "edge-default", body: body(MiB) }));
    expectOk(await callUnary(q, q.Enqueue, { queue: "edge", body: body(1), idempotencyKey: "k".repeat(256), delayMs: 0 }));
    // max_messages 0 means 1, wait_ms 20000 is the longest allowed long poll.
    const one = expectOk(await callUnary(q, q.Dequeue, { queue: "edge", maxMessages: 0, waitMs: 20_000 }, 25_000));
    expect(one.messages).toHaveLength(1);
    expect(one.messages[0]?.body.byteLength).toBe(1024);
    const most = expectOk(await callUnary(q, q.Dequeue, { queue: "edge", maxMessages: 1000 }));
    expect(most.messages).toHaveLength(1);
  }, TEST_TIMEOUT_MS);

  it("NOT_FOUND for every operation on a queue that does not exist", async () => {
    const missing = "no-such-queue";
    const cases: BadRequest[] = [
      { what: "Dequeue", mentions: /"no-such-queue" does not exist/,
        call: (q) => callUnary(q, q.Dequeue, { queue: missing }) },
      { what: "long-poll Dequeue", mentions: /does not exist/,
        call: (q) => callUnary(q, q.Dequeue, { queue: missing, waitMs: 1_000 }) },
      { what: "Ack", mentions: /does not exist/,
        call: (q) => callUnary(q, q.Ack, { queue: missing, ids: [1] }) },
      { what: "Nack", mentions: /does not exist/,
        call: (q) => callUnary(q, q.Nack, { queue: missing, ids: [1] }) },
      { what: "ExtendLease", mentions: /does not exist/,
        call: (q) => callUnary(q, q.ExtendLease, { queue: missing, ids: [1] }) },
      { what: "GetQueueStats", mentions: /does not exist/,
        call: (q) => callUnary(q, q.GetQueueStats, { queue: missing }) },
      { what: "PurgeQueue", mentions: /does not exist/,
        call: (q) => callUnary(q, q.PurgeQueue, { queue: missing }) },
      { what: "Subscribe", mentions: /does not exist/,
        call: (q) => streamOutcome(q.Subscribe({ queue: missing })) },
    ];

    await expectAllRefused(cluster(), cases, grpc.status.NOT_FOUND);
    // Deleting a missing queue is not an error: it reports deleted=false.
    for (const { queue } of await queueStubs(cluster())) {
      expect(expectOk(await callUnary(queue, queue.DeleteQueue, { queue: missing }))).toEqual({ deleted: false });
    }
  }, TEST_TIMEOUT_MS);

  it("ALREADY_EXISTS for CreateQueue with other settings; the same settings report created=false", async () => {
    const [{ queue: q }] = await queueStubs(cluster());

    expect(expectOk(await callUnary(q, q.CreateQueue, { queue: "settled", maxLength: 10 }))).toEqual({ created: true });
    expect(expectOk(await callUnary(q, q.CreateQueue, { queue: "settled", maxLength: 10 }))).toEqual({ created: false });
    const other = await callUnary(q, q.CreateQueue, { queue: "settled", maxLength: 20 });
    expectRefused(other, grpc.status.ALREADY_EXISTS, /max_length is 10, not 20/);
  }, TEST_TIMEOUT_MS);

  it("RESOURCE_EXHAUSTED for a queue at max_length, until a message leaves", async () => {
    const [{ queue: q }] = await queueStubs(cluster());
    expectOk(await callUnary(q, q.CreateQueue, { queue: "full", maxLength: 2 }));
    const first = expectOk(await callUnary(q, q.Enqueue, { queue: "full", body: body(1) }));
    expectOk(await callUnary(q, q.Enqueue, { queue: "full", body: body(1) }));

    expectRefused(await callUnary(q, q.Enqueue, { queue: "full", body: body(1) }), grpc.status.RESOURCE_EXHAUSTED, /max_length|full/);
    expect(expectOk(await callUnary(q, q.Ack, { queue: "full", ids: [first.id] }))).toMatchObject({ acked: 1 });
    expectOk(await callUnary(q, q.Enqueue, { queue: "full", body: body(1) }));
  }, TEST_TIMEOUT_MS);

  it("reports per-message errors on EnqueueStream without ending the stream", async () => {
    for (const { via, queue: q } of await queueStubs(cluster())) {
      const stream = q.EnqueueStream();
      const answers = new Map<number, EnqueueStreamResponse__Output>();
      stream.on("data", (answer: EnqueueStreamResponse__Output) => answers.set(answer.seq, answer));
      const ended = streamOutcome(stream, 10_000);

      stream.write({ seq: 1, message: { queue: "streamed", body: body(1) } });
      stream.write({ seq: 2, message: { queue: "bad name", body: body(1) } });
      stream.write({ seq: 3 });
      stream.write({ seq: 4, message: { queue: "streamed", body: body(1) } });
      stream.end();

      expectOk(await ended);
      const codes = [1, 2, 3, 4].map((seq) => answers.get(seq)?.error?.code ?? "none");
      expect(codes, `per-message errors via ${via}`).toEqual(["none", grpc.status.INVALID_ARGUMENT, grpc.status.INVALID_ARGUMENT, "none"]);
      expect(answers.get(2)?.error?.message).toMatch(/queue name "bad name" is invalid/);
      expect(answers.get(3)?.error?.message).toMatch(/no message/);
      expect(answers.get(4)?.id).toBeGreaterThan(answers.get(1)?.id ?? Infinity);
    }
  }, TEST_TIMEOUT_MS);

  it("answers every message of a packed EnqueueStream frame by its seq, in packed frames when asked", async () => {
    for (const { via, queue: q } of await queueStubs(cluster())) {
      const stream = q.EnqueueStream();
      const answers = new Map<number, { id: number; code: number | "none" }>();
      let frames = 0;
      let advertised = false;
      stream.on("metadata", (metadata: grpc.Metadata) => (advertised = acceptsPackedFrames(metadata)));
      stream.on("data", (frame: EnqueueStreamResponse__Output) => {
        frames++;
        for (const answer of [frame, ...frame.more]) answers.set(answer.seq, { id: answer.id, code: answer.error?.code ?? "none" });
      });
      const ended = streamOutcome(stream, 10_000);
      const good = (seq: number) => ({ seq, message: { queue: "packed", body: body(1) } });

      stream.write({ ...good(1), more: [good(2), { seq: 3, message: { queue: "bad name", body: body(1) } }, { seq: 4 }, good(5)], packAnswers: true });
      // Over the limit of 1000 messages a frame: each is refused, and the stream goes on.
      stream.write({ more: Array.from({ length: 1001 }, (_, n) => good(100 + n)) });
      stream.write(good(6));
      stream.end();

      expectOk(await ended);
      const codes = [1, 2, 3, 4, 5, 6].map((seq) => answers.get(seq)?.code);
      expect(codes, `packed frame via ${via}`).toEqual(["none", "none", grpc.status.INVALID_ARGUMENT, grpc.status.INVALID_ARGUMENT, "none", "none"]);
      const oversized = Array.from({ length: 1001 }, (_, n) => answers.get(100 + n)?.code);
      expect(new Set(oversized), `an oversized frame via ${via}`).toEqual(new Set([grpc.status.INVALID_ARGUMENT]));
      const ids = [1, 2, 5, 6].map((seq) => answers.get(seq)?.id ?? 0);
      expect(ids, "the ids follow the order of the messages").toEqual([...ids].sort((a, b) => a - b));
      expect(frames, `answers packed into fewer frames than messages via ${via}`).toBeLessThan(answers.size / 10);
      expect(advertised, `the headers via ${via} say the leader reads packed frames`).toBe(true);
    }
  }, TEST_TIMEOUT_MS);

  it("FAILED_PRECONDITION for a leadership transfer to a node that is not a member", async () => {
    for (const node of [await cluster().leader(), ...(await cluster().followers())]) {
      const stub = cluster().stubs(node.id).cluster;
      expectRefused(await callUnary(stub, stub.TransferLeadership, { targetId: "n9" }), grpc.status.FAILED_PRECONDITION, /n9/);
    }
  }, TEST_TIMEOUT_MS);

  it("refuses bytes that are not a protobuf message and methods that do not exist", async () => {
    const { address } = await cluster().leader();
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    const send = (path: string, bytes: Buffer): Promise<grpc.ServiceError | null> =>
      new Promise((resolve) => {
        raw.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, bytes, { deadline: Date.now() + 5_000 }, (error) =>
          resolve(error),
        );
      });
    try {
      const garbage = await send("/raftq.v1.Queue/Enqueue", Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
      const unknown = await send("/raftq.v1.Queue/Teleport", Buffer.alloc(0));

      expect(garbage?.code, garbage?.details).not.toBe(grpc.status.OK);
      expect(garbage?.code).not.toBe(grpc.status.UNAVAILABLE);
      expect(unknown?.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
  }, TEST_TIMEOUT_MS);

  it("leaves every node up, healthy and serving after all that garbage", async () => {
    const c = cluster();
    expect(c.nodes.map((node) => node.state)).toEqual(["running", "running", "running"]);
    for (const node of c.nodes) {
      const { health } = c.stubs(node.id);
      expect(expectOk(await callUnary(health, health.Check, { service: "" })).status, node.id).toBe("SERVING");
    }
    const client = c.client();
    await client.enqueue("after-garbage", "still fine");
    expect((await client.dequeue("after-garbage")).map((delivery) => delivery.text())).toEqual(["still fine"]);
    // No request above was an internal error or crashed anything: nothing at pino level error (50) or worse.
    const errorLines = c.nodes.flatMap((node) => c.logLines(node.id)).filter((line) => /"level":(50|60)/.test(line));
    expect(errorLines).toEqual([]);
  }, TEST_TIMEOUT_MS);
});

describe("without auto-creation", () => {
  it("NOT_FOUND for an enqueue to a queue nobody created, until it is created", async () => {
    const cluster = await startCluster({ extraArgs: ["--no-auto-create"] });
    const { queue: q } = cluster.stubs((await cluster.leader()).id);

    expectRefused(await callUnary(q, q.Enqueue, { queue: "ghost", body: body(1) }), grpc.status.NOT_FOUND, /"ghost" does not exist/);
    const batch = await callUnary(q, q.EnqueueBatch, { queue: "ghost", messages: [{ body: body(1) }] });
    expectRefused(batch, grpc.status.NOT_FOUND, /does not exist/);
    expectOk(await callUnary(q, q.CreateQueue, { queue: "ghost" }));
    expectOk(await callUnary(q, q.Enqueue, { queue: "ghost", body: body(1) }));
  }, TEST_TIMEOUT_MS);
});

describe("a node cut off from the majority", () => {
  // Each case heals the cluster before it ends, so the two can share one.
  const sharedCluster = useSharedCluster();

  it.each(["leader", "follower"] as const)(
    "refuses calls with UNAVAILABLE within seconds and reports NOT_SERVING (cut-off %s)",
    async (role) => {
      const cluster = sharedCluster();
      const leader = await cluster.leader();
      const [follower] = await cluster.followers();
      const isolated = role === "leader" ? leader : follower;
      if (!isolated) return expect.fail("a node to isolate");
      const others = cluster.nodes.filter((node) => node.id !== isolated.id);
      const { health, queue } = cluster.stubs(isolated.id);

      try {
        for (const other of others) await cluster.kill(other.id, "SIGSTOP");
        const cutOffAt = Date.now();
        await cluster.waitFor(
          async () => {
            const check = await callUnary(health, health.Check, { service: "raftq.v1.Queue" }, 1_000);
            return check.ok && check.response.status === "NOT_SERVING";
          },
          { timeoutMs: 5_000, what: `${isolated.id} to report NOT_SERVING once the other two are paused` },
        );
        console.log(`cut-off ${role} ${isolated.id} reported NOT_SERVING ${Date.now() - cutOffAt} ms after the others were paused`);

        const calledAt = Date.now();
        const outcome = await callUnary(queue, queue.Enqueue, { queue: "cut-off", body: body(1) }, 10_000);
        expectRefused(outcome, grpc.status.UNAVAILABLE, /leader|quorum|retry/i);
        expect(Date.now() - calledAt).toBeLessThan(3_000);
      } finally {
        for (const other of others) if (other.state === "paused") await cluster.kill(other.id, "SIGCONT");
      }

      // Resumed, the cluster heals: one leader again, every node SERVING, writes work.
      await cluster.leader({ timeoutMs: 15_000 });
      for (const node of cluster.nodes) {
        const stubs = cluster.stubs(node.id);
        await cluster.waitFor(
          async () => {
            const check = await callUnary(stubs.health, stubs.health.Check, { service: "" }, 1_000);
            return check.ok && check.response.status === "SERVING";
          },
          { what: `${node.id} to report SERVING again` },
        );
      }
      await cluster.client().enqueue("healed", "ok");
    },
    TEST_TIMEOUT_MS,
  );

  it("holds a call that arrives while no leader is known: refused only after an election timeout, served if a leader comes", async () => {
    const cluster = sharedCluster();
    await cluster.leader({ timeoutMs: 15_000 });
    const [follower] = await cluster.followers();
    if (!follower) return expect.fail("a follower");
    const others = cluster.nodes.filter((node) => node.id !== follower.id);
    const { cluster: stub, queue } = cluster.stubs(follower.id);
    const pauseOthers = async (): Promise<void> => {
      for (const other of others) await cluster.kill(other.id, "SIGSTOP");
      await cluster.waitFor(
        async () => {
          const status = await callUnary(stub, stub.Status, {}, 1_000);
          return status.ok && status.response.leaderId === "";
        },
        { timeoutMs: 5_000, what: `${follower.id} to know no leader once the other two are paused` },
      );
    };
    const resumeOthers = async (): Promise<void> => {
      for (const other of others) if (other.state === "paused") await cluster.kill(other.id, "SIGCONT");
    };
    try {
      await pauseOthers();
      // No leader comes: the call is held for up to an election timeout (2 × 10 ticks of 50 ms), then refused.
      const calledAt = Date.now();
      expectRefused(await callUnary(queue, queue.Enqueue, { queue: "held", body: body(1) }, 10_000), grpc.status.UNAVAILABLE, /leader/);
      expect(Date.now() - calledAt).toBeGreaterThanOrEqual(900);

      // A leader comes back while a call is held: the call is served.
      const held = callUnary(queue, queue.Enqueue, { queue: "held", body: body(1) }, 10_000);
      await resumeOthers();
      expectOk(await held);
    } finally {
      await resumeOthers();
    }
  }, TEST_TIMEOUT_MS);
});
