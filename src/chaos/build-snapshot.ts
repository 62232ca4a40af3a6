/**
 * A private copy of the built node (dist/src) for one chaos run. Nodes restart many times during a run;
 * without a copy, a `make build` in another terminal would make them restart with half-written or newer
 * code, and the run would report crashes that are not raftq's. The copy lives under dist/ (so packages
 * and the proto folder resolve exactly as for dist/src) and is removed when the run ends.
 */
import { cpSync, existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { PROTO_DIR } from "../protocol/proto-files.js";

/** The repository root: where package.json, proto/ and dist/ are. */
const REPO_ROOT = dirname(PROTO_DIR);

/** A copied build. */
export interface BuildSnapshot {
  /** The copy's CLI entry point: what each node runs. */
  readonly main: string;
  /** Deletes the copy. */
  remove(): void;
}

/** Copies dist/src to dist/.chaos-snapshots/<name>/src. */
export function snapshotBuild(name: string): BuildSnapshot {
  const built = join(REPO_ROOT, "dist", "src");
  if (!existsSync(join(built, "cli", "main.js"))) {
    throw new Error(`${join(built, "cli", "main.js")} is missing: run \`make build\` first (chaos runs start the built node)`);
  }
  const dir = join(REPO_ROOT, "dist", ".chaos-snapshots", name);
  cpSync(built, join(dir, "src"), { recursive: true });
  return { main: join(dir, "src", "cli", "main.js"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
