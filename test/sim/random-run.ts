/**
 * One randomized run from a seed. A fault phase interleaves client proposals (single entries and bursts)
 * and ReadIndex requests with crashes and restarts (the leader too), crashes between persisting and
 * sending, partitions (the leader isolated, one-way links), loss, duplication, reordering, leadership
 * transfers and forced elections. Then a heal phase: every node restarted, the network healed and
 * reliable; within a bound there must be a leader, a fresh proposal applied on every node, and every
 * acknowledged write applied on every node. The checker watches every step of both phases.
 */
import { Role, type NodeId } from "../../src/raft/types.js";
import { isSafetyViolation, type CheckerOptions } from "./checker.js";
import { MAX_SIM_NODES, SimCluster, type SimRaftConfig } from "./cluster.js";
import { Prng } from "../../src/chaos/prng.js";

export interface RandomRunOptions {
  readonly seed: number;
  /** Cluster size; 3 or 5, chosen by the seed, when absent. */
  readonly nodes?: number;
  /** Length of the fault phase. */
  readonly faultTicks?: number;
  /** TEST ONLY: run the broken send-before-persist driver (see SimNodeOptions). */
  readonly unsafeSendBeforePersist?: boolean;
  /** Receives every trace line as it happens (a replay). */
  readonly echo?: (line: string) => void;
  /** Checker switches; all checks by default. */
  readonly checker?: CheckerOptions;
}

/** What one passing run did, for the sweep summary. */
export interface RunStats {
  ticks: number;
  faults: number;
  elections: number;
  commits: number;
  proposals: number;
  acknowledged: number;
  /** ReadIndex requests answered, each checked for linearizability. */
  reads: number;
  messages: number;
  membershipChanges: number;
  compactions: number;
  snapshotsInstalled: number;
}

export interface RandomRunResult {
  readonly seed: number;
  readonly ok: true;
  readonly nodes: number;
  readonly profile: string;
  readonly stats: RunStats;
}

/** A failed run: the seed that replays it, the cause and the trace tail. */
export class RunFailure extends Error {
  readonly code = "RUN_FAILURE";

  constructor(
    readonly seed: number,
    readonly nodes: number,
    readonly profile: string,
    override readonly cause: unknown,
    readonly traceTail: readonly string[],
  ) {
    super(`seed ${seed} (${nodes} nodes, ${profile}) failed: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`);
    this.name = "RunFailure";
  }

  /** Whether the run broke a safety property (rather than liveness or a crash of the core). */
  get isSafetyViolation(): boolean {
    return isSafetyViolation(this.cause);
  }
}

/** The run made no progress after faults stopped. */
export class LivenessViolation extends Error {
  readonly code = "LIVENESS_VIOLATION";
  override readonly name = "LivenessViolation";
}

export const DEFAULT_FAULT_TICKS = 800;
/** After faults stop, a leader and a fresh commit on every node must come within this many election timeouts. */
export const LIVENESS_ELECTION_TIMEOUTS = 20;
/** Largest burst of entries proposed in one call. */
export const MAX_BURST_ENTRIES = 64;

/** The knobs a seed picks for its run. */
interface Profile {
  readonly nodes: number;
  readonly config: Partial<SimRaftConfig>;
  /** Scales every fault probability. */
  readonly chaos: number;
  readonly midReadyCrashRate: number;
  /**
   * 0: every Ready is written at once; above: writes take up to this many ticks while inputs go on (as
   * the real driver's awaited LevelDB save does). 8 is close to the election timeout: a very slow disk.
   */
  readonly maxPersistDelayTicks: number;
  /** Nodes beyond the founders that membership changes may add; 0 with membership changes off. */
  readonly spares: number;
  readonly membershipChanges: boolean;
  /** Chance per tick that some live node compacts its log (0: never, so no snapshots are sent). */
  readonly compactionRate: number;
  readonly description: string;
}

