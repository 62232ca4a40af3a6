/**
 * `make bench-backlog` and `make bench-churn`: how real raftq nodes hold a large backlog, and whether their
 * disk stays bounded under churn.
 *
 * Backlog (--messages N, default 1,000,000; 0 skips it), on a fresh local 3-node cluster: fill one queue
 * with N × 100-byte messages through EnqueueBatch (1,000 per batch, 4 in flight); each node's RSS and data
 * directory size with the backlog in place; the restart time of a follower (SIGTERM, start again, until it
 * serves as a follower again); and the catch-up time of a new node n4 started with --join (until the leader
 * reports it a voter and it has applied the leader's commit index), checked by making n4 the leader and
 * counting the ready messages there. Writes .work/bench/backlog.json.
 *
 * Churn (--churn N, default 1,000,000; 0 skips it), on another fresh cluster: see churn.ts. The final data
 * directory of every node must stay under a limit that does not grow with N. Writes .work/bench/churn.json.
 *
 *   node dist/src/bench/backlog.js --messages 1000000 --churn 0
 *   node dist/src/bench/backlog.js --messages 0 --churn 1000000
 *
 * Exits 1 when a check fails (messages missing on n4, the churn limit exceeded, a node not coming back);
 * the issue's targets (RSS, restart time) are reported PASS/FAIL without changing the exit code.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { snapshotBuild, type BuildSnapshot } from "../chaos/build-snapshot.js";
import { freePorts } from "../chaos/ports.js";
import { connect, type OutgoingMessage, type RaftqClient } from "../client/index.js";
import { PROTO_DIR } from "../protocol/proto-files.js";
import { runChurn, type ChurnResult } from "./churn.js";
import { BenchCluster } from "./cluster.js";
import { describeMachine, loadAverage1m, type Machine } from "./machine.js";
import { summarizeLog, type LogSummary } from "./node-logs.js";
import { directoryBytes, formatMegabytes, residentBytes } from "./resources.js";
import { formatNumber } from "./table.js";
import { Cleanup } from "./cleanup.js";

const REPO_ROOT = dirname(PROTO_DIR);
const RESULTS_DIR = join(REPO_ROOT, ".work", "bench");
const BODY_BYTES = 100;
const BACKLOG_QUEUE = "backlog";
const CHURN_QUEUE = "churn";
/** Messages per EnqueueBatch while filling: the most one batch may carry. */
const FILL_BATCH_MESSAGES = 1_000;
const FILL_BATCHES_IN_FLIGHT = 4;
const CHURN_BATCH_MESSAGES = 100;
/** The churn's live backlog cap: enqueued and not yet acked. */
const CHURN_MAX_LIVE_MESSAGES = 10_000;
const MAX_MESSAGES = 10_000_000;
const MAX_CHURN = 100_000_000;
/** Pause after every node applied everything before memory and disk are read. */
const SETTLE_MS = 5_000;
const PROGRESS_INTERVAL_MS = 5_000;
/** Longest any wait of the backlog phase (fill settling, restart, catch-up) may take. */
const PHASE_TIMEOUT_MS = 15 * 60_000;
const MIB = 1024 * 1024;

/** The issue's targets for a node holding 1M × 100 B. */
const RSS_TARGET_BYTES = 300 * MIB;
const RESTART_TARGET_MS = 10_000;
/**
 * The churn's limit on each node's final data directory: a fixed 64 MB, the default --snapshot-bytes (the
 * most applied log a node keeps before it compacts), which does not grow with the number of messages, plus
 * an allowance per live message. Exceeding it means deleted log or acked messages are not reclaimed, or
 * that something else the node keeps (e.g. the queue's dedup keys, up to 5 minutes' worth) outweighs the log.
 */
const CHURN_FIXED_LIMIT_BYTES = 64 * MIB;
/** Allowance per live message: its body, its metadata record and LevelDB's overhead, generously. */
const CHURN_BYTES_PER_LIVE_MESSAGE = 1_024;

