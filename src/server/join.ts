/**
 * `raftq serve --join`: a node started on an empty data directory asks a running cluster to add it. The
 * cluster adds it as a learner and replicates the log (or a snapshot) to it; the leader promotes it to
 * voter once it has caught up. The node must already be serving, since the leader starts sending at once.
 */
import type { Logger } from "pino";
import { sleep, backoffDelayMs } from "../client/backoff.js";
import { connect, isFailedPrecondition, isOutcomeUnknown, isRetryable, type ClusterMember } from "../client/index.js";
import type { NodeId } from "../raft/types.js";
import { addressProblem } from "./peers.js";

/** The joining node: its id and the address the cluster is to reach it at (its advertised address). */
export interface JoiningNode {
  readonly id: NodeId;
  readonly address: string;
}

export interface JoinOptions {
  readonly logger: Logger;
  /** Give up after this long (default 5 minutes): time enough for a cluster electing or finishing another change. */
  readonly timeoutMs?: number;
}

export const DEFAULT_JOIN_TIMEOUT_MS = 5 * 60_000;
/** Pacing of the retries: from a fraction of a second up to a few seconds. */
const JOIN_BACKOFF_INITIAL_MS = 250;
const JOIN_BACKOFF_MAX_MS = 5_000;

/**
 * Asks the cluster at `address` (any member; comma-separated for several) to add `self`, and resolves
 * with the members once the change is applied. Retries with backoff while the cluster cannot take the
 * change yet (unreachable, no leader, another membership change in progress); rejects at once when it
 * refuses for good (an invalid id or address, the id taken by another address), after `timeoutMs`, or
 * when `signal` aborts. Safe to call again: adding a member at the same address is a no-op.
 */
export async function joinCluster(address: string, self: JoiningNode, signal: AbortSignal, options: JoinOptions): Promise<ClusterMember[]> {
  const { logger } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
  const giveUpAtMs = Date.now() + timeoutMs;
  const addresses = address.split(",").map((part) => part.trim()).filter((part) => part !== "");
  const client = connect({ addresses, timeoutMs: Math.min(timeoutMs, 10_000) });
  try {
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new Error(`joining the cluster at ${address} was cancelled`);
      logger.info({ join: address, id: self.id, address: self.address, attempt }, "asking the cluster to add this node");
      try {
        const members = await client.addMember(self.id, self.address);
        logger.info({ members: members.map((member) => member.id) }, "joined the cluster as a learner; the leader promotes it to voter once caught up");
        return members;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (!(isRetryable(error) || isOutcomeUnknown(error) || isFailedPrecondition(error))) {
          throw new Error(`the cluster at ${address} refused to add node ${self.id} at ${self.address}: ${message}`);
        }
        const delayMs = backoffDelayMs(attempt, JOIN_BACKOFF_INITIAL_MS, JOIN_BACKOFF_MAX_MS);
        if (Date.now() + delayMs > giveUpAtMs) {
          throw new Error(`could not join the cluster at ${address} within ${timeoutMs} ms (last error: ${message}): is it running and reachable?`);
        }
        logger.warn({ err: message, retryInMs: delayMs }, "the cluster could not add this node yet; retrying");
        await sleep(delayMs, signal);
      }
    }
  } finally {
    client.close();
  }
}

/** Listen hosts that bind every interface: no one can dial them, so they cannot be advertised. */
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The address this node gives the cluster to reach it at: `advertise` if set, else the listen address,
 * with a wildcard host (0.0.0.0, ::) replaced by the machine's host name. Throws a message naming the flag.
 */
export function advertisedAddress(listen: string, advertise: string | undefined, hostname: () => string): string {
  if (advertise !== undefined) {
    const problem = addressProblem(advertise);
    if (problem) throw new Error(`--advertise: ${problem}`);
    return advertise;
  }
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  if (!WILDCARD_HOSTS.has(host)) return listen;
  const address = `${hostname()}:${listen.slice(colon + 1)}`;
  if (addressProblem(address)) throw new Error(`cannot advertise ${address} (from the host name): set --advertise host:port`);
  return address;
}
