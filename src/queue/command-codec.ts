/**
 * The binary log format of commands: protobuf, as declared in proto/raftq/v1/commands.proto (loaded once,
 * at module load). Each TypeScript command variant carries exactly the fields of its proto message, so the
 * mapping is structural: { kind, nowMs, ...fields } <-> Command { now_ms, <kind>: fields }.
 */
import { join } from "node:path";
import protobuf from "protobufjs";
import { COMMAND_KINDS, type Command, type CommandKind } from "./commands.js";
import { ErrorCode, QueueError } from "./errors.js";
import { PROTO_DIR } from "../protocol/proto-files.js";

const COMMAND_TYPE = protobuf
  .loadSync(join(PROTO_DIR, "raftq", "v1", "commands.proto"))
  .lookupType("raftq.v1.Command");

/**
 * Decoding options: uint64 as JS numbers (values stay below 2^53; larger ones fail validation on apply),
 * every field present with its default, and `kind` naming the oneof member that is set.
 */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, arrays: true, objects: true, oneofs: true };

/** A decoded Command message: now_ms, the oneof's name and its member, in camelCase. */
type WireCommand = { readonly nowMs: number; readonly kind?: CommandKind } & {
  readonly [K in CommandKind]?: Omit<Extract<Command, { kind: K }>, "kind" | "nowMs">;
};

assertKindsMatchProto();

/** The log entry bytes of a command. Validate it first (validateCommand): encoding does not check ranges. */
export function encodeCommand(command: Command): Uint8Array {
  const { kind, nowMs, ...fields } = command;
  return COMMAND_TYPE.encode({ nowMs, [kind]: fields }).finish();
}

/** The command in a log entry; throws QueueError(INVALID_ARGUMENT) if the bytes are not one. */
export function decodeCommand(data: Uint8Array): Command {
  let wire: WireCommand;
  try {
    // The schema guarantees each field's type, so the converted object has the WireCommand shape.
    wire = COMMAND_TYPE.toObject(COMMAND_TYPE.decode(data), TO_OBJECT) as WireCommand;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new QueueError(
      ErrorCode.InvalidArgument,
      `log entry of ${data.byteLength} bytes is not a queue command (${reason}): the log is corrupt or was written by another program`,
    );
  }
  const kind = wire.kind;
  const fields = kind === undefined ? undefined : wire[kind];
  if (kind === undefined || fields === undefined) {
    throw new QueueError(
      ErrorCode.InvalidArgument,
      "log entry holds a command of no known kind: it was written by a newer raftq; upgrade this node",
    );
  }
  // fields is the proto message of `kind`, which mirrors the Command variant of that kind field for field.
  return { kind, nowMs: wire.nowMs, ...fields } as Command;
}

/** Fails at load time if commands.ts and commands.proto disagree on the command kinds. */
function assertKindsMatchProto(): void {
  const protoKinds = COMMAND_TYPE.oneofs["kind"]?.oneof ?? [];
  const camelKinds = protoKinds.map((name) => name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase()));
  if (camelKinds.join() !== COMMAND_KINDS.join()) {
    throw new Error(
      `commands.proto oneof kind [${camelKinds.join(", ")}] differs from COMMAND_KINDS [${COMMAND_KINDS.join(", ")}]: ` +
        "update src/queue/commands.ts to mirror the proto",
    );
  }
}