function chooseProfile(prng: Prng, options: RandomRunOptions): Profile {
  const nodes = options.nodes ?? prng.pick([3, 5]);
  const drawn = {
    preVote: prng.chance(0.8),
    checkQuorum: prng.chance(0.8),
    heartbeatIntervalTicks: prng.pick([1, 1, 2, 3]),
    maxEntriesPerAppend: prng.pick([1, 4, 4, 64]),
    maxInflightAppends: prng.pick([1, 4, 4, 16]),
    maxEntriesPerApply: prng.pick([4, 16, 256]),
    // Tiny byte limits and uncommitted-entry caps exercise size-bounded batches and "overloaded".
    maxBytesPerAppend: prng.pick([4 * 1024 * 1024, 4 * 1024 * 1024, 16]),
    maxUncommittedEntries: prng.pick([10_000, 10_000, 100]),
  };
  // The apply byte limit follows the append byte limit (no draw of its own, so every seed keeps its schedule).
  const config: Partial<SimRaftConfig> = { ...drawn, maxBytesPerApply: drawn.maxBytesPerAppend === 16 ? 16 : 4 * 1024 * 1024 };
  const chaos = prng.pick([0.5, 1, 1, 2]);
  const midReadyCrashRate = options.unsafeSendBeforePersist ? 0.01 : prng.pick([0, 0.001, 0.005]);
  const maxPersistDelayTicks = prng.pick([0, 0, 1, 3, 8]);
  // A removed node that never hears of its removal keeps campaigning; with neither Pre-Vote nor
  // CheckQuorum its higher terms depose every leader (Raft thesis §4.2.3, "disruptive servers"), so a
  // cluster that changes membership needs one of them (raftq runs with both). Seed 13380 showed it.
  const membershipChanges = (config.preVote || config.checkQuorum) === true && prng.chance(0.5);
  const spares = membershipChanges ? Math.min(prng.int(0, 2), MAX_SIM_NODES - nodes) : 0;
  const compactionRate = prng.pick([0, 0.02, 0.1]);
  const description =
    `preVote=${config.preVote} checkQuorum=${config.checkQuorum} hb=${config.heartbeatIntervalTicks} ` +
    `batch=${config.maxEntriesPerAppend}/${config.maxBytesPerAppend}B inflight=${config.maxInflightAppends} ` +
    `apply=${config.maxEntriesPerApply}/${config.maxBytesPerApply}B maxUncommitted=${config.maxUncommittedEntries} ` +
    `chaos=${chaos} midReadyCrash=${midReadyCrashRate} persistDelay=0..${maxPersistDelayTicks} ` +
    `membership=${membershipChanges ? `on spares=${spares}` : "off"} compaction=${compactionRate}`;
  return { nodes, config, chaos, midReadyCrashRate, maxPersistDelayTicks, spares, membershipChanges, compactionRate, description };
}

/** Runs one seed; returns its stats or throws RunFailure carrying the seed. */
export function randomRun(options: RandomRunOptions): RandomRunResult {
  const prng = new Prng(options.seed);
  const profile = chooseProfile(prng, options);
  const cluster = new SimCluster({
    nodes: profile.nodes,
    spares: profile.spares,
    // Its own stream, so network and timer randomness do not mirror the fault schedule's.
    seed: prng.int(0, 2 ** 31),
    config: profile.config,
    unsafeSendBeforePersist: options.unsafeSendBeforePersist ?? false,
    ...(options.checker ? { checker: options.checker } : {}),
    ...(options.echo ? { echo: options.echo, traceCapacity: 64 } : {}),
  });
  cluster.trace.add(0, `seed ${options.seed}: ${profile.nodes} nodes, ${profile.description}`);
  let faults = 0;
  try {
    cluster.midReadyCrashRate = profile.midReadyCrashRate;
    cluster.maxPersistDelayTicks = profile.maxPersistDelayTicks;
    const faultTicks = options.faultTicks ?? DEFAULT_FAULT_TICKS;
    const notices: ConnectionNotice[] = [];
    for (let t = 0; t < faultTicks; t++) {
      faults += injectFaults(cluster, prng, profile.chaos, notices);
      if (profile.membershipChanges) faults += changeMembership(cluster, prng, profile.chaos);
      if (prng.chance(profile.compactionRate) && cluster.liveIds().length > 0) {
        cluster.compact(prng.pick(cluster.liveIds()), prng.pick([0, 2, 10, 50]));
      }
      driveClients(cluster, prng);
      cluster.step();
    }
    healAndCheckLiveness(cluster, profile.config);
    cluster.checkAcknowledgedWrites(cluster.members());
    cluster.audit();
  } catch (error) {
    throw new RunFailure(options.seed, profile.nodes, profile.description, error, cluster.traceTail());
  }
  const midReady = cluster.allNodes().reduce((sum, node) => sum + node.stats.midReadyCrashes, 0);
  return {
    seed: options.seed,
    ok: true,
    nodes: profile.nodes,
    profile: profile.description,
    stats: {
      ticks: cluster.now,
      faults: faults + midReady,
      elections: cluster.checker.leaders().size,
      commits: cluster.checker.committedIndex(),
      proposals: cluster.ledger.proposed,
      acknowledged: cluster.ledger.acknowledged().length,
      reads: cluster.checker.readsServed,
      messages: cluster.network.stats.sent,
      membershipChanges: cluster.stats.membershipChanges,
      compactions: cluster.allNodes().reduce((sum, node) => sum + node.stats.compactions, 0),
      snapshotsInstalled: cluster.allNodes().reduce((sum, node) => sum + node.stats.snapshotsInstalled, 0),
    },
  };
}

