/** Renders Raft messages as one readable line each, for traces: `n1→n2 Append term=3 prev=5/2 entries=6..8 commit=5`. */
import { MessageType, type Message } from "../../src/raft/types.js";

/** One line describing `message`, without the tick. */
export function formatMessage(message: Message): string {
  const head = `${message.from}→${message.to} ${MessageType[message.type]} term=${message.term}`;
  switch (message.type) {
    case MessageType.PreVote:
    case MessageType.Vote:
      return `${head} last=${message.lastLogIndex}/${message.lastLogTerm}${message.transfer ? " transfer" : ""}`;
    case MessageType.PreVoteResponse:
    case MessageType.VoteResponse:
      return `${head} ${message.granted ? "granted" : "rejected"}`;
    case MessageType.Append: {
      const n = message.entries.length;
      const first = message.entries[0]?.index ?? 0;
      const entries = n === 0 ? "none" : n === 1 ? `${first}` : `${first}..${first + n - 1}`;
      return `${head} prev=${message.prevLogIndex}/${message.prevLogTerm} entries=${entries} commit=${message.commit}`;
    }
    case MessageType.AppendResponse:
      return message.success
        ? `${head} ok match=${message.matchIndex}`
        : `${head} reject at=${message.rejectedIndex} hint=${message.conflictIndex}/${message.conflictTerm}`;
    case MessageType.Heartbeat:
      return `${head} commit=${message.commit} read=${message.readRound}`;
    case MessageType.HeartbeatResponse:
      return `${head} read=${message.readRound}`;
    case MessageType.TimeoutNow:
      return head;
    case MessageType.Snapshot: {
      const voters = message.snapshot.membership.members.filter((member) => member.voter).map((member) => member.id);
      return `${head} snapshot=${message.snapshot.index}/${message.snapshot.term} voters=${voters.join(",")}`;
    }
  }
}
