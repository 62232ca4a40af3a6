import type { NodeId } from "../raft/types.js";

/** Stable codes so callers branch on a property, never on message text. */
export enum NodeErrorCode {
  NotLeader = "NOT_LEADER",
  LeadershipLost = "LEADERSHIP_LOST",
  Overloaded = "OVERLOADED",
  Stopped = "STOPPED",
  Timeout = "TIMEOUT",
  /** A membership change is still being committed or applied: one change at a time. */
  MembershipChangePending = "MEMBERSHIP_CHANGE_PENDING",
  /** The change does not fit the current membership (unknown or duplicate id, last voter...). */
  InvalidMembershipChange = "INVALID_MEMBERSHIP_CHANGE",
}

/** A failure of the replication layer, not of the request itself. */
export class NodeError extends Error {
  constructor(
    readonly code: NodeErrorCode,
    message: string,
    /** The leader this node knows of, "" when none: where the caller should go instead. */
    readonly leader: NodeId = "",
  ) {
    super(message);
    this.name = "NodeError";
  }
}

export function isNodeError(error: unknown, code?: NodeErrorCode): error is NodeError {
  return error instanceof NodeError && (code === undefined || error.code === code);
}

export function notLeader(self: NodeId, leader: NodeId): NodeError {
  const where = leader ? `the leader is ${leader}` : "no leader is known right now: retry shortly";
  return new NodeError(NodeErrorCode.NotLeader, `node ${self} is not the leader; ${where}`, leader);
}

export function leadershipLost(self: NodeId): NodeError {
  return new NodeError(
    NodeErrorCode.LeadershipLost,
    `node ${self} lost leadership while the request was in flight; its outcome is unknown: retry (with the same idempotency key for enqueues)`,
  );
}
