/**
 * Real `raftq serve` processes started the way the StatefulSet starts its pods: the ConfigMap's
 * variables, HOSTNAME = the pod name and RAFTQ_NAMESPACE from the downward API, nothing else. The pods'
 * DNS names do not resolve here, so --peer-host-template points each pod at its own loopback address
 * (127.0.0.10, .11, .12, .13 for a pod added by scaling up: all of 127.0.0.0/8 is loopback on Linux) and
 * all listen on one port, as pods do.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, type NodeReport, type NodeStatus } from "../../src/client/index.js";
import { composeFile, named, REPO_ROOT, renderKustomization } from "./manifests.js";
import { withAllocatorEnv } from "../../src/cli/allocator-env.js";

const CLI_MAIN = join(REPO_ROOT, "dist", "src", "cli", "main.js");
/** Longest wait for three new nodes to agree on a leader. */
const ELECTION_TIMEOUT_MS = 20_000;
/** Longest wait for a node to log that it started. */
const START_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 100;
/** Longest wait for a pod added by scaling up to join, catch up and be promoted to voter. */
const PROMOTION_TIMEOUT_MS = 30_000;
/** Each test's limit: start-up, an election, a graceful stop and a re-election (or a join), with room to spare. */
const TEST_TIMEOUT_MS = 60_000;
/** Pods of the set are reached at 127.0.0.1<ordinal>, see the top of the file. */
const LOOPBACK_HOST_TEMPLATE = "127.0.0.1{ordinal}";

const manifests = renderKustomization("deploy/k8s");
const configMap = named(manifests.configMaps, "raftq").data ?? {};
const podSpec = named(manifests.statefulSets, "raftq").spec!.template.spec!;
const replicas = Number(configMap["RAFTQ_STATEFULSET_REPLICAS"]);

const root = mkdtempSync(join(tmpdir(), "raftq-deploy-"));
const children = new Set<ChildProcess>();
let podsStarted = 0;
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

/** One started pod: its process, the address it listens on, its log file, and how it ended. */
interface Pod {
  readonly name: string;
  readonly address: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
}

/** The environment a pod's container sees: the ConfigMap, the downward API, and the test's overrides. */
function podEnvironment(name: string, namespace: string, overrides: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RAFTQ_") && key !== "HOSTNAME"));
  // The image's entrypoint, bin/raftq, sets the allocator settings.
  return { ...withAllocatorEnv(inherited), ...configMap, RAFTQ_NAMESPACE: namespace, HOSTNAME: name, ...overrides };
}

/** Starts `raftq serve` with no arguments, as the image's entrypoint does; output goes to a log file. */
function startPod(name: string, address: string, env: NodeJS.ProcessEnv): Pod {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: run \`make build\` first`);
  const logFile = join(root, `${name}-${++podsStarted}.log`);
  const log = openSync(logFile, "a");
  const child = spawn(process.execPath, [CLI_MAIN, "serve"], { env, stdio: ["ignore", log, log] });
  closeSync(log);
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exited.then(() => children.delete(child));
  return { name, address, logFile, process: child, exited };
}

/** The loopback host of pod `raftq-<ordinal>`, as LOOPBACK_HOST_TEMPLATE makes it. */
function loopbackHost(ordinal: number): string {
  return LOOPBACK_HOST_TEMPLATE.replace("{ordinal}", String(ordinal));
}

/** Starts pod `raftq-<ordinal>` on its loopback host and `port`, with its own data dir under `label`. */
function startLoopbackPod(ordinal: number, port: number, label: string): Pod {
  const name = `raftq-${ordinal}`;
  const address = `${loopbackHost(ordinal)}:${port}`;
  return startPod(
    name,
    address,
    podEnvironment(name, "default", {
      RAFTQ_LISTEN: address,
      RAFTQ_DATA_DIR: join(root, label, name),
      RAFTQ_PEER_HOST_TEMPLATE: LOOPBACK_HOST_TEMPLATE,
    }),
  );
}

