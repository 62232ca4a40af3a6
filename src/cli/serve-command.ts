import { Command, Option } from "commander";
import { pino } from "pino";
import { RaftqServer } from "../server/raftq-server.js";
import { addressProblem, nodeIdProblem, parsePeers } from "../server/peers.js";

interface ServeFlags {
  id: string;
  listen: string;
  peers: string;
  dataDir: string;
  logLevel: string;
  autoCreate: boolean;
  tickMs: string;
  electionTicks: string;
  dial?: string;
  unsafeAckBeforeCommit?: boolean;
}

/** Parses a positive integer flag, or exits with a message naming the flag. */
function positiveInt(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`${flag} must be a positive integer, got "${value}"`);
  return parsed;
}

/** `raftq serve`: runs one node in the foreground until SIGTERM or SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run one raftq node in the foreground (stops cleanly on SIGTERM/SIGINT)")
    .addOption(new Option("--id <id>", "this node's id, one of the ids in --peers").env("RAFTQ_ID").makeOptionMandatory())
    .addOption(new Option("--listen <host:port>", "address to bind, e.g. 0.0.0.0:7001").env("RAFTQ_LISTEN").makeOptionMandatory())
    .addOption(
      new Option("--peers <list>", "every node as id=host:port, comma-separated: the addresses nodes and clients dial")
        .env("RAFTQ_PEERS")
        .makeOptionMandatory(),
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
      new Option("--dial <list>", "id=host:port overrides for how this node reaches its peers (e.g. through a proxy); default: --peers")
        .env("RAFTQ_DIAL"),
    )
    .addOption(
      new Option("--unsafe-ack-before-commit", "DELIBERATE BUG for testing the chaos checker: answer enqueues before they commit (loses data)"),
    )
    .action(async (flags: ServeFlags) => {
      const problem = nodeIdProblem(flags.id) ?? addressProblem(flags.listen);
      if (problem) throw new Error(problem);
      const logger = pino({ level: flags.logLevel, base: { node: flags.id } });
      const server = await RaftqServer.start({
        id: flags.id,
        listen: flags.listen,
        peers: parsePeers(flags.peers),
        ...(flags.dial ? { dialAddresses: parsePeers(flags.dial, "--dial") } : {}),
        unsafeAckBeforeCommit: flags.unsafeAckBeforeCommit === true,
        dataDir: flags.dataDir,
        autoCreateQueues: flags.autoCreate,
        tickMs: positiveInt("--tick-ms", flags.tickMs),
        electionTimeoutTicks: positiveInt("--election-ticks", flags.electionTicks),
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
