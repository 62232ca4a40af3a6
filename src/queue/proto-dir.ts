/** Locates the repository's proto/ directory at run time, from sources (src/) and from builds (dist/src/) alike. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Deeper than any source or build file sits below the package root. */
const MAX_LEVELS_UP = 8;

function findPackageRoot(start: string): string {
  let dir = start;
  for (let level = 0; level <= MAX_LEVELS_UP; level++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    `no package.json found within ${MAX_LEVELS_UP} directories above ${start}: ` +
      "run raftq from its package directory, where package.json and proto/ live",
  );
}

/** Absolute path of the proto/ directory that holds raftq/v1/*.proto. */
export const PROTO_DIR = join(findPackageRoot(dirname(fileURLToPath(import.meta.url))), "proto");
