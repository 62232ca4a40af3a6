/**
 * What a benchmark run produced, and how it is told: the results table with ratios to the bare limits, the
 * failover and election figures, the targets of the issue, the JSON record and docs/benchmarks.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PROTO_DIR } from "../protocol/proto-files.js";
import { ELECTION_POLL_INTERVAL_MS, type ElectionCount } from "./elections.js";
import type { Machine } from "./machine.js";
import { spread, type Spread } from "./stats.js";
import { formatNumber, formatSpread, renderTable, type Row } from "./table.js";
import type { CpuPerMessage } from "./cpu-meter.js";
import type { FailoverResult } from "./workloads.js";

/** The workloads measured for throughput, raftq's and the bare ones. */
export type WorkloadKey =
  | "enqueue1"
  | "stream64"
  | "unary64"
  | "batch100x8"
  | "drainDequeue"
  | "drainDequeueOverlap"
  | "drainSubscribe"
  | "bareUnary1"
  | "bareUnary64"
  | "bareStream64"
  | "levelPut"
  | "levelBatch100";

/** One run's figures of one workload; latencies only where single operations were timed. */
export interface Figure {
  readonly messagesPerSecond: number;
  readonly latencyMsP50?: number;
  readonly latencyMsP99?: number;
  /** Operations that failed during the run (expected 0) and the first failure. */
  readonly errors?: number;
  readonly firstError?: string;
  /** CPU per message over the measured window: the serving processes' and the client's. */
  readonly cpu?: CpuPerMessage;
}

/** Every run of one workload. */
export interface Series {
  readonly key: WorkloadKey;
  readonly title: string;
  readonly unit: "msg/s" | "records/s";
  /** The bare workload this one is divided by, run by run. */
  readonly bare?: WorkloadKey;
  readonly runs: Figure[];
}

/** Everything one `make bench` measured. */
export interface BenchResults {
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly command: string;
  readonly settings: {
    readonly runs: number;
    readonly measuredMsPerRun: number;
    readonly warmupMsPerRun: number;
    readonly bodyBytes: number;
    readonly drainMessages: number;
    readonly client: string;
  };
  readonly machine: Machine;
  readonly loadAverage1m: { readonly before: number; readonly highest: number };
  readonly series: readonly Series[];
  readonly failovers: readonly FailoverResult[];
  readonly elections: ElectionCount;
}

/** The results table: raftq's workloads with their ratios, then the bare limits. */
export function resultRows(results: BenchResults): Row[] {
  return results.series.map((series) => {
    const bare = series.bare === undefined ? undefined : seriesOf(results, series.bare);
    const latency = series.runs.every((run) => run.latencyMsP50 !== undefined);
    return {
      workload: series.title,
      rate: spread(series.runs.map((run) => run.messagesPerSecond)),
      unit: series.unit,
      ...(latency ? { latencyMsP50: spreadOf(series, "latencyMsP50"), latencyMsP99: spreadOf(series, "latencyMsP99") } : {}),
      ...(bare ? { ratio: ratioSpread(series, bare), ratioTo: bare.title } : {}),
    };
  });
}

/**
 * CPU per message of each workload (median of its runs): of the processes serving it (the three nodes,
 * or the echo server; none for LevelDB, which runs in the client) and of the client process.
 */
