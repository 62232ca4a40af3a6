/**
 * The fault schedule of a chaos run, drawn from a seeded PRNG before the run starts: what happens when,
 * for how long, and to whom by role ("the leader", "any node"). Which node holds a role is only known
 * while the run goes, so each fault also carries a `roll` that picks among the candidates of that moment:
 * a replay makes the same choices whenever the cluster is in the same state.
 *
 * Kinds are dealt from a shuffled deck (kill twice per deck), so every kind occurs once per deck and a
 * long run exercises them all; node faults hit the leader more often (`leaderBias`).
 */
import type { Prng } from "./prng.js";
import type { LinkMode } from "./proxy.js";

/** Every kind of fault, in the order the docs describe them. */
export const FAULT_KINDS = ["kill", "stop", "pause", "isolate", "split", "split-all", "bridge", "one-way", "slow", "lossy"] as const;

/**
 * kill: SIGKILL, restart later. stop: SIGTERM (graceful), restart later. pause: SIGSTOP, SIGCONT later.
 * isolate: one node cut off both ways. split: a minority (holding the target) and a majority, 2/1 or 3/2.
 * split-all: every node alone (1/1/1). bridge: two halves that cannot see each other and the target seeing
 * both. one-way: the target's outbound traffic (to everyone, or to one peer) dropped, inbound kept.
 * slow: latency on the target's links (or all links). lossy: random stalls and resets there.
 */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Who a fault hits, resolved when it starts. */
export type FaultTarget = "leader" | "any";

interface FaultBase {
  /** Position in the schedule. */
  readonly index: number;
  /** Start, in ms after the workload started. */
  readonly atMs: number;
  /** How long until it heals (a killed node restarts, a paused one resumes, links pass again). */
  readonly durationMs: number;
  readonly target: FaultTarget;
  /** In [0, 1): picks among the candidates when the fault starts (which node, which peers). */
  readonly roll: number;
}

/** One planned fault. */
export type PlannedFault = FaultBase &
  (
    | { readonly kind: "kill" | "stop" | "pause" }
    | { readonly kind: "isolate" | "split" | "split-all" | "bridge"; readonly how: "blackhole" | "refuse" }
    | { readonly kind: "one-way"; readonly how: "blackhole" | "refuse"; readonly scope: "all" | "one" }
    | { readonly kind: "slow" | "lossy"; readonly scope: "node" | "all"; readonly mode: LinkMode }
  );

/** A [min, max] range of milliseconds, both inclusive. */
export type MsRange = readonly [number, number];

/** How to draw a schedule. */
export interface ScheduleOptions {
  /** Faults start before this (ms after the workload started); everything heals at the end anyway. */
  readonly durationMs: number;
  /** The kinds to draw from (default: all). */
  readonly kinds?: readonly FaultKind[];
  /** Chance that a fault targets the leader rather than any node (default 0.6). */
  readonly leaderBias?: number;
  /** Duration of a fault (default 2–8 s). */
  readonly faultMs?: MsRange;
  /** Duration of a pause; must exceed the election timeout so the others elect (default 1.5–6 s). */
  readonly pauseMs?: MsRange;
  /** Quiet time between a heal and the next fault (default 1–4 s). */
  readonly gapMs?: MsRange;
  /** When the first fault starts (default 2 s: let the workload get going). */
  readonly firstAtMs?: number;
}

/** Most faults one schedule holds. */
export const MAX_FAULTS = 10_000;

const DEFAULT_FAULT_MS: MsRange = [2_000, 8_000];
const DEFAULT_PAUSE_MS: MsRange = [1_500, 6_000];
const DEFAULT_GAP_MS: MsRange = [1_000, 4_000];

