import type { LogEntry } from "../generated/raftq/v1/LogEntry.js";
import type { RaftMessage, RaftMessage__Output } from "../generated/raftq/v1/RaftMessage.js";
import { MessageType, type Entry, type EntryType, type Message } from "../raft/types.js";

/** Converts a core message to its wire form. Only the fields meaningful for its type are set. */
export function messageToWire(message: Message): RaftMessage {
  const base = { type: message.type, from: message.from, to: message.to, term: message.term };
  switch (message.type) {
    case MessageType.PreVote:
    case MessageType.Vote:
      return { ...base, lastLogIndex: message.lastLogIndex, lastLogTerm: message.lastLogTerm, transfer: message.transfer };
    case MessageType.PreVoteResponse:
    case MessageType.VoteResponse:
      return { ...base, granted: message.granted };
    case MessageType.Append:
      return {
        ...base,
        prevLogIndex: message.prevLogIndex,
        prevLogTerm: message.prevLogTerm,
        entries: message.entries.map(entryToWire),
        commit: message.commit,
      };
    case MessageType.AppendResponse:
      return {
        ...base,
        success: message.success,
        matchIndex: message.matchIndex,
        rejectedIndex: message.rejectedIndex,
        conflictTerm: message.conflictTerm,
        conflictIndex: message.conflictIndex,
      };
    case MessageType.Heartbeat:
      return { ...base, commit: message.commit, readRound: message.readRound };
    case MessageType.HeartbeatResponse:
      return { ...base, readRound: message.readRound };
    case MessageType.TimeoutNow:
      return base;
    case MessageType.Snapshot:
      // Snapshots travel with their state on an InstallSnapshot call of their own (snapshot-sender.ts).
      throw new Error("a Snapshot message cannot be sent in a Raft batch");
  }
}

function entryToWire(entry: Entry): LogEntry {
  return { index: entry.index, term: entry.term, type: entry.type, data: entry.data as Buffer };
}

/** Converts a wire message back, or returns an error string for a message no raftq node sends. */
export function messageFromWire(wire: RaftMessage__Output): Message | string {
  const base = { from: wire.from, to: wire.to, term: wire.term };
  switch (wire.type) {
    case MessageType.PreVote:
    case MessageType.Vote:
      return { ...base, type: wire.type, lastLogIndex: wire.lastLogIndex, lastLogTerm: wire.lastLogTerm, transfer: wire.transfer };
    case MessageType.PreVoteResponse:
    case MessageType.VoteResponse:
      return { ...base, type: wire.type, granted: wire.granted };
    case MessageType.Append:
      return {
        ...base,
        type: MessageType.Append,
        prevLogIndex: wire.prevLogIndex,
        prevLogTerm: wire.prevLogTerm,
        entries: wire.entries.map((entry) => ({
          index: entry.index,
          term: entry.term,
          type: entry.type as EntryType,
          data: entry.data,
        })),
        commit: wire.commit,
      };
    case MessageType.AppendResponse:
      return {
        ...base,
        type: MessageType.AppendResponse,
        success: wire.success,
        matchIndex: wire.matchIndex,
        rejectedIndex: wire.rejectedIndex,
        conflictTerm: wire.conflictTerm,
        conflictIndex: wire.conflictIndex,
      };
    case MessageType.Heartbeat:
      return { ...base, type: MessageType.Heartbeat, commit: wire.commit, readRound: wire.readRound };
    case MessageType.HeartbeatResponse:
      return { ...base, type: MessageType.HeartbeatResponse, readRound: wire.readRound };
    case MessageType.TimeoutNow:
      return { ...base, type: MessageType.TimeoutNow };
    default:
      return `unknown raft message type ${wire.type} from "${wire.from}"`;
  }
}
