import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { SnapshotChunk } from "../../src/generated/raftq/v1/SnapshotChunk.js";
import { raftClient } from "../../src/transport/raft-service.js";
import { MAX_SNAPSHOT_CHUNK_BYTES, snapshotHeaderToWire } from "../../src/transport/snapshot-header.js";
import { snapshotMessage, useTransportFixtures, waitFor } from "./helpers.js";

/** Sends `chunks` on a raw InstallSnapshot call to `address` and resolves with the status it ended with. */
async function install(address: string, chunks: readonly SnapshotChunk[]): Promise<grpc.status> {
  const client = raftClient(address);
  try {
    return await new Promise<grpc.status>((resolve) => {
      const call = client.installSnapshot({ deadline: Date.now() + 5_000 }, (error) => resolve(error ? error.code : grpc.status.OK));
      for (const chunk of chunks) call.write(chunk);
      call.end();
    });
  } finally {
    client.close();
  }
}

const header = { header: snapshotHeaderToWire(snapshotMessage("n2", 100)) };
const data = (bytes: number): SnapshotChunk => ({ data: Buffer.alloc(bytes, 1) });

describe("snapshot receiver", () => {
  const fixtures = useTransportFixtures();

  it("accepts a well-formed transfer and delivers it once", async () => {
    const follower = await fixtures.receiver("n2");

    const code = await install(follower.address, [header, data(10), data(20), { end: { chunks: 2, bytes: 30 } }]);

    expect(code).toBe(grpc.status.OK);
    expect(follower.delivered).toEqual([snapshotMessage("n2", 100)]);
    expect(follower.writers[0]?.chunks.map((chunk) => chunk.byteLength)).toEqual([10, 20]);
  });

  it.each<[string, SnapshotChunk[]]>([
    ["a chunk over the size limit", [header, data(MAX_SNAPSHOT_CHUNK_BYTES + 1), { end: { chunks: 1, bytes: MAX_SNAPSHOT_CHUNK_BYTES + 1 } }]],
    ["a stream that ends without the end marker", [header, data(10)]],
    ["an end marker counting chunks that never came", [header, data(10), { end: { chunks: 2, bytes: 20 } }]],
    ["a chunk after the end marker", [header, { end: { chunks: 0, bytes: 0 } }, data(10)]],
    ["a second header", [header, header, { end: { chunks: 0, bytes: 0 } }]],
  ])("refuses %s: aborts its staging and delivers nothing", async (_case, chunks) => {
    const follower = await fixtures.receiver("n2");

    const code = await install(follower.address, chunks);

    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(follower.writers.map((writer) => writer.aborted)).toEqual([true]);
    expect(follower.delivered).toEqual([]);
  });

  it.each<[string, SnapshotChunk[]]>([
    ["data before the header", [data(10), { end: { chunks: 1, bytes: 10 } }]],
    ["a snapshot addressed to another node", [{ header: snapshotHeaderToWire(snapshotMessage("n3", 100)) }, { end: { chunks: 0, bytes: 0 } }]],
    ["a header whose membership has no voter", [{ header: { ...header.header, members: [{ id: "n1", address: "127.0.0.1:7001", voter: false }] } }]],
    ["a header with a zero index", [{ header: { ...header.header, index: 0 } }]],
  ])("refuses %s before staging anything", async (_case, chunks) => {
    const follower = await fixtures.receiver("n2");

    const code = await install(follower.address, chunks);

    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(follower.writers).toEqual([]);
    expect(follower.delivered).toEqual([]);
  });

  it("drops a transfer superseded by a newer one, aborting its staging before the new one starts", async () => {
    const follower = await fixtures.receiver("n2");
    const client = raftClient(follower.address);
    const first = new Promise<grpc.status>((resolve) => {
      const call = client.installSnapshot((error) => resolve(error ? error.code : grpc.status.OK));
      call.write(header);
      call.write(data(10));
    });
    await waitFor(() => follower.writers[0]?.chunks.length === 1, "the first transfer to stage a chunk");

    const second = await install(follower.address, [header, data(5), { end: { chunks: 1, bytes: 5 } }]);

    expect(second).toBe(grpc.status.OK);
    expect(await first).toBe(grpc.status.ABORTED);
    expect(follower.writers.map((writer) => writer.aborted)).toEqual([true, false]);
    expect(follower.delivered).toHaveLength(1);
    client.close();
  });
});
