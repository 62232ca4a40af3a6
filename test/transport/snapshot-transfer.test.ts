import { describe, expect, it } from "vitest";
import type { NodeId } from "../../src/raft/types.js";
import { MAX_SNAPSHOT_CHUNK_BYTES } from "../../src/transport/snapshot-header.js";
import { chunkOf, FakeReader, snapshotMessage, useTransportFixtures, waitFor } from "./helpers.js";

describe("snapshot transfer over gRPC", () => {
  const fixtures = useTransportFixtures();

  it("delivers a multi-MB state intact and in order, then the Snapshot message exactly once", async () => {
    const follower = await fixtures.receiver("n2");
    const reader = new FakeReader({ chunks: 96, chunkBytes: 64 * 1024 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => follower.delivered.length > 0, "the snapshot to be delivered");
    await waitFor(() => reader.closed, "the reader to be closed");

    expect(follower.delivered).toEqual([snapshotMessage("n2", 100)]);
    expect(follower.writers).toHaveLength(1);
    const [writer] = follower.writers;
    expect(writer?.aborted).toBe(false);
    expect(writer?.chunks).toHaveLength(96);
    writer?.chunks.forEach((chunk, i) => expect(Buffer.compare(chunk, chunkOf(i, 64 * 1024))).toBe(0));
    // Delivered only after the last chunk was written.
    expect(follower.writtenAtDelivery).toEqual([96]);
    expect(failed).toEqual([]);
  });

  it("keeps the reader only a few chunks ahead of a slow writer (back-pressure)", async () => {
    const follower = await fixtures.receiver("n2", { writeDelayMs: 3 });
    let maxAhead = 0;
    const reader = new FakeReader({
      chunks: 256,
      chunkBytes: 64 * 1024,
      onRead: (read) => {
        maxAhead = Math.max(maxAhead, read - (follower.writers[0]?.chunks.length ?? 0));
      },
    });
    const transport = fixtures.transport({ peers: new Map([["n2", follower.address]]), openSnapshot: () => reader });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => follower.delivered.length > 0, "the snapshot to be delivered", 20_000);

    expect(follower.writers[0]?.chunks).toHaveLength(256);
    // The buffers between reader and writer (the sender's stream, HTTP/2 windows, the receiver's stream)
    // hold a bounded number of chunks; without back-pressure the reader would race through all 256.
    expect(maxAhead).toBeLessThan(64);
  });

  it("runs one transfer per peer at a time: a second Snapshot message meanwhile is ignored", async () => {
    const follower = await fixtures.receiver("n2", { writeDelayMs: 1 });
    let opened = 0;
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => {
        opened++;
        return new FakeReader({ chunks: 50, chunkBytes: 16 * 1024 });
      },
    });

    transport.send([snapshotMessage("n2", 100)]);
    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => follower.delivered.length > 0, "the snapshot to be delivered");

    expect(opened).toBe(1);
    expect(follower.writers).toHaveLength(1);
  });

  it("refuses to send a state whose index is not the one the message names", async () => {
    const follower = await fixtures.receiver("n2");
    const reader = new FakeReader({ chunks: 3, chunkBytes: 1024, appliedIndex: 99 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
    });

    transport.send([snapshotMessage("n2", 100)]);
    // Reported later, never from inside send(): the node is in the middle of its Ready loop there.
    expect(failed).toEqual([]);
    await waitFor(() => failed.length > 0, "the failure to be reported");

    expect(failed).toEqual(["n2"]);
    expect(reader.closed).toBe(true);
    expect(reader.read).toBe(0);
    expect(follower.writers).toEqual([]);
  });

  it("refuses to send a chunk larger than the limit, and reports the transfer failed", async () => {
    const follower = await fixtures.receiver("n2");
    const reader = new FakeReader({ chunks: 2, chunkBytes: MAX_SNAPSHOT_CHUNK_BYTES + 4 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => failed.length > 0, "the failure to be reported");
    // The follower may or may not have started staging before the call was cancelled.
    await waitFor(() => follower.writers.every((writer) => writer.aborted), "the follower to abort its staging");

    expect(reader.closed).toBe(true);
    expect(follower.delivered).toEqual([]);
  });

  it("when the sender stops mid-stream, the follower aborts its staging and never delivers", async () => {
    const follower = await fixtures.receiver("n2", { writeDelayMs: 2 });
    const reader = new FakeReader({ chunks: 1000, chunkBytes: 64 * 1024 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => (follower.writers[0]?.chunks.length ?? 0) >= 10, "some chunks to arrive");
    // n2 leaves the cluster in the middle of the transfer: its link and the transfer are cut.
    transport.setPeers(new Map());
    await waitFor(() => follower.writers[0]?.aborted === true, "the follower to abort its staging");
    await waitFor(() => failed.length > 0, "the failure to be reported");

    expect(reader.closed).toBe(true);
    expect(follower.delivered).toEqual([]);
    expect(failed).toEqual(["n2"]);
  });

  it("when the follower dies mid-stream, the sender closes the reader and reports the failure", async () => {
    const follower = await fixtures.receiver("n2", { writeDelayMs: 2 });
    const reader = new FakeReader({ chunks: 1000, chunkBytes: 64 * 1024 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => (follower.writers[0]?.chunks.length ?? 0) >= 10, "some chunks to arrive");
    follower.stop();
    await waitFor(() => failed.length > 0, "the failure to be reported");

    expect(failed).toEqual(["n2"]);
    expect(reader.closed).toBe(true);
    expect(reader.read).toBeLessThan(1000);
    expect(follower.delivered).toEqual([]);
  });

  it("gives up a transfer that stalls, on both sides", async () => {
    const follower = await fixtures.receiver("n2", { idleTimeoutMs: 300 });
    const reader = new FakeReader({ chunks: 10, chunkBytes: 1024, stallAt: 4 });
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => reader,
      onSnapshotFailed: (peer) => failed.push(peer),
      snapshotLimits: { idleTimeoutMs: 200 },
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => failed.length > 0, "the failure to be reported");
    await waitFor(() => follower.writers[0]?.aborted === true, "the follower to abort its staging");

    expect(reader.closed).toBe(true);
    expect(follower.delivered).toEqual([]);
  });

  it("can send a fresh snapshot after a failed one", async () => {
    const follower = await fixtures.receiver("n2");
    const readers = [new FakeReader({ chunks: 10, chunkBytes: 1024, stallAt: 3 }), new FakeReader({ chunks: 10, chunkBytes: 1024, appliedIndex: 120 })];
    const failed: NodeId[] = [];
    const transport = fixtures.transport({
      peers: new Map([["n2", follower.address]]),
      openSnapshot: () => readers.shift() as FakeReader,
      onSnapshotFailed: (peer) => failed.push(peer),
      snapshotLimits: { idleTimeoutMs: 200 },
    });

    transport.send([snapshotMessage("n2", 100)]);
    await waitFor(() => failed.length > 0, "the first transfer to fail");
    transport.send([snapshotMessage("n2", 120)]);
    await waitFor(() => follower.delivered.length > 0, "the second snapshot to be delivered");

    expect(follower.delivered).toEqual([snapshotMessage("n2", 120)]);
    expect(follower.writers.map((writer) => writer.aborted)).toEqual([true, false]);
    expect(follower.writers[1]?.chunks).toHaveLength(10);
  });
});
