import { describe, expect, it } from "vitest";
import { validateCommand } from "../../src/queue/command-validation.js";
import { ErrorCode } from "../../src/queue/errors.js";
import { formatReceipt, parseReceipt } from "../../src/queue/receipt.js";
import { validateQueueName, validateWaitMs } from "../../src/queue/validation.js";
import { cmd, msg } from "./helpers.js";

describe("queue names", () => {
  it.each(["a", "Orders-2024", "a.b_c-d", "9lives", "x".repeat(128)])("accepts %s", (name) => {
    expect(validateQueueName(name)).toBeUndefined();
  });

  it.each(["", "a b", ".hidden", "-dash", "_under", "é", "x".repeat(129), "a/b"])("refuses %j", (name) => {
    expect(validateQueueName(name)?.code).toBe(ErrorCode.InvalidArgument);
  });

  it("explains the rule", () => {
    expect(validateQueueName("a b")?.message).toBe(
      `queue name "a b" is invalid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  });

  it("quotes at most an excerpt of a huge name", () => {
    expect(validateQueueName("!".repeat(10_000))?.message.length).toBeLessThan(300);
  });
});

describe("receipts", () => {
  it("round-trip", () => {
    const parts = { incarnation: 3, id: Number.MAX_SAFE_INTEGER, deliveryCount: 1000 };
    expect(parseReceipt(formatReceipt(parts))).toEqual(parts);
  });

  it.each(["", "1.1", "1.1.1.1", "0.1.1", "01.1.1", "1.1.0", "1.-1.1", "1.1.A", " 1.1.1", "1.1.1 ", "zzzzzzzzzzz.1.1"])(
    "refuse the malformed %j",
    (receipt) => {
      expect(parseReceipt(receipt)).toBeUndefined();
    },
  );
});

describe("edge validation", () => {
  it("accepts well-formed commands", () => {
    expect(validateCommand(cmd.enqueue("q", 1, [msg("a")]))).toBeUndefined();
    expect(validateCommand(cmd.ack("q", 1, { ids: [1], receipts: ["1.1.1"] }))).toBeUndefined();
  });

  it("refuses negative or fractional times and sizes", () => {
    expect(validateCommand(cmd.lease("q", -1))?.message).toContain("now_ms -1 is out of range");
    expect(validateCommand(cmd.lease("q", 1, 1.5))?.message).toContain("max_messages 1.5 is out of range");
  });

  it("bounds the long-poll wait", () => {
    expect(validateWaitMs(20_000)).toBeUndefined();
    expect(validateWaitMs(20_001)?.code).toBe(ErrorCode.InvalidArgument);
  });
});
