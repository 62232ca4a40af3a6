import { describe, expect, it } from "vitest";
import { encodeCommand } from "../../src/queue/command-codec.js";
import type { Applied, Undecodable } from "../../src/queue/results.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { plainData, seededRandom } from "./helpers.js";
import { RandomCommands } from "./random-commands.js";

const SEEDS = [1, 2, 3, 42, 1234];
const COMMANDS_PER_SEED = 3000;

/** A result as plain data: errors by code and message, bodies as byte arrays. */
function plain(applied: Applied | Undecodable): unknown {
  if (!applied.ok) return { kind: applied.kind, code: applied.error.code, message: applied.error.message };
  return plainData(applied);
}

function everyStats(sm: QueueStateMachine): unknown {
  return sm.listQueues().map((queue) => ({ queue, stats: sm.stats(queue, sm.nowMs), wake: sm.nextWakeMs(queue) }));
}

describe("determinism", () => {
  it.each(SEEDS)("two machines fed the same commands (seed %i) agree on every result and count", (seed) => {
    const script = new RandomCommands(seededRandom(seed));
    const direct = new QueueStateMachine();
    const replica = new QueueStateMachine();
    for (let step = 0; step < COMMANDS_PER_SEED; step++) {
      const command = script.next();
      const fromObject = direct.apply(command);
      const fromLog = replica.applyEncoded(encodeCommand(command));
      expect(plain(fromLog), `step ${step}: ${command.kind}`).toEqual(plain(fromObject));
      script.observe(fromObject);
    }
    expect(replica.nowMs).toBe(direct.nowMs);
    expect(everyStats(replica)).toEqual(everyStats(direct));
  });
});
