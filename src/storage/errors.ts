/**
 * The errors storage raises. Each has a stable `code` so callers branch on a predicate, never on
 * message text, and each message names the cause and the fix.
 */

/** What an operator should do about a corrupt Raft data directory; one wording everywhere. */
export const CORRUPTION_REMEDY =
  "restore this node's data directory from a backup, or remove it and let the node rejoin and catch up from the cluster";

/** The persisted Raft state failed verification: a torn, truncated or tampered record, or a broken log. */
export class StorageCorruptionError extends Error {
  readonly code = "STORAGE_CORRUPT";
  override readonly name = "StorageCorruptionError";
  /** The data directory that holds the damaged state. */
  readonly dataDir: string;
  /** The log index involved, when the damage is in (or points at) one entry. */
  readonly index: number | null;

  constructor(dataDir: string, where: string, problem: string, index: number | null = null, cause?: unknown) {
    super(`Raft storage in ${dataDir} is corrupt at ${where}: ${problem}; ${CORRUPTION_REMEDY}`, { cause });
    this.dataDir = dataDir;
    this.index = index;
  }
}

/** The data directory was written in a storage format this build does not understand. */
export class StorageVersionError extends Error {
  readonly code = "STORAGE_VERSION_UNSUPPORTED";
  override readonly name = "StorageVersionError";

  constructor(dataDir: string, foundVersion: number, supportedVersion: number) {
    super(
      `Raft storage in ${dataDir} has format version ${foundVersion} but this build reads only version ` +
        `${supportedVersion}: run the raftq release that wrote it, or remove the directory and let the node ` +
        `rejoin and catch up from the cluster`,
    );
  }
}

/** The caller handed storage a step that breaks the log's rules: a bug in the Raft driver, not bad data. */
export class InvalidPersistStepError extends Error {
  readonly code = "INVALID_PERSIST_STEP";
  override readonly name = "InvalidPersistStepError";

  constructor(problem: string) {
    super(`invalid persist step: ${problem} (a bug in the caller: the Raft driver must only persist what the core produced)`);
  }
}

/** The storage was used after `close()`. */
export class StorageClosedError extends Error {
  readonly code = "STORAGE_CLOSED";
  override readonly name = "StorageClosedError";

  constructor(operation: string) {
    super(`cannot ${operation}: Raft storage is closed (open a new instance after close())`);
  }
}

/** True if `err` is a StorageCorruptionError, also across module copies. */
export function isStorageCorruptionError(err: unknown): err is StorageCorruptionError {
  return err instanceof Error && (err as { code?: unknown }).code === "STORAGE_CORRUPT";
}

/** True if `err` is a StorageVersionError. */
export function isStorageVersionError(err: unknown): err is StorageVersionError {
  return err instanceof Error && (err as { code?: unknown }).code === "STORAGE_VERSION_UNSUPPORTED";
}

/** True if `err` is an InvalidPersistStepError. */
export function isInvalidPersistStepError(err: unknown): err is InvalidPersistStepError {
  return err instanceof Error && (err as { code?: unknown }).code === "INVALID_PERSIST_STEP";
}