/** A driver noticing, at `atTick`, that its connection to `peer` broke. */
interface ConnectionNotice {
  readonly atTick: number;
  readonly id: NodeId;
  readonly peer: NodeId;
}

/** Maybe injects faults this tick; returns how many. `notices` carries connection breaks still to be seen. */
function injectFaults(cluster: SimCluster, prng: Prng, chaos: number, notices: ConnectionNotice[]): number {
  let faults = 0;
  const ids = cluster.ids;
  const live = cluster.liveIds();
  const leader = cluster.leader();
  // Crashes: the leader often, and sometimes even a majority down at once.
  if (prng.chance(0.01 * chaos) && live.length > Math.floor(ids.length / 2)) {
    const victim = leader && prng.chance(0.4) ? leader : prng.pick(live);
    cluster.crash(victim, victim === leader ? "leader crash" : "crash");
    faults++;
    // Most followers' drivers notice the broken connection soon, long before an election timeout
    // (after the victim's last messages, already on the wire, have arrived).
    for (const id of cluster.liveIds()) {
      if (cluster.status(id).leader === victim && prng.chance(0.7)) notices.push({ atTick: cluster.now + prng.int(1, 4), id, peer: victim });
      // A leader's driver notices too, and drops a leadership transfer to the victim. (No random draw
      // here, so the seeds of earlier runs keep their histories up to the first such notice.)
      else if (cluster.status(id).role === Role.Leader) notices.push({ atTick: cluster.now + 2, id, peer: victim });
    }
  }
  for (const notice of notices.filter((n) => n.atTick <= cluster.now)) {
    if (cluster.node(notice.id).alive) cluster.peerUnreachable(notice.id, notice.peer);
  }
  notices.splice(0, notices.length, ...notices.filter((n) => n.atTick > cluster.now));
  // Now and then a single link to a live leader breaks (a reset connection): a false alarm.
  if (prng.chance(0.005 * chaos) && cluster.liveIds().length > 0) {
    const id = prng.pick(cluster.liveIds());
    const followed = cluster.status(id).leader;
    if (followed && followed !== id) cluster.peerUnreachable(id, followed);
    faults++;
  }
  for (const id of ids) {
    if (!cluster.node(id).alive && prng.chance(0.05)) cluster.restart(id);
  }
  if (ids.length === 1) return faults; // nothing to partition or transfer to
  if (prng.chance(0.008 * chaos)) {
    const shuffled = prng.shuffle(ids);
    const cut = prng.int(1, ids.length - 1);
    cluster.partition(shuffled.slice(0, cut), shuffled.slice(cut));
    faults++;
  }
  if (leader && prng.chance(0.004 * chaos)) {
    cluster.isolate(leader);
    faults++;
  }
  if (prng.chance(0.004 * chaos)) {
    const from = prng.pick(ids);
    cluster.blockLink(from, prng.pick(ids.filter((id) => id !== from)));
    faults++;
  }
  if (prng.chance(0.02)) cluster.heal();
  if (prng.chance(0.01 * chaos)) {
    cluster.setNetwork({
      lossRate: prng.pick([0, 0, 0.02, 0.1, 0.3]),
      dupRate: prng.pick([0, 0, 0.05, 0.2]),
      minLatencyTicks: 1,
      maxExtraDelayTicks: prng.pick([0, 0, 1, 3, 8]),
    });
    faults++;
  }
  if (leader && prng.chance(0.004)) {
    cluster.transferLeadership(prng.pick(ids.filter((id) => id !== leader)));
    faults++;
  }
  if (prng.chance(0.002)) {
    const follower = cluster.liveIds().filter((id) => cluster.status(id).role !== Role.Leader);
    if (follower.length > 0) cluster.campaign(prng.pick(follower));
    faults++;
  }
  // A campaign storm: every live non-leader starts an election in the same tick (split votes).
  if (prng.chance(0.001 * chaos)) {
    for (const id of cluster.liveIds()) if (cluster.status(id).role !== Role.Leader) cluster.campaign(id);
    faults++;
  }
  return faults;
}

