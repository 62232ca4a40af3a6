import type { NodeId } from "../raft/types.js";

/** The cluster as the operator wrote it in --peers: node id → address other nodes and clients dial. */
export type PeerAddresses = ReadonlyMap<NodeId, string>;

const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const ADDRESS_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$/;

/** Checks a node id, returning what is wrong or null. */
export function nodeIdProblem(id: string): string | null {
  return NODE_ID_PATTERN.test(id) ? null : `node id "${id}" is invalid: use 1-63 letters, digits, '.', '_' or '-'`;
}

/** Checks a host:port address, returning what is wrong or null. */
export function addressProblem(address: string): string | null {
  const match = ADDRESS_PATTERN.exec(address);
  const port = match ? Number(match[2]) : 0;
  return match && port >= 1 && port <= 65535 ? null : `address "${address}" is invalid: use host:port, e.g. 127.0.0.1:7001`;
}

/** Parses "n1=host:7001,n2=host:7002,…"; throws a message naming the flag and the bad part. */
export function parsePeers(spec: string, flag = "--peers"): PeerAddresses {
  const peers = new Map<NodeId, string>();
  for (const part of spec.split(",").map((item) => item.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`${flag} entry "${part}" is invalid: write id=host:port, e.g. n1=127.0.0.1:7001`);
    const id = part.slice(0, eq);
    const address = part.slice(eq + 1);
    const problem = nodeIdProblem(id) ?? addressProblem(address);
    if (problem) throw new Error(`${flag}: ${problem}`);
    if (peers.has(id)) throw new Error(`${flag} names node "${id}" twice`);
    peers.set(id, address);
  }
  if (peers.size === 0) throw new Error(`${flag} is empty: list nodes as id=host:port, comma-separated`);
  return peers;
}

/** Renders peers back to the --peers form. */
export function formatPeers(peers: PeerAddresses): string {
  return [...peers].map(([id, address]) => `${id}=${address}`).join(",");
}
