/** The size of a delivery in a Dequeue answer, as counted against a lease's byte budget (MAX_LEASE_BYTES). */
import { DELIVERY_OVERHEAD_BYTES, HEADER_OVERHEAD_BYTES } from "./limits.js";
import type { Delivery } from "./results.js";
import { headersByteLength } from "./validation.js";

/**
 * At least the bytes `delivery` takes in an encoded DequeueResponse: body, header keys and values, receipt,
 * and allowances for the framing (per delivery and per header).
 */
export function deliveryBytes(delivery: Pick<Delivery, "body" | "headers" | "receipt">): number {
  const headerCount = Object.keys(delivery.headers).length;
  return (
    delivery.body.byteLength +
    headersByteLength(delivery.headers) +
    headerCount * HEADER_OVERHEAD_BYTES +
    Buffer.byteLength(delivery.receipt, "utf8") +
    DELIVERY_OVERHEAD_BYTES
  );
}