/** Draws the schedule. Pure: the same options and PRNG state give the same schedule. */
export function planFaults(prng: Prng, options: ScheduleOptions): PlannedFault[] {
  const kinds = options.kinds ?? FAULT_KINDS;
  if (kinds.length === 0) return [];
  for (const kind of kinds) {
    if (!FAULT_KINDS.includes(kind)) throw new Error(`unknown fault kind "${kind}": use one of ${FAULT_KINDS.join(", ")}`);
  }
  const leaderBias = options.leaderBias ?? 0.6;
  const faultMs = checkRange("faultMs", options.faultMs ?? DEFAULT_FAULT_MS);
  const pauseMs = checkRange("pauseMs", options.pauseMs ?? DEFAULT_PAUSE_MS);
  const gapMs = checkRange("gapMs", options.gapMs ?? DEFAULT_GAP_MS);
  // Kill twice per deck: crashes (of the leader above all) are the fault that loses data when anything does.
  const deck = kinds.flatMap((kind) => (kind === "kill" ? [kind, kind] : [kind]));
  let hand: FaultKind[] = [];
  const faults: PlannedFault[] = [];
  let atMs = options.firstAtMs ?? 2_000;
  while (atMs < options.durationMs && faults.length < MAX_FAULTS) {
    if (hand.length === 0) hand = prng.shuffle(deck);
    const kind = hand.pop()!;
    const durationMs = kind === "pause" ? prng.int(...pauseMs) : prng.int(...faultMs);
    const base = { index: faults.length, atMs, durationMs, target: (prng.chance(leaderBias) ? "leader" : "any") as FaultTarget, roll: prng.next() };
    faults.push(withParameters(kind, base, prng));
    atMs += durationMs + prng.int(...gapMs);
  }
  return faults;
}

/** Adds the kind-specific parameters. */
function withParameters(kind: FaultKind, base: FaultBase, prng: Prng): PlannedFault {
  switch (kind) {
    case "kill":
    case "stop":
    case "pause":
      return { ...base, kind };
    case "isolate":
    case "split":
    case "split-all":
    case "bridge":
      return { ...base, kind, how: dropHow(prng) };
    case "one-way":
      return { ...base, kind, how: dropHow(prng), scope: prng.chance(0.5) ? "all" : "one" };
    case "slow":
      return { ...base, kind, scope: prng.chance(0.7) ? "node" : "all", mode: { kind: "delay", delayMs: prng.int(20, 400), jitterMs: prng.int(0, 200) } };
    case "lossy":
      return {
        ...base,
        kind,
        scope: prng.chance(0.7) ? "node" : "all",
        mode: { kind: "lossy", resetProbability: prng.int(1, 20) / 1000, stallProbability: prng.int(10, 100) / 1000, stallMs: prng.int(100, 1_500) },
      };
  }
}

function dropHow(prng: Prng): "blackhole" | "refuse" {
  return prng.chance(0.5) ? "blackhole" : "refuse";
}

function checkRange(name: string, range: MsRange): MsRange {
  const [min, max] = range;
  if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 0 && min <= max)) {
    throw new Error(`schedule ${name} [${min}, ${max}] is not a range of whole ms with min ≤ max`);
  }
  return range;
}

/** A one-line description of a planned fault, for logs and reports. */
export function describePlannedFault(fault: PlannedFault): string {
  const extra =
    "how" in fault ? ` ${fault.how}` : "mode" in fault ? ` ${describeMode(fault.mode)}` : "";
  const scope = "scope" in fault ? ` scope=${fault.scope}` : "";
  return `#${fault.index} at ${(fault.atMs / 1000).toFixed(1)}s for ${(fault.durationMs / 1000).toFixed(1)}s: ${fault.kind} ${fault.target}${extra}${scope}`;
}

/** A link mode in a few words. */
export function describeMode(mode: LinkMode): string {
  switch (mode.kind) {
    case "pass":
      return "pass";
    case "drop":
      return `drop (${mode.how})`;
    case "delay":
      return `delay ${mode.delayMs}+${mode.jitterMs}ms`;
    case "lossy":
      return `lossy reset=${mode.resetProbability} stall=${mode.stallProbability}x${mode.stallMs}ms`;
  }
}
