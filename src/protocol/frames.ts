/**
 * Packing many small messages into one gRPC stream frame. A frame costs about as much as the work for a
 * small message on both ends (HTTP/2 framing, a wake-up, the call machinery), so the streams that carry
 * many messages (EnqueueStream both ways, Subscribe) send what they have ready together.
 */

import type * as grpc from "@grpc/grpc-js";

/**
 * Response-header key by which a node says it reads and writes packed EnqueueStream frames. A client packs
 * only after seeing it: a node of an older version would read just the first message of a packed frame,
 * and a relaying node passes on what the leader behind it said.
 */
export const PACKED_FRAMES_METADATA_KEY = "raftq-packed-frames";

/** Adds the packed-frames header to `metadata` (the answer's headers); returns it. */
export function advertisePackedFrames(metadata: grpc.Metadata): grpc.Metadata {
  metadata.set(PACKED_FRAMES_METADATA_KEY, "1");
  return metadata;
}

/** Whether response headers say the node reads packed frames. */
export function acceptsPackedFrames(metadata: grpc.Metadata): boolean {
  return metadata.get(PACKED_FRAMES_METADATA_KEY)[0] === "1";
}

/** Most messages in one frame: the server's limit on a frame it reads. */
export const MAX_FRAME_MESSAGES = 1000;

/**
 * Most bytes packed into one frame, well under gRPC's default 4 MiB limit on a received message; an item
 * bigger than this goes in a frame of its own, as it would unpacked.
 */
export const MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Splits `items` in order into frames of at most MAX_FRAME_MESSAGES items and MAX_FRAME_BYTES bytes as
 * counted by `bytesOf` (an item bigger than that alone).
 */
export function packFrames<T>(items: readonly T[], bytesOf: (item: T) => number): T[][] {
  return splitInOrder(items, bytesOf, MAX_FRAME_MESSAGES, MAX_FRAME_BYTES);
}

/**
 * `items` packed into frames as they go on the wire: each frame is its first item's wire form, with the
 * wire forms of the rest in its `more` (how EnqueueStream requests and answers and Subscribe deliveries
 * carry many messages).
 */
export function packedFrames<T, Wire>(items: readonly T[], bytesOf: (item: T) => number, toWire: (item: T) => Wire): (Wire & { more: Wire[] })[] {
  return packFrames(items, bytesOf).map(([first, ...more]) => ({ ...toWire(first!), more: more.map(toWire) }));
}

/**
 * Splits `items` in order into runs of at most `maxItems` items and `maxBytes` bytes as counted by
 * `bytesOf`; an item bigger than `maxBytes` makes a run of its own. Frames are cut this way, and so are
 * the log entries the leader joins single enqueues into (enqueue-coalescer.ts).
 */
export function splitInOrder<T>(items: readonly T[], bytesOf: (item: T) => number, maxItems: number, maxBytes: number): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let runBytes = 0;
  for (const item of items) {
    const bytes = bytesOf(item);
    if (run.length > 0 && (run.length >= maxItems || runBytes + bytes > maxBytes)) {
      runs.push(run);
      run = [];
      runBytes = 0;
    }
    run.push(item);
    runBytes += bytes;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
