/**
 * A call that reaches a node while no leader is known (an election is under way) waits for one, up to an
 * election timeout, instead of failing at once: the caller is then served as soon as the new leader is
 * there, rather than after a retry and its backoff. With no leader by then it fails with UNAVAILABLE as
 * before (no quorum, say).
 */
import type { NodeId, Role } from "../raft/types.js";

/** What the wait needs of the Raft node (RaftNode has it). */
export interface LeaderWatch {
  isLeader(): boolean;
  leaderId(): NodeId;
  electionTimeoutMaxMs(): number;
  onLeadershipChange(listener: (leadership: { readonly role: Role; readonly leader: NodeId }) => void): () => void;
}

/**
 * Resolves once `node` leads or knows a leader, at `answerByMs` (the caller's deadline) or one election
 * timeout from now, whichever comes first, or when `signal` aborts. At once when a leader is known.
 */
export function waitForLeader(node: LeaderWatch, answerByMs: number, signal: AbortSignal): Promise<void> {
  if (node.isLeader() || node.leaderId() !== "" || signal.aborted) return Promise.resolve();
  const untilMs = Math.min(answerByMs, Date.now() + node.electionTimeoutMaxMs());
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      stopWatching();
      signal.removeEventListener("abort", done);
      resolve();
    };
    const stopWatching = node.onLeadershipChange((leadership) => {
      if (leadership.leader !== "") done();
    });
    const timer = setTimeout(done, Math.max(0, untilMs - Date.now()));
    signal.addEventListener("abort", done, { once: true });
  });
}
