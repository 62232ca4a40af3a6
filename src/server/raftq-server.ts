import { setMaxListeners } from "node:events";
import { mkdir } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { cycleTrace } from "../node/cycle-trace.js";
import { DEFAULT_COMPACTION, RaftNode, type CompactionPolicy } from "../node/raft-node.js";
import { FLOW_CONTROL_WINDOW_BYTES, widenHttp2ServerWindows } from "../protocol/flow-control.js";
import { defaultRaftConfig } from "../raft/config.js";
import { votersOf } from "../raft/membership.js";
import type { Membership, NodeId } from "../raft/types.js";
import { LevelRaftStorage, openRootLevel, type RootLevel } from "../storage/level-raft-storage.js";
import { QueueStore } from "../storage/queue-store.js";
import { GrpcPeerTransport } from "../transport/peer-transport.js";
import { RaftInbound } from "../transport/raft-inbound.js";
import { MAX_PEER_MESSAGE_BYTES, RAFT_SERVICE } from "../transport/raft-service.js";
import { joinCluster } from "./join.js";
import { clusterServiceHandlers, handOverLeadership } from "./cluster-service.js";
import { CLUSTER_SERVICE, LeaderForwarder, QUEUE_SERVICE } from "./leader-forwarder.js";
import type { PeerAddresses } from "./peers.js";
import { QueueLeader, type QueueApplyResult } from "./queue-leader.js";
import { queueServiceHandlers } from "./queue-service.js";
import { QueueWaiter } from "./queue-waiter.js";

/** Everything `raftq serve` configures. */
export interface ServerOptions {
  readonly id: NodeId;
  /** host:port to bind, e.g. 0.0.0.0:7001. */
  readonly listen: string;
  readonly peers: PeerAddresses;
  /**
   * Where this node connects to reach each peer, for Raft traffic and forwarded calls; defaults to
   * `peers`. The chaos harness points these at fault-injecting proxies, one per directed link.
   */
  readonly dialAddresses?: PeerAddresses;
  readonly dataDir: string;
  readonly autoCreateQueues: boolean;
  readonly tickMs: number;
  readonly electionTimeoutTicks: number;
  readonly logger: Logger;
  /**
   * A deliberate bug, for proving that the chaos checker catches lost writes: Enqueue answers as soon
   * as the entry is proposed, before it commits. Never use it for anything else.
   */
  readonly unsafeAckBeforeCommit?: boolean;
  /**
   * Join a running cluster through this address (or comma-separated addresses) instead of founding one
   * from `peers`: with an empty data directory the node starts without members and asks the cluster to
   * add it. Ignored once the node has data.
   */
  readonly join?: string;
  /** When to take snapshots (delete the log the state machine on disk covers). */
  readonly compaction?: CompactionPolicy;
}

/** How long a stopping leader waits for a follower to take over before it just stops. */
const HANDOVER_TIMEOUT_MS = 3000;
/** How long in-flight calls get to finish at shutdown before they are cancelled. */
const DRAIN_TIMEOUT_MS = 5000;

/** The services every health check can ask about: "" is the whole server. */
const HEALTH_SERVICES = ["", "raftq.v1.Queue", "raftq.v1.Cluster"];

