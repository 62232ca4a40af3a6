import { hostname } from "node:os";
import { Command, Option } from "commander";
import { pino } from "pino";
import { DEFAULT_COMPACTION } from "../node/raft-node.js";
import { DEFAULT_PEER_HOST_TEMPLATE, resolveNodeIdentity } from "../server/discovery.js";
import { advertisedAddress } from "../server/join.js";
import type { NodeIdentity } from "../server/discovery.js";
import { RaftqServer } from "../server/raftq-server.js";
import { addressProblem, nodeIdProblem, parsePeers } from "../server/peers.js";
import { missingAllocatorSettings } from "./allocator-env.js";

interface ServeFlags {
  id?: string;
  listen: string;
  peers?: string;
  statefulsetReplicas?: string;
  peerService?: string;
  namespace?: string;
  hostname?: string;
  peerHostTemplate: string;
  dataDir: string;
  logLevel: string;
  autoCreate: boolean;
  tickMs: string;
  electionTicks: string;
  snapshotEntries: string;
  snapshotBytes: string;
  retainEntries: string;
  retainBytes: string;
  dial?: string;
  join?: string;
  advertise?: string;
  unsafeAckBeforeCommit?: boolean;
}

/** Parses a positive integer flag, or exits with a message naming the flag. */
function positiveInt(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`${flag} must be a positive integer, got "${value}"`);
  return parsed;
}

/** Parses a non-negative integer flag, or exits with a message naming the flag. */
function nonNegativeInt(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`${flag} must be a non-negative integer, got "${value}"`);
  return parsed;
}

/** Who a node started with --join is: its --id, as its only known peer itself at its advertised address, and the --join addresses. */
function joiningIdentity(flags: ServeFlags, join: string): NodeIdentity {
  if (flags.id === undefined) throw new Error("--join needs --id (RAFTQ_ID): the id the new node is to have in the cluster");
  if (flags.peers !== undefined) throw new Error("--join and --peers exclude each other: a joining node learns the members from the cluster");
  const problem = nodeIdProblem(flags.id);
  if (problem) throw new Error(problem);
  const addresses = join.split(",").map((address) => address.trim());
  for (const address of addresses) {
    const joinProblem = addressProblem(address);
    if (joinProblem) throw new Error(`--join: ${joinProblem}`);
  }
  const advertise = advertisedAddress(flags.listen, flags.advertise, () => flags.hostname ?? hostname());
  return { id: flags.id, peers: new Map([[flags.id, advertise]]), join: addresses };
}

