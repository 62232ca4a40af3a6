import type { NodeId } from "./types.js";

/** Everything that tunes one consensus core. Time is counted in ticks; the driver decides how long a tick is. */
export interface RaftConfig {
  readonly id: NodeId;
  /** A follower that hears no leader for this many ticks (randomized up to twice as many) campaigns. */
  readonly electionTimeoutTicks: number;
  /** A leader sends heartbeats every this many ticks; must be well below electionTimeoutTicks. */
  readonly heartbeatIntervalTicks: number;
  /** Bounds one Append message. At least one entry is always sent, whatever its size. */
  readonly maxEntriesPerAppend: number;
  readonly maxBytesPerAppend: number;
  /** Appends in flight to one follower in the replicate state (pipelining window). */
  readonly maxInflightAppends: number;
  /** Bounds the committed entries handed out in one Ready. */
  readonly maxEntriesPerApply: number;
  /**
   * Bounds their bytes too (at least one entry is handed out): a driver applies a Ready's entries in one
   * synchronous stretch, so this bounds how long one Ready keeps it from ticking and answering peers.
   */
  readonly maxBytesPerApply: number;
  /** Bounds the entries a leader accepts per propose call and the unpersisted tail it lets build up. */
  readonly maxUncommittedEntries: number;
  /** Probe with Pre-Vote before raising the term (Raft thesis §9.6). */
  readonly preVote: boolean;
  /** A leader that has not heard from a majority for an election timeout steps down (thesis §6.2). */
  readonly checkQuorum: boolean;
  /** Uniform in [0, 1): the only source of randomness, seeded in the simulator. */
  readonly random: () => number;
  /** Receives one human-readable line per notable event (role changes, elections, transfers), without the node id. */
  readonly trace?: (line: string) => void;
}

/** Defaults sized for a tick of about 50 ms: elections after 0.5–1 s of silence, heartbeats every 50 ms. */
export function defaultRaftConfig(id: NodeId, random: () => number): RaftConfig {
  return {
    id,
    electionTimeoutTicks: 10,
    heartbeatIntervalTicks: 1,
    maxEntriesPerAppend: 4096,
    maxBytesPerAppend: 4 * 1024 * 1024,
    maxInflightAppends: 64,
    maxEntriesPerApply: 4096,
    // About 1,000 queue messages of 100 bytes: tens of milliseconds of apply work, well inside a tick.
    maxBytesPerApply: 128 * 1024,
    maxUncommittedEntries: 100_000,
    preVote: true,
    checkQuorum: true,
    random,
  };
}

/** Rejects a configuration the core cannot run safely, naming the field and the fix. */
export function validateRaftConfig(config: RaftConfig): void {
  const fail = (what: string): never => {
    throw new Error(`invalid raft config for node "${config.id}": ${what}`);
  };
  if (config.id === "") fail("the node id must not be empty");
  if (!(config.heartbeatIntervalTicks >= 1)) fail("heartbeatIntervalTicks must be at least 1");
  if (!(config.electionTimeoutTicks > config.heartbeatIntervalTicks)) {
    fail("electionTimeoutTicks must exceed heartbeatIntervalTicks");
  }
  for (const key of [
    "maxEntriesPerAppend",
    "maxBytesPerAppend",
    "maxInflightAppends",
    "maxEntriesPerApply",
    "maxBytesPerApply",
    "maxUncommittedEntries",
  ] as const) {
    if (!(Number.isInteger(config[key]) && config[key] >= 1)) fail(`${key} must be a positive integer`);
  }
}