/** One PASS/FAIL line of the report. */
interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly pass: boolean;
}

/** One node's memory and disk at one moment. */
interface NodeFootprint {
  readonly id: string;
  readonly rssBytes: number | undefined;
  readonly dataDirBytes: number;
}

/** What the backlog phase measured. */
interface BacklogResult {
  readonly fill: { readonly messages: number; readonly elapsedMs: number; readonly messagesPerSecond: number };
  readonly withBacklog: readonly NodeFootprint[];
  readonly restart: {
    readonly id: string;
    readonly stopMs: number;
    readonly exitCode: number | null;
    readonly commitIndexAtStop: number;
    /** From spawning the process until it answers Cluster.Status. */
    readonly answeringMs: number;
    /** From spawning the process until it is a follower of a known leader with everything applied. */
    readonly servingMs: number;
    readonly rssAtServingBytes: number | undefined;
    readonly afterSettle: NodeFootprint;
  };
  readonly catchUp: {
    readonly id: string;
    readonly answeringMs: number;
    /** From spawning n4 until the leader reports it a voter and it has applied the leader's commit index. */
    readonly caughtUpMs: number;
    readonly appliedIndex: number;
    readonly leaderCommitIndex: number;
    readonly installedSnapshot: boolean;
    readonly afterSettle: NodeFootprint;
    /** Ready messages reported by the original leader, and by n4 once it was made the leader. */
    readonly readyOnLeader: number;
    readonly readyWithNewNodeLeading: number;
  };
}

/** Everything a phase needs to start its own cluster. */
interface Environment {
  readonly cliMain: string;
  readonly root: string;
  readonly body: Buffer;
  readonly idempotencyKeys: boolean;
}

const cleanup = new Cleanup();

async function main(): Promise<boolean> {
  const options = parseOptions();
  const startedAt = new Date();
  const startMs = performance.now();
  const root = mkdtempSync(join(tmpdir(), "raftq-bench-backlog-"));
  let succeeded = false;
  cleanup.add(() => {
    if (succeeded) rmSync(root, { recursive: true, force: true });
    else console.error(`node logs and data kept in ${root}`);
  });
  const snapshot: BuildSnapshot = snapshotBuild(`bench-backlog-${process.pid}-${startedAt.getTime()}`);
  cleanup.add(() => snapshot.remove());
  process.once("exit", () => snapshot.remove());
  const env: Environment = { cliMain: snapshot.main, root, body: Buffer.alloc(BODY_BYTES, "x"), idempotencyKeys: options.idempotencyKeys };
  const machine = describeMachine();
  const keys = options.idempotencyKeys ? "an idempotency key per message (the SDK default)" : "no idempotency keys";
  console.log(`raftq backlog bench on ${machine.cpus} cores, load average ${formatNumber(loadAverage1m(), 2)}; ${keys}; temp dir ${root}`);
  const elapsed = (): string => `${formatNumber((performance.now() - startMs) / 1000, 0)} s`;
  const log = (line: string): void => console.log(`[${elapsed()}] ${line}`);

  let ok = true;
  if (options.messages > 0) {
    const result = await backlogPhase(env, options.messages, log);
    const targets = backlogTargets(result);
    const logs = nodeLogs(env.root, "backlog", ["n1", "n2", "n3", "n4"], "compacted the log");
    console.log(`\n${renderBacklog(result, targets, logs)}\n`);
    const path = writeRecord("backlog.json", {
      startedAt: startedAt.toISOString(),
      command: `make bench-backlog MESSAGES=${options.messages}${options.idempotencyKeys ? "" : " KEYS=0"}`,
      machine,
      settings: { messages: options.messages, bodyBytes: BODY_BYTES, fillBatchMessages: FILL_BATCH_MESSAGES, fillBatchesInFlight: FILL_BATCHES_IN_FLIGHT, idempotencyKeys: options.idempotencyKeys, settleMs: SETTLE_MS },
      ...result,
      targets,
      logs,
    });
    console.log(`results: ${path}`);
  }
  if (options.churn > 0) {
    const result = await churnPhase(env, options.churn, log);
    const limits = result.nodes.map((node) => ({ id: node.id, limitBytes: churnLimitBytes(result.maxLiveMessages) }));
    const checks: TargetCheck[] = result.nodes.map((node, index) => ({
      target: `${node.id}: final data dir < ${formatMegabytes(limits[index]!.limitBytes)} (${formatMegabytes(CHURN_FIXED_LIMIT_BYTES)} + live backlog)`,
      measured: formatMegabytes(node.finalDataDirBytes),
      pass: node.finalDataDirBytes < limits[index]!.limitBytes,
    }));
    const logs = nodeLogs(env.root, "churn", result.nodes.map((node) => node.id), "compacted the log");
    console.log(`\n${renderChurn(result, checks, logs)}\n`);
    const path = writeRecord("churn.json", {
      startedAt: startedAt.toISOString(),
      command: `make bench-churn CHURN=${options.churn}${options.idempotencyKeys ? "" : " KEYS=0"}`,
      machine,
      settings: { messages: options.churn, bodyBytes: BODY_BYTES, batchMessages: CHURN_BATCH_MESSAGES, maxLiveMessages: CHURN_MAX_LIVE_MESSAGES, idempotencyKeys: options.idempotencyKeys },
      ...result,
      limits,
      checks,
      logs,
    });
    console.log(`results: ${path}`);
    if (checks.some((check) => !check.pass)) {
      console.error("FAIL: a node's data directory outgrew the churn limit: deleted log or acked messages are not reclaimed");
      ok = false;
    }
  }
  console.log(`took ${elapsed()}`);
  // A failed check keeps the temp dir, for its node logs and data.
  succeeded = ok;
  return ok;
}

