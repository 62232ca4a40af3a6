import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cycleReport, parseTrace, renderCycleReport, type StageFigures } from "../../src/bench/cycle-report.js";

/** Two rounds of a lock-step loop on leader n1 with followers n2 and n3, times in ms from 1000. */
const TRACE = `
1000.000 n1 ready 1-1 -
1000.100 n1 persist-start
1000.500 n2 recv-append 1 1
1000.700 n3 recv-append 1 1
1000.600 n2 ready 1-1 -
1000.900 n2 persist-start
1002.900 n2 persist-end
1000.800 n3 ready 1-1 -
1001.000 n3 persist-start
1003.500 n3 persist-end
1002.000 n1 persist-end
1003.000 n1 recv-ack n2 1
1003.100 n1 ready - 1-1
1003.500 n1 answered
1003.600 n1 persist-start
1003.800 n1 answers-out 64
1004.200 client client-answered
1004.250 client client-published
1004.800 n1 frame-in 64
1004.900 n1 propose 1
1005.000 n1 ready 2-2 -
1005.600 n2 recv-append 2 2
1005.700 n2 ready 2-2 1-1
1006.300 n2 persist-start
1008.300 n2 persist-end
1008.600 n1 recv-ack n2 2
1008.700 n1 ready - 2-2
1009.200 n1 answered
`;

function stage(stages: readonly StageFigures[], name: string): StageFigures {
  const found = stages.find((s) => s.stage.trim() === name);
  if (!found) throw new Error(`no stage ${name} in ${stages.map((s) => s.stage.trim()).join(", ")}`);
  return found;
}

describe("cycle report", () => {
  const events = parseTrace(TRACE).sort((x, y) => x.ms - y.ms);
  const report = cycleReport(events);

  it("finds the leader, its rounds and the messages that arrived", () => {
    expect(report.leader).toBe("n1");
    expect(report.rounds).toBe(2);
    expect(report.messages).toBe(64);
  });

  it("times each round's way through Raft", () => {
    const at = (name: string) => stage(report.stages, name);
    expect(at("Raft: Ready → Append at the first follower").samples).toBe(2);
    expect(at("Raft: Ready → Append at the first follower").mean).toBeCloseTo((0.5 + 0.6) / 2, 6);
    expect(at("n2: its Ready → its write starts (applying)").mean).toBeCloseTo((0.3 + 0.6) / 2, 6);
    expect(at("n2: its synced write").p50).toBeCloseTo(2.0, 6);
    expect(at("n3: its synced write").samples).toBe(1);
    expect(at("n3: its synced write").p50).toBeCloseTo(2.5, 6);
    expect(at("Raft: Ready → leader's own write done").samples).toBe(1);
    expect(at("Raft: Ready → first acknowledgement").mean).toBeCloseTo((3.0 + 3.6) / 2, 6);
    expect(at("Raft: commit Ready → applied and answered").mean).toBeCloseTo((0.4 + 0.5) / 2, 6);
    expect(at("Raft: Ready → answered (total)").mean).toBeCloseTo((3.5 + 4.2) / 2, 6);
  });

  it("follows the answers to the client and the next messages back to the next Ready", () => {
    const at = (name: string) => stage(report.stages, name);
    expect(at("client: answered → answers frame written").p50).toBeCloseTo(0.3, 6);
    expect(at("client: → answers reach the client").p50).toBeCloseTo(0.4, 6);
    expect(at("client: → client publishes the next messages").p50).toBeCloseTo(0.05, 6);
    expect(at("client: → their frame reaches the leader").p50).toBeCloseTo(0.55, 6);
    expect(at("client: → proposed").p50).toBeCloseTo(0.1, 6);
    expect(at("client: → the next Ready with entries").p50).toBeCloseTo(0.1, 6);
    expect(at("cycle: Ready with entries → the next").p50).toBeCloseTo(5.0, 6);
    expect(renderCycleReport(report)).toContain("leader n1; 2 Readies with new entries; 64 messages");
  });

  it("says what to do when the trace holds no acknowledgement", () => {
    expect(() => cycleReport(parseTrace("1.0 n1 ready 1-1 -\nnot a line\n"))).toThrow(/RAFTQ_CYCLE_TRACE/);
  });
});

describe("cycle trace", () => {
  const dirs: string[] = [];
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("is off unless RAFTQ_CYCLE_TRACE names a directory", async () => {
    vi.stubEnv("RAFTQ_CYCLE_TRACE", "");
    vi.resetModules();
    const { cycleTrace } = await import("../../src/node/cycle-trace.js");
    expect(cycleTrace).toBeUndefined();
  });

  it("writes this process's events to <dir>/<pid>.trace, named as told, when flushed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "raftq-trace-test-"));
    dirs.push(dir);
    vi.stubEnv("RAFTQ_CYCLE_TRACE", dir);
    vi.resetModules();
    const { cycleTrace, indexRange } = await import("../../src/node/cycle-trace.js");
    expect(cycleTrace).toBeDefined();
    cycleTrace!.rename("n7");
    cycleTrace!.record("ready", indexRange([{ index: 4 }, { index: 9 }]), indexRange([]));
    cycleTrace!.record("recv-ack", "n2", 9);
    cycleTrace!.record("answered");
    expect(readdirSync(dir)).toEqual([]); // nothing written per event
    cycleTrace!.flush();
    const events = parseTrace(readFileSync(join(dir, `${process.pid}.trace`), "utf8"));
    expect(events.map((e) => [e.process, e.event, e.a, e.b])).toEqual([
      ["n7", "ready", "4-9", "-"],
      ["n7", "recv-ack", "n2", "9"],
      ["n7", "answered", undefined, undefined],
    ]);
    expect(events[0]!.ms).toBeGreaterThan(1.6e12); // the machine's clock, comparable across processes
  });
});
