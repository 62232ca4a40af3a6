/**
 * The checker has teeth: a deliberately broken driver (messages sent before the Ready is persisted) is
 * caught by the randomized sweep, both directly (a message promising what is not on disk) and, with that
 * check off, by the damage it does within a bounded number of seeds; and forged histories that break
 * each property are flagged by name.
 */
import { describe, expect, test } from "vitest";
import { EMPTY_MEMBERSHIP, EntryType, MessageType, NO_NODE, Role, type Entry, type RaftStatus } from "../../src/raft/types.js";
import { SafetyChecker, SafetyViolation, type CoreView } from "./checker.js";
import { proposalPayload } from "./payload.js";
import { randomRun, RunFailure } from "./random-run.js";

/** Seeds the sweep may take to find the planted bug. */
const MAX_SEEDS_TO_FIND_PLANTED_BUG = 100;

/** The first seed whose run with the broken driver ends in a SafetyViolation, or null. */
function firstViolation(checkDurablePromises: boolean): RunFailure | null {
  for (let seed = 1; seed <= MAX_SEEDS_TO_FIND_PLANTED_BUG; seed++) {
    try {
      randomRun({ seed, unsafeSendBeforePersist: true, checker: { checkDurablePromises } });
    } catch (error) {
      if (!(error instanceof RunFailure)) throw error;
      // A broken driver may also just wedge the cluster; keep looking for a safety violation.
      if (error.isSafetyViolation) return error;
    }
  }
  return null;
}

test("sending before persisting (unsafeSendBeforePersist) is caught at the first such message", () => {
  const found = firstViolation(true);
  expect(found?.seed).toBe(1);
  expect((found?.cause as SafetyViolation).property).toBe("Durable Promise");
});

test("without the persist-before-send check, the sweep still catches the damage it does", () => {
  const found = firstViolation(false);
  expect(found, `no SafetyViolation within ${MAX_SEEDS_TO_FIND_PLANTED_BUG} seeds: the checker has no teeth`).not.toBeNull();
  console.log(`planted bug caught by its consequences: ${found!.message}`);
});

/** A hand-made core for forging histories: a status and a log. */
function fakeCore(status: Partial<RaftStatus> & { id: string }, log: Entry[]): CoreView {
  const full: RaftStatus = {
    role: Role.Follower,
    term: 0,
    vote: NO_NODE,
    leader: NO_NODE,
    commitIndex: 0,
    appliedIndex: 0,
    lastIndex: log.length,
    firstIndex: 1,
    membership: EMPTY_MEMBERSHIP,
    matchIndex: new Map(),
    transferTarget: NO_NODE,
    ...status,
  };
  return {
    status: () => full,
    entry: (index) => log[index - 1],
    termAt: (index) => (index === 0 ? 0 : log[index - 1]?.term),
    lastIndex: () => log.length,
    hasReady: () => false,
  };
}

function entry(index: number, term: number, seq: number | null): Entry {
  return seq === null
    ? { index, term, type: EntryType.Noop, data: new Uint8Array(0) }
    : { index, term, type: EntryType.Normal, data: proposalPayload(seq) };
}

function expectViolation(property: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SafetyViolation);
    expect((error as SafetyViolation).property).toBe(property);
    return;
  }
  throw new Error(`expected a ${property} violation, none was raised`);
}

describe("the checker flags forged violations", () => {
  const voters = ["n1", "n2", "n3"];

  test("two leaders in one term (Election Safety)", () => {
    // (Promise checks off: this forged history never persisted term 5 for either sender.)
    const checker = new SafetyChecker(voters, { checkDurablePromises: false });
    checker.onSend({ type: MessageType.Heartbeat, from: "n1", to: "n2", term: 5, commit: 0, readRound: 0 });
    expectViolation("Election Safety", () =>
      checker.onSend({ type: MessageType.Append, from: "n3", to: "n2", term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 }),
    );
  });

  test("two logs with the same (index, term) but different entries (Log Matching)", () => {
    const checker = new SafetyChecker(voters);
    checker.onPersist("n1", { hardState: null, entries: [entry(1, 1, null), entry(2, 1, 1)] });
    expectViolation("Log Matching", () => checker.onPersist("n2", { hardState: null, entries: [entry(1, 1, null), entry(2, 1, 2)] }));
  });

  test("a vote changed within a term (Vote Stability)", () => {
    const checker = new SafetyChecker(voters);
    checker.onPersist("n1", { hardState: { term: 3, vote: "n2", commit: 0 }, entries: [] });
    expectViolation("Vote Stability", () => checker.onPersist("n1", { hardState: { term: 3, vote: "n3", commit: 0 }, entries: [] }));
  });

  test("a new leader missing a committed entry (Leader Completeness)", () => {
    const checker = new SafetyChecker(voters);
    const committedLog = [entry(1, 1, null), entry(2, 1, 1)];
    checker.onStatus("n1", fakeCore({ id: "n1", role: Role.Leader, leader: "n1", term: 1, commitIndex: 2 }, committedLog));
    expectViolation("Leader Completeness", () =>
      checker.onStatus("n2", fakeCore({ id: "n2", role: Role.Leader, leader: "n2", term: 2 }, [entry(1, 1, null)])),
    );
  });

  test("two nodes applying different entries at one index (State Machine Safety)", () => {
    const checker = new SafetyChecker(voters);
    checker.onStatus("n1", fakeCore({ id: "n1", term: 1, commitIndex: 1 }, [entry(1, 1, 1)]));
    checker.onApply("n1", entry(1, 1, 1));
    checker.onStatus("n2", fakeCore({ id: "n2", term: 2, commitIndex: 1 }, [entry(1, 1, 1)]));
    expectViolation("State Machine Safety", () => checker.onApply("n2", entry(1, 2, 9)));
  });

  test("a read answered below an index committed before it began (Read Linearizability)", () => {
    const checker = new SafetyChecker(voters);
    checker.onStatus("n1", fakeCore({ id: "n1", role: Role.Leader, leader: "n1", term: 1, commitIndex: 2 }, [entry(1, 1, null), entry(2, 1, 1)]));
    checker.onReadIssued("n1#1:1");
    expectViolation("Read Linearizability", () => checker.onReadState("n1#1:1", { requestId: 1, index: 1 }));
  });
});
