/**
 * Cluster membership: who votes, who only learns, and the single-server changes between memberships.
 * A Membership entry carries the whole new membership, so applying one is a plain replacement and the
 * bootstrap entry has the same shape as every later change.
 *
 * Why single-server changes rather than joint consensus: any two majorities of memberships that differ
 * by one voter overlap (Raft thesis §4.1), so one change at a time needs no intermediate configuration.
 * The core allows one change in flight and none before the leader has applied an entry of its own term
 * (see RaftCore.canChangeMembership), which closes the known single-server hole (thesis §4.1 erratum).
 */
import { EntryType, type Entry, type Member, type Membership, type NodeId } from "./types.js";

/** What an operator (or the leader itself, for promotion) may ask for. */
export type MembershipChange =
  | { readonly kind: "add-learner"; readonly id: NodeId; readonly address: string }
  | { readonly kind: "promote"; readonly id: NodeId }
  | { readonly kind: "remove"; readonly id: NodeId };

/** The membership after `change`, or a sentence saying why the change is not allowed. */
export function changeMembership(current: Membership, change: MembershipChange): Membership | string {
  const existing = current.members.find((member) => member.id === change.id);
  switch (change.kind) {
    case "add-learner":
      if (existing?.address === change.address) return current;
      if (existing) return `node ${change.id} is already a member at ${existing.address}; remove it first to change its address`;
      return { members: [...current.members, { id: change.id, address: change.address, voter: false }] };
    case "promote":
      if (!existing) return `node ${change.id} is not a member`;
      if (existing.voter) return current;
      return { members: current.members.map((member) => (member.id === change.id ? { ...member, voter: true } : member)) };
    case "remove": {
      if (!existing) return `node ${change.id} is not a member`;
      const remaining = current.members.filter((member) => member.id !== change.id);
      if (!remaining.some((member) => member.voter)) return `removing node ${change.id} would leave the cluster without a voter`;
      return { members: remaining };
    }
  }
}

export function votersOf(membership: Membership): NodeId[] {
  return membership.members.filter((member) => member.voter).map((member) => member.id);
}

export function isVoterIn(membership: Membership, id: NodeId): boolean {
  return membership.members.some((member) => member.id === id && member.voter);
}

export function isMemberOf(membership: Membership, id: NodeId): boolean {
  return membership.members.some((member) => member.id === id);
}

/** A membership of voters only, e.g. a new cluster's first one. */
export function votersMembership(voters: readonly Omit<Member, "voter">[]): Membership {
  return { members: voters.map((voter) => ({ id: voter.id, address: voter.address, voter: true })) };
}

// Membership entries are rare and small: JSON keeps them readable in a log dump.
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeMembership(membership: Membership): Uint8Array {
  return encoder.encode(JSON.stringify(membership.members.map((member) => [member.id, member.address, member.voter])));
}

/** Decodes what encodeMembership wrote; throws on anything else (a Membership entry is never client data). */
export function decodeMembership(data: Uint8Array): Membership {
  const parsed: unknown = JSON.parse(decoder.decode(data));
  if (!Array.isArray(parsed)) throw new Error("membership entry is not a list of members");
  const members = parsed.map((item: unknown): Member => {
    if (!Array.isArray(item) || typeof item[0] !== "string" || typeof item[1] !== "string" || typeof item[2] !== "boolean") {
      throw new Error("membership entry holds a malformed member");
    }
    return { id: item[0], address: item[1], voter: item[2] };
  });
  return { members };
}

export function sameMembership(a: Membership, b: Membership): boolean {
  if (a.members.length !== b.members.length) return false;
  return a.members.every((member, index) => {
    const other = b.members[index]!;
    return member.id === other.id && member.address === other.address && member.voter === other.voter;
  });
}

/**
 * The first entry of a new cluster's log, identical on every founding node: term 0 (before any election)
 * and committed from the start, so a node added later learns the founding membership by replication.
 */
export function bootstrapEntry(founders: Membership): Entry {
  return { index: 1, term: 0, type: EntryType.Membership, data: encodeMembership(founders) };
}
