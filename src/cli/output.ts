/** What every CLI module shares: where output goes, and the error type for expected failures. */

/** Where the CLI writes; tests pass a recorder, `main` passes the process streams. */
export interface CliOutput {
  /** Results (stdout). */
  stdout(text: string): void;
  /** Errors and diagnostics (stderr). */
  stderr(text: string): void;
}

/** An expected failure, reported as `raftq: <message>` with exit code 1 (not a usage error). */
export class CliError extends Error {
  override readonly name = "CliError";
}
