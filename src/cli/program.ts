/** The `raftq` command line: the commander program, and running it with exit codes 0 ok, 1 error, 2 usage. */
import { Command, CommanderError } from "commander";
import { isRaftqError } from "../client/index.js";
import { registerChaosCommand } from "./chaos-command.js";
import { registerClientCommands } from "./client-commands.js";
import { registerClusterCommands } from "./cluster-commands.js";
import type { CliOutput } from "./output.js";
import { registerLocalClusterCommand } from "./local-cluster-command.js";
import { registerServeCommand } from "./serve-command.js";

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** The program with every command registered; errors are thrown (exitOverride), never process.exit. */
export function createProgram(output: CliOutput): Command {
  const program = new Command("raftq")
    .description("raftq: a Raft-replicated message queue. Run a node with `serve`; every other command is a client.")
    .addHelpText("after", "\nExit codes: 0 ok, 1 error, 2 usage error. Set RAFTQ_DEBUG=1 to print stack traces.")
    .configureOutput({ writeOut: (text) => output.stdout(text), writeErr: (text) => output.stderr(text) })
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  registerServeCommand(program);
  registerLocalClusterCommand(program);
  registerClientCommands(program, output);
  registerClusterCommands(program, output);
  registerChaosCommand(program);
  return program;
}

/** Parses `argv` (the arguments after the program name) and runs the command; resolves to the exit code. */
export async function runCli(argv: readonly string[], output: CliOutput): Promise<number> {
  const program = createProgram(output);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    output.stderr(`raftq: ${describe(error)}\n`);
    return EXIT_ERROR;
  }
}

/** The message of an error; its stack only with RAFTQ_DEBUG set, or for something that is not an Error at all. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (process.env["RAFTQ_DEBUG"]) return error.stack ?? error.message;
  if (isRaftqError(error)) return `${error.message} [${error.code}]`;
  return error.message;
}