/** `raftq serve`: runs one node in the foreground until SIGTERM or SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run one raftq node in the foreground (stops cleanly on SIGTERM/SIGINT)")
    .addOption(new Option("--id <id>", "this node's id, one of the ids in --peers (default: discovered, see below)").env("RAFTQ_ID"))
    .addOption(new Option("--listen <host:port>", "address to bind, e.g. 0.0.0.0:7001").env("RAFTQ_LISTEN").makeOptionMandatory())
    .addOption(
      new Option("--peers <list>", "every node as id=host:port, comma-separated: the addresses nodes and clients dial (default: discovered)")
        .env("RAFTQ_PEERS"),
    )
    .addOption(new Option("--data-dir <dir>", "where this node keeps its log and state").env("RAFTQ_DATA_DIR").makeOptionMandatory())
    .addOption(new Option("--log-level <level>", "fatal, error, warn, info, debug or trace").env("RAFTQ_LOG_LEVEL").default("info"))
    .addOption(new Option("--no-auto-create", "refuse enqueues to unknown queues instead of creating them").env("RAFTQ_NO_AUTO_CREATE"))
    .addOption(new Option("--tick-ms <ms>", "length of one Raft tick (heartbeat interval)").env("RAFTQ_TICK_MS").default("50"))
    .addOption(
      new Option("--election-ticks <n>", "ticks without a leader before a follower campaigns (randomized up to 2x)")
        .env("RAFTQ_ELECTION_TICKS")
        .default("10"),
    )
    .addOption(
      new Option("--snapshot-entries <n>", "take a snapshot (delete the log the state on disk covers) after this many applied entries")
        .env("RAFTQ_SNAPSHOT_ENTRIES")
        .default(String(DEFAULT_COMPACTION.everyEntries)),
    )
    .addOption(
      new Option("--snapshot-bytes <n>", "...or after this many bytes of applied entries, whichever comes first")
        .env("RAFTQ_SNAPSHOT_BYTES")
        .default(String(DEFAULT_COMPACTION.everyBytes)),
    )
    .addOption(
      new Option("--retain-entries <n>", "log entries kept behind each snapshot, so a slightly lagging follower catches up from the log")
        .env("RAFTQ_RETAIN_ENTRIES")
        .default(String(DEFAULT_COMPACTION.retainEntries)),
    )
    .addOption(
      new Option("--retain-bytes <n>", "...and at most this many bytes of them")
        .env("RAFTQ_RETAIN_BYTES")
        .default(String(DEFAULT_COMPACTION.retainBytes)),
    )
    .addOption(
      new Option("--join <address>", "join a running cluster through any of its nodes (host:port, comma-separated for several) instead of --peers")
        .env("RAFTQ_JOIN"),
    )
    .addOption(
      new Option(
        "--advertise <host:port>",
        "with --join (or as a discovered joining pod): the address the cluster reaches this node at (default: --listen with 0.0.0.0 as the host name; a pod's from --peer-host-template)",
      )
        .env("RAFTQ_ADVERTISE"),
    )
    .addOption(
      new Option("--dial <list>", "id=host:port overrides for how this node reaches its peers (e.g. through a proxy); default: --peers")
        .env("RAFTQ_DIAL"),
    )
    .addOption(
      new Option("--statefulset-replicas <n>", "discover --id and --peers as pod <set>-<ordinal> of a StatefulSet founded by n pods (higher ordinals join)")
        .env("RAFTQ_STATEFULSET_REPLICAS"),
    )
    .addOption(new Option("--peer-service <name>", "discovery: the StatefulSet's headless Service (its serviceName)").env("RAFTQ_PEER_SERVICE"))
    .addOption(new Option("--namespace <ns>", "discovery: the pod's namespace (set it from the downward API)").env("RAFTQ_NAMESPACE"))
    .addOption(new Option("--hostname <name>", "discovery: this pod's name, <set>-<ordinal> (default: the host name)").env("HOSTNAME"))
    .addOption(
      new Option("--peer-host-template <template>", "discovery: each peer's host, from {pod}, {ordinal}, {service}, {namespace}")
        .env("RAFTQ_PEER_HOST_TEMPLATE")
        .default(DEFAULT_PEER_HOST_TEMPLATE),
    )
    .addOption(
      new Option("--unsafe-ack-before-commit", "DELIBERATE BUG for testing the chaos checker: answer enqueues before they commit (loses data)"),
    )
    .addHelpText(
      "after",
      "\nStatefulSet discovery: without --id and --peers, a pod named <set>-<ordinal> (e.g. raftq-1) with\n" +
        "--statefulset-replicas 3 --peer-service raftq-peers --namespace prod and --listen 0.0.0.0:7000 runs as\n" +
        "--id raftq-1 --peers raftq-0=raftq-0.raftq-peers.prod.svc:7000,raftq-1=…,raftq-2=…\n" +
        "(--peer-host-template changes the host part, e.g. \"{pod}.{service}.{namespace}.svc.example.org\").\n" +
        "A pod beyond the founders (raftq-3 with --statefulset-replicas 3, after `kubectl scale`) joins instead,\n" +
        "as --id raftq-3 --advertise raftq-3.raftq-peers.prod.svc:7000 --join raftq-0.raftq-peers.prod.svc:7000,…\n" +
        "An explicit --id, --peers or --join wins over the discovered one. See docs/kubernetes.md.\n" +
        "\nJoining: raftq serve --id n4 --listen 0.0.0.0:7004 --advertise host4:7004 --data-dir d4 --join host1:7001\n" +
        "starts n4 with an empty data directory and asks the cluster to add it (as a learner, promoted to voter\n" +
        "once caught up). On a restart with data, --join changes nothing: the node already knows its cluster.",
    )
    .action(async (flags: ServeFlags) => {
      const problem = addressProblem(flags.listen);
      if (problem) throw new Error(problem);
      const identity = flags.join === undefined ? resolveNodeIdentity(flags, () => flags.hostname ?? hostname()) : joiningIdentity(flags, flags.join);
      const { id, peers } = identity;
      const logger = pino({ level: flags.logLevel, base: { node: id } });
      const missing = missingAllocatorSettings();
      if (missing.length > 0) {
        logger.warn({ missing }, "malloc settings are not in the environment: resident memory will be higher (start nodes with bin/raftq, which sets them)");
      }
      const server = await RaftqServer.start({
        id,
        listen: flags.listen,
        peers,
        ...(identity.join === undefined ? {} : { join: identity.join.join(",") }),
        ...(flags.dial ? { dialAddresses: parsePeers(flags.dial, "--dial") } : {}),
        unsafeAckBeforeCommit: flags.unsafeAckBeforeCommit === true,
        dataDir: flags.dataDir,
        autoCreateQueues: flags.autoCreate,
        tickMs: positiveInt("--tick-ms", flags.tickMs),
        electionTimeoutTicks: positiveInt("--election-ticks", flags.electionTicks),
        compaction: {
          everyEntries: positiveInt("--snapshot-entries", flags.snapshotEntries),
          everyBytes: positiveInt("--snapshot-bytes", flags.snapshotBytes),
          retainEntries: nonNegativeInt("--retain-entries", flags.retainEntries),
          retainBytes: nonNegativeInt("--retain-bytes", flags.retainBytes),
        },
        logger,
      });
      const stop = (signal: string): void => {
        logger.info({ signal }, "stopping");
        server.shutdown().then(
          () => process.exit(0),
          (error: unknown) => {
            logger.fatal({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
}
