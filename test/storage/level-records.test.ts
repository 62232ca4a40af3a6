import { describe, expect, it } from "vitest";
import { crc32 } from "node:zlib";
import { EntryType } from "../../src/raft/types.js";
import {
  decodeEntry,
  decodeEntryKey,
  decodeFormatVersion,
  decodeHardState,
  decodeLogStart,
  encodeEntry,
  encodeFormatVersion,
  encodeHardState,
  encodeLogStart,
  entryKey,
} from "../../src/storage/level-records.js";

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

describe("LevelDB record format", () => {
  it("lays out an entry as [crc32][index u64][term u64][type u8][data]", () => {
    const record = encodeEntry({ index: 258, term: 7, type: EntryType.Normal, data: Uint8Array.of(0xaa, 0xbb) });
    expect(hex(record.subarray(4))).toBe("0000000000000102" + "0000000000000007" + "01" + "aabb");
    expect(Buffer.from(record).readUInt32BE(0)).toBe(crc32(record.subarray(4)));
  });

  it("lays out a hard state as [crc32][term u64][commit u64][vote length u8][vote]", () => {
    const record = encodeHardState({ term: 3, vote: "n2", commit: 9 });
    expect(hex(record.subarray(4))).toBe("0000000000000003" + "0000000000000009" + "02" + hex(Buffer.from("n2")));
    expect(decodeHardState(record)).toEqual({ ok: true, value: { term: 3, vote: "n2", commit: 9 } });
  });

  it("lays out the log start as [crc32][index u64][term u64]", () => {
    const record = encodeLogStart({ index: 2 ** 32 + 1, term: 5 });
    expect(hex(record.subarray(4))).toBe("0000000100000001" + "0000000000000005");
    expect(Buffer.from(record).readUInt32BE(0)).toBe(crc32(record.subarray(4)));
    expect(decodeLogStart(record)).toEqual({ ok: true, value: { index: 2 ** 32 + 1, term: 5 } });
  });

  it("rejects every single flipped bit in a log start record, and any other length", () => {
    const record = encodeLogStart({ index: 7, term: 3 });
    for (let bit = 0; bit < record.byteLength * 8; bit++) {
      const damaged = record.slice();
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeLogStart(damaged).ok, `bit ${bit}`).toBe(false);
    }
    expect(decodeLogStart(record.subarray(0, 19))).toMatchObject({ ok: false, problem: expect.stringMatching(/19 bytes, expected 20/) });
  });

  it("round-trips the format version", () => {
    expect(decodeFormatVersion(encodeFormatVersion(1))).toEqual({ ok: true, value: 1 });
  });

  it("makes entry keys sort in index order, across byte boundaries", () => {
    const indexes = [1, 2, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const sorted = indexes.map(entryKey).sort((a, b) => Buffer.compare(a, b));
    expect(sorted.map((key) => decodeEntryKey(key))).toEqual(indexes.map((value) => ({ ok: true, value })));
  });

  it("rejects every single flipped bit in an entry record", () => {
    const record = encodeEntry({ index: 1, term: 1, type: EntryType.Noop, data: Uint8Array.of(1, 2, 3) });
    for (let bit = 0; bit < record.byteLength * 8; bit++) {
      const damaged = record.slice();
      damaged[bit >> 3]! ^= 1 << (bit & 7);
      expect(decodeEntry(damaged).ok, `bit ${bit}`).toBe(false);
    }
  });

  it("rejects a hard state whose vote length disagrees with the record", () => {
    const record = encodeHardState({ term: 1, vote: "n1", commit: 0 });
    expect(decodeHardState(record.subarray(0, record.byteLength - 1)).ok).toBe(false);
  });

  it("rejects a record shorter than its header", () => {
    expect(decodeEntry(new Uint8Array(5))).toMatchObject({ ok: false, problem: expect.stringMatching(/shorter than its 21-byte header/) });
  });

  it("decodes a record held in a view at a non-zero offset", () => {
    const record = encodeEntry({ index: 5, term: 2, type: EntryType.Normal, data: Uint8Array.of(9) });
    const padded = new Uint8Array(record.byteLength + 3);
    padded.set(record, 3);
    expect(decodeEntry(padded.subarray(3))).toEqual({ ok: true, value: { index: 5, term: 2, type: EntryType.Normal, data: Uint8Array.of(9) } });
  });
});
