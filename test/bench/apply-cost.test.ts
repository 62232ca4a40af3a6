/**
 * `make bench-apply` runs end to end on a tiny load: every phase prints a figure, and the script's own
 * checks (each lease leases a full batch, each ack acks it) hold.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const script = join(repoRoot, "dist", "src", "bench", "apply-cost.js");

describe("bench-apply", () => {
  it("prints µs per message for enqueue, lease and ack", () => {
    if (!existsSync(script)) throw new Error(`${script} is missing: run \`make build\` first`);
    const run = spawnSync(process.execPath, [script, "--entries", "4", "--per", "25", "--rounds", "2"], { encoding: "utf8", timeout: 60_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    for (const phase of ["enqueue", "lease", "ack"]) {
      const lines = run.stdout.split("\n").filter((line) => line.trim().startsWith(phase));
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toMatch(/\d+\.\d\d µs\/msg wall, +\d+\.\d\d µs\/msg CPU/);
    }
  });

  it("refuses an out-of-range option with a message that says what is allowed", () => {
    if (!existsSync(script)) throw new Error(`${script} is missing: run \`make build\` first`);
    const run = spawnSync(process.execPath, [script, "--per", "0"], { encoding: "utf8", timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("--per 0 is out of range: use an integer from 1 to 1000");
  });
});
