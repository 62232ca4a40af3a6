/**
 * The on-disk layout of LevelRaftStorage: binary keys that sort in log order and compact checksummed
 * records. Pure functions, so the format is tested byte for byte without a database.
 *
 * Keys (inside the storage's own sublevel):
 *   [0x00]                      format version
 *   [0x01]                      hard state
 *   [0x02][index u64 BE]        log entry (big-endian so byte order is index order)
 *   [0x03]                      log start: the last compacted position (absent: index 0, term 0)
 *
 * Records (all integers big-endian; crc32 is zlib.crc32 over every byte after the crc field):
 *   format version: [crc32 u32][version u32]
 *   hard state:     [crc32 u32][term u64][commit u64][voteLength u8][vote UTF-8, voteLength bytes]
 *   log entry:      [crc32 u32][index u64][term u64][type u8][data, the rest]
 *   log start:      [crc32 u32][index u64][term u64]
 * The entry repeats its index so a record copied or left under the wrong key is caught.
 */
import { crc32 } from "node:zlib";
import type { Entry, HardState } from "../raft/types.js";
import { isEntryType } from "./raft-storage.js";

/** The only format this build reads and writes. */
export const FORMAT_VERSION = 2;

const VERSION_TAG = 0x00;
const HARD_STATE_TAG = 0x01;
const ENTRY_TAG = 0x02;
const LOG_START_TAG = 0x03;

/** Key of the format version record. */
export const FORMAT_VERSION_KEY = Uint8Array.of(VERSION_TAG);
/** Key of the hard state record. */
export const HARD_STATE_KEY = Uint8Array.of(HARD_STATE_TAG);
/** Lower bound (inclusive) of the entry key range. */
export const ENTRY_KEYS_START = Uint8Array.of(ENTRY_TAG);
/** Upper bound (exclusive) of the entry key range. */
export const ENTRY_KEYS_END = Uint8Array.of(ENTRY_TAG + 1);
/** Key of the log start record. */
export const LOG_START_KEY = Uint8Array.of(LOG_START_TAG);
const LOG_START_RECORD_BYTES = 4 + 8 + 8;

const CRC_BYTES = 4;
const U64_BYTES = 8;
const ENTRY_KEY_BYTES = 1 + U64_BYTES;
const VERSION_RECORD_BYTES = CRC_BYTES + 4;
const HARD_STATE_HEADER_BYTES = CRC_BYTES + U64_BYTES + U64_BYTES + 1;
const ENTRY_HEADER_BYTES = CRC_BYTES + U64_BYTES + U64_BYTES + 1;
const TWO_POW_32 = 2 ** 32;
/** The high word of Number.MAX_SAFE_INTEGER: anything above cannot be a JS number exactly. */
const MAX_SAFE_HIGH_WORD = 0x1fffff;

/** A decoded record, or what is wrong with the bytes. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** The key of the entry at `index`. */
export function entryKey(index: number): Uint8Array {
  const key = new Uint8Array(ENTRY_KEY_BYTES);
  key[0] = ENTRY_TAG;
  writeU64(new DataView(key.buffer), 1, index);
  return key;
}

/** The index an entry key names. */
export function decodeEntryKey(key: Uint8Array): Decoded<number> {
  if (key.byteLength !== ENTRY_KEY_BYTES || key[0] !== ENTRY_TAG) {
    return fail(`entry key ${hex(key)} is not ${ENTRY_KEY_BYTES} bytes starting with 0x02`);
  }
  const index = readU64(view(key), 1);
  return index === null || index < 1 ? fail(`entry key ${hex(key)} does not hold a positive safe index`) : ok(index);
}

/** The version record for `version`. */
export function encodeFormatVersion(version: number): Uint8Array {
  const record = new Uint8Array(VERSION_RECORD_BYTES);
  const dv = new DataView(record.buffer);
  dv.setUint32(CRC_BYTES, version);
  sealCrc(record, dv);
  return record;
}

/** The version a version record holds. */
export function decodeFormatVersion(record: Uint8Array): Decoded<number> {
  if (record.byteLength !== VERSION_RECORD_BYTES) return fail(`format version record is ${record.byteLength} bytes, expected ${VERSION_RECORD_BYTES}`);
  const crcProblem = checkCrc(record);
  if (crcProblem !== null) return fail(`format version record ${crcProblem}`);
  return ok(view(record).getUint32(CRC_BYTES));
}

/** The record for a hard state; the caller has checked the vote fits (MAX_VOTE_BYTES). */
export function encodeHardState(hardState: HardState): Uint8Array {
  const vote = Buffer.from(hardState.vote, "utf8");
  const record = new Uint8Array(HARD_STATE_HEADER_BYTES + vote.byteLength);
  const dv = new DataView(record.buffer);
  writeU64(dv, CRC_BYTES, hardState.term);
  writeU64(dv, CRC_BYTES + U64_BYTES, hardState.commit);
  dv.setUint8(CRC_BYTES + 2 * U64_BYTES, vote.byteLength);
  record.set(vote, HARD_STATE_HEADER_BYTES);
  sealCrc(record, dv);
  return record;
}

