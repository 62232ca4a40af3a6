/**
 * One chaos run, start to verdict: draw the fault schedule from the seed, start the cluster behind its
 * proxies, create the queues, run the workload and the nemesis side by side for the duration (the
 * sampler recording Status all along), heal everything, drain every queue, stop every process, then
 * check the history file and write the report. The same seed gives the same schedule and the same
 * worker decisions; timing differs from run to run, since real processes and sockets are involved.
 */
import { setMaxListeners } from "node:events";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { snapshotBuild } from "./build-snapshot.js";
import { checkHistory, type CheckReport } from "./checker.js";
import { ChaosCluster, type NodeLifeEvent } from "./cluster.js";
import { drainQueues } from "./drain.js";
import { HistoryRecorder, readHistory } from "./history.js";
import { runNemesis } from "./nemesis.js";
import { Prng } from "./prng.js";
import { formatSummary, writeReport, type RunFiles } from "./report.js";
import { sampleStatuses } from "./sampler.js";
import { describePlannedFault, planFaults, type PlannedFault, type ScheduleOptions } from "./schedule.js";
import { createQueues, DEFAULT_WORKLOAD, runWorkload, type WorkloadOptions } from "./workload.js";

/** What to run. */
export interface ChaosRunOptions {
  /** Replays the schedule and the workers' decisions. */
  readonly seed: number;
  /** Cluster size (3 or 5). */
  readonly nodes: number;
  /** How long the workload and the faults run, before healing and draining. */
  readonly durationMs: number;
  /** The run gets its own directory under it. */
  readonly outDir: string;
  /** Run every node with --unsafe-ack-before-commit: the checker must then find lost messages. */
  readonly unsafeAckBeforeCommit?: boolean;
  /** Overrides of the schedule (kinds, durations, leader bias). */
  readonly schedule?: Omit<ScheduleOptions, "durationMs">;
  /** Overrides of the workload shape. */
  readonly workload?: Partial<WorkloadOptions>;
  /** Keep the nodes' data directories even when the run passes (failing runs always keep them). */
  readonly keepData?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Aborting (e.g. on Ctrl-C) stops the run: every process is killed and runChaos rejects. */
  readonly signal?: AbortSignal;
}

/** The outcome of a run. */
export interface ChaosRunResult {
  readonly report: CheckReport;
  readonly files: RunFiles;
  /** The summary table, as printed. */
  readonly summary: string;
}

/** Longest wait for the cluster to recover once every fault is healed. */
const HEAL_TIMEOUT_MS = 30_000;
/** Longest the final drain may take. */
const DRAIN_TIMEOUT_MS = 90_000;
/** Listeners on the end-of-workload signal: one per worker and the nemesis, with room to spare. */
const MAX_ABORT_LISTENERS = 1_000;
/** Longest wait for the queues to be created at the start. */
const CREATE_QUEUES_TIMEOUT_MS = 20_000;

/** Runs one chaos run and checks it. Rejects only when the harness itself cannot go on (or on abort). */
export async function runChaos(options: ChaosRunOptions): Promise<ChaosRunResult> {
  const log = options.log ?? (() => {});
  const workload: WorkloadOptions = { ...DEFAULT_WORKLOAD, ...options.workload };
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const runDir = join(options.outDir, `seed-${options.seed}-${options.nodes}n-${stamp}`);
  mkdirSync(runDir, { recursive: true });
  const files: RunFiles = { runDir, history: join(runDir, "history.jsonl"), report: join(runDir, "report.json") };

  // Forked in a fixed order: the schedule, the workload and the proxies each get their own stream.
  const prng = new Prng(options.seed);
  const scheduleRng = prng.fork();
  const workloadRng = prng.fork();
  const proxyRng = prng.fork();
  const faults = planFaults(scheduleRng, { ...options.schedule, durationMs: options.durationMs });
  writeFileSync(join(runDir, "schedule.txt"), faults.map(describePlannedFault).join("\n") + "\n");
  log(`seed ${options.seed}: ${faults.length} faults planned over ${options.durationMs / 1000}s (${join(runDir, "schedule.txt")})`);

  const history = new HistoryRecorder(files.history, Date.now());
  history.record({
    type: "phase",
    phase: "start",
    detail: {
      seed: options.seed,
      nodes: options.nodes,
      durationMs: options.durationMs,
      unsafeAckBeforeCommit: options.unsafeAckBeforeCommit === true,
      startedAt: new Date(history.startMs).toISOString(),
    },
  });
  let cluster: ChaosCluster | undefined;
  let proxyStats: unknown;
  const build = snapshotBuild(basename(runDir));
  try {
    cluster = await ChaosCluster.start({
      nodes: options.nodes,
      runDir,
      cliMain: build.main,
      prng: proxyRng,
      unsafeAckBeforeCommit: options.unsafeAckBeforeCommit === true,
      onNodeEvent: (event) => history.record(nodeEvent(event)),
    });
    log(`cluster up: ${cluster.ids.map((id, index) => `${id} ${cluster!.addresses[index]}`).join(", ")}`);
    options.signal?.throwIfAborted();
    await runPhases(cluster, history, options, { workload, workloadRng, faults, log });
    proxyStats = cluster.proxyStats();
  } finally {
    await cluster?.close();
    await history.close();
    build.remove();
  }
  options.signal?.throwIfAborted();

  log("checking the history");
  const report = checkHistory(readHistory(files.history));
  writeReport(files.report, report, { schedule: faults.map(describePlannedFault), proxies: proxyStats });
  if (report.valid && !options.keepData) rmSync(join(runDir, "data"), { recursive: true, force: true });
  return { report, files, summary: formatSummary(report, files) };
}