/** Fill, footprint, follower restart and n4 catch-up, on a fresh cluster of its own. */
async function backlogPhase(env: Environment, messages: number, log: (line: string) => void): Promise<BacklogResult> {
  const root = join(env.root, "backlog");
  const [joinPort, ...ports] = await freePorts(4);
  const cluster = await BenchCluster.start({ ports, root, cliMain: env.cliMain, logLevel: "info" });
  cleanup.add(() => cluster.close());
  const client = connect({ addresses: cluster.addresses });
  try {
    log(`cluster up: ${cluster.ids.map((id, index) => `${id}=${cluster.addresses[index]}`).join(" ")}`);
    // Headroom: without idempotency keys (KEYS=0) a batch retried after an unknown outcome lands twice.
    await client.createQueue(BACKLOG_QUEUE, { maxLength: Math.max(1, Math.ceil(messages * 1.1)) });
    const fill = await fillQueue(client, env, messages, log);
    log(`filled ${formatNumber(messages, 0)} messages in ${formatNumber(fill.elapsedMs / 1000, 1)} s (${formatNumber(fill.messagesPerSecond, 0)} msg/s)`);
    await cluster.allApplied(PHASE_TIMEOUT_MS);
    await sleep(SETTLE_MS);
    const withBacklog = cluster.ids.map((id) => footprint(cluster, id));
    log(`with the backlog: ${withBacklog.map(describeFootprint).join("; ")}`);

    const restart = await restartFollower(cluster, log);
    const catchUp = await joinNewNode(cluster, client, joinPort!, messages, log);
    return { fill, withBacklog, restart, catchUp };
  } finally {
    // Stopped now, not at exit: a churn phase that follows must not share the cores with these nodes.
    client.close();
    await cluster.close();
  }
}

