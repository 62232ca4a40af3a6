/**
 * The LevelDB layout of the queue state machine and its record formats. Everything lives in the root's
 * "queue" sublevel:
 *
 *   current | staging | retired      generation numbers (decimal text): the live state, a snapshot being
 *                                    received, an old state being deleted in the background
 *   !g<gen>!...                      one generation's state, a nested sublevel holding:
 *     applied                        JSON {appliedIndex, membership}
 *     machine                        JSON MachineRecord
 *     q/<queue name>                 JSON QueueRecord
 *     d/<incarnation>/<seq>          a chunk of one queue's idempotency keys, as digests, and
 *     e/<incarnation>                how far that queue has forgotten them (dedup-chunks.ts)
 *     m/<incarnation>/<id>           37-byte message bookkeeping (the only range a restart scans in bulk)
 *     b/<body group>                 headers and bodies of one group of messages (body-groups.ts)
 *
 * Numbers in keys are fixed-width lowercase hex, so key order is numeric order: a queue's messages scan in
 * id order. Message records stay small and apart from bodies so a restart reads bookkeeping only.
 */
import type { AbstractIteratorOptions } from "abstract-level";
import type { CompanionOperation } from "../node/state-machine.js";
import type { Membership } from "../raft/types.js";
import type { MessageMeta } from "../queue/message-meta.js";
import { MessageState } from "../queue/message-meta.js";
import type { MachineRecord, QueueRecord, StoredBody } from "../queue/queue-storage.js";
import type { RootLevel } from "./level-raft-storage.js";

/** Name of the root sublevel holding the queue state; the Raft storage uses "raft". */
export const QUEUE_SUBLEVEL = "queue";

export const CURRENT_GENERATION_KEY = "current";
export const STAGING_GENERATION_KEY = "staging";
export const RETIRED_GENERATION_KEY = "retired";

export const APPLIED_KEY = "applied";
export const MACHINE_KEY = "machine";
export const QUEUE_PREFIX = "q/";
export const MESSAGE_PREFIX = "m/";
export const BODY_PREFIX = "b/";

const INCARNATION_DIGITS = 8;
/** Enough hex digits for any safe integer (2^53 needs 14). */
const NUMBER_DIGITS = 14;
const META_BYTES = 37;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The "queue" sublevel of the root. */
export function queueSublevel(root: RootLevel) {
  return root.sublevel<string, Uint8Array>(QUEUE_SUBLEVEL, { keyEncoding: "utf8", valueEncoding: "view" });
}
export type QueueSublevel = ReturnType<typeof queueSublevel>;

/** The sublevel of generation `generation`. */
export function generationSublevel(parent: QueueSublevel, generation: number) {
  return parent.sublevel<string, Uint8Array>(`g${hex(generation, INCARNATION_DIGITS)}`, {
    keyEncoding: "utf8",
    valueEncoding: "view",
  });
}
export type GenerationSublevel = ReturnType<typeof generationSublevel>;

/** Iterator options plus classic-level's bound on the bytes one nextv() holds (other backends ignore it). */
export type BoundedIteratorOptions = AbstractIteratorOptions<string, Uint8Array> & { highWaterMarkBytes: number };

