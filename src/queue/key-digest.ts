/**
 * The fixed 128-bit fingerprint that stands in for an idempotency key in memory and on disk, so neither
 * holds key strings (a key is up to 256 bytes; a backlog holds a million of them).
 *
 * It is MD5, used only as a well-distributed fingerprint, not for security: every node computes the same
 * digest from the same key, so the state machine stays deterministic. Two distinct keys sharing a digest
 * within one queue's window of n keys has probability about n² / 2^129, ≈ 1.5e-27 at the limit of
 * 1,000,000 keys; the second key would then count as a duplicate of the first, alike on every node. MD5
 * collisions can be crafted on purpose, but only between two keys both chosen by the crafter (who could as
 * well repeat one key); matching someone else's random key is a second preimage, which is out of reach.
 */
import { hash } from "node:crypto";

/** Words (32 bits) in one digest. */
export const DIGEST_WORDS = 4;
/** Hex digits in one digest's text form. */
export const DIGEST_HEX_CHARS = 32;

/** The digest of `key` (UTF-8) as four unsigned 32-bit words, most significant first. */
export function digestKey(key: string): Uint32Array {
  // One-shot hash (Node 20.12+): a third of createHash's cost, which builds a Hash object per key.
  const bytes = hash("md5", key, "buffer");
  const words = new Uint32Array(DIGEST_WORDS);
  for (let word = 0; word < DIGEST_WORDS; word++) words[word] = bytes.readUInt32BE(word * 4);
  return words;
}

/** The digest held in `words` at `offset` as 32 lowercase hex digits (the MD5 hex of the key). */
export function digestHex(words: Uint32Array, offset = 0): string {
  let hex = "";
  for (let word = 0; word < DIGEST_WORDS; word++) hex += (words[offset + word] as number).toString(16).padStart(8, "0");
  return hex;
}

/** The words of a digest's text form. */
export function parseDigestHex(hex: string): Uint32Array {
  const words = new Uint32Array(DIGEST_WORDS);
  if (hex.length !== DIGEST_HEX_CHARS || !readDigestHex(hex, 0, words, 0)) {
    throw new Error(`idempotency key digest ${JSON.stringify(hex)} is malformed: expected ${DIGEST_HEX_CHARS} lowercase hex digits`);
  }
  return words;
}

/**
 * Reads the DIGEST_HEX_CHARS lowercase hex digits of `text` from `start` into `words` at `offset`, without
 * allocating (a restart reads a million); false if any of them is not one.
 */
export function readDigestHex(text: string, start: number, words: Uint32Array, offset: number): boolean {
  if (start + DIGEST_HEX_CHARS > text.length) return false;
  for (let word = 0; word < DIGEST_WORDS; word++) {
    let value = 0;
    for (let at = start + word * 8, end = at + 8; at < end; at++) {
      const nibble = hexDigitValue(text.charCodeAt(at));
      if (nibble < 0) return false;
      value = value * 16 + nibble;
    }
    words[offset + word] = value;
  }
  return true;
}

/** The value of the lowercase hex digit with char code `code`, or -1. */
export function hexDigitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}
