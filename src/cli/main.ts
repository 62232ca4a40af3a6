/** Entry point of `bin/raftq`: runs the command line against the process's arguments and streams. */
import type { CliOutput } from "./output.js";
import { runCli } from "./program.js";

/** The exit code of a process a closed pipe ended (128 + SIGPIPE), as shells report for `cmd | head`. */
const EXIT_BROKEN_PIPE = 141;

// A reader that stops early (`raftq dequeue jobs | head -1`) closes the pipe: end quietly, as Unix tools
// do, rather than with an unhandled EPIPE and its stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(EXIT_BROKEN_PIPE);
});

const processOutput: CliOutput = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

// exitCode rather than process.exit(): output is flushed, and `serve` keeps the process alive after parsing.
process.exitCode = await runCli(process.argv.slice(2), processOutput);
