import { describe, expect, it } from "vitest";
import {
  DEFAULT_PEER_HOST_TEMPLATE,
  discoverStatefulSetPeers,
  MAX_STATEFULSET_REPLICAS,
  resolveNodeIdentity,
  type IdentityFlags,
} from "../../src/server/discovery.js";
import { formatPeers } from "../../src/server/peers.js";

/** A pod of the shipped StatefulSet: 3 replicas, headless Service raftq-peers, port 7000. */
const pod = { replicas: 3, service: "raftq-peers", namespace: "prod", port: 7000 };

describe("StatefulSet peer discovery", () => {
  it("makes the pod name the node id and lists every pod by its headless-Service DNS name", () => {
    const identity = discoverStatefulSetPeers({ ...pod, hostname: "raftq-1" });

    expect(identity.id).toBe("raftq-1");
    expect(formatPeers(identity.peers)).toBe(
      "raftq-0=raftq-0.raftq-peers.prod.svc:7000,raftq-1=raftq-1.raftq-peers.prod.svc:7000,raftq-2=raftq-2.raftq-peers.prod.svc:7000",
    );
  });

  it("gives every pod of the set the same peer list", () => {
    const lists = ["raftq-0", "raftq-1", "raftq-2"].map((hostname) => formatPeers(discoverStatefulSetPeers({ ...pod, hostname }).peers));

    expect(new Set(lists).size).toBe(1);
  });

  it("keeps the set name whole when it contains dashes and digits", () => {
    const identity = discoverStatefulSetPeers({ ...pod, hostname: "queue-2-eu-10", replicas: 11 });

    expect([...identity.peers.keys()].at(-1)).toBe("queue-2-eu-10");
    expect(identity.peers.get("queue-2-eu-0")).toBe("queue-2-eu-0.raftq-peers.prod.svc:7000");
  });

  it("fills a host template: a longer cluster domain, or fixed addresses by ordinal", () => {
    const fqdn = discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", hostTemplate: "{pod}.{service}.{namespace}.svc.example.org" });
    const loopback = discoverStatefulSetPeers({ hostname: "raftq-0", replicas: 3, port: 7100, hostTemplate: "127.0.0.1{ordinal}" });

    expect(fqdn.peers.get("raftq-2")).toBe("raftq-2.raftq-peers.prod.svc.example.org:7000");
    expect(formatPeers(loopback.peers)).toBe("raftq-0=127.0.0.10:7100,raftq-1=127.0.0.11:7100,raftq-2=127.0.0.12:7100");
  });

  it("defaults to the <pod>.<service>.<namespace>.svc form", () => {
    expect(DEFAULT_PEER_HOST_TEMPLATE).toBe("{pod}.{service}.{namespace}.svc");
  });

  it.each([
    ["raftq", "is not a StatefulSet pod name: expected <set>-<ordinal>"],
    ["raftq-", "is not a StatefulSet pod name"],
    ["-1", "is not a StatefulSet pod name"],
    ["raftq-01", "ordinal without leading zeros"],
    ["Raftq-1", "lowercase letters"],
    ["raftq-1.raftq-peers.prod.svc", "is not a StatefulSet pod name"],
    [`${"a".repeat(62)}-1`, "at most 63 characters"],
  ])("refuses hostname %j", (hostname, message) => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname })).toThrow(message);
  });

  it("lets the founding pods found the cluster: no join list", () => {
    for (const hostname of ["raftq-0", "raftq-1", "raftq-2"]) expect(discoverStatefulSetPeers({ ...pod, hostname }).join).toBeUndefined();
  });

  it("makes a pod beyond the founders a joiner: its name, its own DNS name, and every founder to join through", () => {
    const identity = discoverStatefulSetPeers({ ...pod, hostname: "raftq-3" });

    expect(identity.id).toBe("raftq-3");
    expect(formatPeers(identity.peers)).toBe("raftq-3=raftq-3.raftq-peers.prod.svc:7000");
    expect(identity.join).toEqual(["raftq-0.raftq-peers.prod.svc:7000", "raftq-1.raftq-peers.prod.svc:7000", "raftq-2.raftq-peers.prod.svc:7000"]);
  });

  it("gives every joiner the same founders, whatever its ordinal", () => {
    const joins = ["raftq-3", "raftq-4", "raftq-17"].map((hostname) => discoverStatefulSetPeers({ ...pod, hostname }).join);

    expect(joins[1]).toEqual(joins[0]);
    expect(joins[2]).toEqual(joins[0]);
    expect(discoverStatefulSetPeers({ ...pod, hostname: "raftq-1", replicas: 1 }).join).toEqual(["raftq-0.raftq-peers.prod.svc:7000"]);
  });

  it("fills the host template for a joiner's own address and its founders' alike", () => {
    const loopback = discoverStatefulSetPeers({ hostname: "raftq-4", replicas: 3, port: 7100, hostTemplate: "127.0.0.1{ordinal}" });
    const fqdn = discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", hostTemplate: "{pod}.{service}.{namespace}.svc.example.org" });

    expect(formatPeers(loopback.peers)).toBe("raftq-4=127.0.0.14:7100");
    expect(loopback.join).toEqual(["127.0.0.10:7100", "127.0.0.11:7100", "127.0.0.12:7100"]);
    expect(fqdn.peers.get("raftq-3")).toBe("raftq-3.raftq-peers.prod.svc.example.org:7000");
    expect(fqdn.join?.[0]).toBe("raftq-0.raftq-peers.prod.svc.example.org:7000");
  });

  it("checks a joiner's template, names and replica count as a founder's", () => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", namespace: undefined })).toThrow(
      'peer host template "{pod}.{service}.{namespace}.svc" uses {namespace}, but --namespace (RAFTQ_NAMESPACE',
    );
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", service: "Raftq_Peers" })).toThrow('peer service "Raftq_Peers" is invalid');
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", hostTemplate: "{pod}.{svc}" })).toThrow("unknown placeholder {svc}");
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", hostTemplate: "{pod} x" })).toThrow(
      'peer host template "{pod} x" does not make a valid address',
    );
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-3", replicas: 0 })).toThrow("StatefulSet replicas must be an integer from 1 to");
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-03" })).toThrow("is not a StatefulSet pod name");
  });

  it.each([0, -1, 2.5, MAX_STATEFULSET_REPLICAS + 1])("refuses %d replicas", (replicas) => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", replicas })).toThrow(
      `StatefulSet replicas must be an integer from 1 to ${MAX_STATEFULSET_REPLICAS}`,
    );
  });

  it("refuses Service and namespace names that are not DNS labels", () => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", service: "Raftq_Peers" })).toThrow(
      'peer service "Raftq_Peers" is invalid: use a DNS label',
    );
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", namespace: "a.b" })).toThrow('namespace "a.b" is invalid');
  });

  it("names the flag to set when the template needs a value that is missing", () => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", namespace: undefined })).toThrow(
      'peer host template "{pod}.{service}.{namespace}.svc" uses {namespace}, but --namespace (RAFTQ_NAMESPACE',
    );
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", service: undefined })).toThrow("--peer-service (RAFTQ_PEER_SERVICE) is not set");
  });

  it("refuses unknown placeholders and templates that make invalid addresses", () => {
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", hostTemplate: "{pod}.{svc}" })).toThrow(
      "unknown placeholder {svc}: use {pod}, {ordinal}, {service}, {namespace}",
    );
    expect(() => discoverStatefulSetPeers({ ...pod, hostname: "raftq-0", hostTemplate: "{pod} host" })).toThrow(
      'peer host template "{pod} host" does not make a valid address: address "raftq-0 host:7000" is invalid',
    );
  });
});

