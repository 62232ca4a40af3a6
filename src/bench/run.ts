/**
 * `make bench`: starts a fresh local 3-node cluster and a bare gRPC echo server, runs every workload RUNS
 * times (raftq's next to the bare limit it is compared with), counts elections throughout, then prints the
 * table, writes the JSON record and rewrites docs/benchmarks.md.
 *
 *   node dist/src/bench/run.js --seconds 5 --runs 3
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { snapshotBuild, type BuildSnapshot } from "../chaos/build-snapshot.js";
import { freePorts } from "../chaos/ports.js";
import { PROTO_DIR } from "../protocol/proto-files.js";
import { levelSyncWrites, startEchoServer, streamEcho, unaryEcho, type EchoServer, type Timing } from "./baselines.js";
import { BenchCluster } from "./cluster.js";
import { CpuMeter } from "./cpu-meter.js";
import { ElectionWatcher } from "./elections.js";
import { describeMachine, loadAverage1m } from "./machine.js";
import { renderDoc, renderSummary, writeJson, type BenchResults, type Figure, type Series, type WorkloadKey } from "./report.js";
import { formatNumber } from "./table.js";
import { drainByDequeue, drainBySubscribe, enqueueBatches, enqueueSingle, enqueueStream, enqueueUnary, failover, type FailoverResult, type WorkloadContext } from "./workloads.js";
import { Cleanup } from "./cleanup.js";

const REPO_ROOT = dirname(PROTO_DIR);
const BODY_BYTES = 100;
const IN_FLIGHT = 64;
const BATCH_MESSAGES = 100;
const BATCHES_IN_FLIGHT = 8;
const DRAIN_MESSAGES = 50_000;
const LEASE_MESSAGES = 100;
const PREFETCH = 100;
const MAX_SECONDS = 600;
const MAX_RUNS = 20;
/** Longest warm-up before a measured window. */
const MAX_WARMUP_MS = 1_000;

/** One throughput workload: what it is, what it is compared with, and how one run of it goes. */
interface Step {
  readonly key: WorkloadKey;
  readonly title: string;
  readonly unit: Series["unit"];
  readonly bare?: WorkloadKey;
  readonly run: (round: number) => Promise<Figure>;
}

const cleanup = new Cleanup();

