import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DedupIndex, DedupRecordBatch, type DedupListener } from "../../src/queue/dedup-index.js";
import { digestHex, digestKey, parseDigestHex } from "../../src/queue/key-digest.js";

/** One remembered key as the tests keep it: its digest in hex. */
interface DedupRecord {
  readonly digest: string;
  readonly id: number;
  readonly expiresAtMs: number;
}
import { seededRandom } from "./helpers.js";

const WINDOW_MS = 1000;

/** A listener that logs what it is told, in order. */
function logTo(events: string[]): DedupListener {
  return {
    remembered: (digest, id, expiresAtMs) => events.push(`remembered ${digestHex(digest)} id ${id} until ${expiresAtMs}`),
    forgotten: (digest) => events.push(`forgotten ${digestHex(digest)}`),
  };
}

/** A listener that keeps the records as the store would: the last word per digest wins. */
function storeIn(records: Map<string, DedupRecord>): DedupListener {
  return {
    remembered: (digest, id, expiresAtMs) => records.set(digestHex(digest), { digest: digestHex(digest), id, expiresAtMs }),
    forgotten: (digest) => records.delete(digestHex(digest)),
  };
}

function hexOf(key: string): string {
  return createHash("md5").update(key, "utf8").digest("hex");
}

/** The records as the loader hands them to restore: in columns. */
function batchOf(records: Iterable<DedupRecord>): DedupRecordBatch {
  const batch = new DedupRecordBatch(10_000);
  for (const { digest, id, expiresAtMs } of records) batch.add(parseDigestHex(digest), 0, id, expiresAtMs);
  return batch;
}

/** The digests of an index's keys, oldest first, as hex. */
function digestsOf(index: DedupIndex): string[] {
  const words = index.allDigests();
  return Array.from({ length: words.length / 4 }, (_, at) => digestHex(words, at * 4));
}

/** A small index over string keys, for the examples. */
function keyed(index: DedupIndex) {
  return {
    lookup: (key: string, nowMs: number) => index.lookup(digestKey(key), nowMs),
    remember: (key: string, id: number, nowMs: number) => index.remember(digestKey(key), id, nowMs),
  };
}

/** The index as it was before digests: a Map by key string, whose insertion order is expiry order. */
class MapModel {
  private readonly entries = new Map<string, { readonly id: number; readonly expiresAtMs: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly events: string[],
  ) {}

  get size(): number {
    return this.entries.size;
  }

  digests(): string[] {
    return [...this.entries.keys()].map(hexOf);
  }

  lookup(key: string, nowMs: number): number | undefined {
    const entry = this.entries.get(key);
    return entry !== undefined && nowMs < entry.expiresAtMs ? entry.id : undefined;
  }

  remember(key: string, id: number, nowMs: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxKeys) this.forget(this.entries.keys().next().value as string);
    const expiresAtMs = nowMs + this.windowMs;
    this.entries.set(key, { id, expiresAtMs });
    this.events.push(`remembered ${hexOf(key)} id ${id} until ${expiresAtMs}`);
  }

  prune(nowMs: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.expiresAtMs > nowMs) return;
      this.forget(key);
    }
  }

  private forget(key: string): void {
    this.entries.delete(key);
    this.events.push(`forgotten ${hexOf(key)}`);
  }
}

/** A random workload over a pool of keys: remembers (repeats included), prunes and lookups as log time moves on. */
class Workload {
  private nowMs = 0;
  private nextId = 1;

  constructor(
    private readonly random: () => number,
    private readonly poolKeys: number,
  ) {}