/** EnqueueBatch of 1,000 × `env.body`, 4 in flight, until `messages` are in; prints progress. */
async function fillQueue(client: RaftqClient, env: Environment, messages: number, log: (line: string) => void): Promise<BacklogResult["fill"]> {
  const startMs = performance.now();
  let remaining = messages;
  let done = 0;
  const progress = setInterval(() => {
    const seconds = (performance.now() - startMs) / 1000;
    log(`filling: ${formatNumber(done, 0)} of ${formatNumber(messages, 0)} (${formatNumber(done / seconds, 0)} msg/s)`);
  }, PROGRESS_INTERVAL_MS);
  const worker = async (): Promise<void> => {
    while (remaining > 0) {
      const count = Math.min(FILL_BATCH_MESSAGES, remaining);
      remaining -= count;
      const batch: OutgoingMessage[] = Array.from({ length: count }, () => (env.idempotencyKeys ? { body: env.body } : { body: env.body, idempotencyKey: false }));
      await client.enqueueBatch(BACKLOG_QUEUE, batch);
      done += count;
    }
  };
  try {
    await Promise.all(Array.from({ length: FILL_BATCHES_IN_FLIGHT }, worker));
  } finally {
    clearInterval(progress);
  }
  const elapsedMs = performance.now() - startMs;
  return { messages, elapsedMs, messagesPerSecond: messages / (elapsedMs / 1000) };
}

/** SIGTERMs a follower, starts it again and times it until it serves as a follower with everything applied. */
async function restartFollower(cluster: BenchCluster, log: (line: string) => void): Promise<BacklogResult["restart"]> {
  const { leaderId } = await cluster.stableLeader();
  const id = cluster.ids.find((candidate) => candidate !== leaderId)!;
  const commitIndexAtStop = (await leaderStatus(cluster, leaderId)).commitIndex;
  const stopStartMs = performance.now();
  const exit = await cluster.stop(id);
  const stopMs = performance.now() - stopStartMs;
  log(`stopped follower ${id} with SIGTERM in ${formatNumber(stopMs, 0)} ms (exit ${exit?.code ?? exit?.signal}); leader ${leaderId} commit index ${commitIndexAtStop}; starting it again`);

  const spawnMs = performance.now();
  await cluster.restart(id);
  const answeringMs = performance.now() - spawnMs;
  let last = "no answer";
  await cluster.poll(
    () => `${id} to serve as a follower with applied index ≥ ${commitIndexAtStop} (last seen: ${last})`,
    async () => {
      const status = await cluster.status(id);
      last = status ? `${status.role}, leader "${status.leaderId}", applied ${status.appliedIndex}` : "no answer";
      return status !== undefined && status.role === "follower" && status.leaderId !== "" && status.appliedIndex >= commitIndexAtStop;
    },
    PHASE_TIMEOUT_MS,
  );
  const servingMs = performance.now() - spawnMs;
  const rssAtServingBytes = rssOf(cluster, id);
  log(`${id} answered Status ${formatNumber(answeringMs, 0)} ms after its start and served as a follower after ${formatNumber(servingMs, 0)} ms (RSS ${formatMegabytes(rssAtServingBytes)})`);
  await sleep(SETTLE_MS);
  const afterSettle = footprint(cluster, id);
  log(`${id} after a ${SETTLE_MS / 1000} s settle: ${describeFootprint(afterSettle)}`);
  return { id, stopMs, exitCode: exit?.code ?? null, commitIndexAtStop, answeringMs, servingMs, rssAtServingBytes, afterSettle };
}

