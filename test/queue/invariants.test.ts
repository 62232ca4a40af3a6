import { describe, expect, it } from "vitest";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, expectBalanced, seededRandom } from "./helpers.js";
import { RandomCommands } from "./random-commands.js";

const SEEDS = [7, 99, 2024, 31337];
const COMMANDS_PER_SEED = 3000;

/** Everything the reads say about every queue at `atMs`. */
function view(sm: QueueStateMachine, atMs: number): unknown {
  const queues = sm.listQueues(atMs);
  return { queues, stats: queues.map((queue) => sm.stats(queue, atMs)), ready: queues.map((q) => sm.hasReady(q, atMs)) };
}

describe("invariants under random commands", () => {
  it.each(SEEDS)("hold after every command (seed %i)", (seed) => {
    const random = seededRandom(seed);
    const script = new RandomCommands(random);
    const sm = new QueueStateMachine();
    const lastIdByQueue = new Map<string, number>();
    for (let step = 0; step < COMMANDS_PER_SEED; step++) {
      const command = script.next();
      const atMs = Math.max(sm.nowMs, command.nowMs);
      const readyBefore = sm.hasReady(command.queue, atMs);
      const wakeBefore = sm.nextWakeMs(command.queue);
      const applied = sm.apply(command);
      script.observe(applied);

      if (applied.kind === "lease" && applied.ok) {
        // A read predicts what a lease at the same time returns; wake-up times are never late.
        expect(applied.value.deliveries.length > 0).toBe(readyBefore);
        if (readyBefore) expect(wakeBefore ?? Infinity).toBeLessThanOrEqual(atMs);
      }
      if (applied.kind === "enqueue" && applied.ok) {
        const fresh = applied.value.ids.filter((_, i) => !applied.value.duplicates[i]);
        const previous = lastIdByQueue.get(command.queue) ?? 0;
        expect(fresh).toEqual([...fresh].sort((a, b) => a - b));
        if (fresh.length > 0) expect(fresh[0]).toBeGreaterThan(previous);
        lastIdByQueue.set(command.queue, fresh.at(-1) ?? previous);
      }
      if (command.kind === "deleteQueue") lastIdByQueue.delete(command.queue);

      for (const queue of sm.listQueues()) {
        const stats = sm.stats(queue, sm.nowMs);
        if (!stats.ok) throw stats.error;
        expectBalanced(queue, stats.value);
        // A lease would return a message exactly when the counts say one is ready, and no wake-up is late.
        expect(sm.hasReady(queue, sm.nowMs), queue).toBe(stats.value.ready > 0);
        if (stats.value.ready > 0) expect(sm.nextWakeMs(queue) ?? Infinity).toBeLessThanOrEqual(sm.nowMs);
      }

      // The read-only view of a later time, of every queue, matches what processing that time actually does.
      if (random() < 0.1) {
        const laterMs = sm.nowMs + Math.floor(random() * 400);
        const predicted = view(sm, laterMs);
        sm.apply(cmd.ack(command.queue, laterMs, {}));
        expect(view(sm, laterMs)).toEqual(predicted);
      }
    }
  });
});
