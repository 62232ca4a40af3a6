import * as grpc from "@grpc/grpc-js";
import { FLOW_CONTROL_CHANNEL_OPTIONS } from "../protocol/flow-control.js";

/** How to reach a raftq cluster and how hard to try. */
export interface ClientOptions {
  /** host:port of one or more cluster nodes; any node serves every call, the leader is preferred once known. */
  addresses: readonly string[];
  /** Longest time one call may take across all its attempts (default 10000 ms). */
  timeoutMs?: number;
  /** Deadline of a single attempt (default 5000 ms), capped by what is left of `timeoutMs`. */
  attemptTimeoutMs?: number;
  /** First retry delay; it doubles per attempt, with full jitter (default 50 ms). */
  initialBackoffMs?: number;
  /** Largest retry delay (default 250 ms). */
  maxBackoffMs?: number;
  /** Channel credentials (default: insecure, plain TCP). */
  credentials?: grpc.ChannelCredentials;
  /**
   * Extra grpc-js channel options, e.g. `{"grpc.max_receive_message_length": 8 << 20}`. By default the
   * client opens 1 MiB HTTP/2 windows (`grpc-node.flow_control_window`, src/protocol/flow-control.ts).
   */
  channelOptions?: grpc.ChannelOptions;
}

/** ClientOptions with every default filled in and every bound checked. */
export interface ResolvedClientOptions {
  readonly addresses: readonly string[];
  readonly timeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
}

/** Most distinct node addresses a client keeps channels to (configured plus learned leaders). */
export const MAX_NODES = 64;

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 5_000;
export const DEFAULT_INITIAL_BACKOFF_MS = 50;
/**
 * A failover (the election, then the new leader's first commit) takes a few hundred ms: retries capped
 * at 250 ms (125 ms on average, with full jitter) reach the new leader soon after it is elected, at a
 * cost of at most a few attempts a second per waiting call while there is none. With a 1 s cap, the
 * retry that followed a failover was often what made the gap.
 */
export const DEFAULT_MAX_BACKOFF_MS = 250;

/** Fills in defaults; throws a TypeError naming the bad option and the fix. */
export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  const addresses = [...new Set(options.addresses.map((address) => address.trim()).filter((address) => address !== ""))];
  if (addresses.length === 0) throw new TypeError("raftq client: no addresses given: pass at least one host:port");
  if (addresses.length > MAX_NODES) throw new TypeError(`raftq client: ${addresses.length} addresses given; at most ${MAX_NODES}`);
  for (const address of addresses) {
    if (!/^.+:\d+$/.test(address)) throw new TypeError(`raftq client: address "${address}" is invalid: use host:port, e.g. 127.0.0.1:7001`);
  }
  return {
    addresses,
    timeoutMs: positive("timeoutMs", options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    attemptTimeoutMs: positive("attemptTimeoutMs", options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS),
    initialBackoffMs: positive("initialBackoffMs", options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS),
    maxBackoffMs: positive("maxBackoffMs", options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS),
    credentials: options.credentials ?? grpc.credentials.createInsecure(),
    channelOptions: { ...FLOW_CONTROL_CHANNEL_OPTIONS, ...options.channelOptions },
  };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`raftq client: ${name} must be a positive number of ms, got ${value}`);
  return value;
}
