/** bin/raftq (the image's entrypoint) and the TypeScript launchers give nodes the same malloc settings. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NODE_ALLOCATOR_ENV, missingAllocatorSettings, withAllocatorEnv } from "../../src/cli/allocator-env.js";

const REPO = join(import.meta.dirname, "..", "..");

describe("node allocator settings", () => {
  it("bin/raftq exports the same defaults as src/cli/allocator-env.ts", () => {
    const script = readFileSync(join(REPO, "bin", "raftq"), "utf8");
    const exported = Object.fromEntries([...script.matchAll(/^export (\w+)="\$\{\1:-(\w+)\}"$/gm)].map((match) => [match[1], match[2]]));
    expect(exported).toEqual(NODE_ALLOCATOR_ENV);
  });

  it("adds what is missing and keeps an operator's own values", () => {
    const env = withAllocatorEnv({ PATH: "/bin", MALLOC_ARENA_MAX: "4" });
    expect(env).toMatchObject({ PATH: "/bin", MALLOC_ARENA_MAX: "4", MALLOC_MMAP_THRESHOLD_: "65536" });
    expect(missingAllocatorSettings(env)).toEqual([]);
    expect(missingAllocatorSettings({ MALLOC_ARENA_MAX: "2" })).toEqual(["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]);
  });
});
