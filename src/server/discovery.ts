/**
 * Peer discovery for a Kubernetes StatefulSet: a pod named `<set>-<ordinal>` (its hostname) derives its
 * node id and its peers from the number of founding pods and the headless Service, so every pod of the
 * set runs with the same configuration. Pods `<set>-0` … `<set>-<founders-1>` found the cluster with the
 * whole --peers list; a pod with a higher ordinal (the StatefulSet was scaled up) joins it through the
 * founders, as `--join` does. Pure: no DNS, no clock, no environment; `raftq serve` passes in what it
 * read from flags and variables.
 */
import type { NodeId } from "../raft/types.js";
import { addressProblem, nodeIdProblem, parsePeers, type PeerAddresses } from "./peers.js";

/**
 * Where each peer is reached by default: the stable DNS name Kubernetes gives every pod of a StatefulSet
 * through its headless Service, resolvable in any namespace's search path.
 */
export const DEFAULT_PEER_HOST_TEMPLATE = "{pod}.{service}.{namespace}.svc";

/** A bound against typos on the founding pods: Raft clusters have 3, 5 or 7 voters, and each voter slows every commit. */
export const MAX_STATEFULSET_REPLICAS = 64;

/** The placeholders a peer host template may use. */
const PLACEHOLDERS = ["pod", "ordinal", "service", "namespace"] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];
/** Which flag gives each placeholder its value, for error messages. */
const FLAG_OF: Record<Placeholder, string> = {
  pod: "the hostname",
  ordinal: "the hostname",
  service: "--peer-service (RAFTQ_PEER_SERVICE)",
  namespace: "--namespace (RAFTQ_NAMESPACE, from the downward API in Kubernetes)",
};

/** `<set>-<ordinal>`: a DNS label (at most 63 characters) ending in a decimal ordinal without leading zeros. */
const POD_NAME_PATTERN = /^([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)-(0|[1-9][0-9]*)$/;
/** A DNS label, what Service and namespace names are. */
const DNS_LABEL_PATTERN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_MAX_CHARS = 63;

/** What a StatefulSet pod knows about itself and its set. */
export interface StatefulSetDiscovery {
  /** This pod's name, which is its hostname: `<set>-<ordinal>`, e.g. "raftq-1". It becomes the node id. */
  readonly hostname: string;
  /**
   * The number of founding pods (RAFTQ_STATEFULSET_REPLICAS, the StatefulSet's replica count when it was
   * created): pods `<set>-0` … `<set>-<replicas-1>` found the cluster, pods with higher ordinals join it.
   * It must never change once the cluster exists: the founders' first log entry names them the voters.
   */
  readonly replicas: number;
  /** The headless Service named in the StatefulSet's `serviceName`; needed if the template uses {service}. */
  readonly service?: string | undefined;
  /** The pod's namespace; needed if the template uses {namespace}. */
  readonly namespace?: string | undefined;
  /** The port every pod listens on (the port of --listen). */
  readonly port: number;
  /** The host of each peer, with {pod}, {ordinal}, {service}, {namespace}; default DEFAULT_PEER_HOST_TEMPLATE. */
  readonly hostTemplate?: string | undefined;
}

/** Who this node is and who its peers are: what --id, --peers and --join say. */
export interface NodeIdentity {
  readonly id: NodeId;
  /** A founder's whole cluster; a joining node's only itself, at the address the cluster is to reach it at. */
  readonly peers: PeerAddresses;
  /** Set for a joining node: the members (host:port) to ask to add it, any one of which may answer. */
  readonly join?: readonly string[];
}

/** Splits a StatefulSet pod name into its set name and ordinal; throws a message saying what is wrong. */
function parsePodName(hostname: string): { readonly set: string; readonly ordinal: number } {
  const match = POD_NAME_PATTERN.exec(hostname);
  if (!match || hostname.length > DNS_LABEL_MAX_CHARS) {
    throw new Error(
      `hostname "${hostname}" is not a StatefulSet pod name: expected <set>-<ordinal>, e.g. raftq-1 ` +
        `(lowercase letters, digits and '-', at most ${DNS_LABEL_MAX_CHARS} characters, ordinal without leading zeros); ` +
        `set --hostname or HOSTNAME to the pod's name`,
    );
  }
  return { set: match[1] as string, ordinal: Number(match[2]) };
}

/**
 * Derives this pod's node id (its name) and, for a founding pod, every founder's id and address in
 * ordinal order; for a pod beyond the founders, its own address and the founders' addresses to join through.
 */
export function discoverStatefulSetPeers(discovery: StatefulSetDiscovery): NodeIdentity {
  const { hostname, replicas } = discovery;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_STATEFULSET_REPLICAS) {
    throw new Error(`StatefulSet replicas must be an integer from 1 to ${MAX_STATEFULSET_REPLICAS}, got ${replicas}`);
  }
  const { set, ordinal } = parsePodName(hostname);
  const addressOf = podAddresses(discovery);
  const founders = new Map<NodeId, string>();
  for (let founderOrdinal = 0; founderOrdinal < replicas; founderOrdinal++) {
    const pod = `${set}-${founderOrdinal}`;
    founders.set(pod, addressOf(pod, founderOrdinal));
  }
  if (ordinal < replicas) return { id: hostname, peers: founders };
  return { id: hostname, peers: new Map([[hostname, addressOf(hostname, ordinal)]]), join: [...founders.values()] };
}

