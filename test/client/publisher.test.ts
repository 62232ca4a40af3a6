import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { isCancelled, isQueueFull, isRetryable, type EnqueueResult } from "../../src/client/index.js";
import type { EnqueueStreamRequest__Output } from "../../src/generated/raftq/v1/EnqueueStreamRequest.js";
import type { EnqueueStreamResponse } from "../../src/generated/raftq/v1/EnqueueStreamResponse.js";
import type { StreamedEnqueue__Output } from "../../src/generated/raftq/v1/StreamedEnqueue.js";
import { advertisePackedFrames } from "../../src/protocol/frames.js";
import { deadAddress, grpcError, leaderMetadata, useFakeCluster, waitFor } from "./fake-node.js";

type StreamCall = grpc.ServerDuplexStream<EnqueueStreamRequest__Output, EnqueueStreamResponse>;

/** Calls `onMessage` for each message of each frame the publisher sends, in order. */
function eachMessage(call: StreamCall, onMessage: (message: StreamedEnqueue__Output) => void): void {
  call.on("data", (frame: EnqueueStreamRequest__Output) => {
    if (frame.message) onMessage(frame);
    for (const message of frame.more) onMessage(message);
  });
}

/** The id a fake node gives a message: 100 + the number in its body. */
function idOf(request: StreamedEnqueue__Output): number {
  return 100 + Number(request.message?.body.toString());
}

function answer(call: StreamCall, request: StreamedEnqueue__Output): void {
  call.write({ seq: request.seq, id: idOf(request), duplicate: false });
}

