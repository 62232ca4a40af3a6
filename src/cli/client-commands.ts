/** The client commands of `raftq`: each connects to --addr, does one thing, prints it, and closes. */
import { Command, InvalidArgumentError, Option } from "commander";
import { connect, isNotFound, type MessageRefs, type QueueSettings, type QueueStats, type RaftqClient } from "../client/index.js";
import {
  deliveryJson,
  nodeRows,
  type NodeRow,
  renderDeliveries,
  renderKeyValues,
  renderNodeRows,
  renderQueueList,
  renderQueueStats,
} from "./format.js";
import {
  MAX_DEDUP_WINDOW_MS,
  MAX_DELAY_MS,
  MAX_LEASE_MESSAGES,
  MAX_MAX_DELIVERIES,
  MAX_MAX_LENGTH,
  MAX_MAX_MESSAGE_BYTES,
  MAX_VISIBILITY_TIMEOUT_MS,
  MAX_WAIT_MS,
} from "../queue/limits.js";
import { CliError, type CliOutput } from "./output.js";

/** Where the client commands look for the cluster unless --addr or RAFTQ_ADDR says otherwise. */
export const DEFAULT_ADDRESSES = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/** How many queues `raftq queues` asks for stats at once. */
const STATS_CONCURRENCY = 16;

/** Flags every client command takes. */
export interface ConnectionFlags {
  addr: string;
  json?: boolean;
  timeoutMs?: number;
}

