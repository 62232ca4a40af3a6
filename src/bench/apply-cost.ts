/**
 * `make bench-apply`: what one node's queue state machine costs per message, without gRPC, Raft or other
 * processes: a fresh LevelDB queue store in this process, fed log entries the way a follower gets them
 * and written once per entry (one unsynced LevelDB batch, as a Ready writes the applied state). Each
 * round enqueues ENTRIES entries of PER messages (100-byte bodies, each with its own idempotency key as
 * the SDK sends), leases them PER at a time, then acks each lease. It prints wall time and process CPU
 * (all threads, LevelDB's included) per message for each phase. The cluster benchmark is noisy on a shared
 * machine; this one changes little between runs, so it shows whether a change to the apply path helps.
 *
 *   node dist/src/bench/apply-cost.js [--entries 1500] [--per 100] [--rounds 3]
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { NewMessage } from "../queue/commands.js";
import { openRootLevel } from "../storage/level-raft-storage.js";
import { QueueStore } from "../storage/queue-store.js";
import { StoreFeeder } from "./store-feeder.js";

const QUEUE = "apply-cost";
const BODY_BYTES = 100;
/** Leases outlive the run, so every leased message waits for its ack. */
const VISIBILITY_TIMEOUT_MS = 3_600_000;

interface Options {
  readonly entries: number;
  readonly per: number;
  readonly rounds: number;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: { entries: { type: "string", default: "1500" }, per: { type: "string", default: "100" }, rounds: { type: "string", default: "3" } },
  });
  const number = (name: string, raw: string, max: number): number => {
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < 1 || value > max) throw new Error(`--${name} ${raw} is out of range: use an integer from 1 to ${max}`);
    return value;
  };
  return { entries: number("entries", values.entries, 100_000), per: number("per", values.per, 1_000), rounds: number("rounds", values.rounds, 100) };
}

/** Runs `phase` and prints its wall time and CPU per message. */
async function measure(name: string, messages: number, phase: () => Promise<void>): Promise<void> {
  const cpuBefore = process.cpuUsage();
  const startedMs = performance.now();
  await phase();
  const wallUs = ((performance.now() - startedMs) * 1000) / messages;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuUs = (cpu.user + cpu.system) / messages;
  console.log(`  ${name.padEnd(8)} ${wallUs.toFixed(2).padStart(7)} µs/msg wall, ${cpuUs.toFixed(2).padStart(7)} µs/msg CPU`);
}

async function round(feeder: StoreFeeder, { entries, per }: Options): Promise<void> {
  const body = new Uint8Array(BODY_BYTES).fill(42);
  const messages = entries * per;
  const newMessage = (): NewMessage => ({ body, idempotencyKey: randomUUID(), delayMs: 0, headers: {} });
  await measure("enqueue", messages, async () => {
    for (let entry = 0; entry < entries; entry++) {
      const batch = Array.from({ length: per }, newMessage);
      await feeder.apply({ kind: "enqueue", nowMs: feeder.nowMs, queue: QUEUE, autoCreate: true, messages: batch });
    }
  });
  const leases: number[][] = [];
  await measure("lease", messages, async () => {
    for (let entry = 0; entry < entries; entry++) {
      const result = await feeder.apply({ kind: "lease", nowMs: feeder.nowMs, queue: QUEUE, maxMessages: per, visibilityTimeoutMs: VISIBILITY_TIMEOUT_MS });
      if (result.kind !== "lease" || !result.ok || result.value.deliveries.length !== per) throw new Error(`lease ${entry} did not lease ${per} messages`);
      leases.push(result.value.deliveries.map((delivery) => delivery.id));
    }
  });
  await measure("ack", messages, async () => {
    for (const ids of leases) {
      const result = await feeder.apply({ kind: "ack", nowMs: feeder.nowMs, queue: QUEUE, ids, receipts: [] });
      if (result.kind !== "ack" || !result.ok || result.value.acked !== ids.length) throw new Error(`an ack of ${ids.length} messages did not ack them all`);
    }
  });
}

async function main(): Promise<void> {
  const options = parseOptions();
  const dir = mkdtempSync(join(tmpdir(), "raftq-apply-cost-"));
  try {
    await runIn(dir, options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runIn(dir: string, options: Options): Promise<void> {
  const root = await openRootLevel(dir);
  try {
    const store = await QueueStore.open(root);
    const feeder = new StoreFeeder(store);
    console.log(`queue state machine, one node in-process: ${options.rounds} rounds of ${options.entries} entries × ${options.per} messages (${BODY_BYTES} B, keyed)`);
    for (let at = 1; at <= options.rounds; at++) {
      console.log(`round ${at}${at === 1 ? " (the JIT warms up: compare later rounds)" : ""}`);
      await round(feeder, options);
    }
    await store.close();
  } finally {
    await root.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
