/**
 * Network partitions as sets of directed links to cut. Pure functions over node ids: the cluster applies
 * the result to its per-link proxies, the schedule and the tests reason about it.
 */

/** Traffic from node `from` to node `to` (one proxy). */
export interface DirectedLink {
  readonly from: string;
  readonly to: string;
}

/** A stable key for a link, e.g. "n1→n2". */
export function linkKey(link: DirectedLink): string {
  return `${link.from}→${link.to}`;
}

/** Every directed link between distinct nodes. */
export function allLinks(ids: readonly string[]): DirectedLink[] {
  return ids.flatMap((from) => ids.filter((to) => to !== from).map((to) => ({ from, to })));
}

/** Cuts every link (both ways) between nodes of different groups; links inside a group stay up. */
export function splitLinks(groups: readonly (readonly string[])[]): DirectedLink[] {
  const groupOf = new Map<string, number>();
  groups.forEach((group, index) => {
    for (const id of group) {
      if (groupOf.has(id)) throw new Error(`partition groups overlap: node ${id} is in two groups`);
      groupOf.set(id, index);
    }
  });
  return allLinks([...groupOf.keys()]).filter((link) => groupOf.get(link.from) !== groupOf.get(link.to));
}

/**
 * Two halves that cannot see each other, and a bridge node that sees both: each half may form a majority
 * with the bridge, but never with the other half.
 */
export function bridgeLinks(left: readonly string[], bridge: string, right: readonly string[]): DirectedLink[] {
  if (left.includes(bridge) || right.includes(bridge)) throw new Error(`bridge node ${bridge} must not be in either half`);
  return splitLinks([left, right]);
}

/** Cuts traffic from each node of `from` to each node of `to`, one way only: the reverse direction stays up. */
export function oneWayLinks(from: readonly string[], to: readonly string[]): DirectedLink[] {
  return from.flatMap((source) => to.filter((target) => target !== source).map((target) => ({ from: source, to: target })));
}

/** Every link from or to `id`. */
export function linksOf(id: string, ids: readonly string[]): DirectedLink[] {
  return allLinks(ids).filter((link) => link.from === id || link.to === id);
}
