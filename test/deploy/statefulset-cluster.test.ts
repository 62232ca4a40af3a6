/**
 * Three real `raftq serve` processes started the way the StatefulSet starts its pods: the ConfigMap's
 * variables, HOSTNAME = the pod name and RAFTQ_NAMESPACE from the downward API, nothing else. The pods'
 * DNS names do not resolve here, so --peer-host-template points each pod at its own loopback address
 * (127.0.0.10, .11, .12: all of 127.0.0.0/8 is loopback on Linux) and all listen on one port, as pods do.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { connect, type NodeReport } from "../../src/client/index.js";
import { composeFile, named, REPO_ROOT, renderKustomization } from "./manifests.js";

const CLI_MAIN = join(REPO_ROOT, "dist", "src", "cli", "main.js");
/** Longest wait for three new nodes to agree on a leader. */
const ELECTION_TIMEOUT_MS = 20_000;
/** Longest wait for a node to log that it started. */
const START_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 100;
/** Each test's limit: start-up, an election, a graceful stop and a re-election, with room to spare. */
const TEST_TIMEOUT_MS = 60_000;

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
  return { ...inherited, ...configMap, RAFTQ_NAMESPACE: namespace, HOSTNAME: name, ...overrides };
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
    const hosts = Array.from({ length: replicas }, (_, ordinal) => `127.0.0.1${ordinal}`);
    const port = await sharedFreePort(hosts);
    const pods = hosts.map((host, ordinal) =>
      startPod(
        `raftq-${ordinal}`,
        `${host}:${port}`,
        podEnvironment(`raftq-${ordinal}`, "default", {
          RAFTQ_LISTEN: `${host}:${port}`,
          RAFTQ_DATA_DIR: join(root, `raftq-${ordinal}`),
          RAFTQ_PEER_HOST_TEMPLATE: "127.0.0.1{ordinal}",
        }),
      ),
    );

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

  it("refuse to start as a pod the replica count does not include, saying why", () => {
    const run = spawnSync(process.execPath, [CLI_MAIN, "serve"], {
      env: podEnvironment(`raftq-${replicas}`, "prod", { RAFTQ_DATA_DIR: join(root, "beyond") }),
      encoding: "utf8",
      timeout: 10_000,
    });

    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`pod "raftq-${replicas}" has ordinal ${replicas} but the StatefulSet has ${replicas} replicas`);
  }, TEST_TIMEOUT_MS);
});
