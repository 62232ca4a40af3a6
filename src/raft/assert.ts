/** An invariant of the consensus core was broken: a bug, never a user error. */
export class RaftInvariantError extends Error {
  readonly code = "RAFT_INVARIANT";
}

/** Asserts a core invariant; a failure here in the simulator is a bug found for free. */
export function assert(condition: boolean, what: string): asserts condition {
  if (!condition) throw new RaftInvariantError(`raft invariant violated: ${what}`);
}