async function main(): Promise<void> {
  const { seconds, runs, nodeLogLevel, keep } = parseOptions();
  const startedAt = new Date();
  const startMs = performance.now();
  const loadBefore = loadAverage1m();
  let highestLoad = loadBefore;
  const durationMs = seconds * 1000;
  const timing: Timing = { warmupMs: Math.min(MAX_WARMUP_MS, durationMs / 5), durationMs };
  const body = Buffer.alloc(BODY_BYTES, "x");
  const elapsed = (): string => `${formatNumber((performance.now() - startMs) / 1000, 0)} s`;

  const root = mkdtempSync(join(tmpdir(), "raftq-bench-"));
  let succeeded = false;
  cleanup.add(() => {
    if ((succeeded && !keep) || cleanup.interrupted) rmSync(root, { recursive: true, force: true });
    else console.error(`node logs and data kept in ${root}`);
  });
  // Nodes run a private copy of the build, so a `make build` elsewhere cannot change them mid-run.
  const snapshot: BuildSnapshot = snapshotBuild(`bench-${process.pid}-${startedAt.getTime()}`);
  cleanup.add(() => snapshot.remove());
  process.once("exit", () => snapshot.remove());

  console.log(`raftq bench: ${runs} run(s) of every workload, ${seconds} s each; load average ${formatNumber(loadBefore, 2)}; temp dir ${root}`);
  const [echoPort, ...nodePorts] = await freePorts(4);
  const echo: EchoServer = await startEchoServer(join(dirname(snapshot.main), "..", "bench", "echo-server.js"), echoPort!);
  cleanup.add(() => echo.close());
  const cluster = await BenchCluster.start({ ports: nodePorts, root, cliMain: snapshot.main, logLevel: nodeLogLevel });
  cleanup.add(() => cluster.close());
  console.log(`[${elapsed()}] cluster up: ${cluster.ids.map((id, index) => `${id}=${cluster.addresses[index]}`).join(" ")}`);
  const watcher = new ElectionWatcher(() => Promise.all(cluster.ids.map((id) => cluster.status(id))));
  let watcherStopped = false;
  cleanup.add(() => watcherStopped || watcher.stop());

  // Each workload's CPU is measured on the processes that serve it: the nodes, the echo server, or none
  // (LevelDB runs in this process, which the client figure covers).
  const nodePids = (): number[] => cluster.ids.flatMap((id) => cluster.pid(id) ?? []);
  const ctx: WorkloadContext = { cluster, timing: { ...timing, cpu: new CpuMeter(nodePids) }, body };
  const echoTiming: Timing = { ...timing, cpu: new CpuMeter(() => [echo.pid]) };
  const localTiming: Timing = { ...timing, cpu: new CpuMeter(() => []) };
  const levelDir = (key: string, round: number): string => join(root, "level", `${key}-${round}`);
  const steps: Step[] = [
    { key: "enqueue1", title: "Enqueue, 1 in flight", unit: "msg/s", bare: "bareUnary1", run: (r) => enqueueSingle(ctx, `bench-enqueue1-r${r}`) },
    { key: "stream64", title: `Enqueue, ${IN_FLIGHT} in flight, SDK publisher (EnqueueStream)`, unit: "msg/s", bare: "bareStream64", run: (r) => enqueueStream(ctx, `bench-stream64-r${r}`, IN_FLIGHT) },
    { key: "unary64", title: `Enqueue, ${IN_FLIGHT} in flight, unary`, unit: "msg/s", bare: "bareUnary64", run: (r) => enqueueUnary(ctx, `bench-unary64-r${r}`, IN_FLIGHT) },
    { key: "batch100x8", title: `EnqueueBatch of ${BATCH_MESSAGES}, ${BATCHES_IN_FLIGHT} in flight`, unit: "msg/s", bare: "levelBatch100", run: (r) => enqueueBatches(ctx, `bench-batch-r${r}`, BATCH_MESSAGES, BATCHES_IN_FLIGHT) },
    { key: "drainDequeue", title: `Drain ${formatNumber(DRAIN_MESSAGES, 0)}: Dequeue ${LEASE_MESSAGES} + Ack by receipts`, unit: "msg/s", run: (r) => drainByDequeue(ctx, `bench-drain-dequeue-r${r}`, DRAIN_MESSAGES, LEASE_MESSAGES, false) },
    { key: "drainDequeueOverlap", title: `Drain ${formatNumber(DRAIN_MESSAGES, 0)}: Dequeue ${LEASE_MESSAGES} + Ack by receipts, next Dequeue during the Ack`, unit: "msg/s", run: (r) => drainByDequeue(ctx, `bench-drain-overlap-r${r}`, DRAIN_MESSAGES, LEASE_MESSAGES, true) },
    { key: "drainSubscribe", title: `Drain ${formatNumber(DRAIN_MESSAGES, 0)}: Subscribe, prefetch ${PREFETCH}, ack each`, unit: "msg/s", run: (r) => drainBySubscribe(ctx, `bench-drain-subscribe-r${r}`, DRAIN_MESSAGES, PREFETCH) },
    { key: "bareUnary1", title: "bare gRPC unary echo, 1 in flight", unit: "msg/s", run: () => unaryEcho(echo.address, body, 1, echoTiming) },
    { key: "bareUnary64", title: `bare gRPC unary echo, ${IN_FLIGHT} in flight`, unit: "msg/s", run: () => unaryEcho(echo.address, body, IN_FLIGHT, echoTiming) },
    { key: "bareStream64", title: `bare gRPC bidi-stream echo, ${IN_FLIGHT} in flight`, unit: "msg/s", run: () => streamEcho(echo.address, body, IN_FLIGHT, echoTiming) },
    { key: "levelPut", title: "bare LevelDB put, sync", unit: "records/s", run: (r) => levelSyncWrites(levelDir("put", r), body, 1, localTiming) },
    { key: "levelBatch100", title: `bare LevelDB batch of ${BATCH_MESSAGES}, sync`, unit: "records/s", run: (r) => levelSyncWrites(levelDir("batch", r), body, BATCH_MESSAGES, localTiming) },
  ];
  // Each raftq workload runs right after the bare one it is divided by, so both see the same load.
  const order: WorkloadKey[] = [
    "bareUnary1",
    "enqueue1",
    "bareUnary64",
    "unary64",
    "bareStream64",
    "stream64",
    "levelBatch100",
    "batch100x8",
    "levelPut",
    "drainDequeue",
    "drainDequeueOverlap",
    "drainSubscribe",
  ];
  const figures = new Map<WorkloadKey, Figure[]>(steps.map((step) => [step.key, []]));
  const failovers: FailoverResult[] = [];

  for (let round = 1; round <= runs; round++) {
    for (const key of order) {
      const step = steps.find((candidate) => candidate.key === key)!;
      process.stdout.write(`[${elapsed()}] run ${round}/${runs} ${step.title} … `);
      const figure = await step.run(round);
      highestLoad = Math.max(highestLoad, loadAverage1m());
      figures.get(key)!.push(figure);
      console.log(describeFigure(figure, step.unit));
    }
    process.stdout.write(`[${elapsed()}] run ${round}/${runs} failover: SIGKILL of the leader under 1-in-flight Enqueue … `);
    const result = await failover(ctx, watcher, `bench-failover-r${round}`, `failover run ${round}`);
    failovers.push(result);
    console.log(
      `killed ${result.killedId}: longest gap ${formatNumber(result.longestGapMs, 0)} ms, ${result.missing} of ` +
        `${result.acknowledged} acknowledged missing, rejoined in ${formatNumber(result.rejoinMs, 0)} ms`,
    );
  }
  const elections = await watcher.stop();
  watcherStopped = true;

  const results: BenchResults = {
    startedAt: startedAt.toISOString(),
    elapsedMs: performance.now() - startMs,
    command: `make bench BENCH_SECONDS=${seconds} RUNS=${runs}`,
    settings: {
      runs,
      measuredMsPerRun: timing.durationMs,
      warmupMsPerRun: timing.warmupMs,
      bodyBytes: BODY_BYTES,
      drainMessages: DRAIN_MESSAGES,
      client: "the TypeScript SDK with default options (retries; an idempotency key on every enqueue)",
    },
    machine: describeMachine(),
    loadAverage1m: { before: loadBefore, highest: highestLoad },
    series: steps.map(({ key, title, unit, bare }) => ({ key, title, unit, ...(bare ? { bare } : {}), runs: figures.get(key)! })),
    failovers,
    elections,
  };
  console.log(`\n${renderSummary(results)}\n`);
  const jsonPath = writeJson(results, join(REPO_ROOT, ".work", "bench"));
  const docPath = join(REPO_ROOT, "docs", "benchmarks.md");
  writeFileSync(docPath, renderDoc(results));
  console.log(`results: ${jsonPath}\ndocs:    ${docPath} (rewritten)\ntook ${elapsed()}`);
  succeeded = true;
}

