/** The size of a delivery in a Dequeue answer, as counted against a lease's byte budget (MAX_LEASE_BYTES). */
import { DELIVERY_OVERHEAD_BYTES, HEADER_OVERHEAD_BYTES } from "./limits.js";
import type { Delivery } from "./results.js";
import { headersByteLength } from "./validation.js";

/** What a message's body and headers add to each of its deliveries: bytes plus per-header framing. */
export function payloadBytes(body: Uint8Array, headers: Readonly<Record<string, string>>): number {
  const headerCount = Object.keys(headers).length;
  return body.byteLength + headersByteLength(headers) + headerCount * HEADER_OVERHEAD_BYTES;
}

/** The counted size of a delivery of a message whose payloadBytes are `payload`, under `receipt`. */
export function leasedBytes(payload: number, receipt: string): number {
  return payload + Buffer.byteLength(receipt, "utf8") + DELIVERY_OVERHEAD_BYTES;
}

/**
 * At least the bytes `delivery` takes in an encoded DequeueResponse: body, header keys and values, receipt,
 * and allowances for the framing (per delivery and per header).
 */
export function deliveryBytes(delivery: Pick<Delivery, "body" | "headers" | "receipt">): number {
  return leasedBytes(payloadBytes(delivery.body, delivery.headers), delivery.receipt);
}
