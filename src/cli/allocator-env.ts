/**
 * The glibc malloc settings a raftq node runs with. By default glibc raises its mmap threshold each time
 * a big block is freed, so the queue bookkeeping's big typed arrays (tens of MB, regrown as a backlog
 * grows or is rebuilt at start) move onto the heap, and what they leave when freed is never given back.
 * `make bench-backlog` (1,000,000 messages with a key each) measured 354–384 MB per node without these
 * settings and 270–279 MB with them. A fixed mmap threshold keeps big blocks in mmap (returned when
 * freed), the trim threshold gives back the heap's free top, and two arenas bound LevelDB's per-thread
 * ones. The threshold is 64 KiB, below a body group record of 1,000 small messages (about 106 KB): at
 * 128 KiB those records, received in a snapshot, left a joining node at 302–335 MB instead of 278 MB.
 * They must be in the environment when the process starts: bin/raftq and every launcher in this
 * repository (local clusters, chaos, benchmarks, tests) set them.
 */
export const NODE_ALLOCATOR_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "65536",
  MALLOC_TRIM_THRESHOLD_: "65536",
};

/** `base` plus each allocator setting it does not set itself (an operator's own value wins). */
export function withAllocatorEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...NODE_ALLOCATOR_ENV, ...base };
}

/** The allocator settings missing from `env`. */
export function missingAllocatorSettings(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.keys(NODE_ALLOCATOR_ENV).filter((name) => env[name] === undefined);
}