/** Starts n4 with --join, times its catch-up, then checks it holds every message by making it the leader. */
async function joinNewNode(
  cluster: BenchCluster,
  client: RaftqClient,
  port: number,
  messages: number,
  log: (line: string) => void,
): Promise<BacklogResult["catchUp"]> {
  const id = "n4";
  const spawnMs = performance.now();
  await cluster.join(id, port);
  const answeringMs = performance.now() - spawnMs;
  log(`${id} answers Status ${formatNumber(answeringMs, 0)} ms after its start; waiting for it to catch up`);
  let last = "no answer";
  let lastProgressMs = performance.now();
  const caughtUp = await cluster.poll(
    () => `${id} to be a voter with the leader's commit index applied (last seen: ${last})`,
    async () => {
      const { leaderId } = await cluster.stableLeader();
      const [leader, joined] = await Promise.all([cluster.status(leaderId), cluster.status(id)]);
      if (leader === undefined || joined === undefined) return undefined;
      const member = leader.members.find((candidate) => candidate.id === id);
      last = `${member ? (member.voter ? "voter" : "learner") : "not a member"}, applied ${joined.appliedIndex} of leader commit ${leader.commitIndex}`;
      if (performance.now() - lastProgressMs >= PROGRESS_INTERVAL_MS) {
        lastProgressMs = performance.now();
        log(`${id}: ${last}`);
      }
      return member?.voter === true && joined.appliedIndex >= leader.commitIndex ? { appliedIndex: joined.appliedIndex, leaderCommitIndex: leader.commitIndex } : undefined;
    },
    PHASE_TIMEOUT_MS,
  );
  const caughtUpMs = performance.now() - spawnMs;
  log(`${id} caught up ${formatNumber(caughtUpMs, 0)} ms after its start: voter, applied ${caughtUp.appliedIndex} = leader commit ${caughtUp.leaderCommitIndex}`);
  await sleep(SETTLE_MS);
  const afterSettle = footprint(cluster, id);
  log(`${id} after a ${SETTLE_MS / 1000} s settle: ${describeFootprint(afterSettle)}`);

  const readyOnLeader = (await client.queueStats(BACKLOG_QUEUE)).ready;
  const newLeader = await client.transferLeadership(id);
  if (newLeader !== id) throw new Error(`leadership went to ${newLeader}, not ${id}: cannot count ${id}'s messages`);
  await cluster.stableLeader();
  const readyWithNewNodeLeading = (await client.queueStats(BACKLOG_QUEUE)).ready;
  log(`ready messages: ${formatNumber(readyOnLeader, 0)} on the old leader, ${formatNumber(readyWithNewNodeLeading, 0)} with ${id} leading (expected ${formatNumber(messages, 0)})`);
  const installedSnapshot = summarizeLog(cluster.logFile(id), "installed a snapshot from the leader").matching > 0;
  return { id, answeringMs, caughtUpMs, ...caughtUp, installedSnapshot, afterSettle, readyOnLeader, readyWithNewNodeLeading };
}

/** The churn of churn.ts on a fresh cluster of its own. */
async function churnPhase(env: Environment, messages: number, log: (line: string) => void): Promise<ChurnResult> {
  const root = join(env.root, "churn");
  const cluster = await BenchCluster.start({ ports: await freePorts(3), root, cliMain: env.cliMain, logLevel: "info" });
  cleanup.add(() => cluster.close());
  try {
    log(`churn cluster up: ${cluster.ids.map((id, index) => `${id}=${cluster.addresses[index]}`).join(" ")}; ${formatNumber(messages, 0)} messages to enqueue and ack`);
    return await runChurn(cluster, CHURN_QUEUE, {
      messages,
      body: env.body,
      batchMessages: CHURN_BATCH_MESSAGES,
      maxLiveMessages: CHURN_MAX_LIVE_MESSAGES,
      idempotencyKeys: env.idempotencyKeys,
      progress: (line) => log(`churn: ${line}`),
    });
  } finally {
    await cluster.close();
  }
}

/** The churn limit of one node's final data directory, given the largest live backlog seen. */
function churnLimitBytes(maxLiveMessages: number): number {
  return CHURN_FIXED_LIMIT_BYTES + maxLiveMessages * CHURN_BYTES_PER_LIVE_MESSAGE;
}

async function leaderStatus(cluster: BenchCluster, leaderId: string): Promise<{ commitIndex: number }> {
  const status = await cluster.status(leaderId);
  if (status === undefined) throw new Error(`leader ${leaderId} did not answer Cluster.Status`);
  return status;
}

function rssOf(cluster: BenchCluster, id: string): number | undefined {
  const pid = cluster.pid(id);
  return pid === undefined ? undefined : residentBytes(pid);
}

