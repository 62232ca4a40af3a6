import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { CliOutput } from "../../src/cli/output.js";
import { EXIT_ERROR, EXIT_OK, EXIT_USAGE, runCli } from "../../src/cli/program.js";
import type { EnqueueRequest__Output } from "../../src/generated/raftq/v1/EnqueueRequest.js";
import type { StatusResponse } from "../../src/generated/raftq/v1/StatusResponse.js";
import { deadAddress, grpcError, useFakeCluster } from "./fake-node.js";

/** Runs the CLI in-process and returns what it printed and its exit code. */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: CliOutput = { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text) };
  const code = await runCli(argv, output);
  return { code, stdout, stderr };
}

function status(nodeId: string, role: string, commitIndex: number, appliedIndex: number): StatusResponse {
  return { nodeId, role, term: 4, leaderId: "n1", leaderAddress: "", commitIndex, appliedIndex, members: [] };
}

describe("raftq CLI", () => {
  const cluster = useFakeCluster();

  it("enqueues with a key, a delay and headers, and prints JSON", async () => {
    const seen: EnqueueRequest__Output[] = [];
    const node = await cluster.node({
      Enqueue: (call, callback) => {
        seen.push(call.request);
        callback(null, { id: 12, duplicate: false });
      },
    });

    const run = await cli("enqueue", "jobs", "hello", "--addr", node.address, "--key", "k1", "--delay-ms", "500", "--header", "a=1", "--header", "b=x=y", "--json");

    expect(run).toEqual({ code: EXIT_OK, stdout: '{"id":12,"duplicate":false}\n', stderr: "" });
    expect(seen[0]).toMatchObject({ queue: "jobs", idempotencyKey: "k1", delayMs: 500, headers: { a: "1", b: "x=y" } });
    expect(seen[0]?.body.toString()).toBe("hello");
  });

  it("prints a status table with lag behind the leader's commit and marks unreachable nodes", async () => {
    const leader = await cluster.node({ Status: (_call, callback) => callback(null, status("n1", "leader", 120, 118)) });
    const follower = await cluster.node({ Status: (_call, callback) => callback(null, status("n2", "follower", 110, 100)) });
    const dead = await deadAddress();

    const run = await cli("status", "--addr", [leader.address, follower.address, dead].join(","));

    expect(run.code).toBe(EXIT_OK);
    const lines = run.stdout.split("\n");
    expect(lines[0]).toMatch(/^ID\s+ADDRESS\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+LAG$/);
    expect(lines[1]?.split(/\s+/)).toEqual(["n1", leader.address, "leader", "4", "120", "118", "2"]);
    expect(lines[2]?.split(/\s+/)).toEqual(["n2", follower.address, "follower", "4", "110", "100", "20"]);
    expect(lines[3]?.split(/\s+/)).toEqual(["-", dead, "unreachable", "-", "-", "-", "-"]);
    expect(run.stdout).toContain(`${dead}: `);
  });

  it("reports a refused call on stderr with exit code 1 and no stack trace", async () => {
    const node = await cluster.node({
      GetQueueStats: (_call, callback) => callback(grpcError(grpc.status.NOT_FOUND, 'no queue "ghost"')),
    });

    const run = await cli("stats", "ghost", "--addr", node.address);

    expect(run).toEqual({ code: EXIT_ERROR, stdout: "", stderr: 'raftq: no queue "ghost" [NOT_FOUND]\n' });
  });

  it("splits ack references into ids and receipts", async () => {
    const node = await cluster.node({
      Ack: (call, callback) => {
        expect(call.request).toEqual({ queue: "jobs", ids: [5, 9], receipts: ["r-7"] });
        callback(null, { acked: 3, refusedReceipts: [] });
      },
    });

    await expect(cli("ack", "jobs", "5", "r-7", "9", "--addr", node.address)).resolves.toEqual({ code: EXIT_OK, stdout: "acked 3\n", stderr: "" });
  });

  it("exits 2 on usage errors and documents every flag in --help", async () => {
    const bad = await cli("dequeue", "jobs", "--max", "lots");
    expect(bad.code).toBe(EXIT_USAGE);
    expect(bad.stderr).toContain("--max");

    expect((await cli("enqueue")).code).toBe(EXIT_USAGE);
    expect((await cli("no-such-command")).code).toBe(EXIT_USAGE);

    const help = await cli("create-queue", "--help");
    expect(help.code).toBe(EXIT_OK);
    for (const flag of ["--addr", "--json", "--timeout-ms", "--max-deliveries", "--dead-letter-queue", "--visibility-timeout-ms", "--max-length", "--max-message-bytes", "--dedup-window-ms"]) {
      expect(help.stdout).toContain(flag);
    }
    const top = await cli("--help");
    expect(top.code).toBe(EXIT_OK);
    for (const command of ["serve", "enqueue", "dequeue", "ack", "nack", "stats", "queues", "create-queue", "delete-queue", "purge", "status", "transfer-leadership"]) {
      expect(top.stdout).toContain(command);
    }
  });
});