/** One raftq node: Raft over LevelDB and gRPC, the queue state machine, and the public services. */
export class RaftqServer {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly options: ServerOptions,
    readonly node: RaftNode<QueueApplyResult>,
    private readonly grpcServer: grpc.Server,
    private readonly raftInbound: RaftInbound,
    private readonly storage: LevelRaftStorage,
    private readonly stateMachine: QueueStore,
    private readonly root: RootLevel,
    private readonly forwarder: LeaderForwarder,
    private readonly shutdownController: AbortController,
    readonly port: number,
  ) {}

  /** Opens the data directory, replays the log, binds the port and joins the cluster. */
  static async start(options: ServerOptions): Promise<RaftqServer> {
    const { id, peers, logger } = options;
    if (!peers.has(id)) throw new Error(`--peers must include this node's own id "${id}"`);
    await mkdir(options.dataDir, { recursive: true });
    const root = await openRootLevel(options.dataDir);
    const storage = await LevelRaftStorage.attach(root);
    const stateMachine = await QueueStore.open(root, (error) =>
      logger.warn({ err: error }, "deleting the records of purged messages or deleted queues failed; the next start retries"),
    );
    const config = {
      ...defaultRaftConfig(id, Math.random),
      electionTimeoutTicks: options.electionTimeoutTicks,
      trace: (line: string) => logger.info(line),
    };
    // A founder's first log entry names every --peers node a voter; a joining node starts with none.
    const founders: Membership | null = options.join
      ? null
      : { members: [...peers].map(([memberId, address]) => ({ id: memberId, address, voter: true })) };
    cycleTrace?.rename(id);
    const node = await RaftNode.open<QueueApplyResult>({
      config,
      storage,
      stateMachine,
      applied: stateMachine.appliedState(),
      founders,
      compaction: options.compaction ?? DEFAULT_COMPACTION,
      logger,
      tickMs: options.tickMs,
    });
    const waiter = new QueueWaiter(stateMachine);
    node.onApplied(() => waiter.wakeAll());
    const dialOverrides = options.dialAddresses ?? new Map<NodeId, string>();
    const forwarder = new LeaderForwarder(node as RaftNode<unknown>, peers, dialOverrides);
    const leader = new QueueLeader(node, stateMachine, waiter, options.autoCreateQueues, logger, options.unsafeAckBeforeCommit);
    if (options.unsafeAckBeforeCommit) logger.warn("UNSAFE: --unsafe-ack-before-commit is set: acknowledged enqueues can be lost");
    const shutdownController = new AbortController();
    // Every call in flight listens for shutdown; there is no meaningful listener limit here.
    setMaxListeners(0, shutdownController.signal);

    // Wide HTTP/2 windows: a batch of calls or a follower's Append need not wait for WINDOW_UPDATEs.
    widenHttp2ServerWindows();
    const grpcServer = new grpc.Server({
      "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.keepalive_permit_without_calls": 1,
      // What grpc-js servers will read once they honour it (see widenHttp2ServerWindows).
      "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW_BYTES,
    });
    const snapshots = node.snapshotStore();
    const raftInbound = new RaftInbound({ self: id, deliver: (message) => node.receive(message), startRestore: () => snapshots.startRestore(), logger });
    grpcServer.addService(RAFT_SERVICE, raftInbound.handlers());
    grpcServer.addService(QUEUE_SERVICE, queueServiceHandlers(leader, forwarder, shutdownController.signal));
    grpcServer.addService(CLUSTER_SERVICE, clusterServiceHandlers(node as RaftNode<unknown>, forwarder, shutdownController.signal));
    const health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((name) => [name, "NOT_SERVING"])));
    health.addToServer(grpcServer);
    node.onLeadershipChange((leadership) => {
      waiter.wakeAll();
      // Serving means: part of a cluster with a known leader (so writes can commit).
      const status = leadership.leader ? "SERVING" : "NOT_SERVING";
      for (const name of HEALTH_SERVICES) health.setStatus(name, status);
    });

    const port = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync(options.listen, grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(new Error(`cannot listen on ${options.listen}: ${error.message}`)) : resolve(boundPort),
      );
    });
    // Raft traffic goes to every other node at its address in the membership (or a dial override). Links
    // to removed members stay (idle links cost nothing): a leader removing itself still sends to us until
    // its removal commits, and must hear our answers.
    const known = new Map<NodeId, string>();
    const dialOf = (membership: Membership) => {
      for (const member of membership.members) if (member.id !== id) known.set(member.id, dialOverrides.get(member.id) ?? member.address);
      return new Map(known);
    };
    const transport = new GrpcPeerTransport({
      peers: dialOf(node.membership()),
      logger,
      onPeerDown: (peer) => node.peerUnreachable(peer),
      openSnapshot: () => snapshots.openSnapshot(),
      onSnapshotFailed: (peer) => node.snapshotDone(peer, false),
      onSnapshotSent: (peer) => node.snapshotDone(peer, true),
    });
    node.onMembershipChange((membership) => transport.setPeers(dialOf(membership)));
    node.start(transport);
    const server = new RaftqServer(options, node, grpcServer, raftInbound, storage, stateMachine, root, forwarder, shutdownController, port);
    if (options.join && node.membership().members.length === 0) server.join(options.join, (members) => transport.setPeers(dialOf(members)));
    logger.info({ id, listen: options.listen, port, peers: Object.fromEntries(peers), members: node.membership().members, dataDir: options.dataDir }, "raftq node started");
    return server;
  }

  /**
   * Asks the cluster at `address` to add this node; a refusal is fatal (the node cannot be useful). Until
   * the leader's first entries arrive the node knows no members: `connect` opens its links to the
   * members the cluster answered with, so it can answer the leader at all.
   */
  private join(address: string, connect: (membership: Membership) => void): void {
    const { id, peers, logger } = this.options;
    joinCluster(address, { id, address: peers.get(id)! }, this.shutdownController.signal, { logger }).then(
      (members) => {
        if (this.node.membership().members.length === 0) connect({ members });
      },
      (error: unknown) => {
        if (this.shutdownController.signal.aborted) return;
        logger.fatal({ err: error }, "could not join the cluster; stopping");
        process.exitCode = 1;
        void this.shutdown();
      },
    );
  }

  /**
   * Stops gracefully: a leader first hands leadership to a caught-up follower, in-flight calls get
   * time to finish, streams and long polls end, then the last batch is flushed and the data closed.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const { logger } = this.options;
    const otherVoters = votersOf(this.node.membership()).filter((voter) => voter !== this.node.id);
    if (this.node.isLeader() && otherVoters.length > 0) {
      try {
        const next = await handOverLeadership(this.node as RaftNode<unknown>, undefined, Date.now() + HANDOVER_TIMEOUT_MS, false);
        logger.info({ leader: next || null }, "handed leadership over before stopping");
      } catch (error) {
        // An expected outcome when the whole cluster stops at once: the reason says it, a stack would not.
        logger.warn({ reason: error instanceof Error ? error.message : String(error) }, "could not hand leadership over; stopping anyway");
      }
    }
    this.shutdownController.abort();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve();
      }, DRAIN_TIMEOUT_MS);
      this.grpcServer.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
      // Peers keep their streams to us open forever; end them once no new call can arrive.
      this.raftInbound.closeAll();
    });
    this.forwarder.close();
    await this.node.stop();
    await this.storage.close();
    await this.stateMachine.close();
    await this.root.close();
    logger.info("raftq node stopped");
  }
}

