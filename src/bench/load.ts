/**
 * The closed-loop driver every throughput workload uses: `concurrency` callers, each starting its next
 * operation as soon as the previous one answers, for a fixed time after a warm-up. Throughput and latency
 * come from the operations that finished inside the measured window.
 */
import { performance } from "node:perf_hooks";
import type { CpuMeter, CpuPerMessage } from "./cpu-meter.js";
import { percentile } from "./stats.js";

/** How to drive one workload. */
export interface LoadOptions {
  /** Operations in flight at once (1..1024). */
  readonly concurrency: number;
  /** Time before measuring starts: connections open, JIT warms up; nothing is recorded. */
  readonly warmupMs: number;
  /** Length of the measured window. */
  readonly durationMs: number;
  /** Messages (or records) one operation carries: 100 for a batch of 100. */
  readonly messagesPerOp: number;
  /** One operation; rejects on failure. */
  readonly op: () => Promise<unknown>;
  /** Measures the CPU of the measured window, when given. */
  readonly cpu?: CpuMeter;
}

/** What one closed-loop run measured. */
export interface LoadResult {
  /** Messages per second over the measured window. */
  readonly messagesPerSecond: number;
  /** Operation latency percentiles (ms) of the measured window. */
  readonly latencyMsP50: number;
  readonly latencyMsP99: number;
  /** Operations that finished inside the window. */
  readonly ops: number;
  /** Operations that failed (any time); each one is a finding, the first is kept. */
  readonly errors: number;
  readonly firstError: string | undefined;
  /** CPU per message over the measured window, when a meter was given. */
  readonly cpu?: CpuPerMessage;
}

/** Failures after which a run stops: the workload is broken, not slow. */
const MAX_ERRORS = 100;
/** Most latencies one run keeps (a few MB); more would mean a rate no 2-core box reaches. */
const MAX_SAMPLES = 5_000_000;
export const MAX_CONCURRENCY = 1024;

/** Runs the workload; resolves when the window is over and every operation in flight has answered. */
export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const { concurrency, warmupMs, durationMs, messagesPerOp, op, cpu } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
    throw new RangeError(`concurrency must be an integer in 1..${MAX_CONCURRENCY}, got ${concurrency}`);
  }
  const windowStartMs = performance.now() + warmupMs;
  const windowEndMs = windowStartMs + durationMs;
  const latenciesMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;

  const caller = async (): Promise<void> => {
    while (performance.now() < windowEndMs && errors < MAX_ERRORS && latenciesMs.length < MAX_SAMPLES) {
      const startMs = performance.now();
      try {
        await op();
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        continue;
      }
      const endMs = performance.now();
      if (endMs >= windowStartMs && endMs <= windowEndMs) latenciesMs.push(endMs - startMs);
    }
  };
  const cpuStart = cpu && setTimeout(() => cpu.start(), warmupMs);
  const cpuStop = cpu && setTimeout(() => cpu.stop(), warmupMs + durationMs);
  await Promise.all(Array.from({ length: concurrency }, caller));
  clearTimeout(cpuStart);
  clearTimeout(cpuStop);
  const cpuPerMessage = cpu?.perMessage(latenciesMs.length * messagesPerOp);
  if (errors >= MAX_ERRORS) throw new Error(`${errors} operations failed, the first with: ${firstError}`);
  return {
    messagesPerSecond: (latenciesMs.length * messagesPerOp) / (durationMs / 1000),
    latencyMsP50: percentile(latenciesMs, 50),
    latencyMsP99: percentile(latenciesMs, 99),
    ops: latenciesMs.length,
    errors,
    firstError,
    ...(cpuPerMessage ? { cpu: cpuPerMessage } : {}),
  };
}
