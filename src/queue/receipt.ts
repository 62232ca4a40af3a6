/**
 * Receipts name one delivery attempt of one message: the queue's incarnation (so a receipt from a deleted
 * and re-created queue of the same name never matches), the message id and its delivery count. They are
 * printed in base 36, e.g. "1.2s.3"; clients treat them as opaque strings.
 */

/** What a receipt names. All parts are positive integers. */
export interface ReceiptParts {
  /** Distinguishes successive queues of the same name (see QueueStateMachine). */
  readonly incarnation: number;
  readonly id: number;
  /** The message's delivery_count when this receipt was issued. */
  readonly deliveryCount: number;
}

const RADIX = 36;
/** Canonical base-36 positive integers only: no leading zeros, no sign, at most 11 digits (< 2^57). */
const PART = "([1-9a-z][0-9a-z]{0,10})";
const RECEIPT_PATTERN = new RegExp(`^${PART}\\.${PART}\\.${PART}$`);

/** The receipt of one delivery attempt. */
export function formatReceipt(parts: ReceiptParts): string {
  return [parts.incarnation, parts.id, parts.deliveryCount].map((part) => part.toString(RADIX)).join(".");
}

/** The parts a receipt names, or undefined if it is not exactly a string formatReceipt produces. */
export function parseReceipt(receipt: string): ReceiptParts | undefined {
  const match = RECEIPT_PATTERN.exec(receipt);
  if (match === null) return undefined;
  const [incarnation, id, deliveryCount] = match.slice(1).map((part) => parseInt(part, RADIX));
  if (!isSafePositive(incarnation) || !isSafePositive(id) || !isSafePositive(deliveryCount)) return undefined;
  return { incarnation, id, deliveryCount };
}

function isSafePositive(value: number | undefined): value is number {
  return value !== undefined && Number.isSafeInteger(value) && value > 0;
}