/** The hard state a record holds. */
export function decodeHardState(record: Uint8Array): Decoded<HardState> {
  if (record.byteLength < HARD_STATE_HEADER_BYTES) return fail(`hard state record is ${record.byteLength} bytes, shorter than its ${HARD_STATE_HEADER_BYTES}-byte header`);
  const crcProblem = checkCrc(record);
  if (crcProblem !== null) return fail(`hard state record ${crcProblem}`);
  const dv = view(record);
  const term = readU64(dv, CRC_BYTES);
  const commit = readU64(dv, CRC_BYTES + U64_BYTES);
  const voteBytes = dv.getUint8(CRC_BYTES + 2 * U64_BYTES);
  if (term === null || commit === null) return fail("hard state term or commit is not a safe integer");
  if (record.byteLength !== HARD_STATE_HEADER_BYTES + voteBytes) {
    return fail(`hard state record is ${record.byteLength} bytes but its vote length says ${HARD_STATE_HEADER_BYTES + voteBytes}`);
  }
  let vote: string;
  try {
    vote = strictUtf8.decode(record.subarray(HARD_STATE_HEADER_BYTES));
  } catch {
    return fail("hard state vote is not valid UTF-8");
  }
  return ok({ term, vote, commit });
}

/** The record for the log start (the last compacted index and its term). */
export function encodeLogStart(position: { readonly index: number; readonly term: number }): Uint8Array {
  const record = new Uint8Array(LOG_START_RECORD_BYTES);
  const dv = new DataView(record.buffer);
  writeU64(dv, CRC_BYTES, position.index);
  writeU64(dv, CRC_BYTES + U64_BYTES, position.term);
  sealCrc(record, dv);
  return record;
}

export function decodeLogStart(record: Uint8Array): Decoded<{ index: number; term: number }> {
  if (record.byteLength !== LOG_START_RECORD_BYTES) return fail(`log start record is ${record.byteLength} bytes, expected ${LOG_START_RECORD_BYTES}`);
  const crcProblem = checkCrc(record);
  if (crcProblem !== null) return fail(`log start record ${crcProblem}`);
  const dv = view(record);
  const index = readU64(dv, CRC_BYTES);
  const term = readU64(dv, CRC_BYTES + U64_BYTES);
  if (index === null || term === null) return fail("log start index or term is not a safe integer");
  return ok({ index, term });
}

/** The record for an entry. */
export function encodeEntry(entry: Entry): Uint8Array {
  const record = new Uint8Array(ENTRY_HEADER_BYTES + entry.data.byteLength);
  const dv = new DataView(record.buffer);
  writeU64(dv, CRC_BYTES, entry.index);
  writeU64(dv, CRC_BYTES + U64_BYTES, entry.term);
  dv.setUint8(CRC_BYTES + 2 * U64_BYTES, entry.type);
  record.set(entry.data, ENTRY_HEADER_BYTES);
  sealCrc(record, dv);
  return record;
}

/** The entry a record holds; its data is a fresh copy, not a view into `record`. */
export function decodeEntry(record: Uint8Array): Decoded<Entry> {
  if (record.byteLength < ENTRY_HEADER_BYTES) return fail(`entry record is ${record.byteLength} bytes, shorter than its ${ENTRY_HEADER_BYTES}-byte header`);
  const crcProblem = checkCrc(record);
  if (crcProblem !== null) return fail(`entry record ${crcProblem}`);
  const dv = view(record);
  const index = readU64(dv, CRC_BYTES);
  const term = readU64(dv, CRC_BYTES + U64_BYTES);
  const type = dv.getUint8(CRC_BYTES + 2 * U64_BYTES);
  if (index === null || term === null) return fail("entry index or term is not a safe integer");
  if (!isEntryType(type)) return fail(`entry type ${type} is unknown`);
  return ok({ index, term, type, data: new Uint8Array(record.subarray(ENTRY_HEADER_BYTES)) });
}

/** Only the term of an entry record, for the step check on the hot path; null if the record is damaged. */
export function decodeEntryTerm(record: Uint8Array): number | null {
  if (record.byteLength < ENTRY_HEADER_BYTES || checkCrc(record) !== null) return null;
  return readU64(view(record), CRC_BYTES + U64_BYTES);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function sealCrc(record: Uint8Array, dv: DataView): void {
  dv.setUint32(0, crc32(record.subarray(CRC_BYTES)));
}

function checkCrc(record: Uint8Array): string | null {
  const stored = view(record).getUint32(0);
  const actual = crc32(record.subarray(CRC_BYTES));
  return stored === actual ? null : `fails its checksum (stored crc32 ${stored.toString(16)}, computed ${actual.toString(16)}): torn or damaged write`;
}

function writeU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, Math.floor(value / TWO_POW_32));
  dv.setUint32(offset + 4, value >>> 0);
}

/** Null when the value does not fit a safe integer. */
function readU64(dv: DataView, offset: number): number | null {
  const high = dv.getUint32(offset);
  if (high > MAX_SAFE_HIGH_WORD) return null;
  return high * TWO_POW_32 + dv.getUint32(offset + 4);
}

/** Values from LevelDB may be views into a larger buffer; respect their offset. */
function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function ok<T>(value: T): Decoded<T> {
  return { ok: true, value };
}

function fail<T>(problem: string): Decoded<T> {
  return { ok: false, problem };
}
