import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { discoverStatefulSetPeers } from "../../src/server/discovery.js";
import { formatPeers } from "../../src/server/peers.js";
import { deployFile, hasKubectl, named, REPO_ROOT, renderKustomization } from "./manifests.js";

/** Seconds a stopping node may need: leadership handover (3 s) + draining calls (5 s), see src/server/raftq-server.ts. */
const SHUTDOWN_BUDGET_SECONDS = 3 + 5;

const base = renderKustomization("deploy/k8s");
const config = named(base.configMaps, "raftq").data ?? {};
const statefulSet = named(base.statefulSets, "raftq");
const spec = statefulSet.spec!;
const podSpec = spec.template.spec!;
const podLabels = spec.template.metadata?.labels ?? {};
const [container] = podSpec.containers;
if (podSpec.containers.length !== 1 || container?.name !== "raftq") throw new Error("the raftq pod must have one container, named raftq");
const grpcPort = container.ports?.find((port) => port.name === "grpc");
const listenPort = Number(config["RAFTQ_LISTEN"]?.split(":").at(-1));
const packageVersion = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

/** True when every key=value of `selector` is among `labels`. */
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

describe(`deploy/k8s (rendered by ${base.renderedBy})`, () => {
  it("holds exactly the expected objects, none tied to a namespace", () => {
    const all = [...base.configMaps, ...base.services, ...base.statefulSets, ...base.podDisruptionBudgets];

    expect(all.map((object) => `${object.kind}/${object.metadata?.name}`).sort()).toEqual([
      "ConfigMap/raftq",
      "PodDisruptionBudget/raftq",
      "Service/raftq",
      "Service/raftq-peers",
      "StatefulSet/raftq",
    ]);
    expect(all.filter((object) => object.metadata?.namespace !== undefined)).toEqual([]);
  });

  it("is created with exactly the founding pods the ConfigMap tells each pod to expect", () => {
    expect(spec.replicas).toBe(Number(config["RAFTQ_STATEFULSET_REPLICAS"]));
  });

  it("starts all pods at once (a lone pod can never become ready) and updates them one at a time", () => {
    expect(spec.podManagementPolicy).toBe("Parallel");
    expect(spec.updateStrategy?.type ?? "RollingUpdate").toBe("RollingUpdate");
  });

  it("names a headless Service that publishes pods before they are ready, the one the pods dial", () => {
    const peers = named(base.services, spec.serviceName!);

    expect(config["RAFTQ_PEER_SERVICE"]).toBe(spec.serviceName);
    expect(peers.spec?.clusterIP).toBe("None");
    expect(peers.spec?.publishNotReadyAddresses).toBe(true);
    expect(selects(peers.spec?.selector, podLabels)).toBe(true);
  });

  it("gives each pod the DNS names of its peers: <set>-<ordinal>.<serviceName>.<namespace>.svc:<port>", () => {
    const identity = discoverStatefulSetPeers({
      hostname: `${statefulSet.metadata?.name}-1`,
      replicas: spec.replicas!,
      service: config["RAFTQ_PEER_SERVICE"],
      namespace: "prod",
      port: listenPort,
    });

    expect(identity.id).toBe("raftq-1");
    expect(formatPeers(identity.peers)).toBe(
      "raftq-0=raftq-0.raftq-peers.prod.svc:7000,raftq-1=raftq-1.raftq-peers.prod.svc:7000,raftq-2=raftq-2.raftq-peers.prod.svc:7000",
    );
  });

  it("feeds discovery the pod's name and namespace from the downward API, and the ConfigMap as environment", () => {
    const fieldOf = (name: string) => container.env?.find((variable) => variable.name === name)?.valueFrom?.fieldRef?.fieldPath;

    expect(fieldOf("RAFTQ_NAMESPACE")).toBe("metadata.namespace");
    expect(fieldOf("HOSTNAME")).toBe("metadata.name");
    expect(container.envFrom?.map((source) => source.configMapRef?.name)).toEqual(["raftq"]);
    expect(podSpec.enableServiceLinks).toBe(false);
  });

  it("exposes the --listen port as the named container port every probe and Service uses", () => {
    const probes = [container.startupProbe, container.readinessProbe, container.livenessProbe];
    const probePorts = probes.map((probe) => probe?.grpc?.port ?? probe?.tcpSocket?.port);

    expect(grpcPort?.containerPort).toBe(listenPort);
    expect(probePorts.every((port) => port === listenPort || port === grpcPort?.name)).toBe(true);
    for (const service of base.services) {
      expect(service.spec?.ports?.map((port) => port.targetPort)).toEqual([grpcPort?.name]);
    }
  });

  it("is ready when gRPC health says SERVING, but stays alive without a leader", () => {
    expect(container.readinessProbe?.grpc?.port).toBe(listenPort);
    expect(["", undefined, "raftq.v1.Queue"]).toContain(container.readinessProbe?.grpc?.service);
    // Health is NOT_SERVING while there is no leader: restarting nodes for that would only delay the majority.
    expect(container.livenessProbe?.grpc).toBeUndefined();
    expect(container.livenessProbe?.tcpSocket).toBeDefined();
    // The log is replayed before the port opens: liveness waits for the startup probe.
    expect(container.startupProbe?.tcpSocket).toBeDefined();
  });

  it("mounts a per-pod volume at RAFTQ_DATA_DIR", () => {
    const mount = container.volumeMounts?.find((volumeMount) => volumeMount.mountPath === config["RAFTQ_DATA_DIR"]);

    expect(mount).toBeDefined();
    expect(spec.volumeClaimTemplates?.map((claim) => claim.metadata?.name)).toContain(mount?.name);
    expect(podSpec.volumes ?? []).toEqual([]);
  });

  it("sends clients to the pods through a ClusterIP Service on the same port", () => {
    const client = named(base.services, "raftq");

    expect(client.spec?.type ?? "ClusterIP").toBe("ClusterIP");
    expect(client.spec?.clusterIP).toBeUndefined();
    expect(selects(client.spec?.selector, podLabels)).toBe(true);
    expect(client.spec?.ports?.map((port) => port.port)).toEqual([listenPort]);
  });

  it("lets voluntary disruptions take one pod at a time", () => {
    const budget = named(base.podDisruptionBudgets, "raftq");

    expect(budget.spec?.maxUnavailable).toBe(1);
    expect(selects(budget.spec?.selector?.matchLabels, podLabels)).toBe(true);
    expect(selects(spec.selector.matchLabels, podLabels)).toBe(true);
  });

  it("keeps pods on different machines", () => {
    const [term, ...others] = podSpec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];

    expect(others).toEqual([]);
    expect(term?.topologyKey).toBe("kubernetes.io/hostname");
    expect(selects(term?.labelSelector?.matchLabels, podLabels)).toBe(true);
  });

  it("runs as the image's non-root user, with a read-only root and no capabilities", () => {
    const imageUser = /^USER\s+(\d+)/m.exec(deployFile("docker/Dockerfile"))?.[1];

    expect(podSpec.securityContext?.runAsNonRoot).toBe(true);
    expect(podSpec.securityContext?.runAsUser).toBe(Number(imageUser));
    expect(podSpec.securityContext?.fsGroup).toBe(Number(imageUser));
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(podSpec.automountServiceAccountToken).toBe(false);
  });

  it("gives a stopping node time to hand over leadership and drain its calls", () => {
    expect(podSpec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(2 * SHUTDOWN_BUDGET_SECONDS);
    expect(container.lifecycle?.preStop).toBeUndefined();
  });

  it("requests resources and keeps the JavaScript heap under the memory limit", () => {
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(config["NODE_OPTIONS"] ?? "")?.[1]);
    const limit = String(container.resources?.limits?.["memory"]);
    const limitMiB = Number(/^(\d+)Gi$/.exec(limit)?.[1]) * 1024 || Number(/^(\d+)Mi$/.exec(limit)?.[1]);

    expect(container.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(heapMiB).toBeGreaterThan(0);
    expect(heapMiB).toBeLessThan(limitMiB);
  });

  it("runs the image of this version", () => {
    expect(container.image).toBe(`raftq:${packageVersion}`);
  });
});

describe.skipIf(!hasKubectl)("deploy/k8s-single-node (needs kubectl)", () => {
  it("only turns the anti-affinity into a preference", () => {
    const overlay = renderKustomization("deploy/k8s-single-node");
    const overlaySet = named(overlay.statefulSets, "raftq");
    const antiAffinity = overlaySet.spec?.template.spec?.affinity?.podAntiAffinity;
    const withoutAffinity = (set: typeof statefulSet): unknown => {
      const copy = structuredClone(set.toJSON()) as { spec: { template: { spec: { affinity?: unknown } } } };
      delete copy.spec.template.spec.affinity;
      return copy;
    };

    expect(antiAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    expect(antiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm.topologyKey).toBe("kubernetes.io/hostname");
    expect(withoutAffinity(overlaySet)).toEqual(withoutAffinity(statefulSet));
    expect([overlay.configMaps, overlay.services, overlay.podDisruptionBudgets]).toEqual([base.configMaps, base.services, base.podDisruptionBudgets]);
  });
});
