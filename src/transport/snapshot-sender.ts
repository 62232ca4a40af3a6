/**
 * The leader's half of a snapshot transfer: streams a state machine snapshot to one follower over the
 * InstallSnapshot call, never holding more than a few chunks in memory.
 */
import type * as grpc from "@grpc/grpc-js";
import type { RaftClient } from "../generated/raftq/v1/Raft.js";
import type { SnapshotChunk } from "../generated/raftq/v1/SnapshotChunk.js";
import type { StateSnapshotReader } from "../node/state-machine.js";
import type { SnapshotMessage } from "../raft/types.js";
import { IdleWatchdog } from "./idle-watchdog.js";
import { MAX_SNAPSHOT_CHUNK_BYTES, snapshotHeaderToWire } from "./snapshot-header.js";

/** Bounds on one transfer, either side. */
export interface SnapshotTransferLimits {
  /** The whole transfer, acknowledgement included (the call's deadline). */
  readonly transferTimeoutMs: number;
  /** A transfer with no chunk moving for this long is abandoned (a stalled peer or a silent dead link). */
  readonly idleTimeoutMs: number;
}

/** Generous: a multi-GB state on a slow link; a stall is caught by the idle timeout long before. */
export const DEFAULT_SNAPSHOT_LIMITS: SnapshotTransferLimits = { transferTimeoutMs: 60 * 60_000, idleTimeoutMs: 30_000 };

/**
 * Streams the state `reader` holds to the follower behind `client` as the snapshot `message` names, and
 * resolves once the follower acknowledged all of it. A chunk is read only once the stream accepted the
 * previous one (back-pressure reaches back to the follower's disk through HTTP/2 flow control). Rejects
 * on any failure, on the limits, or when `signal` aborts; the call is then cancelled, so the follower
 * drops what it staged. Closes the reader in every case.
 */
export async function streamSnapshot(
  client: RaftClient,
  message: SnapshotMessage,
  reader: StateSnapshotReader,
  limits: SnapshotTransferLimits,
  signal: AbortSignal,
): Promise<void> {
  let call!: grpc.ClientWritableStream<SnapshotChunk>;
  const answered = new Promise<void>((resolve, reject) => {
    call = client.installSnapshot({ deadline: Date.now() + limits.transferTimeoutMs }, (error) => (error ? reject(error) : resolve()));
  });
  /** Why this side gave up, when it did: a clearer story than the CANCELLED its cancel() causes. */
  let reason: Error | null = null;
  const giveUp = (error: Error): void => {
    reason ??= error;
    call.cancel();
  };
  // Rejects as soon as the call fails, to cut short a wait for a chunk or a write.
  const failed = answered.then(() => {
    throw new Error("the follower answered before the snapshot was complete");
  });
  failed.catch(() => undefined);
  const watchdog = new IdleWatchdog(limits.idleTimeoutMs, () => giveUp(new Error(`no progress for ${limits.idleTimeoutMs} ms`)));
  const onAbort = (): void => giveUp(new Error("the link to the follower was closed"));
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal.aborted) onAbort();
    // Waits until the chunk is handed to HTTP/2, whose flow control holds it until the follower reads:
    // so the reader is never far ahead of the follower's disk, however large the state.
    const write = async (chunk: SnapshotChunk): Promise<void> => {
      await unlessFailed(new Promise<void>((resolve, reject) => call.write(chunk, (error?: Error | null) => (error ? reject(error) : resolve()))), failed);
      watchdog.touch();
    };
    await write({ header: snapshotHeaderToWire(message) });
    let chunks = 0;
    let bytes = 0;
    for (;;) {
      const data = await unlessFailed(reader.next(), failed);
      if (data === null) break;
      if (data.byteLength > MAX_SNAPSHOT_CHUNK_BYTES) {
        throw new Error(`the state machine produced a ${data.byteLength}-byte chunk; at most ${MAX_SNAPSHOT_CHUNK_BYTES} may be sent`);
      }
      chunks++;
      bytes += data.byteLength;
      await write({ data });
    }
    await write({ end: { chunks, bytes } });
    call.end();
    await answered;
  } catch (error) {
    giveUp(error instanceof Error ? error : new Error(String(error)));
    throw reason ?? error;
  } finally {
    watchdog.stop();
    signal.removeEventListener("abort", onAbort);
    // A failure to release the view must not hide how the transfer ended.
    await reader.close().catch(() => undefined);
  }
}

/** `work`, unless `failed` rejects first; a late rejection of `work` is then ignored, not left unhandled. */
function unlessFailed<T>(work: Promise<T>, failed: Promise<never>): Promise<T> {
  work.catch(() => undefined);
  return Promise.race([work, failed]);
}