export function renderCpu(results: BenchResults): string {
  const rows = results.series.flatMap((series) => {
    const runs = series.runs.flatMap((run) => (run.cpu ? [run.cpu] : []));
    if (runs.length === 0) return [];
    const servers = spread(runs.map((cpu) => cpu.serversUs));
    const client = spread(runs.map((cpu) => cpu.clientUs));
    const total = spread(runs.map((cpu) => cpu.serversUs + cpu.clientUs));
    return [`| ${series.title} | ${formatSpread(servers, 0)} | ${formatSpread(client, 0)} | ${formatSpread(total, 0)} |`];
  });
  if (rows.length === 0) return "No CPU figures were measured.";
  return [
    "| CPU per message (µs, user + system, all threads), median (min–max) | Serving processes | Client | Total |",
    "|---|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

/** The failover figures over every run. */
export function renderFailover(results: BenchResults): string {
  const runs = results.failovers;
  if (runs.length === 0) return "No failover was run.";
  const line = (what: string, values: number[]): string => `| ${what} | ${formatSpread(spread(values), 0)} |`;
  const sum = (pick: (run: FailoverResult) => number): string => formatNumber(runs.reduce((total, run) => total + pick(run), 0), 0);
  return [
    "| Failover: SIGKILL of the leader under 1-in-flight Enqueue load | ms, median (min–max) |",
    "|---|---:|",
    line("Longest gap between successful enqueues", runs.map((run) => run.longestGapMs)),
    line("From the kill to the first successful enqueue", runs.map((run) => run.firstSuccessAfterKillMs)),
    line("Restart of the killed node until all 3 agree on a leader", runs.map((run) => run.rejoinMs)),
    "",
    `Acknowledged enqueues over ${runs.length} run(s): ${sum((run) => run.acknowledged)}; missing afterwards: ` +
      `**${sum((run) => run.missing)}**; found twice: ${sum((run) => run.duplicates)}; enqueues that failed (outcome unknown): ` +
      `${sum((run) => run.failed)}. Killed: ${runs.map((run) => run.killedId).join(", ")}.`,
  ].join("\n");
}

/** The election count. */
export function renderElections(results: BenchResults): string {
  const { elections } = results;
  const changes = elections.changes.map((change) => `${change.fromTerm}→${change.toTerm}${change.deliberate ? ` (${change.deliberate})` : " (spurious)"}`);
  return (
    `**${elections.spurious}** election(s) besides the ${elections.deliberateWindows} deliberate failover(s), from term changes seen ` +
    `by polling every node's Status every ${ELECTION_POLL_INTERVAL_MS} ms for the whole run (${formatNumber(elections.polls, 0)} polls). ` +
    `Term changes: ${changes.length === 0 ? "none" : changes.join(", ")}.`
  );
}

/** The targets of the issue, each against the median measured. */
export function renderTargets(results: BenchResults): string {
  const rate = (key: WorkloadKey): number => spread(seriesOf(results, key).runs.map((run) => run.messagesPerSecond)).median;
  const unaryRatio = ratioSpread(seriesOf(results, "unary64"), seriesOf(results, "bareUnary64")).median;
  const p50 = spreadOf(seriesOf(results, "enqueue1"), "latencyMsP50").median;
  const gap = spread(results.failovers.map((run) => run.longestGapMs)).median;
  const spurious = results.elections.spurious;
  const rows: Array<[string, string, boolean]> = [
    ["Enqueue, 64 in flight through EnqueueStream ≥ 16,700 msg/s", `${formatNumber(rate("stream64"), 0)} msg/s`, rate("stream64") >= 16_700],
    ["Unary Enqueue, 64 in flight ≥ 60% of bare unary echo at 64", `${formatNumber(unaryRatio * 100, 0)}%`, unaryRatio >= 0.6],
    ["Enqueue, 1 in flight: p50 ≤ 1.2 ms", `${formatNumber(p50, 2)} ms`, p50 <= 1.2],
    ["Drain ≥ 22,000 msg/s (Dequeue 100 + Ack, each Ack awaited)", `${formatNumber(rate("drainDequeue"), 0)} msg/s`, rate("drainDequeue") >= 22_000],
    [
      "Drain ≥ 22,000 msg/s (Dequeue 100 + Ack, next Dequeue during the Ack)",
      `${formatNumber(rate("drainDequeueOverlap"), 0)} msg/s`,
      rate("drainDequeueOverlap") >= 22_000,
    ],
    ["Drain ≥ 22,000 msg/s (Subscribe, prefetch 100)", `${formatNumber(rate("drainSubscribe"), 0)} msg/s`, rate("drainSubscribe") >= 22_000],
    ["Failover gap median < 500 ms, no spurious elections", `${formatNumber(gap, 0)} ms, ${spurious} spurious`, gap < 500 && spurious === 0],
    ["EnqueueBatch of 100 × 8 in flight ≥ 100,000 msg/s", `${formatNumber(rate("batch100x8"), 0)} msg/s`, rate("batch100x8") >= 100_000],
  ];
  return [
    "| Target (from the issue, for this machine) | Measured (median) | Met |",
    "|---|---:|---|",
    ...rows.map(([target, measured, met]) => `| ${target} | ${measured} | ${met ? "yes" : "**no**"} |`),
  ].join("\n");
}

/** Failed operations during throughput runs (each is a finding), one line per workload. */
export function errorNotes(results: BenchResults): string[] {
  return results.series.flatMap((series) => {
    const errors = series.runs.reduce((total, run) => total + (run.errors ?? 0), 0);
    const first = series.runs.find((run) => run.firstError !== undefined)?.firstError;
    return errors === 0 ? [] : [`${series.title}: ${errors} operation(s) failed; first: ${first}`];
  });
}

/** What is printed at the end of a run. */
export function renderSummary(results: BenchResults): string {
  const errors = errorNotes(results);
  return [
    renderTable(resultRows(results)),
    "",
    renderCpu(results),
    "",
    renderFailover(results),
    "",
    renderElections(results),
    "",
    renderTargets(results),
    ...(errors.length > 0 ? ["", "Failed operations:", ...errors.map((line) => `- ${line}`)] : []),
  ].join("\n");
}

/** docs/benchmarks.md for this run. */
export function renderDoc(results: BenchResults): string {
  const { machine, settings, loadAverage1m } = results;
  const busy = loadAverage1m.before >= machine.cpus / 2;
  const load =
    `1-minute load average ${formatNumber(loadAverage1m.before, 2)} just before the run, at most ` +
    `${formatNumber(loadAverage1m.highest, 2)} during it, on ${machine.cpus} cores. ` +
    (busy
      ? "The machine was shared and already loaded by other processes (e.g. other people's test runs) when the bench started, " +
        "so the absolute numbers are low and noisy; the ratios to the bare baselines, measured in the same runs, are the steadier figures."
      : "The machine looked idle when the bench started.");
  const errors = errorNotes(results);
  return [
    "# raftq benchmarks",
    "",
    "Written by `make bench` (src/bench/): every run rewrites this file with what it measured.",
    "",
    `- **Date:** ${results.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC")} (the run took ${formatNumber(results.elapsedMs / 60_000, 1)} min)`,
    `- **Command:** \`${results.command}\``,
    `- **Machine:** ${machine.cpus} cores (\`nproc\`), ${machine.cpuModel}, Node ${machine.nodeVersion}`,
    `- **Load:** ${load}`,
    `- **Method:** a local 3-node cluster (\`raftq serve\`, fresh data dirs in a temp dir, every node fsyncs), one client process ` +
      `using ${settings.client}, ${settings.bodyBytes}-byte bodies. Every figure is the median of ${settings.runs} run(s) with (min–max); ` +
      `a throughput run measures ${formatNumber(settings.measuredMsPerRun / 1000, 1)} s after a ${formatNumber(settings.warmupMsPerRun / 1000, 1)} s warm-up. ` +
      "A ratio divides each run's raftq figure by the bare figure measured in the same run. Bare gRPC: an echo server in its own " +
      "process with raw Buffer (de)serializers; bare LevelDB: `level` writes with `{ sync: true }` in the temp dir.",
    "",
    "## Results",
    "",
    renderTable(resultRows(results)),
    "",
    "Where the CPU goes: each workload's measured window, per message. On 2 cores shared by the client and three nodes, " +
      "throughput is bounded by the cores over the total.",
    "",
    renderCpu(results),
    "",
    renderFailover(results),
    "",
    renderElections(results),
    ...(errors.length > 0 ? ["", "Failed operations during the throughput runs:", "", ...errors.map((line) => `- ${line}`)] : []),
    "",
    "## Targets",
    "",
    renderTargets(results),
    "",
    "## How to run",
    "",
    "```",
    "make bench                         # about 5 minutes: 3 runs of every workload, 5 s each",
    "make bench BENCH_SECONDS=3 RUNS=1  # a quick check",
    "make bench-trace                   # one EnqueueStream cycle, stage by stage (p50 / p90 / mean ms)",
    "```",
    "",
    "It builds, starts a 3-node cluster and the bare echo server on free ports, prints progress and the table, writes",
    "the full figures to `.work/bench/results-<timestamp>.json` and rewrites this file. Every process it starts is",
    "killed when it ends, fails or is interrupted (Ctrl-C). Node logs stay in the printed temp dir when a run fails.",
    "The machine's load matters: compare ratios, not absolute numbers, between machines or busy moments.",
    "",
    ...handKeptFindings(),
  ].join("\n");
}

/** Writes the results as JSON under `dir`; returns the file's path. */
export function writeJson(results: BenchResults, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `results-${results.startedAt.replace(/[:.]/g, "-")}.json`);
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  return path;
}

function seriesOf(results: BenchResults, key: WorkloadKey): Series {
  const series = results.series.find((candidate) => candidate.key === key);
  if (!series) throw new Error(`the results hold no "${key}" workload`);
  return series;
}

function spreadOf(series: Series, field: "latencyMsP50" | "latencyMsP99"): Spread {
  return spread(series.runs.map((run) => run[field] ?? Number.NaN));
}

/** Run i of `series` divided by run i of `bare`. */
function ratioSpread(series: Series, bare: Series): Spread {
  return spread(series.runs.map((run, index) => run.messagesPerSecond / (bare.runs[index]?.messagesPerSecond ?? Number.NaN)));
}

/** The hand-written profile findings (docs/performance-findings.md), which a rewrite must keep. */
function handKeptFindings(): string[] {
  const path = join(dirname(PROTO_DIR), "docs", "performance-findings.md");
  return existsSync(path) ? [readFileSync(path, "utf8").trimEnd(), ""] : [];
}