/**
 * An operator at work: now and then the leader is asked to add a learner (a spare or a removed node, which
 * the leader promotes once it caught up) or to remove a member, the leader itself included. The core
 * refuses a change while another is pending and one that would leave no voter.
 */
function changeMembership(cluster: SimCluster, prng: Prng, chaos: number): number {
  const leader = cluster.leader();
  if (!leader || !prng.chance(0.01 * chaos)) return 0;
  const members = cluster.status(leader).membership.members.map((member) => member.id);
  const outsiders = cluster.ids.filter((id) => !members.includes(id));
  if (outsiders.length > 0 && (members.length <= 2 || prng.chance(0.5))) {
    const id = prng.pick(outsiders);
    cluster.changeMembership({ kind: "add-learner", id, address: `sim:${id}` });
  } else {
    cluster.changeMembership({ kind: "remove", id: prng.pick(members) });
  }
  return 1;
}

/** Client traffic: single proposals, bursts, and linearizable reads, to whoever is leader. */
function driveClients(cluster: SimCluster, prng: Prng): void {
  if (prng.chance(0.3)) cluster.propose(1);
  if (prng.chance(0.02)) cluster.propose(prng.int(2, MAX_BURST_ENTRIES));
  if (prng.chance(0.05)) cluster.readIndex();
}

/**
 * Faults stop; within the bound a leader must commit a fresh proposal that every node applies. The bound
 * is LIVENESS_ELECTION_TIMEOUTS election timeouts, plus the time to stream the longest log to a follower
 * at the profile's pipeline width (maxEntriesPerAppend × maxInflightAppends per round trip, a round trip
 * including the writes), since a node that slept through most of the run must catch up before it can
 * apply the fresh entry. Disk delays stay on: the cluster must make progress with a slow disk too.
 */
function healAndCheckLiveness(cluster: SimCluster, config: Partial<SimRaftConfig>): void {
  cluster.trace.add(cluster.now, "=== faults stop: heal, restart every node, reliable network ===");
  cluster.midReadyCrashRate = 0;
  // A slow disk is a fault too: writes as slow as an election timeout keep elections from settling.
  cluster.maxPersistDelayTicks = Math.min(cluster.maxPersistDelayTicks, 1);
  cluster.heal();
  cluster.setNetwork({ lossRate: 0, dupRate: 0, minLatencyTicks: 1, maxExtraDelayTicks: 0 });
  for (const id of cluster.ids) cluster.restart(id);
  const longestLog = Math.max(...cluster.allNodes().map((node) => node.raft().lastIndex()));
  const bytesPerEntry = 8; // payloads are `p<seq>`
  const entriesPerAppend = Math.min(config.maxEntriesPerAppend ?? 1, Math.max(1, Math.floor((config.maxBytesPerAppend ?? bytesPerEntry) / bytesPerEntry)));
  const entriesPerRoundTrip = entriesPerAppend * (config.maxInflightAppends ?? 1);
  // Latency one tick each way, plus a follower's write before it answers and the leader's own write.
  const roundTripTicks = 2 + 2 * cluster.maxPersistDelayTicks;
  const boundTicks = LIVENESS_ELECTION_TIMEOUTS * cluster.electionTimeoutTicks + Math.ceil(longestLog / entriesPerRoundTrip) * roundTripTicks;
  const start = cluster.now;
  let fresh: { index: number; payload: string; leader: NodeId } | null = null;
  while (cluster.now - start <= boundTicks) {
    const leader = cluster.leader();
    if (fresh && leader !== fresh.leader) fresh = null; // the proposal may be lost with its leader: ask again
    if (!fresh && leader) {
      const { result, payloads } = cluster.propose(1, leader);
      if (result.ok) fresh = { index: result.firstIndex, payload: payloads[0]!, leader };
    }
    const members = cluster.members().map((id) => cluster.node(id));
    if (fresh && cluster.checker.appliedAt(fresh.index)?.endsWith(`:${fresh.payload}`) && members.every((node) => (node.status()?.appliedIndex ?? 0) >= fresh!.index)) {
      cluster.trace.add(cluster.now, `liveness: ${fresh.payload} applied on every member ${cluster.now - start} ticks after faults stopped`);
      return;
    }
    cluster.step();
  }
  throw new LivenessViolation(
    `no fresh proposal applied on every node within ${boundTicks} ticks after faults stopped (longest log ${longestLog}) ` +
      `(leader ${cluster.leader() ?? "none"}, proposal ${fresh ? `${fresh.payload} at ${fresh.index}` : "not accepted"})\n${cluster.describe()}`,
  );
}
