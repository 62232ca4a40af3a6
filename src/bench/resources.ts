/** What a node process costs the machine: resident memory from /proc, and its data directory's size on disk. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Resident set size (VmRSS of /proc/<pid>/status) in bytes; undefined when the process is gone or not on Linux. */
export function residentBytes(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc times: sysconf(_SC_CLK_TCK), which Linux fixes at 100 for user space. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system, every thread) that process `pid` has used, in ms, from /proc/<pid>/stat;
 * undefined when the process is gone or not on Linux.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The sum of the sizes of every file under `dir`, recursively (like `du --apparent-size -s`). Files that
 * vanish while it walks (LevelDB compacting) count as 0; a missing directory is 0 bytes.
 */
export function directoryBytes(dir: string): number {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += directoryBytes(path);
    else if (entry.isFile()) total += fileBytes(path);
  }
  return total;
}

/** "12.3 MB" (MiB, one decimal); "n/a" for undefined. */
export function formatMegabytes(bytes: number | undefined): string {
  return bytes === undefined ? "n/a" : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