describe("publisher", () => {
  const cluster = useFakeCluster();

  it("resolves each publish by the seq of its answer, whatever the order of answers", async () => {
    const node = await cluster.node({
      EnqueueStream: (call) => {
        const held: StreamedEnqueue__Output[] = [];
        eachMessage(call, (request) => {
          held.push(request);
          if (held.length === 5) for (const each of held.reverse()) answer(call, each);
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");

    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => publisher.publish(String(n))));

    expect(results.map((result) => result.id)).toEqual([101, 102, 103, 104, 105]);
  });

  it("packs the messages published in one turn into one frame, and reads answers packed into one frame", async () => {
    const frames: EnqueueStreamRequest__Output[] = [];
    const node = await cluster.node({
      EnqueueStream: (call) => {
        call.sendMetadata(advertisePackedFrames(new grpc.Metadata()));
        call.on("data", (frame: EnqueueStreamRequest__Output) => {
          frames.push(frame);
          const [first, ...more] = [frame, ...frame.more].map((message) => ({ seq: message.seq, id: idOf(message), duplicate: false }));
          if (first) call.write({ ...first, more });
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");
    // The first message goes before the node's headers say it reads packed frames: alone in its frame.
    expect((await publisher.publish("0")).id).toBe(100);

    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => publisher.publish(String(n))));

    expect(results.map((result) => result.id)).toEqual([101, 102, 103, 104, 105]);
    expect(frames.map((frame) => [frame.seq, ...frame.more.map((message) => message.seq)])).toEqual([[1], [2, 3, 4, 5, 6]]);
    expect(frames.every((frame) => frame.packAnswers)).toBe(true);
  });

  it("sends one message a frame to a node that does not say it reads packed frames (an older version)", async () => {
    const frames: EnqueueStreamRequest__Output[] = [];
    const node = await cluster.node({
      EnqueueStream: (call) => {
        // Like a server that predates packing: it reads each frame's own message and nothing else.
        call.on("data", (frame: EnqueueStreamRequest__Output) => {
          frames.push(frame);
          answer(call, frame);
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");

    await publisher.publish("0");
    const results = await Promise.all([1, 2, 3].map((n) => publisher.publish(String(n))));

    expect(results.map((result) => result.id)).toEqual([101, 102, 103]);
    expect(frames.map((frame) => frame.more.length)).toEqual([0, 0, 0, 0]);
  });

  it("keeps a frame's messages within 1 MiB, a bigger message alone in its frame", async () => {
    const framed: number[][] = [];
    const node = await cluster.node({
      EnqueueStream: (call) => {
        call.sendMetadata(advertisePackedFrames(new grpc.Metadata()));
        call.on("data", (frame: EnqueueStreamRequest__Output) => {
          const messages = [frame, ...frame.more];
          framed.push(messages.map((message) => message.message?.body.length ?? 0));
          for (const message of messages) call.write({ seq: message.seq, id: message.seq, duplicate: false });
        });
      },
    });
    const client = cluster.client([node.address]);
    const publisher = client.publisher("jobs");
    const KiB = 1024;
    await publisher.publish("0");
    framed.length = 0;

    await Promise.all([400, 400, 400, 1500, 10, 10].map((kib) => publisher.publish(Buffer.alloc(kib * KiB))));

    expect(framed).toEqual([[400 * KiB, 400 * KiB], [400 * KiB], [1500 * KiB], [10 * KiB, 10 * KiB]]);
  });

  it("never has more than maxInFlight messages unanswered", async () => {
    const held: StreamedEnqueue__Output[] = [];
    let stream: StreamCall | undefined;
    let mostUnanswered = 0;
    let answered = 0;
    const node = await cluster.node({
      EnqueueStream: (call) => {
        stream = call;
        eachMessage(call, (request) => {
          held.push(request);
          mostUnanswered = Math.max(mostUnanswered, held.length);
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs", { maxInFlight: 3 });
    const release = (): void => {
      const next = held.shift();
      if (next && stream) answer(stream, next);
      answered++;
    };

    const published = Array.from({ length: 10 }, (_, n) => publisher.publish(String(n)));
    await waitFor(() => held.length === 3, "the first three messages");
    expect(publisher.inFlight).toBe(3);
    release();
    await waitFor(() => held.length === 3 && answered === 1, "a fourth message after one answer");
    while (answered < 10) {
      await waitFor(() => held.length > 0, "another message");
      release();
    }

    expect((await Promise.all(published)).map((result) => result.id)).toEqual(Array.from({ length: 10 }, (_, n) => 100 + n));
    expect(mostUnanswered).toBe(3);
    expect(publisher.inFlight).toBe(0);
  });

  it("re-sends unanswered messages with the same keys on a new stream to the leader when the stream breaks", async () => {
    const onLeader: StreamedEnqueue__Output[] = [];
    const leader = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, (request) => {
          onLeader.push(request);
          answer(call, request);
        });
      },
    });
    const onFollower: StreamedEnqueue__Output[] = [];
    const follower = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, (request) => {
          onFollower.push(request);
          if (onFollower.length === 3) call.emit("error", grpcError(grpc.status.UNAVAILABLE, "leadership lost", leader.address));
        });
      },
    });
    const publisher = cluster.client([follower.address]).publisher("jobs");

    const results = await Promise.all([1, 2, 3].map((n) => publisher.publish(String(n))));

    expect(results.map((result) => result.id)).toEqual([101, 102, 103]);
    const keysAndSeqs = (requests: StreamedEnqueue__Output[]): [number, string | undefined][] =>
      requests.map((request) => [request.seq, request.message?.idempotencyKey]);
    expect(keysAndSeqs(onLeader)).toEqual(keysAndSeqs(onFollower));
    expect(onLeader.every((request) => typeof request.message?.idempotencyKey === "string")).toBe(true);
  });

  it("moves to the leader a relaying follower names, and lets the follower finish what it was sent", async () => {
    const onLeader: number[] = [];
    const leader = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, (request) => {
          onLeader.push(request.seq);
          answer(call, request);
        });
      },
    });
    const onFollower: number[] = [];
    let followerEnded = false;
    const follower = await cluster.node({
      EnqueueStream: (call) => {
        call.sendMetadata(leaderMetadata(leader.address));
        eachMessage(call, (request) => {
          onFollower.push(request.seq);
          answer(call, request);
        });
        call.on("end", () => {
          followerEnded = true;
          call.end();
        });
      },
    });
    const publisher = cluster.client([follower.address]).publisher("jobs");

    expect((await publisher.publish("1")).id).toBe(101);
    await waitFor(() => followerEnded, "the follower's stream half-closed by the publisher");
    const later = await Promise.all([2, 3, 4].map((n) => publisher.publish(String(n))));

    expect(later.map((result) => result.id)).toEqual([102, 103, 104]);
    expect(onFollower).toEqual([1]);
    expect(onLeader).toEqual([2, 3, 4]);
  });

  it("stays on the relaying follower when the leader it names cannot be reached", async () => {
    const unreachable = await deadAddress();
    const onFollower: number[] = [];
    const follower = await cluster.node({
      EnqueueStream: (call) => {
        call.sendMetadata(leaderMetadata(unreachable));
        eachMessage(call, (request) => {
          onFollower.push(request.seq);
          answer(call, request);
        });
        call.on("end", () => call.end());
      },
    });
    const publisher = cluster.client([follower.address]).publisher("jobs");

    expect((await publisher.publish("1")).id).toBe(101);
    await waitFor(() => onFollower.length === 1, "the first message");
    const later = await Promise.all([2, 3, 4].map((n) => publisher.publish(String(n))));

    expect(later.map((result) => result.id)).toEqual([102, 103, 104]);
    expect(new Set(onFollower)).toEqual(new Set([1, 2, 3, 4]));
  });

  it("does not re-send a message without a key: its outcome is reported unknown instead", async () => {
    const node = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, () => call.emit("error", grpcError(grpc.status.UNAVAILABLE, "leadership lost")));
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");

    const error: unknown = await publisher.publish("1", { idempotencyKey: false }).catch((caught: unknown) => caught);

    expect(isRetryable(error)).toBe(true);
    expect((error as Error).message).toMatch(/no idempotency key, so it was not sent again/);
  });

  it("rejects a refused message with a typed error and retries one refused as UNAVAILABLE", async () => {
    const attempts = new Map<number, number>();
    const node = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, (request) => {
          const attempt = (attempts.get(request.seq) ?? 0) + 1;
          attempts.set(request.seq, attempt);
          const body = request.message?.body.toString();
          if (body === "full") call.write({ seq: request.seq, error: { code: grpc.status.RESOURCE_EXHAUSTED, message: 'queue "jobs" is full' } });
          else if (attempt === 1) call.write({ seq: request.seq, error: { code: grpc.status.UNAVAILABLE, message: "no leader" } });
          else answer(call, request);
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");

    const full = publisher.publish("full").catch((caught: unknown) => caught);
    const retried: Promise<EnqueueResult> = publisher.publish("7");

    expect(isQueueFull(await full)).toBe(true);
    await expect(retried).resolves.toEqual({ id: 107, duplicate: false });
    expect([...attempts.values()]).toEqual([1, 2]);
  });

  it("flushes on close and refuses to publish afterwards", async () => {
    let ended = false;
    const node = await cluster.node({
      EnqueueStream: (call) => {
        eachMessage(call, (request) => answer(call, request));
        call.on("end", () => {
          ended = true;
          call.end();
        });
      },
    });
    const publisher = cluster.client([node.address]).publisher("jobs");
    const published = publisher.publish("1");

    await publisher.close();

    await expect(published).resolves.toEqual({ id: 101, duplicate: false });
    expect(ended).toBe(true);
    await expect(publisher.publish("2")).rejects.toSatisfy(isCancelled);
  });
});
