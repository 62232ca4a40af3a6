import { describe, expect, it } from "vitest";
import { decodeCommand, encodeCommand } from "../../src/queue/command-codec.js";
import { COMMAND_KINDS, type Command } from "../../src/queue/commands.js";
import { ErrorCode } from "../../src/queue/errors.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { cmd, msg, ok, plainData, refused } from "./helpers.js";

/** One command of every kind, each field set to a non-default value. */
const SAMPLES: readonly Command[] = [
  cmd.create("orders", 1, {
    maxDeliveries: 5,
    deadLetterQueue: "orders.dlq",
    visibilityTimeoutMs: 45_000,
    maxLength: 500,
    maxMessageBytes: 2048,
    dedupWindowMs: 60_000,
  }),
  cmd.remove("orders", 2),
  cmd.purge("orders", 3),
  cmd.enqueue("orders", 4, [
    msg("first", { idempotencyKey: "key-1", delayMs: 250, headers: { "content-type": "text/plain", trace: "é✓" } }),
    { body: new Uint8Array([0, 255, 0]), idempotencyKey: "", delayMs: 0, headers: {} },
  ]),
  cmd.lease("orders", 5, 10, 60_000),
  cmd.ack("orders", 6, { ids: [1, Number.MAX_SAFE_INTEGER], receipts: ["1.1.1", "a.zz.3"] }),
  cmd.nack("orders", 7, { ids: [3], receipts: ["1.3.2"] }, 1500),
  cmd.extend("orders", 1_700_000_000_000, { ids: [4], receipts: [] }, 120_000),
];

describe("command codec", () => {
  it("has a sample of every command kind", () => {
    expect(SAMPLES.map((command) => command.kind)).toEqual(COMMAND_KINDS);
  });

  it.each(SAMPLES)("round-trips $kind", (command) => {
    const decoded = decodeCommand(encodeCommand(command));
    // Decoded bodies are Buffers (a Uint8Array subclass); compare the bytes.
    expect(plainData(decoded)).toEqual(plainData(command));
  });

  it("round-trips commands whose fields are all defaults", () => {
    const command = cmd.enqueue("q", 0, [msg("")], false);
    expect(plainData(decodeCommand(encodeCommand(command)))).toEqual(plainData(command));
  });

  it("writes protobuf, not JSON", () => {
    const bytes = encodeCommand(cmd.remove("orders", 2));
    expect(bytes[0]).toBe(0x08); // field 1 (now_ms), varint
    expect(bytes.byteLength).toBeLessThan(16);
  });

  it("refuses bytes that are not a command instead of throwing on apply", () => {
    const sm = new QueueStateMachine();
    const garbage = refused(sm.applyEncoded(new Uint8Array([0xff, 0xff, 0xff])), ErrorCode.InvalidArgument);
    expect(garbage.message).toContain("is not a queue command");
    const noKind = refused(sm.applyEncoded(new Uint8Array([0x08, 0x01])), ErrorCode.InvalidArgument);
    expect(noKind.message).toContain("no known kind");
  });

  it("refuses a decoded command whose numbers do not fit in a JS number", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    const huge = encodeCommand({ ...cmd.ack("q", 1, {}), ids: [2 ** 60] });
    refused(sm.applyEncoded(huge), ErrorCode.InvalidArgument);
  });
});
