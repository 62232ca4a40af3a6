import type { Logger } from "pino";
import type { StateSnapshotReader } from "../node/state-machine.js";
import { MessageType, type Message, type NodeId, type SnapshotMessage } from "../raft/types.js";
import { PeerLink } from "./peer-link.js";
import { DEFAULT_SNAPSHOT_LIMITS, type SnapshotTransferLimits } from "./snapshot-sender.js";

/** Carries Raft messages between nodes. Best effort: Raft tolerates lost, late and duplicated messages. */
export interface PeerTransport {
  send(messages: readonly Message[]): void;
  close(): void;
}

/** Notified when a link to a peer breaks (reset, refused): the node may react faster than a timeout. */
export type PeerDownHandler = (peer: NodeId) => void;

export interface GrpcPeerTransportOptions {
  /** Every other member: node id → the address this node dials. Change it with setPeers. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly logger: Logger;
  readonly onPeerDown: PeerDownHandler;
  /**
   * Opens a view of the state as last persisted (ReplicatedStateMachine.openSnapshot). Called
   * synchronously inside send(), so the view matches the applied index the Snapshot message names.
   */
  readonly openSnapshot: () => StateSnapshotReader;
  /**
   * A snapshot transfer to `peer` failed (RaftNode.snapshotDone with ok false): the leader sends a fresh snapshot
   * later. Always called asynchronously, never from inside send().
   */
  readonly onSnapshotFailed: (peer: NodeId) => void;
  /**
   * The peer acknowledged a whole snapshot (RaftNode.snapshotDone): if its answer to the Snapshot
   * message gets lost, the leader still goes back to probing it instead of waiting forever.
   */
  readonly onSnapshotSent?: (peer: NodeId) => void;
  readonly snapshotLimits?: Partial<SnapshotTransferLimits>;
}

/**
 * One node's outbound links, one per peer: a long-lived stream for messages, and a separate call per
 * snapshot. A Snapshot message starts a transfer of the current state; a failed transfer is not resumed
 * but reported, and the leader's core later sends a new Snapshot message for a fresh state.
 */
export class GrpcPeerTransport implements PeerTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly snapshotLimits: SnapshotTransferLimits;
  private closed = false;

  constructor(private readonly options: GrpcPeerTransportOptions) {
    this.snapshotLimits = { ...DEFAULT_SNAPSHOT_LIMITS, ...options.snapshotLimits };
    this.setPeers(options.peers);
  }

  send(messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      if (message.type === MessageType.Snapshot) {
        this.sendSnapshot(message);
        continue;
      }
      const batch = byPeer.get(message.to);
      if (batch) batch.push(message);
      else byPeer.set(message.to, [message]);
    }
    for (const [peer, batch] of byPeer) this.links.get(peer)?.send(batch);
  }

  /**
   * Makes the links match `peers` (every other member, id → dial address): opens links to new peers,
   * closes those of removed peers (cancelling a snapshot transfer to them), and reopens a link whose
   * address changed.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.closed) return;
    for (const [id, link] of this.links) {
      if (peers.get(id) === link.address) continue;
      link.close();
      this.links.delete(id);
    }
    for (const [id, address] of peers) {
      if (this.links.has(id)) continue;
      this.links.set(id, new PeerLink(id, address, this.options.logger, {
          onPeerDown: this.options.onPeerDown,
          onSnapshotFailed: (peer) => this.snapshotFailed(peer),
          onSnapshotSent: (peer) => {
            if (!this.closed) this.options.onSnapshotSent?.(peer);
          },
        }));
    }
  }

  /** The peers there is a link to, and the address each is dialled at. */
  peers(): ReadonlyMap<NodeId, string> {
    return new Map([...this.links].map(([id, link]) => [id, link.address]));
  }

  close(): void {
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  private sendSnapshot(message: SnapshotMessage): void {
    const link = this.links.get(message.to);
    if (!link) {
      this.options.logger.warn({ peer: message.to }, "a snapshot for a node that is not a peer was dropped");
      this.snapshotFailedLater(message.to);
      return;
    }
    // The transfer in progress reports its own outcome; the core asks again if it fails.
    if (link.sendingSnapshot) return;
    let reader: StateSnapshotReader;
    try {
      reader = this.options.openSnapshot();
    } catch (error) {
      this.options.logger.error({ peer: message.to, err: error }, "cannot open a snapshot of the state");
      this.snapshotFailedLater(message.to);
      return;
    }
    if (reader.appliedIndex !== message.snapshot.index) {
      // The driver must send a Snapshot message right after the state reached its index; if not, the
      // follower would install a state that does not match the log position it is told.
      this.options.logger.error(
        { peer: message.to, snapshotIndex: message.snapshot.index, stateIndex: reader.appliedIndex },
        "the state does not match the snapshot the core asked for; not sending it",
      );
      void reader.close().catch(() => undefined);
      this.snapshotFailedLater(message.to);
      return;
    }
    link.sendSnapshot(message, reader, this.snapshotLimits);
  }

  private snapshotFailedLater(peer: NodeId): void {
    setImmediate(() => this.snapshotFailed(peer));
  }

  /** A stopped node is told nothing more. */
  private snapshotFailed(peer: NodeId): void {
    if (!this.closed) this.options.onSnapshotFailed(peer);
  }
}
