import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/queue/errors.js";
import { QueueStateMachine } from "../../src/queue/state-machine.js";
import { DEFAULT_SETTINGS } from "../../src/queue/settings.js";
import { cmd, msg, ok, refused } from "./helpers.js";

describe("create queue", () => {
  it("creates with defaults for fields left 0", () => {
    const sm = new QueueStateMachine();
    expect(ok(sm.apply(cmd.create("q", 0)))).toEqual({ created: true });
    expect(sm.settingsOf("q")).toEqual(DEFAULT_SETTINGS);
  });

  it("is idempotent for identical settings, defaults included", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 10 })));
    expect(ok(sm.apply(cmd.create("q", 1, { maxLength: 10 })))).toEqual({ created: false });
    expect(ok(sm.apply(cmd.create("q", 1, { maxLength: 10, visibilityTimeoutMs: 30_000 })))).toEqual({
      created: false,
    });
  });

  it("refuses different settings with ALREADY_EXISTS naming the difference", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.create("q", 0, { maxLength: 10 })));
    const error = refused(sm.apply(cmd.create("q", 1, { maxLength: 20 })), ErrorCode.AlreadyExists);
    expect(error.message).toContain("max_length is 10, not 20");
  });

  it("refuses invalid names with a readable reason", () => {
    const sm = new QueueStateMachine();
    const error = refused(sm.apply(cmd.create("a b", 0)), ErrorCode.InvalidArgument);
    expect(error.message).toBe(
      `queue name "a b" is invalid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  });
});

describe("delete, purge and list", () => {
  it("deletes a queue with its messages, and reports a missing one", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a"])));
    expect(ok(sm.apply(cmd.remove("q", 1)))).toEqual({ deleted: true });
    expect(ok(sm.apply(cmd.remove("q", 2)))).toEqual({ deleted: false });
    expect(sm.stats("q", 2).ok).toBe(false);
    expect(ok(sm.apply(cmd.enqueue("q", 3, ["b"]))).ids).toEqual([1]);
  });

  it("purges ready, delayed and leased messages and counts them", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b", msg("c", { delayMs: 100 })])));
    ok(sm.apply(cmd.lease("q", 0)));
    expect(ok(sm.apply(cmd.purge("q", 1)))).toEqual({ purged: 3 });
    expect(ok(sm.stats("q", 1000))).toEqual({
      ready: 0,
      inFlight: 0,
      delayed: 0,
      enqueuedTotal: 3,
      ackedTotal: 0,
      deadLetteredTotal: 0,
      purgedTotal: 3,
    });
    expect(ok(sm.apply(cmd.ack("q", 2, { ids: [1] }))).acked).toBe(0);
    refused(sm.apply(cmd.purge("missing", 2)), ErrorCode.NotFound);
  });

  it("lists queue names sorted", () => {
    const sm = new QueueStateMachine();
    for (const name of ["b", "a", "c.1"]) ok(sm.apply(cmd.create(name, 0)));
    ok(sm.apply(cmd.remove("b", 0)));
    expect(sm.listQueues()).toEqual(["a", "c.1"]);
  });
});

describe("stats", () => {
  it("counts every state and the totals", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", "b", "c", msg("d", { delayMs: 1000 })])));
    ok(sm.apply(cmd.lease("q", 0, 2, 500)));
    ok(sm.apply(cmd.ack("q", 1, { ids: [1] })));
    expect(ok(sm.stats("q", 1))).toEqual({
      ready: 1,
      inFlight: 1,
      delayed: 1,
      enqueuedTotal: 4,
      ackedTotal: 1,
      deadLetteredTotal: 0,
      purgedTotal: 0,
    });
  });

  it("views the queue as of the read's time without changing it", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 0, ["a", msg("b", { delayMs: 1000 })])));
    ok(sm.apply(cmd.lease("q", 0, 1, 500)));
    expect(ok(sm.stats("q", 1000))).toMatchObject({ ready: 2, inFlight: 0, delayed: 0 });
    expect(ok(sm.stats("q", 0))).toMatchObject({ ready: 0, inFlight: 1, delayed: 1 });
  });

  it("never views a time before the log time", () => {
    const sm = new QueueStateMachine();
    ok(sm.apply(cmd.enqueue("q", 1000, [msg("a", { delayMs: 10 })])));
    ok(sm.apply(cmd.create("other", 2000)));
    expect(ok(sm.stats("q", 0))).toMatchObject({ ready: 1, delayed: 0 });
  });
});