/** Workload and nemesis for the duration, then heal and drain; the sampler runs throughout. */
async function runPhases(
  cluster: ChaosCluster,
  history: HistoryRecorder,
  options: ChaosRunOptions,
  plan: { workload: WorkloadOptions; workloadRng: Prng; faults: readonly PlannedFault[]; log: (line: string) => void },
): Promise<void> {
  const { workload, workloadRng, faults, log } = plan;
  const stopSampling = new AbortController();
  const sampling = sampleStatuses(cluster, history, stopSampling.signal);
  const stopWork = new AbortController();
  // Every worker's pause and the nemesis listen for the end at once; the default warning limit is 10.
  setMaxListeners(MAX_ABORT_LISTENERS, stopWork.signal);
  const abortWork = (): void => {
    if (stopWork.signal.aborted) return;
    history.record({ type: "phase", phase: "workload-end", detail: { interrupted: options.signal?.aborted === true } });
    stopWork.abort();
  };
  options.signal?.addEventListener("abort", abortWork, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await createQueues(cluster.addresses, workload, CREATE_QUEUES_TIMEOUT_MS);
    history.record({ type: "phase", phase: "workload-start", detail: { queues: workload.queues.join(",") } });
    log(`workload and faults running for ${options.durationMs / 1000}s`);
    timer = setTimeout(abortWork, options.durationMs);
    const nemesis = runNemesis(faults, { cluster, history, startTime: history.now(), signal: stopWork.signal, log });
    await Promise.all([nemesis, runWorkload(cluster.addresses, history, workloadRng, workload, stopWork.signal)]);
    options.signal?.throwIfAborted();

    log("healing every fault");
    try {
      const leader = await cluster.healAll(HEAL_TIMEOUT_MS);
      history.record({ type: "phase", phase: "healed", detail: { ok: true, leader } });
    } catch (error) {
      history.record({ type: "phase", phase: "healed", detail: { ok: false, error: (error as Error).message } });
    }
    log("draining every queue");
    history.record({ type: "phase", phase: "drain-start", detail: {} });
    const drain = await drainQueues(cluster.addresses, workload.queues, history, DRAIN_TIMEOUT_MS, options.signal);
    options.signal?.throwIfAborted();
    history.record({ type: "phase", phase: "drain-end", detail: { complete: drain.complete, remaining: JSON.stringify(drain.remaining) } });
  } finally {
    clearTimeout(timer);
    abortWork();
    options.signal?.removeEventListener("abort", abortWork);
    stopSampling.abort();
    await sampling;
    history.record({ type: "phase", phase: "end", detail: {} });
  }
}

/** A node lifecycle event as a history event. */
function nodeEvent(event: NodeLifeEvent): Parameters<HistoryRecorder["record"]>[0] {
  if (event.event === "started") {
    return { type: "node", node: event.node, incarnation: event.incarnation, event: "started", detail: `pid ${event.pid ?? "?"}` };
  }
  const { code, signal } = event.exit;
  return {
    type: "node",
    node: event.node,
    incarnation: event.incarnation,
    event: "exited",
    requested: event.requested,
    detail: signal ? `killed by ${signal}` : `exit code ${code}`,
  };
}