function describeFigure(figure: Figure, unit: string): string {
  const latency =
    figure.latencyMsP50 === undefined ? "" : `, p50 ${formatNumber(figure.latencyMsP50, 2)} ms, p99 ${formatNumber(figure.latencyMsP99 ?? Number.NaN, 2)} ms`;
  const errors = figure.errors ? ` (${figure.errors} failed: ${figure.firstError})` : "";
  const cpu = figure.cpu ? `, CPU ${formatNumber(figure.cpu.serversUs, 0)} + ${formatNumber(figure.cpu.clientUs, 0)} µs/msg (servers + client)` : "";
  return `${formatNumber(figure.messagesPerSecond, 0)} ${unit}${latency}${cpu}${errors}`;
}

/** --seconds (measured time per run) and --runs, checked. */
interface BenchOptions {
  readonly seconds: number;
  readonly runs: number;
  /** The nodes' --log-level; "info" also logs the Raft core's trace (why each election started). */
  readonly nodeLogLevel: string;
  /** Keep the temp directory (node logs, data) after a successful run, to read the logs. */
  readonly keep: boolean;
}

function parseOptions(): BenchOptions {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "5" },
      runs: { type: "string", default: "3" },
      "node-log-level": { type: "string", default: "warn" },
      keep: { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const runs = Number(values.runs);
  if (!(seconds > 0 && seconds <= MAX_SECONDS)) throw new Error(`BENCH_SECONDS must be a number of seconds in (0, ${MAX_SECONDS}], got "${values.seconds}"`);
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) throw new Error(`RUNS must be an integer in 1..${MAX_RUNS}, got "${values.runs}"`);
  return { seconds, runs, nodeLogLevel: values["node-log-level"], keep: values.keep };
}

main().then(
  () => cleanup.run(),
  async (error: unknown) => {
    console.error(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanup.run();
    process.exit(1);
  },
);
