/** What the benchmark ran on: cores, CPU model, Node version, and how busy the machine was. */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";

/** The machine and runtime of a run. */
export interface Machine {
  /** Cores this process may use (what `nproc` prints). */
  readonly cpus: number;
  /** "model name" of the first CPU in /proc/cpuinfo, or "unknown". */
  readonly cpuModel: string;
  readonly nodeVersion: string;
}

/** Describes this machine. */
export function describeMachine(): Machine {
  return { cpus: availableParallelism(), cpuModel: cpuModel(), nodeVersion: process.version };
}

/** The 1-minute load average now. */
export function loadAverage1m(): number {
  return loadavg()[0]!;
}

function cpuModel(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((text) => text.startsWith("model name"));
    return line?.split(":")[1]?.trim() || "unknown";
  } catch {
    return "unknown";
  }
}
