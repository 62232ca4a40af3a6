import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import PinoPretty from "pino-pretty";
import { DEFAULT_ADDRESSES } from "./client-commands.js";
import { formatPeers } from "../server/peers.js";
import { withAllocatorEnv } from "./allocator-env.js";

interface LocalClusterFlags {
  nodes: string;
  host: string;
  basePort: string;
  dataRoot: string;
  logLevel: string;
}

/** How long Ctrl-C waits for the nodes to stop cleanly before killing them. */
const STOP_TIMEOUT_MS = 15_000;

/** The serve entry point: this CLI's own main module, run once per node. */
const MAIN_SCRIPT = join(fileURLToPath(new URL(".", import.meta.url)), "main.js");

/**
 * `raftq local-cluster` (what `make run` runs): N nodes on this machine in the foreground, their logs
 * merged and readable, stopped cleanly (leader hands over first) on Ctrl-C. Data stays in --data-root,
 * so running it again keeps the messages.
 */
export function registerLocalClusterCommand(program: Command): void {
  program
    .command("local-cluster")
    .description("run a local cluster in the foreground with readable logs; Ctrl-C stops every node cleanly")
    .addOption(new Option("--nodes <n>", "how many nodes (3 or 5 make sense)").default("3"))
    .addOption(new Option("--host <host>", "address the nodes bind and dial").default("127.0.0.1"))
    .addOption(new Option("--base-port <port>", "node i listens on base-port + i - 1").default("7001"))
    .addOption(new Option("--data-root <dir>", "node i keeps its data in <dir>/n<i>").default("./data"))
    .addOption(new Option("--log-level <level>", "the nodes' log level").default("info"))
    .action(async (flags: LocalClusterFlags) => {
      const count = Number(flags.nodes);
      const basePort = Number(flags.basePort);
      if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`--nodes must be 1 to 9, got "${flags.nodes}"`);
      if (!Number.isInteger(basePort) || basePort < 1 || basePort + count > 65535) throw new Error(`--base-port "${flags.basePort}" is not a usable port`);
      const nodes = Array.from({ length: count }, (_, i) => ({ id: `n${i + 1}`, address: `${flags.host}:${basePort + i}` }));
      const peers = formatPeers(new Map(nodes.map((node) => [node.id, node.address])));
      // One line per log record: time, level, node, message, then any other fields.
      const pretty = PinoPretty({
        colorize: process.stdout.isTTY,
        translateTime: "HH:MM:ss.l",
        ignore: "pid,hostname,node",
        messageFormat: "{node} {msg}",
        singleLine: true,
      });

      const children: ChildProcess[] = nodes.map((node) => {
        const child = spawn(
          process.execPath,
          ["--enable-source-maps", MAIN_SCRIPT, "serve", "--id", node.id, "--listen", node.address, "--peers", peers,
            "--data-dir", resolve(flags.dataRoot, node.id), "--log-level", flags.logLevel],
          { stdio: ["ignore", "pipe", "pipe"], env: withAllocatorEnv() },
        );
        for (const stream of [child.stdout!, child.stderr!]) {
          createInterface({ input: stream }).on("line", (line) => {
            if (line.startsWith("{")) pretty.write(`${line}\n`);
            else process.stderr.write(`[${node.id}] ${line}\n`);
          });
        }
        return child;
      });

      const addresses = nodes.map((node) => node.address).join(",");
      // The client commands default to the standard local cluster; other layouts need --addr.
      const addr = addresses === DEFAULT_ADDRESSES ? "" : ` --addr ${addresses}`;
      process.stdout.write(
        [
          "",
          `raftq local cluster: ${nodes.map((node) => `${node.id} at ${node.address}`).join(", ")}`,
          `data in ${resolve(flags.dataRoot)}; Ctrl-C stops every node cleanly`,
          "try, in another terminal:",
          `  bin/raftq enqueue jobs "hello"${addr}`,
          `  bin/raftq dequeue jobs --ack${addr}`,
          `  bin/raftq status${addr}`,
          "",
        ].join("\n") + "\n",
      );

      await runUntilStopped(children);
    });
}

/** Resolves once every child has exited: after Ctrl-C/SIGTERM (forwarded as SIGTERM), or when one dies. */
function runUntilStopped(children: ChildProcess[]): Promise<void> {
  return new Promise((resolvePromise) => {
    let stopping = false;
    let running = children.length;
    const stopAll = (): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write("\nstopping every node (the leader hands over first)...\n");
      for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
      setTimeout(() => {
        for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS).unref();
    };
    process.on("SIGINT", stopAll);
    process.on("SIGTERM", stopAll);
    for (const child of children) {
      child.on("exit", (code, signal) => {
        if (!stopping) {
          process.stderr.write(`a node exited unexpectedly (code ${code}, signal ${signal}); stopping the others\n`);
          process.exitCode = 1;
          stopAll();
        }
        if (--running === 0) resolvePromise();
      });
    }
  });
}
