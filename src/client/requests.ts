import { randomUUID } from "node:crypto";
import type { BatchMessage } from "../generated/raftq/v1/BatchMessage.js";
import type { EnqueueRequest } from "../generated/raftq/v1/EnqueueRequest.js";
import type { Body, EnqueueOptions, OutgoingMessage } from "./client.js";

/** The bytes of a body; strings are UTF-8 (protobufjs would read a plain string as base64). */
export function bodyBytes(body: Body): Uint8Array {
  return typeof body === "string" ? Buffer.from(body, "utf8") : body;
}

/** The key a message is sent with: the caller's, none when they opted out, else a fresh UUID. */
export function idempotencyKeyFor(options: EnqueueOptions | undefined): string | undefined {
  const key = options?.idempotencyKey;
  if (key === false) return undefined;
  return key ?? randomUUID();
}

/** The fields one message carries in Enqueue, EnqueueBatch and EnqueueStream, its key fixed once. */
export function batchMessage(message: OutgoingMessage): BatchMessage & { idempotencyKey?: string } {
  const idempotencyKey = idempotencyKeyFor(message);
  return {
    body: bodyBytes(message.body),
    delayMs: message.delayMs ?? 0,
    headers: { ...message.headers },
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  };
}

/** An EnqueueRequest for `queue`, its key fixed once so every retry sends the same one. */
export function enqueueRequest(queue: string, body: Body, options: EnqueueOptions | undefined): EnqueueRequest {
  return { queue, ...batchMessage({ ...options, body }) };
}
