/** Entry point of `bin/raftq`: runs the command line against the process's arguments and streams. */
import type { CliOutput } from "./output.js";
import { runCli } from "./program.js";

const processOutput: CliOutput = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

// exitCode rather than process.exit(): output is flushed, and `serve` keeps the process alive after parsing.
process.exitCode = await runCli(process.argv.slice(2), processOutput);