function footprint(cluster: BenchCluster, id: string): NodeFootprint {
  return { id, rssBytes: rssOf(cluster, id), dataDirBytes: directoryBytes(cluster.dataDir(id)) };
}

function describeFootprint(node: NodeFootprint): string {
  return `${node.id} RSS ${formatMegabytes(node.rssBytes)}, data dir ${formatMegabytes(node.dataDirBytes)}`;
}

/** The issue's targets against what the backlog phase measured. */
function backlogTargets(result: BacklogResult): TargetCheck[] {
  const rss = (label: string, bytes: number | undefined): TargetCheck => ({
    target: `${label}: RSS < ${formatMegabytes(RSS_TARGET_BYTES)}`,
    measured: formatMegabytes(bytes),
    pass: bytes !== undefined && bytes < RSS_TARGET_BYTES,
  });
  const { restart, catchUp } = result;
  return [
    ...result.withBacklog.map((node) => rss(`${node.id} with the backlog`, node.rssBytes)),
    rss(`${restart.id} after its restart`, restart.afterSettle.rssBytes),
    rss(`${catchUp.id} after catching up`, catchUp.afterSettle.rssBytes),
    {
      target: `${restart.id} restart, process start to serving as a follower < ${RESTART_TARGET_MS / 1000} s`,
      measured: `${formatNumber(restart.servingMs / 1000, 2)} s`,
      pass: restart.servingMs < RESTART_TARGET_MS,
    },
  ];
}

/** Every node's log summary, by id, from <root>/<phase>/logs. */
function nodeLogs(root: string, phase: string, ids: readonly string[], text: string): Record<string, LogSummary> {
  return Object.fromEntries(ids.map((id) => [id, summarizeLog(join(root, phase, "logs", `${id}.log`), text)]));
}

function renderBacklog(result: BacklogResult, targets: readonly TargetCheck[], logs: Record<string, LogSummary>): string {
  const { fill, restart, catchUp } = result;
  const lines = [
    `Backlog: ${formatNumber(fill.messages, 0)} × ${BODY_BYTES} B in one queue`,
    "",
    "| Figure | Value |",
    "|---|---:|",
    `| Fill (EnqueueBatch ${FILL_BATCH_MESSAGES} × ${FILL_BATCHES_IN_FLIGHT} in flight) | ${formatNumber(fill.elapsedMs / 1000, 1)} s, ${formatNumber(fill.messagesPerSecond, 0)} msg/s |`,
    ...result.withBacklog.map((node) => `| ${node.id} with the backlog: RSS / data dir | ${formatMegabytes(node.rssBytes)} / ${formatMegabytes(node.dataDirBytes)} |`),
    `| ${restart.id} SIGTERM to exit | ${formatNumber(restart.stopMs, 0)} ms (exit code ${restart.exitCode}) |`,
    `| ${restart.id} restart: start to answering Status | ${formatNumber(restart.answeringMs, 0)} ms |`,
    `| ${restart.id} restart: start to serving as a follower (applied ≥ ${restart.commitIndexAtStop}) | ${formatNumber(restart.servingMs, 0)} ms |`,
    `| ${restart.id} RSS at serving / after ${SETTLE_MS / 1000} s | ${formatMegabytes(restart.rssAtServingBytes)} / ${formatMegabytes(restart.afterSettle.rssBytes)} |`,
    `| ${catchUp.id} --join: start to answering Status | ${formatNumber(catchUp.answeringMs, 0)} ms |`,
    `| ${catchUp.id} --join: start to voter with applied = leader commit (${catchUp.appliedIndex}) | ${formatNumber(catchUp.caughtUpMs / 1000, 2)} s${catchUp.installedSnapshot ? " (through a snapshot)" : ""} |`,
    `| ${catchUp.id} RSS / data dir after catching up | ${formatMegabytes(catchUp.afterSettle.rssBytes)} / ${formatMegabytes(catchUp.afterSettle.dataDirBytes)} |`,
    `| Ready messages: old leader / with ${catchUp.id} leading | ${formatNumber(catchUp.readyOnLeader, 0)} / ${formatNumber(catchUp.readyWithNewNodeLeading, 0)} |`,
    ...Object.entries(logs).map(([id, summary]) => `| ${id} log: compactions / warnings and errors | ${summary.matching} / ${summary.problems} |`),
    "",
    renderChecks(targets),
    ...problemLines(logs),
  ];
  return lines.join("\n");
}