/** How pods of the set are reached: checks the names once, then renders and checks each pod's host:port. */
function podAddresses(discovery: StatefulSetDiscovery): (pod: string, ordinal: number) => string {
  const template = discovery.hostTemplate ?? DEFAULT_PEER_HOST_TEMPLATE;
  const names = { service: checkedLabel("peer service", discovery.service), namespace: checkedLabel("namespace", discovery.namespace) };
  return (pod, ordinal) => {
    const idProblem = nodeIdProblem(pod);
    if (idProblem) throw new Error(`StatefulSet pod ${idProblem}`);
    const address = `${renderHost(template, { pod, ordinal: String(ordinal), ...names })}:${discovery.port}`;
    const problem = addressProblem(address);
    if (problem) throw new Error(`peer host template "${template}" does not make a valid address: ${problem}`);
    return address;
  };
}

/** The flags and variables of `raftq serve` that say who the node is, as given (strings, maybe missing). */
export interface IdentityFlags {
  /** --id / RAFTQ_ID. */
  readonly id?: string | undefined;
  /** --peers / RAFTQ_PEERS. */
  readonly peers?: string | undefined;
  /** --listen / RAFTQ_LISTEN, already checked: its port is every pod's port. */
  readonly listen: string;
  /** --statefulset-replicas / RAFTQ_STATEFULSET_REPLICAS: turns discovery on. */
  readonly statefulsetReplicas?: string | undefined;
  /** --peer-service / RAFTQ_PEER_SERVICE. */
  readonly peerService?: string | undefined;
  /** --namespace / RAFTQ_NAMESPACE. */
  readonly namespace?: string | undefined;
  /** --peer-host-template / RAFTQ_PEER_HOST_TEMPLATE. */
  readonly peerHostTemplate?: string | undefined;
  /** --advertise / RAFTQ_ADVERTISE: a discovered joining pod's address, instead of the one from the template. */
  readonly advertise?: string | undefined;
}

/**
 * The node's id and peers: explicit --id and --peers win, each on its own; whatever is missing is
 * discovered from the pod's hostname when --statefulset-replicas is set. A pod beyond the founders comes
 * out as a joining node (unless --peers is given): its id, its own address, and the founders to join
 * through. Throws a message naming the flags to set when neither is possible, or when the two sources disagree.
 */
export function resolveNodeIdentity(flags: IdentityFlags, hostname: () => string): NodeIdentity {
  if (flags.id !== undefined && flags.peers !== undefined) return checkedIdentity(flags.id, parsePeers(flags.peers));
  if (flags.statefulsetReplicas === undefined) {
    const missing = [flags.id === undefined ? "--id (RAFTQ_ID)" : "", flags.peers === undefined ? "--peers (RAFTQ_PEERS)" : ""];
    throw new Error(
      `${missing.filter(Boolean).join(" and ")} missing: give them, or set --statefulset-replicas (RAFTQ_STATEFULSET_REPLICAS) ` +
        `and --peer-service (RAFTQ_PEER_SERVICE) to derive them from a StatefulSet pod's hostname`,
    );
  }
  if (!/^[0-9]+$/.test(flags.statefulsetReplicas)) {
    throw new Error(`--statefulset-replicas must be a positive integer, got "${flags.statefulsetReplicas}"`);
  }
  const discovered = discoverStatefulSetPeers({
    hostname: hostname(),
    replicas: Number(flags.statefulsetReplicas),
    service: flags.peerService,
    namespace: flags.namespace,
    port: Number(flags.listen.slice(flags.listen.lastIndexOf(":") + 1)),
    hostTemplate: flags.peerHostTemplate,
  });
  const id = flags.id ?? discovered.id;
  if (flags.peers !== undefined) return checkedIdentity(id, parsePeers(flags.peers));
  if (discovered.join === undefined) return checkedIdentity(id, discovered.peers);
  const idProblem = nodeIdProblem(id);
  if (idProblem) throw new Error(idProblem);
  const advertiseProblem = flags.advertise === undefined ? null : addressProblem(flags.advertise);
  if (advertiseProblem) throw new Error(`--advertise: ${advertiseProblem}`);
  return { id, peers: new Map([[id, flags.advertise ?? discovered.peers.get(discovered.id)!]]), join: discovered.join };
}

/** The identity, if the id is one of the peers. */
function checkedIdentity(id: NodeId, peers: PeerAddresses): NodeIdentity {
  const problem = nodeIdProblem(id);
  if (problem) throw new Error(problem);
  if (!peers.has(id)) throw new Error(`node id "${id}" is not one of the peers (${[...peers.keys()].join(", ")}): --id and --peers disagree`);
  return { id, peers };
}

/** A Service or namespace name, if given; throws if it is not a DNS label. */
function checkedLabel(what: string, value: string | undefined): string | undefined {
  if (value === undefined || (DNS_LABEL_PATTERN.test(value) && value.length <= DNS_LABEL_MAX_CHARS)) return value;
  throw new Error(`${what} "${value}" is invalid: use a DNS label (lowercase letters, digits and '-', at most ${DNS_LABEL_MAX_CHARS} characters)`);
}

/** Fills the template's placeholders; throws for an unknown placeholder or one whose value is missing. */
function renderHost(template: string, values: Partial<Record<Placeholder, string>>): string {
  return template.replace(/\{([^}]*)\}/g, (_whole, name: string) => {
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new Error(`peer host template "${template}" has an unknown placeholder {${name}}: use ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")}`);
    }
    const value = values[name as Placeholder];
    if (value === undefined) throw new Error(`peer host template "${template}" uses {${name}}, but ${FLAG_OF[name as Placeholder]} is not set`);
    return value;
  });
}
