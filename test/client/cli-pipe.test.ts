/** The CLI as a process whose reader goes away early, as `raftq … | head -1` does. */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { CLI_MAIN } from "../cluster/harness.js";

describe("raftq CLI in a pipe", () => {
  it("ends quietly with 141 (SIGPIPE's code) when its reader closes the pipe, without a stack trace", async () => {
    const child = spawn(process.execPath, [CLI_MAIN, "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    // Closed before the process has started, so its first write finds no reader.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));

    expect(stderr).toBe("");
    expect(code).toBe(141);
  });
});