/** A port free on every one of `hosts` at once. */
async function sharedFreePort(hosts: readonly string[]): Promise<number> {
  const bind = (host: string, port: number) =>
    new Promise<ReturnType<typeof createServer> | null>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(null));
      server.listen(port, host, () => resolve(server));
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await bind(hosts[0]!, 0);
    const port = first ? (first.address() as { port: number }).port : 0;
    const others = await Promise.all(hosts.slice(1).map((host) => bind(host, port)));
    const servers = [first, ...others];
    await Promise.all(servers.map((server) => new Promise((resolve) => (server ? server.close(resolve) : resolve(null)))));
    if (servers.every((server) => server !== null)) return port;
  }
  throw new Error(`no port is free on all of ${hosts.join(", ")}`);
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes; then fails with `what`. */
async function waitFor<T>(what: () => string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

/** The statuses of `pods`, once every one answers and all name the same leader. */
async function agreedStatuses(pods: readonly Pod[]): Promise<NodeReport[]> {
  const client = connect({ addresses: pods.map((pod) => pod.address), attemptTimeoutMs: 1000 });
  let last: NodeReport[] = [];
  try {
    return await waitFor(
      () => `${pods.map((pod) => pod.name).join(", ")} to agree on a leader; last seen: ${JSON.stringify(last)}\n${logTails(pods)}`,
      ELECTION_TIMEOUT_MS,
      async () => {
        last = await client.clusterStatus();
        const leaders = new Set(last.map((report) => (report.reachable ? report.status.leaderId : "")));
        return leaders.size === 1 && !leaders.has("") ? last : undefined;
      },
    );
  } finally {
    client.close();
  }
}

/** The last lines of each pod's log, for a failure message. */
function logTails(pods: readonly Pod[]): string {
  return pods.map((pod) => `--- ${pod.name}\n${readFileSync(pod.logFile, "utf8").split("\n").slice(-15).join("\n")}`).join("\n");
}

/** Polls the leader's members (asking `founders`) until `added` is a voter at its address; fails at the deadline. */
async function expectVoter(added: Pod, founders: readonly Pod[], all: readonly Pod[]): Promise<void> {
  const client = connect({ addresses: founders.map((pod) => pod.address), attemptTimeoutMs: 1000 });
  let members: NodeStatus["members"] = [];
  try {
    await waitFor(
      () => `${added.name} to become a voter; the leader's members: ${JSON.stringify(members)}\n${logTails(all)}`,
      PROMOTION_TIMEOUT_MS,
      async () => {
        const status = await client.status().catch(() => undefined);
        if (status?.role === "leader") members = status.members;
        return members.find((member) => member.id === added.name && member.voter);
      },
    );
  } finally {
    client.close();
  }
  expect(members.map(({ id, address, voter }) => ({ id, address, voter }))).toEqual(all.map((pod) => ({ id: pod.name, address: pod.address, voter: true })));
}

/** The compose healthcheck (the same check as the readiness probe), run against `address`; its exit code. */
function composeHealthcheck(address: string): number | null {
  const test = composeFile().services["raftq-0"]?.healthcheck?.test ?? [];
  const [, command = "", ...args] = test;
  const run = spawnSync(command === "node" ? process.execPath : command, args.map((arg) => arg.replace("127.0.0.1:7000", address)), {
    cwd: REPO_ROOT,
    timeout: 10_000,
  });
  return run.status;
}

describe("a StatefulSet's pods, started with the ConfigMap's environment", () => {
  it("discover each other, elect a leader, serve, and hand leadership over on SIGTERM", async () => {
    const hosts = Array.from({ length: replicas }, (_, ordinal) => loopbackHost(ordinal));
    const port = await sharedFreePort(hosts);
    const pods = hosts.map((_, ordinal) => startLoopbackPod(ordinal, port, "founding"));

    const statuses = await agreedStatuses(pods);

    const expectedMembers = hosts.map((host, ordinal) => ({ id: `raftq-${ordinal}`, address: `${host}:${port}` }));
    for (const [ordinal, report] of statuses.entries()) {
      if (!report.reachable) throw new Error(`raftq-${ordinal} did not answer`);
      expect(report.status.nodeId).toBe(`raftq-${ordinal}`);
      expect(report.status.members.map(({ id, address }) => ({ id, address }))).toEqual(expectedMembers);
    }
    for (const pod of pods) expect(composeHealthcheck(pod.address), `${pod.name} healthy`).toBe(0);

    const client = connect({ addresses: pods.map((pod) => pod.address) });
    try {
      const { id } = await client.enqueue("deploy-check", "hello");
      const [delivery] = await client.dequeue("deploy-check");
      expect(delivery?.id).toBe(id);
    } finally {
      client.close();
    }

    const leaderId = statuses[0]?.reachable ? statuses[0].status.leaderId : "";
    const leader = pods.find((pod) => pod.name === leaderId)!;
    const stoppedAtMs = Date.now();
    leader.process.kill("SIGTERM");
    expect(await leader.exited).toBe(0);
    expect(Date.now() - stoppedAtMs).toBeLessThan(podSpec.terminationGracePeriodSeconds! * 1000);
    expect(readFileSync(leader.logFile, "utf8")).toContain("handed leadership over before stopping");
    const survivors = pods.filter((pod) => pod !== leader);
    const after = await agreedStatuses(survivors);
    expect(after[0]?.reachable && after[0].status.leaderId).not.toBe(leaderId);
  }, TEST_TIMEOUT_MS);

  it("with the default template, name their peers <pod>.<service>.<namespace>.svc on the listen port", async () => {
    const port = await sharedFreePort(["127.0.0.1"]);
    const pod = startPod(
      "raftq-2",
      `127.0.0.1:${port}`,
      podEnvironment("raftq-2", "prod", { RAFTQ_LISTEN: `127.0.0.1:${port}`, RAFTQ_DATA_DIR: join(root, "default-template") }),
    );

    const started = await waitFor(
      () => `raftq-2 to start\n${logTails([pod])}`,
      START_TIMEOUT_MS,
      () =>
        readFileSync(pod.logFile, "utf8")
          .split("\n")
          .filter((line) => line.includes('"raftq node started"'))
          .map((line) => JSON.parse(line) as { id: string; peers: Record<string, string> })[0],
    );

    expect(started.id).toBe("raftq-2");
    expect(started.peers).toEqual({
      "raftq-0": `raftq-0.raftq-peers.prod.svc:${port}`,
      "raftq-1": `raftq-1.raftq-peers.prod.svc:${port}`,
      "raftq-2": `raftq-2.raftq-peers.prod.svc:${port}`,
    });
  }, TEST_TIMEOUT_MS);

  it("let a pod added by scaling up join through the founders, become a voter and serve", async () => {
    const hosts = Array.from({ length: replicas + 1 }, (_, ordinal) => loopbackHost(ordinal));
    const port = await sharedFreePort(hosts);
    const founders = hosts.slice(0, replicas).map((_, ordinal) => startLoopbackPod(ordinal, port, "scaling"));
    const all = [...founders];
    try {
      await agreedStatuses(founders);
      const added = startLoopbackPod(replicas, port, "scaling");
      all.push(added);
      await expectVoter(added, founders, all);

      const throughAdded = connect({ addresses: [added.address] });
      try {
        const { id } = await throughAdded.enqueue("scaled-up", "hello");
        const [delivery] = await throughAdded.dequeue("scaled-up");
        expect(delivery?.id).toBe(id);
        const status = await throughAdded.status(added.address);
        expect(status.nodeId).toBe(added.name);
        expect(status.members.map((member) => member.id)).toEqual(all.map((pod) => pod.name));
      } finally {
        throughAdded.close();
      }
      expect(readFileSync(added.logFile, "utf8")).toContain("joined the cluster as a learner");
    } finally {
      for (const pod of all) pod.process.kill("SIGKILL");
    }
  }, TEST_TIMEOUT_MS);
});