/** The range of keys starting with `prefix` (the prefixes above all end in "/"). */
export function prefixRange(prefix: string): { gte: string; lt: string } {
  return { gte: prefix, lt: `${prefix.slice(0, -1)}0` };
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

export function queueKey(name: string): string {
  return `${QUEUE_PREFIX}${name}`;
}

export function messageKey(incarnation: number, id: number): string {
  return `${MESSAGE_PREFIX}${hex(incarnation, INCARNATION_DIGITS)}/${hex(id, NUMBER_DIGITS)}`;
}

/** The record of body group `group` (queue-storage.ts BODY_GROUP_IDS). */
export function bodyGroupKey(group: number): string {
  return `${BODY_PREFIX}${hex(group, NUMBER_DIGITS)}`;
}

/** The incarnation and id a message key names. */
export function parseMessageKey(key: string): { incarnation: number; id: number } {
  const incarnationStart = MESSAGE_PREFIX.length;
  const idStart = incarnationStart + INCARNATION_DIGITS + 1;
  const incarnation = parseInt(key.slice(incarnationStart, idStart - 1), 16);
  const id = parseInt(key.slice(idStart), 16);
  if (!(incarnation > 0 && id > 0) || key.length !== idStart + NUMBER_DIGITS) {
    throw new Error(`queue message key ${JSON.stringify(key)} is malformed`);
  }
  return { incarnation, id };
}

export function encodeJson(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(fromUtf8.decode(bytes)) as T;
}

export function encodeGeneration(generation: number): Uint8Array {
  return utf8.encode(String(generation));
}

export function decodeGeneration(bytes: Uint8Array | undefined): number | undefined {
  if (bytes === undefined) return undefined;
  const generation = Number(fromUtf8.decode(bytes));
  if (!Number.isSafeInteger(generation) || generation < 1) throw new Error(`queue generation record "${fromUtf8.decode(bytes)}" is malformed`);
  return generation;
}

/** The applied index and membership a generation's state is at. */
export interface AppliedRecord {
  readonly appliedIndex: number;
  readonly membership: Membership | null;
}

export type { MachineRecord, QueueRecord };

/**
 * Writes message bookkeeping as its 37-byte record at `offset` of `view`: body id, enqueue time, due time,
 * payload bytes, delivery count, state; bytes 33..36 stay as they are (zero).
 */
function writeMeta(view: DataView, offset: number, meta: MessageMeta): void {
  view.setFloat64(offset, meta.bodyId, true);
  view.setFloat64(offset + 8, meta.enqueuedAtMs, true);
  view.setFloat64(offset + 16, meta.dueMs, true);
  view.setUint32(offset + 24, meta.payloadBytes, true);
  view.setUint32(offset + 28, meta.deliveryCount, true);
  view.setUint8(offset + 32, meta.state);
}

/** Message records in one batch share a few buffers: one allocation per 1,024 records instead of two per record. */
export class MetaEncoder {
  private static readonly RECORDS_PER_CHUNK = 1024;
  private chunk = new Uint8Array(0);
  private view = new DataView(this.chunk.buffer);
  private used = 0;

  /** `meta`'s record, as a view into a shared, zero-filled chunk. */
  encode(meta: MessageMeta): Uint8Array {
    if (this.used + META_BYTES > this.chunk.byteLength) {
      this.chunk = new Uint8Array(META_BYTES * MetaEncoder.RECORDS_PER_CHUNK);
      this.view = new DataView(this.chunk.buffer);
      this.used = 0;
    }
    const offset = this.used;
    writeMeta(this.view, offset, meta);
    this.used += META_BYTES;
    return this.chunk.subarray(offset, offset + META_BYTES);
  }
}

export function decodeMeta(id: number, bytes: Uint8Array): MessageMeta {
  if (bytes.byteLength !== META_BYTES) throw new Error(`queue message record of ${bytes.byteLength} bytes: expected ${META_BYTES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state = view.getUint8(32);
  if (state !== MessageState.Ready && state !== MessageState.Delayed && state !== MessageState.InFlight) {
    throw new Error(`queue message record has unknown state ${state}`);
  }
  return {
    id,
    bodyId: view.getFloat64(0, true),
    enqueuedAtMs: view.getFloat64(8, true),
    dueMs: view.getFloat64(16, true),
    payloadBytes: view.getUint32(24, true),
    deliveryCount: view.getUint32(28, true),
    state,
    generation: 0,
  };
}

const NO_HEADERS = new Uint8Array(0);

/**
 * The headers part of an encoded body (empty when there are none). An encoded body is the headers'
 * length (u32, 0 = none), the headers as JSON, then the body (writeBody; decodeBody reads it).
 */
export function encodeHeaders(headers: Readonly<Record<string, string>>): Uint8Array {
  for (const _ in headers) return encodeJson(headers);
  return NO_HEADERS;
}

/** The size of an encoded body whose headers encode to `headers`. */
export function encodedBodyBytes(headers: Uint8Array, stored: StoredBody): number {
  return 4 + headers.byteLength + stored.body.byteLength;
}

/** Writes an encoded body at `offset` of `bytes` (`view` is over the same buffer, from its start). */
export function writeBody(view: DataView, bytes: Uint8Array, offset: number, headers: Uint8Array, stored: StoredBody): void {
  view.setUint32(offset, headers.byteLength, true);
  bytes.set(headers, offset + 4);
  bytes.set(stored.body, offset + 4 + headers.byteLength);
}

export function decodeBody(bytes: Uint8Array): StoredBody {
  const headersBytes = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  const headers = headersBytes === 0 ? {} : decodeJson<Record<string, string>>(bytes.subarray(4, 4 + headersBytes));
  return { headers, body: bytes.subarray(4 + headersBytes) };
}

/** A put on a generation, for a batch on the root (e.g. the driver's snapshot install batch). */
export function generationPut(generation: GenerationSublevel, key: string, value: Uint8Array): CompanionOperation {
  // The root batch accepts any descendant sublevel (abstract-level checks descent at run time); its type
  // only names direct children of the root, and a generation is a grandchild.
  return { type: "put", key, value, sublevel: generation as unknown as CompanionOperation["sublevel"] } as CompanionOperation;
}
