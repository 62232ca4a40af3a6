import { describe, expect, it } from "vitest";
import { CpuMeter } from "../../src/bench/cpu-meter.js";
import { processCpuMs } from "../../src/bench/resources.js";

/** Spins until this process has used `ms` more CPU time. */
function burnCpu(ms: number): void {
  const start = process.cpuUsage();
  let sink = 0;
  for (;;) {
    for (let i = 0; i < 100_000; i++) sink += Math.sqrt(i);
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) break;
  }
  expect(sink).toBeGreaterThan(0);
}

describe("CPU per message", () => {
  it("reads a process's CPU time from /proc", () => {
    const before = processCpuMs(process.pid);
    burnCpu(60);
    const after = processCpuMs(process.pid);
    expect(before).toBeDefined();
    // /proc counts in 10 ms ticks.
    expect(after! - before!).toBeGreaterThanOrEqual(40);
    expect(processCpuMs(2 ** 30)).toBeUndefined();
  });

  it("splits a window's CPU over its messages, for the serving processes and the client", () => {
    const meter = new CpuMeter(() => [process.pid]);
    expect(meter.perMessage(10)).toBeUndefined();
    meter.start();
    burnCpu(100);
    meter.stop();

    const perMessage = meter.perMessage(10)!;
    // The "server" here is this same process, so both sides saw the same 100 ms: 10 ms a message.
    expect(perMessage.clientUs).toBeGreaterThanOrEqual(10_000);
    expect(perMessage.serversUs).toBeGreaterThanOrEqual(8_000);
    expect(perMessage.serversUs).toBeLessThan(50_000);
    expect(meter.perMessage(0)).toBeUndefined();
  });
});
