/**
 * How the simulator names log entries. Every client proposal carries a unique ASCII payload `p<seq>`, so
 * an entry's payload identifies it; a leader's no-op has no payload and is identified by (index, term).
 */
import { decodeMembership } from "../../src/raft/membership.js";
import { EntryType, type Entry } from "../../src/raft/types.js";

/** The payload of the `seq`-th proposal of a run. */
export function proposalPayload(seq: number): Uint8Array {
  const text = `p${seq}`;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** What an entry carries, as a short string: `p17` for a proposal, `noop` for a leader's no-op. */
export function entryPayload(entry: Entry): string {
  if (entry.type === EntryType.Noop) return "noop";
  if (entry.type === EntryType.Membership) {
    const members = decodeMembership(entry.data).members;
    return `members:${members.map((member) => `${member.id}${member.voter ? "" : "?"}`).join(",")}`;
  }
  return asciiText(entry.data);
}

/** Decodes a short ASCII payload. By hand: faster than TextDecoder or spreading for a few bytes, and hot. */
export function asciiText(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

/** `index/term:payload`, e.g. `7/3:p12`: how traces and violations name an entry. */
export function describeEntry(entry: Entry): string {
  return `${entry.index}/${entry.term}:${entryPayload(entry)}`;
}

/** Whether an applied payload is a client proposal (not a no-op or a membership entry). */
export function isProposal(payload: string): boolean {
  return payload.startsWith("p");
}
