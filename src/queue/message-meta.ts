/**
 * What memory holds about one message: its delivery bookkeeping and where its body is. The body and
 * headers themselves live only in storage (QueueStorage), read back when a lease is answered.
 */

/** Where a message is in its life cycle. */
export enum MessageState {
  /** Waiting to be leased. */
  Ready = 0,
  /** Invisible until `dueMs` (an Enqueue or Nack delay). */
  Delayed = 1,
  /** Leased until `dueMs`. */
  InFlight = 2,
}

/** One message's bookkeeping; a plain copy, written back to the MessageTable after a change. */
export interface MessageMeta {
  /** Unique within its queue incarnation; positive. */
  readonly id: number;
  /** Names the stored body and headers; unique in the whole state machine, kept by dead-lettering. */
  readonly bodyId: number;
  /** What the body and headers add to a delivery's size (see delivery-size.ts), for the lease byte budget. */
  readonly payloadBytes: number;
  readonly enqueuedAtMs: number;
  state: MessageState;
  /** When a Delayed message becomes ready or an InFlight lease ends (log time); 0 when Ready. */
  dueMs: number;
  deliveryCount: number;
  /** Bumped on every state change, so index entries made before it are recognisably stale (wraps at 2^32). */
  generation: number;
}
