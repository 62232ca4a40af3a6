import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePeers } from "../../src/server/peers.js";
import { composeFile, deployFile, named, REPO_ROOT, renderKustomization } from "./manifests.js";

/** One instruction of a Dockerfile: its keyword (upper case) and the rest of its (joined) lines. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** A build stage: its base image (ARG defaults filled in), its name, its instructions. */
interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** Splits a Dockerfile into stages; comments dropped, `\` continuations joined, global ARG defaults applied to FROM. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.split("\n").filter((line) => !/^\s*#/.test(line));
  const logical = lines.join("\n").replace(/\\\n/g, " ").split("\n").map((line) => line.trim()).filter(Boolean);
  const args = new Map<string, string>();
  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const [keyword = "", ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    if (instruction.keyword === "ARG" && stages.length === 0) {
      const [name = "", value = ""] = instruction.args.split("=");
      args.set(name, value);
    } else if (instruction.keyword === "FROM") {
      const [image = "", as, name] = instruction.args.replace(/^--platform=\S+\s+/, "").split(/\s+/);
      const resolved = image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_whole, braced?: string, bare?: string) => args.get(braced ?? bare ?? "") ?? "");
      stages.push({ image: resolved, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The arguments of every `keyword` instruction of a stage. */
function argsOf(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.args);
}

const stages = parseDockerfile(deployFile("docker/Dockerfile"));
const runtime = stages.at(-1)!;
const config = named(renderKustomization("deploy/k8s").configMaps, "raftq").data ?? {};
const packageVersion = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

describe("deploy/docker/Dockerfile", () => {
  it("builds in one stage and runs from another, both on Node 20", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.image).toMatch(/^node:20([-.]|$)/);
    expect(argsOf(stages[0]!, "RUN").join("\n")).toMatch(/\bnpm ci\b[\s\S]*\bmake build\b/);
  });

  it("installs only production dependencies in the runtime stage, and copies no node_modules from the build", () => {
    const runs = argsOf(runtime, "RUN").join("\n");
    const copies = argsOf(runtime, "COPY");

    expect(runs).toMatch(/\bnpm ci\b[^\n]*--omit=dev/);
    expect(copies.filter((copy) => copy.startsWith("--from=") && copy.includes("node_modules"))).toEqual([]);
    expect(copies.filter((copy) => copy.startsWith("--from="))).toEqual(["--from=build /app/dist/src ./dist/src"]);
  });

  it("copies what the node needs at run time: dist, proto, bin, package.json", () => {
    const copied = argsOf(runtime, "COPY").join("\n");

    for (const needed of ["dist/src", "proto", "bin", "package.json", "package-lock.json"]) expect(copied).toContain(needed);
  });

  it("runs as a numeric non-root user", () => {
    const users = argsOf(runtime, "USER");

    expect(users).toHaveLength(1);
    expect(users[0]).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it("runs `bin/raftq serve` directly (exec form, so the node gets SIGTERM)", () => {
    const [entrypoint] = argsOf(runtime, "ENTRYPOINT");

    expect(JSON.parse(entrypoint ?? "null")).toEqual(["/app/bin/raftq", "serve"]);
    expect(readFileSync(join(REPO_ROOT, "bin", "raftq"), "utf8")).toMatch(/^exec node /m);
  });

  it("keeps its data in a VOLUME at the ConfigMap's data dir and exposes the listen port", () => {
    const env = argsOf(runtime, "ENV").join(" ");

    expect(argsOf(runtime, "VOLUME")).toEqual([config["RAFTQ_DATA_DIR"]]);
    expect(env).toContain(`RAFTQ_DATA_DIR=${config["RAFTQ_DATA_DIR"]}`);
    expect(env).toContain(`RAFTQ_LISTEN=${config["RAFTQ_LISTEN"]}`);
    expect(argsOf(runtime, "EXPOSE")).toEqual([config["RAFTQ_LISTEN"]?.split(":").at(-1)]);
    expect(argsOf(runtime, "RUN").join("\n")).toContain(`chown ${argsOf(runtime, "USER")[0]} ${config["RAFTQ_DATA_DIR"]}`);
  });

  it("sends every file it copies through its BuildKit ignore file, and those files exist", () => {
    const ignore = deployFile("docker/Dockerfile.dockerignore").split("\n").map((line) => line.trim());
    const sources = stages
      .flatMap((stage) => argsOf(stage, "COPY"))
      .filter((copy) => !copy.startsWith("--from="))
      .flatMap((copy) => copy.split(/\s+/).slice(0, -1));

    expect(ignore).toContain("*");
    for (const source of sources) {
      expect(ignore.some((line) => line === `!${source}` || line === `!${source}/`), `${source} re-included`).toBe(true);
      expect(existsSync(join(REPO_ROOT, source)), `${source} exists`).toBe(true);
    }
  });
});

describe("deploy/compose.yaml", () => {
  const compose = composeFile();
  const names = Object.keys(compose.services);
  const environments = names.map((name) => compose.services[name]?.environment ?? {});
  const listenPort = (environment: Record<string, string>): string | undefined => environment["RAFTQ_LISTEN"]?.split(":").at(-1);

  it("runs three nodes named after their services, each one of the same peer list", () => {
    expect(names).toEqual(["raftq-0", "raftq-1", "raftq-2"]);
    expect(environments.map((environment) => environment["RAFTQ_ID"])).toEqual(names);
    expect(new Set(environments.map((environment) => environment["RAFTQ_PEERS"])).size).toBe(1);
    expect(new Set(environments.map((environment) => environment["RAFTQ_DIAL"])).size).toBe(1);
    expect([...parsePeers(environments[0]?.["RAFTQ_PEERS"] ?? "").keys()]).toEqual(names);
  });

  it("lets nodes dial each other by service name, and tells clients the ports published on the host", () => {
    for (const [index, name] of names.entries()) {
      const environment = environments[index]!;
      const [published, container] = (compose.services[name]?.ports ?? []).map((mapping) => /^127\.0\.0\.1:(\d+):(\d+)$/.exec(mapping));

      expect(container).toBeUndefined();
      expect(published?.[2]).toBe(listenPort(environment));
      expect(parsePeers(environment["RAFTQ_DIAL"] ?? "", "RAFTQ_DIAL").get(name)).toBe(`${name}:${listenPort(environment)}`);
      expect(parsePeers(environment["RAFTQ_PEERS"] ?? "").get(name)).toBe(`127.0.0.1:${published?.[1]}`);
    }
  });

  it("gives each node its own named volume at the image's data dir", () => {
    const mounts = names.map((name) => compose.services[name]?.volumes ?? []);

    expect(mounts).toEqual(names.map((name) => [`${name}:${argsOf(runtime, "VOLUME")[0]}`]));
    expect(environments.every((environment) => environment["RAFTQ_DATA_DIR"] === argsOf(runtime, "VOLUME")[0])).toBe(true);
    expect(Object.keys(compose.volumes ?? {})).toEqual(names);
  });

  it("stops gracefully, checks health over gRPC and runs the image of this version", () => {
    for (const name of names) {
      const service = compose.services[name]!;

      expect(service.stop_grace_period).toBe("30s");
      expect(service.healthcheck?.test?.slice(0, 3)).toEqual(["CMD", "node", "-e"]);
      expect(service.image).toBe(`raftq:${packageVersion}`);
    }
  });
});