function renderChurn(result: ChurnResult, checks: readonly TargetCheck[], logs: Record<string, LogSummary>): string {
  const lines = [
    `Churn: ${formatNumber(result.messages, 0)} × ${BODY_BYTES} B enqueued (EnqueueBatch ${CHURN_BATCH_MESSAGES}) and acked (Dequeue ${CHURN_BATCH_MESSAGES} + Ack) ` +
      `in ${formatNumber(result.elapsedMs / 1000, 1)} s: ${formatNumber(result.messagesPerSecond, 0)} msg/s; live backlog at most ${formatNumber(result.maxLiveMessages, 0)} ` +
      `(${result.samples} samples)`,
    "",
    "| Node | Data dir max | Data dir final | RSS max | RSS final | Log compactions | Warnings/errors in log |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...result.nodes.map((node) => {
      const summary = logs[node.id];
      return `| ${node.id} | ${formatMegabytes(node.maxDataDirBytes)} | ${formatMegabytes(node.finalDataDirBytes)} | ${formatMegabytes(node.maxRssBytes)} | ${formatMegabytes(node.finalRssBytes)} | ${summary?.matching ?? "n/a"} | ${summary?.problems ?? "n/a"} |`;
    }),
    "",
    renderChecks(checks),
    ...problemLines(logs),
  ];
  return lines.join("\n");
}

function renderChecks(checks: readonly TargetCheck[]): string {
  return ["| Target | Measured | Result |", "|---|---:|---|", ...checks.map((check) => `| ${check.target} | ${check.measured} | ${check.pass ? "PASS" : "**FAIL**"} |`)].join("\n");
}

function problemLines(logs: Record<string, LogSummary>): string[] {
  const lines = Object.entries(logs).flatMap(([id, summary]) => summary.firstProblems.map((line) => `  ${id}: ${line}`));
  return lines.length === 0 ? [] : ["", "First warnings and errors in the node logs:", ...lines];
}

function writeRecord(name: string, record: { machine: Machine } & Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, name);
  writeFileSync(path, `${JSON.stringify(record, null, 2)}\n`);
  return path;
}

/** --messages, --churn and --no-idempotency-keys, checked. */
function parseOptions(): { messages: number; churn: number; idempotencyKeys: boolean } {
  const { values } = parseArgs({
    options: {
      messages: { type: "string", default: "1000000" },
      churn: { type: "string", default: "1000000" },
      "no-idempotency-keys": { type: "boolean", default: false },
    },
  });
  const messages = Number(values.messages);
  const churn = Number(values.churn);
  if (!Number.isSafeInteger(messages) || messages < 0 || messages > MAX_MESSAGES) {
    throw new Error(`MESSAGES must be an integer from 0 (skip the backlog) to ${MAX_MESSAGES}, got "${values.messages}"`);
  }
  if (!Number.isSafeInteger(churn) || churn < 0 || churn > MAX_CHURN) {
    throw new Error(`CHURN must be an integer from 0 (skip the churn) to ${MAX_CHURN}, got "${values.churn}"`);
  }
  if (messages === 0 && churn === 0) throw new Error("nothing to do: MESSAGES and CHURN are both 0");
  return { messages, churn, idempotencyKeys: !values["no-idempotency-keys"] };
}

main().then(
  async (ok) => {
    await cleanup.run();
    process.exit(ok ? 0 : 1);
  },
  async (error: unknown) => {
    console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanup.run();
    process.exit(1);
  },
);