  /** Runs `steps` steps on `targets`; every lookup's answers must agree. */
  run(steps: number, targets: readonly { lookup(key: string, nowMs: number): number | undefined; remember(key: string, id: number, nowMs: number): void; prune(nowMs: number): void }[]): void {
    for (let step = 0; step < steps; step++) {
      // Mostly small steps of log time, now and then a long quiet spell that lets the window drain.
      this.nowMs += this.random() < 0.001 ? 5 * WINDOW_MS : Math.floor(this.random() * 3);
      const key = `key-${Math.floor(this.random() * this.poolKeys)}`;
      const roll = this.random();
      if (roll < 0.6) {
        const id = this.nextId++;
        for (const target of targets) target.remember(key, id, this.nowMs);
      } else if (roll < 0.7) {
        for (const target of targets) target.prune(this.nowMs);
      } else {
        const answers = targets.map((target) => target.lookup(key, this.nowMs));
        expect(new Set(answers).size, `lookup of ${key} at ${this.nowMs}: ${answers.join(", ")}`).toBe(1);
      }
    }
  }

  get now(): number {
    return this.nowMs;
  }
}

describe("key digests", () => {
  it("are the MD5 of the key's UTF-8, and read back from their hex", () => {
    expect(digestHex(digestKey("abc"))).toBe("900150983cd24fb0d6963f7d28e17f72");
    expect(digestHex(digestKey("ключ-✓"))).toBe(hexOf("ключ-✓"));
    expect(parseDigestHex("900150983cd24fb0d6963f7d28e17f72")).toEqual(digestKey("abc"));
  });

  it("refuses malformed hex", () => {
    for (const bad of ["", "900150983cd24fb0d6963f7d28e17f7", "900150983CD24FB0D6963F7D28E17F72", "z00150983cd24fb0d6963f7d28e17f72"]) {
      expect(() => parseDigestHex(bad), bad).toThrow(/malformed/);
    }
  });
});

/** The random runs do up to a few hundred thousand operations; a loaded 2-core machine needs time. */
const RANDOM_RUN_TIMEOUT_MS = 60_000;