describe("resolveNodeIdentity (the --id and --peers of raftq serve)", () => {
  const discovery: IdentityFlags = { listen: "0.0.0.0:7000", statefulsetReplicas: "3", peerService: "raftq-peers", namespace: "prod" };
  const hostnameIs = (name: string) => () => name;
  const noHostname = (): string => {
    throw new Error("the hostname must not be read");
  };

  it("uses explicit --id and --peers as they are, without reading the hostname", () => {
    const identity = resolveNodeIdentity({ ...discovery, id: "n2", peers: "n1=a:1,n2=b:2" }, noHostname);

    expect(identity.id).toBe("n2");
    expect(formatPeers(identity.peers)).toBe("n1=a:1,n2=b:2");
  });

  it("discovers both from the hostname, with the port of --listen", () => {
    const identity = resolveNodeIdentity({ ...discovery, listen: "0.0.0.0:7443" }, hostnameIs("raftq-2"));

    expect(identity.id).toBe("raftq-2");
    expect(identity.peers.get("raftq-0")).toBe("raftq-0.raftq-peers.prod.svc:7443");
  });

  it("lets an explicit --peers win over the discovered list, and checks the id is in it", () => {
    const identity = resolveNodeIdentity({ ...discovery, peers: "raftq-0=x:1,raftq-1=y:1" }, hostnameIs("raftq-1"));

    expect(formatPeers(identity.peers)).toBe("raftq-0=x:1,raftq-1=y:1");
    expect(() => resolveNodeIdentity({ ...discovery, peers: "raftq-0=x:1,raftq-1=y:1" }, hostnameIs("raftq-2"))).toThrow(
      'node id "raftq-2" is not one of the peers (raftq-0, raftq-1): --id and --peers disagree',
    );
  });

  it("lets an explicit --id win over the hostname, if it is one of the discovered peers", () => {
    expect(resolveNodeIdentity({ ...discovery, id: "raftq-0" }, hostnameIs("raftq-1")).id).toBe("raftq-0");
    expect(() => resolveNodeIdentity({ ...discovery, id: "n1" }, hostnameIs("raftq-1"))).toThrow('node id "n1" is not one of the peers');
  });

  it("says what to set when neither explicit flags nor discovery are given", () => {
    expect(() => resolveNodeIdentity({ listen: "0.0.0.0:7000", id: "n1" }, noHostname)).toThrow(
      "--peers (RAFTQ_PEERS) missing: give them, or set --statefulset-replicas (RAFTQ_STATEFULSET_REPLICAS) and --peer-service",
    );
    expect(() => resolveNodeIdentity({ listen: "0.0.0.0:7000" }, noHostname)).toThrow("--id (RAFTQ_ID) and --peers (RAFTQ_PEERS) missing");
  });

  it("makes a pod beyond the founders join through them, at the address of the host template", () => {
    const identity = resolveNodeIdentity({ ...discovery, listen: "0.0.0.0:7443" }, hostnameIs("raftq-3"));

    expect(identity.id).toBe("raftq-3");
    expect(formatPeers(identity.peers)).toBe("raftq-3=raftq-3.raftq-peers.prod.svc:7443");
    expect(identity.join).toEqual(["raftq-0.raftq-peers.prod.svc:7443", "raftq-1.raftq-peers.prod.svc:7443", "raftq-2.raftq-peers.prod.svc:7443"]);
  });

  it("lets explicit flags win for a joiner: --advertise its address, --id its id, --peers makes it a founder", () => {
    const advertised = resolveNodeIdentity({ ...discovery, advertise: "10.1.2.3:7000" }, hostnameIs("raftq-3"));
    const renamed = resolveNodeIdentity({ ...discovery, id: "queue-eu-3" }, hostnameIs("raftq-3"));
    const founder = resolveNodeIdentity({ ...discovery, peers: "raftq-3=x:1,raftq-9=y:1" }, hostnameIs("raftq-3"));

    expect(formatPeers(advertised.peers)).toBe("raftq-3=10.1.2.3:7000");
    expect(advertised.join).toHaveLength(3);
    expect(formatPeers(renamed.peers)).toBe("queue-eu-3=raftq-3.raftq-peers.prod.svc:7000");
    expect(founder).toEqual({ id: "raftq-3", peers: new Map([["raftq-3", "x:1"], ["raftq-9", "y:1"]]) });
  });

  it("checks a joiner's explicit --id and --advertise", () => {
    expect(() => resolveNodeIdentity({ ...discovery, advertise: "nowhere" }, hostnameIs("raftq-3"))).toThrow(
      '--advertise: address "nowhere" is invalid: use host:port',
    );
    expect(() => resolveNodeIdentity({ ...discovery, id: "bad id" }, hostnameIs("raftq-3"))).toThrow('node id "bad id" is invalid');
  });

  it.each(["three", "3.0", "", "-3"])("refuses --statefulset-replicas %j", (replicas) => {
    expect(() => resolveNodeIdentity({ ...discovery, statefulsetReplicas: replicas }, hostnameIs("raftq-0"))).toThrow(
      "--statefulset-replicas must be a positive integer",
    );
  });
});
