import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";

/** The repository's proto/ folder, found from this module whether it runs from src/ (tests) or dist/src/. */
export const PROTO_DIR: string = findProtoDir(dirname(fileURLToPath(import.meta.url)));

function findProtoDir(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "proto"))) return join(dir, "proto");
    if (dirname(dir) === dir) throw new Error(`cannot find the proto/ folder above ${start}: is the raftq install complete?`);
  }
}

/** Options shared by the runtime loader and the type generator (Makefile): keep them in step. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/** Loads .proto files (paths relative to proto/) with the project's options. */
export function loadProtos(files: readonly string[]): protoLoader.PackageDefinition {
  return protoLoader.loadSync([...files], PROTO_LOADER_OPTIONS);
}
