/**
 * grpc.health.v1 on a real cluster: load balancers and orchestrators ask every node whether it serves.
 * (A node cut off from the majority turning NOT_SERVING is in errors.test.ts, with UNAVAILABLE.)
 */
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { useSharedCluster } from "./harness.js";
import { callUnary, expectOk, expectRefused } from "./raw-grpc.js";

describe("health checks", () => {
  const sharedCluster = useSharedCluster();

  it("report SERVING for the server and both raftq services on every node of a healthy cluster", async () => {
    const cluster = sharedCluster();

    for (const node of cluster.nodes) {
      const { health } = cluster.stubs(node.id);
      for (const service of ["", "raftq.v1.Queue", "raftq.v1.Cluster"]) {
        const answer = expectOk(await callUnary(health, health.Check, { service }));
        expect(answer.status, `${node.id} service "${service}"`).toBe("SERVING");
      }
    }
  });

  it("answer NOT_FOUND for a service the node does not have", async () => {
    const cluster = sharedCluster();
    const { health } = cluster.stubs("n1");

    expectRefused(await callUnary(health, health.Check, { service: "no.such.Service" }), grpc.status.NOT_FOUND);
  });
});
