/** The first chunk of a snapshot transfer: the InstallSnapshot message, to and from its wire form, checked. */
import type { SnapshotHeader, SnapshotHeader__Output } from "../generated/raftq/v1/SnapshotHeader.js";
import { MessageType, type Member, type SnapshotMessage } from "../raft/types.js";
import { addressProblem, nodeIdProblem } from "../server/peers.js";

/**
 * The largest data chunk a transfer carries. StateSnapshotReader chunks are far smaller; a bigger one
 * means a bug or a hostile peer, and is refused rather than buffered.
 */
export const MAX_SNAPSHOT_CHUNK_BYTES = 4 * 1024 * 1024;

/** The most members a snapshot's membership may name (Raft clusters have a handful). */
export const MAX_SNAPSHOT_MEMBERS = 256;

export function snapshotHeaderToWire(message: SnapshotMessage): SnapshotHeader {
  const { snapshot } = message;
  return {
    from: message.from,
    to: message.to,
    term: message.term,
    index: snapshot.index,
    lastTerm: snapshot.term,
    members: snapshot.membership.members.map((member) => ({ id: member.id, address: member.address, voter: member.voter })),
  };
}

/** The message a header carries, or what is wrong with it (a header no raftq node sends). */
export function snapshotMessageFromWire(header: SnapshotHeader__Output): SnapshotMessage | string {
  const problem = headerProblem(header);
  if (problem) return `snapshot header from "${header.from}" is invalid: ${problem}`;
  const members: Member[] = header.members.map((member) => ({ id: member.id, address: member.address, voter: member.voter }));
  return {
    type: MessageType.Snapshot,
    from: header.from,
    to: header.to,
    term: header.term,
    snapshot: { index: header.index, term: header.lastTerm, membership: { members } },
  };
}

function headerProblem(header: SnapshotHeader__Output): string | null {
  const idProblem = nodeIdProblem(header.from) ?? nodeIdProblem(header.to);
  if (idProblem) return idProblem;
  for (const [name, value] of [["term", header.term], ["index", header.index], ["last term", header.lastTerm]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) return `${name} ${value} is not a positive integer`;
  }
  if (header.lastTerm > header.term) return `last term ${header.lastTerm} is after the sender's term ${header.term}`;
  if (header.members.length > MAX_SNAPSHOT_MEMBERS) return `${header.members.length} members, at most ${MAX_SNAPSHOT_MEMBERS}`;
  const seen = new Set<string>();
  for (const member of header.members) {
    const problem = nodeIdProblem(member.id) ?? addressProblem(member.address);
    if (problem) return `member ${problem}`;
    if (seen.has(member.id)) return `member "${member.id}" is listed twice`;
    seen.add(member.id);
  }
  if (!header.members.some((member) => member.voter)) return "its membership has no voter";
  return null;
}
