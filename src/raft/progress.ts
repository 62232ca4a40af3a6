/** How a leader currently replicates to one follower. */
export enum ReplicationState {
  /** Match unknown: one Append at a time until the follower accepts one. */
  Probe = "probe",
  /** Match known: stream Appends optimistically, up to a bounded window in flight. */
  Replicate = "replicate",
  /** Receiving a snapshot: nothing else is sent until the transfer ends (see RaftCore.snapshotStatus). */
  Snapshot = "snapshot",
}

/** The leader's view of one follower (etcd's tracker.Progress, reduced to what raftq needs). */
export class Progress {
  matchIndex = 0;
  nextIndex: number;
  state = ReplicationState.Probe;
  /** In Probe: an Append is out and we wait for its answer or the next heartbeat response. */
  probeSent = false;
  /** In Replicate: the last index of each Append in flight, oldest first. */
  private readonly inflight: number[] = [];
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Highest ReadIndex round this follower confirmed. */
  readRound = 0;
  /** In Snapshot: the index of the snapshot being sent. */
  pendingSnapshotIndex = 0;

  constructor(
    lastIndex: number,
    private readonly maxInflight: number,
  ) {
    this.nextIndex = lastIndex + 1;
  }

  /** Whether another Append may be sent now. */
  isPaused(): boolean {
    switch (this.state) {
      case ReplicationState.Probe:
        return this.probeSent;
      case ReplicationState.Replicate:
        return this.inflight.length >= this.maxInflight;
      case ReplicationState.Snapshot:
        return true;
    }
  }

  /** Records an Append that ends at `lastIndex` as sent. */
  sent(lastIndex: number): void {
    if (this.state === ReplicationState.Replicate) {
      this.nextIndex = lastIndex + 1;
      this.inflight.push(lastIndex);
    } else {
      this.probeSent = true;
    }
  }

  /** The follower matches through `index`. Returns whether that is news. */
  acknowledge(index: number): boolean {
    const advanced = index > this.matchIndex;
    if (advanced) this.matchIndex = index;
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= index) this.inflight.shift();
    return advanced;
  }

  becomeProbe(nextIndex: number): void {
    this.state = ReplicationState.Probe;
    this.probeSent = false;
    this.inflight.length = 0;
    this.nextIndex = Math.max(this.matchIndex + 1, nextIndex);
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = ReplicationState.Snapshot;
    this.probeSent = false;
    this.inflight.length = 0;
    this.pendingSnapshotIndex = snapshotIndex;
  }

  becomeReplicate(): void {
    this.state = ReplicationState.Replicate;
    this.probeSent = false;
    this.inflight.length = 0;
    this.nextIndex = this.matchIndex + 1;
  }

  /** A heartbeat answer proves the follower is reachable: let one more Append through. */
  heartbeatAnswered(): void {
    if (this.state === ReplicationState.Snapshot) return;
    this.probeSent = false;
    if (this.inflight.length >= this.maxInflight) this.inflight.shift();
  }
}
