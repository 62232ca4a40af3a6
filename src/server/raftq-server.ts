import { setMaxListeners } from "node:events";
import { mkdir } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { RaftNode } from "../node/raft-node.js";
import { defaultRaftConfig } from "../raft/config.js";
import type { NodeId } from "../raft/types.js";
import { QueueStateMachine } from "../queue/state-machine.js";
import { LevelRaftStorage } from "../storage/level-raft-storage.js";
import { GrpcPeerTransport, MAX_PEER_MESSAGE_BYTES, RAFT_SERVICE, RaftInbound } from "../transport/peer-transport.js";
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
    private readonly forwarder: LeaderForwarder,
    private readonly shutdownController: AbortController,
    readonly port: number,
  ) {}

  /** Opens the data directory, replays the log, binds the port and joins the cluster. */
  static async start(options: ServerOptions): Promise<RaftqServer> {
    const { id, peers, logger } = options;
    if (!peers.has(id)) throw new Error(`--peers must include this node's own id "${id}"`);
    await mkdir(options.dataDir, { recursive: true });
    const storage = await LevelRaftStorage.open(options.dataDir);
    const stateMachine = new QueueStateMachine();
    const config = {
      ...defaultRaftConfig(id, [...peers.keys()], Math.random),
      electionTimeoutTicks: options.electionTimeoutTicks,
      trace: (line: string) => logger.info(line),
    };
    const node = await RaftNode.open<QueueApplyResult>({
      config,
      storage,
      stateMachine: { apply: (entry) => stateMachine.applyEncoded(entry.data) },
      logger,
      tickMs: options.tickMs,
    });
    const waiter = new QueueWaiter(stateMachine);
    node.onApplied(() => waiter.wakeAll());
    const dialAddresses = new Map([...peers].map(([peerId, address]) => [peerId, options.dialAddresses?.get(peerId) ?? address]));
    const forwarder = new LeaderForwarder(node as RaftNode<unknown>, peers, dialAddresses);
    const leader = new QueueLeader(node, stateMachine, waiter, options.autoCreateQueues, logger, options.unsafeAckBeforeCommit);
    if (options.unsafeAckBeforeCommit) logger.warn("UNSAFE: --unsafe-ack-before-commit is set: acknowledged enqueues can be lost");
    const shutdownController = new AbortController();
    // Every call in flight listens for shutdown; there is no meaningful listener limit here.
    setMaxListeners(0, shutdownController.signal);

    const grpcServer = new grpc.Server({
      "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.keepalive_permit_without_calls": 1,
    });
    const raftInbound = new RaftInbound((message) => node.receive(message), logger);
    grpcServer.addService(RAFT_SERVICE, raftInbound.handlers());
    grpcServer.addService(QUEUE_SERVICE, queueServiceHandlers(leader, forwarder, shutdownController.signal));
    grpcServer.addService(CLUSTER_SERVICE, clusterServiceHandlers(node as RaftNode<unknown>, peers, forwarder, shutdownController.signal));
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
    const otherPeers = new Map([...dialAddresses].filter(([peerId]) => peerId !== id));
    node.start(new GrpcPeerTransport(otherPeers, logger, (peer) => node.peerUnreachable(peer)));
    logger.info({ id, listen: options.listen, port, peers: Object.fromEntries(peers), dataDir: options.dataDir }, "raftq node started");
    return new RaftqServer(options, node, grpcServer, raftInbound, storage, forwarder, shutdownController, port);
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
    if (this.node.isLeader() && this.options.peers.size > 1) {
      try {
        const next = await handOverLeadership(this.node as RaftNode<unknown>, undefined, Date.now() + HANDOVER_TIMEOUT_MS);
        logger.info({ leader: next }, "handed leadership over before stopping");
      } catch (error) {
        logger.warn({ err: error }, "could not hand leadership over; stopping anyway");
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
    logger.info("raftq node stopped");
  }
}
