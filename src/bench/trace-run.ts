/**
 * `make bench-trace`: where one closed loop's time goes, stage by stage. Starts a fresh local 3-node
 * cluster with the cycle trace on (node/cycle-trace.ts), runs the SDK publisher with IN_FLIGHT messages in
 * flight (64 by default; 1 shows a lone message's way) for SECONDS, stops the nodes gracefully (so they
 * write their last trace lines) and prints the stages
 * (bench/cycle-report.ts). Tracing costs little but not nothing: compare its stages with each other, and
 * its rate with `make bench` only loosely.
 *
 * Run it through make (the trace must be switched on before this process loads):
 *   RAFTQ_CYCLE_TRACE=<dir> node dist/src/bench/trace-run.js --seconds 6 [--in-flight 64]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { snapshotBuild } from "../chaos/build-snapshot.js";
import { freePorts } from "../chaos/ports.js";
import { connect } from "../client/index.js";
import { CYCLE_TRACE_ENV, cycleTrace } from "../node/cycle-trace.js";
import { Cleanup } from "./cleanup.js";
import { BenchCluster } from "./cluster.js";
import { cycleReport, readTraceDirectory, renderCycleReport } from "./cycle-report.js";
import { closedLoop, MAX_CONCURRENCY } from "./load.js";

const QUEUE = "trace";
const BODY_BYTES = 100;
const DEFAULT_IN_FLIGHT = 64;
const WARMUP_MS = 1_000;
const MAX_SECONDS = 120;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string", default: "6" }, "in-flight": { type: "string", default: String(DEFAULT_IN_FLIGHT) } },
  });
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_SECONDS) throw new Error(`--seconds ${values.seconds} is out of range: use 1 to ${MAX_SECONDS}`);
  const inFlight = Number(values["in-flight"]);
  if (!Number.isSafeInteger(inFlight) || inFlight < 1 || inFlight > MAX_CONCURRENCY) {
    throw new Error(`--in-flight ${values["in-flight"]} is out of range: use an integer from 1 to ${MAX_CONCURRENCY}`);
  }
  const traceDir = process.env[CYCLE_TRACE_ENV];
  if (!traceDir || !cycleTrace) throw new Error(`${CYCLE_TRACE_ENV} is not set: run \`make bench-trace\`, which sets it to a fresh directory`);
  cycleTrace.rename("client");

  const cleanup = new Cleanup();
  const root = mkdtempSync(join(tmpdir(), "raftq-trace-"));
  cleanup.add(() => rmSync(root, { recursive: true, force: true }));
  try {
    const snapshot = snapshotBuild(`trace-${process.pid}`);
    cleanup.add(() => snapshot.remove());
    const ports = await freePorts(3);
    // The nodes inherit RAFTQ_CYCLE_TRACE and write their own files into the same directory.
    const cluster = await BenchCluster.start({ ports, root, cliMain: snapshot.main });
    cleanup.add(() => cluster.close());
    const client = connect({ addresses: cluster.addresses });
    cleanup.add(() => client.close());
    await client.createQueue(QUEUE);
    const publisher = client.publisher(QUEUE, { maxInFlight: inFlight });
    const body = Buffer.alloc(BODY_BYTES, "x");
    // The first publish and the first answer of each event-loop turn: the client's side of the cycle.
    let publishedThisTurn = false;
    let answeredThisTurn = false;
    const endOfTurn = (): void => {
      publishedThisTurn = false;
      answeredThisTurn = false;
    };
    const publish = async (): Promise<void> => {
      if (!publishedThisTurn) {
        publishedThisTurn = true;
        cycleTrace?.record("client-published");
        setImmediate(endOfTurn);
      }
      await publisher.publish(body);
      if (!answeredThisTurn) {
        answeredThisTurn = true;
        cycleTrace?.record("client-answered");
        setImmediate(endOfTurn);
      }
    };
    const result = await closedLoop({ concurrency: inFlight, messagesPerOp: 1, op: publish, warmupMs: WARMUP_MS, durationMs: seconds * 1000 });
    await publisher.close();
    console.log(`EnqueueStream, ${inFlight} in flight, traced: ${Math.round(result.messagesPerSecond)} msg/s, p50 ${result.latencyMsP50.toFixed(2)} ms (${result.errors} errors)`);
    for (const id of cluster.ids) await cluster.stop(id);
    cycleTrace.flush();
    console.log(renderCycleReport(cycleReport(readTraceDirectory(traceDir))));
  } finally {
    await cleanup.run();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
