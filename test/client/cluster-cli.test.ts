import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import type { CliOutput } from "../../src/cli/output.js";
import { EXIT_ERROR, EXIT_OK, runCli } from "../../src/cli/program.js";
import type { AddMemberRequest__Output } from "../../src/generated/raftq/v1/AddMemberRequest.js";
import type { Member } from "../../src/generated/raftq/v1/Member.js";
import type { StatusResponse } from "../../src/generated/raftq/v1/StatusResponse.js";
import { grpcError, useFakeCluster } from "./fake-node.js";

/** Runs the CLI in-process and returns what it printed and its exit code. */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const output: CliOutput = { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text) };
  const code = await runCli(argv, output);
  return { code, stdout, stderr };
}

const MEMBERS: Member[] = [
  { id: "n1", address: "127.0.0.1:7001", voter: true, matchIndex: 120 },
  { id: "n4", address: "127.0.0.1:7004", voter: false, matchIndex: 80 },
];

function status(nodeId: string, role: string, members: Member[]): StatusResponse {
  return { nodeId, role, term: 4, leaderId: "n1", leaderAddress: "", commitIndex: 120, appliedIndex: 118, members };
}

describe("raftq cluster", () => {
  const cluster = useFakeCluster();

  it("cluster add sends the id and address and prints the members, learners marked", async () => {
    const seen: AddMemberRequest__Output[] = [];
    const node = await cluster.node({
      AddMember: (call, callback) => {
        seen.push(call.request);
        callback(null, { members: MEMBERS });
      },
    });

    const run = await cli("cluster", "add", "n4", "127.0.0.1:7004", "--addr", node.address);

    expect(run.code).toBe(EXIT_OK);
    expect(seen).toEqual([{ id: "n4", address: "127.0.0.1:7004" }]);
    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe("added n4 (127.0.0.1:7004); it becomes a voter once it has caught up");
    expect(lines[2]).toMatch(/^MEMBER\s+ADDRESS\s+KIND\s+MATCH$/);
    expect(lines[4]?.split(/\s+/)).toEqual(["n4", "127.0.0.1:7004", "learner", "80"]);
  });

  it("cluster remove prints JSON with --json", async () => {
    const node = await cluster.node({ RemoveMember: (_call, callback) => callback(null, { members: [MEMBERS[0] as Member] }) });

    const run = await cli("cluster", "remove", "n4", "--addr", node.address, "--json");

    expect(run.code).toBe(EXIT_OK);
    expect(JSON.parse(run.stdout)).toEqual({ members: [MEMBERS[0]] });
  });

  it("cluster remove reports a refusal on stderr with exit code 1", async () => {
    const node = await cluster.node({
      RemoveMember: (_call, callback) => callback(grpcError(grpc.status.FAILED_PRECONDITION, 'node "n9" is not a member of the cluster')),
    });

    const run = await cli("cluster", "remove", "n9", "--addr", node.address);

    expect(run.code).toBe(EXIT_ERROR);
    expect(run.stderr).toBe('raftq: node "n9" is not a member of the cluster [FAILED_PRECONDITION]\n');
  });

  it("cluster status shows the nodes, then the leader's members with voter or learner", async () => {
    const leader = await cluster.node({ Status: (_call, callback) => callback(null, status("n1", "leader", MEMBERS)) });
    const follower = await cluster.node({ Status: (_call, callback) => callback(null, status("n4", "follower", [])) });

    const run = await cli("cluster", "status", "--addr", `${follower.address},${leader.address}`);

    expect(run.code).toBe(EXIT_OK);
    const [nodes, members] = run.stdout.split("\n\n");
    expect(nodes?.split("\n")[0]).toMatch(/^ID\s+ADDRESS\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+LAG$/);
    expect(members?.split("\n").slice(1, 3).map((line) => line.split(/\s+/))).toEqual([
      ["n1", "127.0.0.1:7001", "voter", "120"],
      ["n4", "127.0.0.1:7004", "learner", "80"],
    ]);
  });

  it("cluster status --json gives the nodes and the members", async () => {
    const leader = await cluster.node({ Status: (_call, callback) => callback(null, status("n1", "leader", MEMBERS)) });

    const run = await cli("cluster", "status", "--addr", leader.address, "--json");

    const parsed = JSON.parse(run.stdout) as { nodes: { id: string }[]; members: Member[] };
    expect(parsed.nodes.map((node) => node.id)).toEqual(["n1"]);
    expect(parsed.members).toEqual(MEMBERS);
  });
});