describe("DedupIndex", () => {
  it("answers a key's first id until its window ends, then forgets it on prune", () => {
    const events: string[] = [];
    const index = new DedupIndex(WINDOW_MS, 10, logTo(events));
    const keys = keyed(index);
    keys.remember("a", 1, 100);
    keys.remember("b", 2, 150);
    expect(keys.lookup("a", 100 + WINDOW_MS - 1)).toBe(1);
    expect(keys.lookup("a", 100 + WINDOW_MS)).toBeUndefined();
    expect(keys.lookup("c", 100)).toBeUndefined();
    index.prune(100 + WINDOW_MS);
    expect(digestsOf(index)).toEqual([hexOf("b")]);
    index.prune(150 + WINDOW_MS);
    expect(index.size).toBe(0);
    expect(events).toEqual([
      `remembered ${hexOf("a")} id 1 until ${100 + WINDOW_MS}`,
      `remembered ${hexOf("b")} id 2 until ${150 + WINDOW_MS}`,
      `forgotten ${hexOf("a")}`,
      `forgotten ${hexOf("b")}`,
    ]);
  });

  it("forgets the oldest key first when it holds maxKeys", () => {
    const events: string[] = [];
    const index = new DedupIndex(WINDOW_MS, 3, logTo(events));
    const keys = keyed(index);
    for (const [id, key] of ["a", "b", "c", "d", "e"].entries()) keys.remember(key, id + 1, 10);
    expect(digestsOf(index)).toEqual(["c", "d", "e"].map(hexOf));
    expect(keys.lookup("a", 10)).toBeUndefined();
    expect(keys.lookup("c", 10)).toBe(3);
    expect(events.filter((event) => event.startsWith("forgotten"))).toEqual([`forgotten ${hexOf("a")}`, `forgotten ${hexOf("b")}`]);
    // A forgotten-on-eviction event comes before the remembered event of the key that evicted it.
    expect(events.indexOf(`forgotten ${hexOf("a")}`)).toBe(events.findIndex((event) => event.startsWith(`remembered ${hexOf("d")}`)) - 1);
  });

  it("moves a key remembered again after its window to the back, without forgetting its record", () => {
    const events: string[] = [];
    const index = new DedupIndex(WINDOW_MS, 10, logTo(events));
    const keys = keyed(index);
    keys.remember("k", 1, 0);
    keys.remember("x", 2, 10);
    keys.remember("k", 3, WINDOW_MS + 20);
    expect(digestsOf(index)).toEqual([hexOf("x"), hexOf("k")]);
    expect(index.size).toBe(2);
    expect(keys.lookup("k", WINDOW_MS + 20)).toBe(3);
    // Pruning passes the hole "k" left and stops at its new place: not expired yet.
    index.prune(WINDOW_MS + 20);
    expect(digestsOf(index)).toEqual([hexOf("k")]);
    expect(keys.lookup("k", 2 * WINDOW_MS + 19)).toBe(3);
    expect(events).toEqual([
      `remembered ${hexOf("k")} id 1 until ${WINDOW_MS}`,
      `remembered ${hexOf("x")} id 2 until ${WINDOW_MS + 10}`,
      `remembered ${hexOf("k")} id 3 until ${2 * WINDOW_MS + 20}`,
      `forgotten ${hexOf("x")}`,
    ]);
  });

  it("evicts past the hole of a re-remembered key when full", () => {
    const events: string[] = [];
    const index = new DedupIndex(WINDOW_MS, 2, logTo(events));
    const keys = keyed(index);
    keys.remember("k", 1, 0);
    keys.remember("x", 2, 1);
    keys.remember("k", 3, WINDOW_MS);
    keys.remember("y", 4, WINDOW_MS);
    expect(digestsOf(index)).toEqual([hexOf("k"), hexOf("y")]);
    expect(events.filter((event) => event.startsWith("forgotten"))).toEqual([`forgotten ${hexOf("x")}`]);
  });

  it.each([
    { seed: 1, maxKeys: 2000, poolKeys: 3000 },
    { seed: 2, maxKeys: 100_000, poolKeys: 5000 },
    { seed: 3, maxKeys: 50, poolKeys: 60 },
  ])("agrees with the Map it replaced through random remembers, prunes and lookups (%o)", ({ seed, maxKeys, poolKeys }) => {
    const events: string[] = [];
    const modelEvents: string[] = [];
    const index = new DedupIndex(WINDOW_MS, maxKeys, logTo(events));
    const model = new MapModel(WINDOW_MS, maxKeys, modelEvents);
    const workload = new Workload(seededRandom(seed), poolKeys);
    for (let round = 0; round < 20; round++) {
      workload.run(3000, [{ ...keyed(index), prune: (nowMs) => index.prune(nowMs) }, model]);
      expect(index.size).toBe(model.size);
      expect(digestsOf(index)).toEqual(model.digests());
      expect(events).toEqual(modelEvents);
    }
    expect(events.some((event) => event.startsWith("forgotten"))).toBe(true);
  }, RANDOM_RUN_TIMEOUT_MS);

  it("restored from its records in any order, answers and evolves exactly like the original", () => {
    const records = new Map<string, DedupRecord>();
    const original = new DedupIndex(WINDOW_MS, 500, storeIn(records));
    const workload = new Workload(seededRandom(11), 800);
    const originalKeys = { ...keyed(original), prune: (nowMs: number) => original.prune(nowMs) };
    workload.run(20_000, [originalKeys]);
    expect(records.size).toBe(original.size);

    const random = seededRandom(12);
    const shuffled = [...records.values()].sort(() => random() - 0.5);
    const restoredRecords = new Map(records);
    const restored = new DedupIndex(WINDOW_MS, 500, storeIn(restoredRecords));
    restored.restore(batchOf(shuffled));
    expect(restoredRecords).toEqual(records);
    expect(digestsOf(restored)).toEqual(digestsOf(original));
    for (let key = 0; key < 800; key++) {
      for (const nowMs of [workload.now, workload.now + WINDOW_MS / 2]) {
        expect(keyed(restored).lookup(`key-${key}`, nowMs)).toBe(keyed(original).lookup(`key-${key}`, nowMs));
      }
    }

    const originalEvents: string[] = [];
    const restoredEvents: string[] = [];
    const twin = new DedupIndex(WINDOW_MS, 500, logTo(originalEvents));
    twin.restore(batchOf(records.values()));
    const again = new DedupIndex(WINDOW_MS, 500, logTo(restoredEvents));
    again.restore(batchOf(shuffled));
    workload.run(20_000, [
      { ...keyed(twin), prune: (nowMs) => twin.prune(nowMs) },
      { ...keyed(again), prune: (nowMs) => again.prune(nowMs) },
      originalKeys,
    ]);
    expect(restoredEvents).toEqual(originalEvents);
    expect(digestsOf(again)).toEqual(digestsOf(original));
  });

  it("restores a digest stored twice as its later record, the earlier one a hole", () => {
    // A key remembered again while held is in two stored chunks (test/storage/queue-dedup.test.ts).
    const record = { digest: hexOf("k"), id: 1, expiresAtMs: WINDOW_MS };
    const other = { digest: hexOf("x"), id: 2, expiresAtMs: WINDOW_MS + 5 };
    const events: string[] = [];
    const index = new DedupIndex(WINDOW_MS, 10, logTo(events));
    index.restore(batchOf([record, other, { ...record, id: 3, expiresAtMs: WINDOW_MS + 10 }]));
    expect(index.size).toBe(2);
    expect(digestsOf(index)).toEqual([other.digest, record.digest]);
    expect(keyed(index).lookup("k", WINDOW_MS + 1)).toBe(3);
    index.prune(WINDOW_MS + 5);
    expect(events).toEqual([`forgotten ${other.digest}`]);
    expect(keyed(index).lookup("k", WINDOW_MS + 6)).toBe(3);
  });

  it("refuses to restore one message's key twice, or into an index that holds keys", () => {
    const record = { digest: hexOf("k"), id: 1, expiresAtMs: WINDOW_MS };
    expect(() => new DedupIndex(WINDOW_MS, 10, logTo([])).restore(batchOf([record, { ...record, expiresAtMs: WINDOW_MS + 1 }]))).toThrow(
      /stored twice for one message/,
    );
    const index = new DedupIndex(WINDOW_MS, 10, logTo([]));
    keyed(index).remember("a", 1, 0);
    expect(() => index.restore(batchOf([record]))).toThrow(/already holding 1/);
    expect(() => batchOf([{ ...record, id: 0 }])).toThrow(/message id 0/);
  });

  it("restores thousands of records, given in any order, into (expiry, id) order, ids breaking ties", () => {
    // Many keys share each expiry (one enqueue batch shares nowMs), and more than a batch's first columns.
    const records = Array.from({ length: 5000 }, (_, at) => ({
      digest: hexOf(`key-${at}`),
      id: at + 1,
      expiresAtMs: WINDOW_MS + Math.floor(at / 100),
    }));
    const random = seededRandom(13);
    const shuffled = [...records].sort(() => random() - 0.5);
    const index = new DedupIndex(WINDOW_MS, 10_000, logTo([]));
    index.restore(batchOf(shuffled));
    expect(index.size).toBe(records.length);
    expect(digestsOf(index)).toEqual(records.map((record) => record.digest));
    expect(keyed(index).lookup("key-4999", WINDOW_MS)).toBe(5000);
    const events: string[] = [];
    const logged = new DedupIndex(WINDOW_MS, 10_000, logTo(events));
    logged.restore(batchOf(shuffled));
    logged.prune(WINDOW_MS + 1);
    expect(events).toEqual(records.slice(0, 200).map((record) => `forgotten ${record.digest}`));
  });

  it("restores into (expiry, id) order however far apart expiries and ids lie", () => {
    // Spreads too wide to rank exactly in one safe integer, and fractional expiries.
    const records = [
      { digest: hexOf("a"), id: 2 ** 40, expiresAtMs: 1.5 },
      { digest: hexOf("b"), id: 1, expiresAtMs: 2 ** 45 },
      { digest: hexOf("c"), id: 7, expiresAtMs: 2 ** 45 },
      { digest: hexOf("d"), id: 3, expiresAtMs: 2 ** 46 },
    ];
    const index = new DedupIndex(WINDOW_MS, 10, logTo([]));
    index.restore(batchOf([...records].reverse()));
    expect(digestsOf(index)).toEqual(records.map((record) => record.digest));
  });
});
