/**
 * `make bench-backlog-store`: how the LevelDB queue store holds a large backlog. It fills a fresh store
 * with MESSAGES × 100-byte messages in one queue through apply/persist (1000 messages per entry, as
 * EnqueueBatch writes them), reports the process's RSS after a full GC, closes it, then reopens the store
 * in a fresh child process and reports the time to open and rebuild memory, that process's RSS and its
 * peak RSS while rebuilding. With --keys every message carries its own idempotency key (a UUID, as the
 * SDK sends by default), all within the dedup window, so the restart also rebuilds the dedup index.
 *
 *   node --expose-gc dist/src/bench/backlog-store.js --messages 1000000 [--keys]
 *
 * The child mode (--reopen <dir>) is this same script; it prints one JSON line for the parent.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { directoryBytes, residentBytes } from "./resources.js";
import type { NewMessage } from "../queue/commands.js";
import { openRootLevel } from "../storage/level-raft-storage.js";
import { QueueStore } from "../storage/queue-store.js";
import { StoreFeeder } from "./store-feeder.js";

const QUEUE = "backlog";
const BODY_BYTES = 100;
const MESSAGES_PER_ENTRY = 1000;
const MAX_MESSAGES = 10_000_000;
/** The child process gets this long to open and rebuild before the bench fails. */
const REOPEN_TIMEOUT_MS = 120_000;

/** What the reopening child reports. */
interface ReopenReport {
  readonly openMs: number;
  readonly rssBytes: number;
  readonly heapBytes: number;
  /** The most RSS the process ever held, through open and rebuild. */
  readonly peakRssBytes: number;
  readonly ready: number;
  readonly firstBodyBytes: number;
}

/** Resident set size after a full GC (if --expose-gc), from /proc when available. */
function rssAfterGc(): { rssBytes: number; heapBytes: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  // Not on Linux, process.memoryUsage().rss is the same figure.
  const rssBytes = residentBytes(process.pid) ?? usage.rss;
  return { rssBytes, heapBytes: usage.heapUsed + usage.external };
}

/** Fills a fresh store in `dir` and returns the fill time and the memory after it. */
async function fill(dir: string, messages: number, keys: boolean): Promise<{ fillMs: number; rssBytes: number; heapBytes: number }> {
  const root = await openRootLevel(dir);
  const store = await QueueStore.open(root);
  const body = new Uint8Array(BODY_BYTES).fill(42);
  const messageOf = (): NewMessage => ({ body, idempotencyKey: keys ? randomUUID() : "", delayMs: 0, headers: {} });
  const feeder = new StoreFeeder(store);
  const started = performance.now();
  for (let sent = 0; sent < messages; sent += MESSAGES_PER_ENTRY) {
    const batch = Array.from({ length: Math.min(MESSAGES_PER_ENTRY, messages - sent) }, messageOf);
    await feeder.apply({ kind: "enqueue", nowMs: feeder.nowMs, queue: QUEUE, autoCreate: true, messages: batch });
  }
  const fillMs = performance.now() - started;
  const memory = rssAfterGc();
  await store.close();
  await root.close();
  return { fillMs, ...memory };
}

/** Child mode: opens the store in `dir`, rebuilding memory, and reports. */
async function reopen(dir: string): Promise<ReopenReport> {
  const started = performance.now();
  const root = await openRootLevel(dir);
  const store = await QueueStore.open(root);
  const openMs = performance.now() - started;
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  const memory = rssAfterGc();
  const stats = store.machine.stats(QUEUE, store.machine.nowMs);
  const ready = stats.ok ? stats.value.ready : 0;
  // One lease and its body, to show the backlog is readable, not just counted.
  const feeder = new StoreFeeder(store);
  const lease = await feeder.apply({ kind: "lease", nowMs: feeder.nowMs, queue: QUEUE, maxMessages: 1, visibilityTimeoutMs: 0 });
  const leased = lease.kind === "lease" && lease.ok ? lease.value.deliveries : [];
  const [first] = await store.readDeliveries(leased);
  await store.close();
  await root.close();
  return { openMs, ...memory, peakRssBytes, ready, firstBodyBytes: first?.body.byteLength ?? 0 };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { messages: { type: "string", default: "1000000" }, keys: { type: "boolean", default: false }, reopen: { type: "string" } },
  });
  if (values.reopen !== undefined) {
    console.log(JSON.stringify(await reopen(values.reopen)));
    return;
  }
  const messages = Number(values.messages);
  if (!Number.isSafeInteger(messages) || messages < 1 || messages > MAX_MESSAGES) {
    throw new Error(`--messages ${values.messages} is out of range: use an integer from 1 to ${MAX_MESSAGES}`);
  }
  const dir = mkdtempSync(join(tmpdir(), "raftq-backlog-store-"));
  try {
    const keyed = values.keys ? ", each with an idempotency key" : "";
    console.log(`filling a queue store with ${messages} × ${BODY_BYTES}-byte messages${keyed} (${MESSAGES_PER_ENTRY} per entry) in ${dir}`);
    const filled = await fill(dir, messages, values.keys);
    console.log(`fill: ${(filled.fillMs / 1000).toFixed(1)} s (${Math.round(messages / (filled.fillMs / 1000))} msg/s)`);
    console.log(`after fill, GC'd: RSS ${megabytes(filled.rssBytes)}, JS heap + external ${megabytes(filled.heapBytes)}`);

    const child = spawnSync(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--reopen", dir], {
      encoding: "utf8",
      timeout: REOPEN_TIMEOUT_MS,
    });
    if (child.status !== 0) throw new Error(`the reopening process failed (status ${child.status}): ${child.stderr}`);
    const report = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as ReopenReport;
    console.log(`restart (fresh process): open + rebuild ${(report.openMs / 1000).toFixed(2)} s`);
    console.log(`after restart, GC'd: RSS ${megabytes(report.rssBytes)}, JS heap + external ${megabytes(report.heapBytes)}`);
    console.log(`  peak RSS during open + rebuild ${megabytes(report.peakRssBytes)}; data dir ${megabytes(directoryBytes(dir))}`);
    console.log(`  ${(report.heapBytes / messages).toFixed(1)} bytes of JS heap + external per message (process baseline included)`);
    if (report.ready !== messages) throw new Error(`the reopened store holds ${report.ready} ready messages, expected ${messages}`);
    if (report.firstBodyBytes !== BODY_BYTES) throw new Error(`the first leased body has ${report.firstBodyBytes} bytes, expected ${BODY_BYTES}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