/** Adds the client commands to `program`. */
export function registerClientCommands(program: Command, output: CliOutput): void {
  const print = (text: string): void => output.stdout(text);
  const printJson = (value: unknown): void => output.stdout(`${JSON.stringify(value)}\n`);

  clientCommand(program, "enqueue", "append one message to a queue (created with defaults if missing)")
    .argument("<queue>", "the queue's name")
    .argument("<body>", "the message body as text; '-' reads it from stdin")
    .option("--key <key>", "idempotency key: a repeat within the queue's dedup window enqueues nothing (default: a random UUID)")
    .option("--delay-ms <ms>", `keep the message invisible for this long (0..${MAX_DELAY_MS})`, integer(0, MAX_DELAY_MS))
    .option("--header <key=value>", "a header delivered with the message; repeat for more", collectHeader)
    .action(
      withClient<[string, string], ConnectionFlags & { key?: string; delayMs?: number; header?: Record<string, string> }>(
        async (client, [queue, body], flags) => {
          const result = await client.enqueue(queue, body === "-" ? await readStdin() : body, {
            ...(flags.key === undefined ? {} : { idempotencyKey: flags.key }),
            delayMs: flags.delayMs ?? 0,
            headers: flags.header ?? {},
          });
          if (flags.json) printJson(result);
          else print(result.duplicate ? `duplicate: already enqueued as id ${result.id}\n` : `enqueued id ${result.id}\n`);
        },
      ),
    );

  clientCommand(program, "dequeue", "lease messages from a queue and print them (id, delivery count, receipt, body)")
    .argument("<queue>", "the queue's name")
    .option("--max <n>", `most messages to lease (1..${MAX_LEASE_MESSAGES})`, integer(1, MAX_LEASE_MESSAGES), 1)
    .option("--visibility-ms <ms>", `lease length (1..${MAX_VISIBILITY_TIMEOUT_MS}; default: the queue's visibility timeout)`, integer(1, MAX_VISIBILITY_TIMEOUT_MS))
    .option("--wait-ms <ms>", `wait this long for a message when none is ready (0..${MAX_WAIT_MS})`, integer(0, MAX_WAIT_MS), 0)
    .option("--ack", "ack the messages right after printing them")
    .action(
      withClient<[string], ConnectionFlags & { max: number; visibilityMs?: number; waitMs: number; ack?: boolean }>(
        async (client, [queue], flags) => {
          const deliveries = await client.dequeue(queue, {
            maxMessages: flags.max,
            visibilityTimeoutMs: flags.visibilityMs ?? 0,
            waitMs: flags.waitMs,
          });
          if (!flags.json) print(deliveries.length === 0 ? `no messages ready in "${queue}"\n` : renderDeliveries(deliveries));
          const refused = flags.ack ? await ackAll(client, queue, deliveries.map((delivery) => delivery.receipt)) : [];
          if (flags.json) {
            printJson(deliveries.map((delivery) => ({ ...deliveryJson(delivery), ...(flags.ack ? { acked: !refused.includes(delivery.receipt) } : {}) })));
          } else if (flags.ack && deliveries.length > 0) {
            print(`acked ${deliveries.length - refused.length} of ${deliveries.length}\n`);
          }
          if (refused.length > 0) throw refusedError("ack", refused);
        },
      ),
    );

  clientCommand(program, "ack", "delete delivered messages for good, by id or by receipt")
    .argument("<queue>", "the queue's name")
    .argument("<ref...>", "message ids (digits: acked unconditionally) or receipts (acked only if not redelivered since)")
    .action(
      withClient<[string, string[]], ConnectionFlags>(async (client, [queue, refs], flags) => {
        const result = await client.ack(queue, parseRefs(refs));
        if (flags.json) printJson(result);
        else print(`acked ${result.acked}\n`);
        if (result.refusedReceipts.length > 0) throw refusedError("ack", result.refusedReceipts);
      }),
    );

  clientCommand(program, "nack", "give leased messages back to the queue, by id or by receipt")
    .argument("<queue>", "the queue's name")
    .argument("<ref...>", "message ids (digits) or receipts of leased messages")
    .option("--delay-ms <ms>", `the messages become ready again after this long (0..${MAX_DELAY_MS})`, integer(0, MAX_DELAY_MS), 0)
    .action(
      withClient<[string, string[]], ConnectionFlags & { delayMs: number }>(async (client, [queue, refs], flags) => {
        const result = await client.nack(queue, { ...parseRefs(refs), delayMs: flags.delayMs });
        if (flags.json) printJson(result);
        else print(`nacked ${result.nacked}\n`);
        if (result.refusedReceipts.length > 0) throw refusedError("nack", result.refusedReceipts);
      }),
    );

  clientCommand(program, "stats", "show the message counts of one queue")
    .argument("<queue>", "the queue's name")
    .action(
      withClient<[string], ConnectionFlags>(async (client, [queue], flags) => {
        const stats = await client.queueStats(queue);
        if (flags.json) printJson({ queue, ...stats });
        else print(renderQueueStats(queue, stats));
      }),
    );

  clientCommand(program, "queues", "list every queue with its message counts")
    .action(
      withClient<[], ConnectionFlags>(async (client, [], flags) => {
        const names = await client.listQueues();
        const queues = await statsOfAll(client, names);
        if (flags.json) printJson(queues.map(({ name, stats }) => ({ queue: name, ...stats })));
        else print(queues.length === 0 ? "no queues\n" : renderQueueList(queues));
      }),
    );

  clientCommand(program, "create-queue", "create a queue (idempotent for identical settings); omitted settings take the server defaults")
    .argument("<queue>", "the queue's name: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    .option("--max-deliveries <n>", `dead-letter a message after this many deliveries (0 = never, max ${MAX_MAX_DELIVERIES})`, integer(0, MAX_MAX_DELIVERIES))
    .option("--dead-letter-queue <queue>", "where dead-lettered messages go (default: they are dropped)")
    .option("--visibility-timeout-ms <ms>", `default lease length (1..${MAX_VISIBILITY_TIMEOUT_MS}, default 30000)`, integer(1, MAX_VISIBILITY_TIMEOUT_MS))
    .option("--max-length <n>", `most messages held: ready, delayed and leased (1..${MAX_MAX_LENGTH}, default 1000000)`, integer(1, MAX_MAX_LENGTH))
    .option("--max-message-bytes <n>", `largest body accepted (1..${MAX_MAX_MESSAGE_BYTES}, default 1048576)`, integer(1, MAX_MAX_MESSAGE_BYTES))
    .option("--dedup-window-ms <ms>", `how long an idempotency key is remembered (1..${MAX_DEDUP_WINDOW_MS}, default 300000)`, integer(1, MAX_DEDUP_WINDOW_MS))
    .action(
      withClient<[string], ConnectionFlags & QueueSettings>(async (client, [queue], flags) => {
        const settings: QueueSettings = {
          maxDeliveries: flags.maxDeliveries,
          deadLetterQueue: flags.deadLetterQueue,
          visibilityTimeoutMs: flags.visibilityTimeoutMs,
          maxLength: flags.maxLength,
          maxMessageBytes: flags.maxMessageBytes,
          dedupWindowMs: flags.dedupWindowMs,
        };
        const created = await client.createQueue(queue, withoutUndefined(settings));
        if (flags.json) printJson({ queue, created });
        else print(created ? `created queue "${queue}"\n` : `queue "${queue}" already exists with these settings\n`);
      }),
    );

  clientCommand(program, "delete-queue", "delete a queue and all its messages")
    .argument("<queue>", "the queue's name")
    .action(
      withClient<[string], ConnectionFlags>(async (client, [queue], flags) => {
        const deleted = await client.deleteQueue(queue);
        if (flags.json) printJson({ queue, deleted });
        else print(deleted ? `deleted queue "${queue}"\n` : `no queue "${queue}": nothing deleted\n`);
      }),
    );

  clientCommand(program, "purge", "drop every message of a queue (ready, delayed and leased), keeping its settings")
    .argument("<queue>", "the queue's name")
    .action(
      withClient<[string], ConnectionFlags>(async (client, [queue], flags) => {
        const purged = await client.purgeQueue(queue);
        if (flags.json) printJson({ queue, purged });
        else print(`purged ${purged} message${purged === 1 ? "" : "s"} from "${queue}"\n`);
      }),
    );

  clientCommand(program, "status", "show every node of --addr: id, role, term, commit and applied index, lag behind the leader")
    .action(
      withClient<[], ConnectionFlags>(async (client, [], flags) => {
        const rows = nodeRows(await client.clusterStatus());
        if (flags.json) printJson(rows);
        else print(renderNodeRows(rows));
        requireAnswer(rows, flags.addr);
      }),
    );

  clientCommand(program, "transfer-leadership", "hand leadership to another node and print the new leader")
    .argument("[target]", "the id of the node to lead next (default: the most up-to-date follower)")
    .action(
      withClient<[string | undefined], ConnectionFlags>(async (client, [target], flags) => {
        const leaderId = await client.transferLeadership(target);
        if (flags.json) printJson({ leaderId });
        else print(renderKeyValues([["leader", leaderId]]));
      }),
    );
}

/** A subcommand of `parent` with the connection flags every client command shares. */
export function clientCommand(parent: Command, name: string, description: string): Command {
  return parent
    .command(name)
    .description(description)
    .addOption(
      new Option("--addr <list>", "comma-separated host:port of cluster nodes (any node will do; the leader is found)")
        .env("RAFTQ_ADDR")
        .default(DEFAULT_ADDRESSES),
    )
    .option("--timeout-ms <ms>", "give up a call after this long, retries included (default 10000)", integer(1, 3_600_000))
    .option("--json", "print machine-readable JSON instead of text");
}

/**
 * Adapts a command body to commander's action signature: parses the connection flags, connects, runs
 * `body` with the positional arguments, and closes the client whatever happens.
 */
export function withClient<Args extends unknown[], Flags extends ConnectionFlags>(
  body: (client: RaftqClient, args: Args, flags: Flags) => Promise<void>,
): (...actionArgs: unknown[]) => Promise<void> {
  return async (...actionArgs: unknown[]) => {
    const command = actionArgs[actionArgs.length - 1] as Command;
    const flags = command.opts<Flags>();
    const args = actionArgs.slice(0, -2) as Args;
    const addresses = flags.addr.split(",").map((address) => address.trim()).filter((address) => address !== "");
    const client = connect({ addresses, ...(flags.timeoutMs === undefined ? {} : { timeoutMs: flags.timeoutMs }) });
    try {
      await body(client, args, flags);
    } finally {
      client.close();
    }
  };
}

/** Fails a status command when no node of `addr` answered: its output then says nothing about the cluster. */
export function requireAnswer(rows: readonly NodeRow[], addr: string): void {
  if (rows.every((row) => !row.reachable)) throw new CliError(`no node of ${addr} answered: is the cluster running?`);
}

/** An option parser for an integer in min..max, refusing anything else as a usage error. */
function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}.`);
    }
    return parsed;
  };
}

/** Accumulates repeated `--header key=value` flags. */
function collectHeader(value: string, headers: Record<string, string> | undefined): Record<string, string> {
  const equals = value.indexOf("=");
  if (equals <= 0) throw new InvalidArgumentError(`expected key=value, e.g. content-type=text/plain.`);
  return { ...headers, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/** Splits command-line references into ids (all digits) and receipts (anything else). */
export function parseRefs(refs: readonly string[]): Required<MessageRefs> {
  const ids: number[] = [];
  const receipts: string[] = [];
  for (const ref of refs) {
    if (/^\d+$/.test(ref) && Number.isSafeInteger(Number(ref))) ids.push(Number(ref));
    else receipts.push(ref);
  }
  return { ids, receipts };
}

async function ackAll(client: RaftqClient, queue: string, receipts: string[]): Promise<string[]> {
  if (receipts.length === 0) return [];
  const result = await client.ack(queue, { receipts });
  return result.refusedReceipts;
}

function refusedError(operation: string, receipts: readonly string[]): CliError {
  return new CliError(
    `${operation} refused for receipt${receipts.length === 1 ? "" : "s"} ${receipts.join(", ")}: ` +
      "the lease ended and the message was delivered again (or is gone); use the newest receipt or the message id",
  );
}

/** Stats of every named queue, a few at a time; queues deleted in the meantime are left out. */
async function statsOfAll(client: RaftqClient, names: readonly string[]): Promise<{ name: string; stats: QueueStats }[]> {
  const results: ({ name: string; stats: QueueStats } | undefined)[] = new Array(names.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < names.length; index = next++) {
      const name = names[index] as string;
      try {
        results[index] = { name, stats: await client.queueStats(name) };
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(STATS_CONCURRENCY, names.length) }, worker));
  return results.filter((result) => result !== undefined);
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
