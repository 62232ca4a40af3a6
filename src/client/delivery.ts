import type { Delivery__Output } from "../generated/raftq/v1/Delivery.js";
import type { RaftqClient } from "./client.js";

/**
 * One delivery attempt of a message, leased to this consumer until its visibility timeout ends.
 * Settle it with `ack()` (done), `nack()` (give it back) or keep it with `extendLease()`; all act by
 * receipt, so they are refused (false) once the lease ended and the message was delivered again.
 */
export interface Delivery extends Readonly<Omit<Delivery__Output, "more">> {
  /** The queue the message came from. */
  readonly queue: string;

  /** The body decoded as UTF-8. */
  text(): string;

  /** Deletes the message for good; false if this delivery's lease was lost (the message was redelivered or is gone). */
  ack(): Promise<boolean>;

  /** Gives the message back, ready again after `delayMs` (default 0); false if the lease was lost. */
  nack(delayMs?: number): Promise<boolean>;

  /** Keeps working: the lease ends `visibilityTimeoutMs` from now (default: the queue's); false if the lease was lost. */
  extendLease(visibilityTimeoutMs?: number): Promise<boolean>;
}

/** The client operations a delivery settles itself with. */
export interface LeaseActions extends Pick<RaftqClient, "nack" | "extendLease"> {
  /** Acks one delivery by its receipt; the client joins acks made together into one call (ack-coalescer.ts). */
  ackReceipt(queue: string, receipt: string): Promise<boolean>;
}

/** A Delivery bound to the client that leased it. */
export class LeasedDelivery implements Delivery {
  readonly id: number;
  readonly body: Buffer;
  readonly headers: { [key: string]: string };
  readonly deliveryCount: number;
  readonly enqueuedAtMs: number;
  readonly receipt: string;

  constructor(
    readonly queue: string,
    message: Delivery__Output,
    private readonly actions: LeaseActions,
  ) {
    this.id = message.id;
    this.body = message.body;
    this.headers = message.headers;
    this.deliveryCount = message.deliveryCount;
    this.enqueuedAtMs = message.enqueuedAtMs;
    this.receipt = message.receipt;
  }

  text(): string {
    return this.body.toString("utf8");
  }

  ack(): Promise<boolean> {
    return this.actions.ackReceipt(this.queue, this.receipt);
  }

  async nack(delayMs = 0): Promise<boolean> {
    const result = await this.actions.nack(this.queue, { receipts: [this.receipt], delayMs });
    return result.refusedReceipts.length === 0;
  }

  async extendLease(visibilityTimeoutMs = 0): Promise<boolean> {
    const result = await this.actions.extendLease(this.queue, { receipts: [this.receipt], visibilityTimeoutMs });
    return result.refusedReceipts.length === 0;
  }
}
