/**
 * The nemesis: plays a fault schedule against a live cluster, one fault at a time. For each fault it
 * waits for the planned start, resolves the target (asking the cluster who leads), records the fault and
 * injects it (signals for processes, proxy modes for links), waits its duration, heals it and records
 * that. A node that does not come back (no restart, no graceful stop) is recorded as an error of the fault.
 */
import type { ChaosCluster } from "./cluster.js";
import type { HistoryRecorder } from "./history.js";
import { allLinks, bridgeLinks, linksOf, oneWayLinks, splitLinks, type DirectedLink } from "./partitions.js";
import { Prng } from "./prng.js";
import type { LinkMode } from "./proxy.js";
import { describeMode, type PlannedFault } from "./schedule.js";
import { sleep } from "./timing.js";

/** How long the nemesis looks for the leader before picking any node. */
const FIND_LEADER_TIMEOUT_MS = 3_000;

/** What the nemesis needs. */
export interface NemesisContext {
  readonly cluster: ChaosCluster;
  readonly history: HistoryRecorder;
  /** History time the schedule's `atMs` counts from. */
  readonly startTime: number;
  /** Ends the schedule: the current fault heals at once. */
  readonly signal: AbortSignal;
  /** Progress lines for the operator. */
  readonly log: (line: string) => void;
}

/** A fault resolved to nodes: how to inject it and how to undo it. */
interface ResolvedFault {
  readonly nodes: readonly string[];
  readonly detail: string;
  readonly apply: () => Promise<void>;
  /** Undoes the fault; an error message when a node is to blame for not coming back. */
  readonly heal: () => Promise<string | undefined>;
}

/** Plays `faults` in order until they run out or the signal aborts; resolves once the last fault healed. */
export async function runNemesis(faults: readonly PlannedFault[], context: NemesisContext): Promise<void> {
  for (const fault of faults) {
    const startsIn = context.startTime + fault.atMs - context.history.now();
    if (!(await sleep(startsIn, context.signal))) return;
    await restartDownNodes(context);
    const resolved = await resolve(fault, context);
    // Recorded before it acts, so a window of unavailability it causes starts inside the fault.
    context.history.record({ type: "fault", phase: "start", fault: fault.index, kind: fault.kind, nodes: resolved.nodes, detail: resolved.detail });
    context.log(`fault #${fault.index} ${fault.kind}: ${resolved.detail}`);
    await resolved.apply();
    await sleep(fault.durationMs, context.signal);
    let error: string | undefined;
    try {
      error = await resolved.heal();
    } catch (thrown) {
      error = thrown instanceof Error ? thrown.message : String(thrown);
    }
    context.history.record({
      type: "fault",
      phase: "end",
      fault: fault.index,
      kind: fault.kind,
      nodes: resolved.nodes,
      detail: `healed: ${resolved.detail}`,
      ...(error === undefined ? {} : { error }),
    });
    if (error !== undefined) context.log(`fault #${fault.index} ${fault.kind}: healing failed: ${error}`);
  }
}

/** Picks the target (asking who leads when the fault wants the leader) and the nodes on each side. */
async function resolve(fault: PlannedFault, context: NemesisContext): Promise<ResolvedFault> {
  const { cluster } = context;
  const choices = new Prng(Math.floor(fault.roll * 4294967296));
  const ids = cluster.ids;
  const leader = fault.target === "leader" ? await cluster.leader(FIND_LEADER_TIMEOUT_MS) : undefined;
  const target = leader ?? choices.pick(cluster.runningIds().length > 0 ? cluster.runningIds() : ids);
  const role = fault.target === "leader" ? (leader === undefined ? "no leader found, any node" : "leader") : "any node";
  const others = choices.shuffle(ids.filter((id) => id !== target));
  const network = (links: readonly DirectedLink[], mode: LinkMode, what: string): ResolvedFault => ({
    nodes: [...new Set(links.flatMap((link) => [link.from, link.to]))].sort(),
    detail: `${what} [${describeMode(mode)}] (target ${target}: ${role})`,
    apply: async () => cluster.setLinks(links, mode),
    heal: async () => {
      cluster.healNetwork();
      return undefined;
    },
  });
  switch (fault.kind) {
    case "kill":
      return {
        nodes: [target],
        detail: `SIGKILL ${target} (${role})`,
        apply: async () => void (await cluster.kill(target)),
        heal: () => restart(cluster, target, "SIGKILL"),
      };
    case "stop": {
      let graceful = true;
      return {
        nodes: [target],
        detail: `SIGTERM ${target} (${role})`,
        apply: async () => {
          graceful = (await cluster.terminate(target)).graceful;
        },
        heal: async () => {
          const restartError = await restart(cluster, target, "SIGTERM");
          if (!graceful) return `node ${target} did not exit within the grace period after SIGTERM and was SIGKILLed (see ${cluster.logFile(target)})${restartError ? `; ${restartError}` : ""}`;
          return restartError;
        },
      };
    }
    case "pause":
      return {
        nodes: [target],
        detail: `SIGSTOP ${target} (${role})`,
        apply: async () => void cluster.pause(target),
        heal: async () => {
          cluster.resume(target);
          return undefined;
        },
      };
    case "isolate":
      return network(splitLinks([[target], others]), { kind: "drop", how: fault.how }, `isolate ${target} | ${others.join(" ")}`);
    case "split": {
      const minority = [target, ...others.slice(0, Math.floor((ids.length - 1) / 2) - 1)];
      const majority = ids.filter((id) => !minority.includes(id));
      return network(splitLinks([minority, majority]), { kind: "drop", how: fault.how }, `split ${minority.join(" ")} | ${majority.join(" ")}`);
    }
    case "split-all":
      return network(splitLinks(ids.map((id) => [id])), { kind: "drop", how: fault.how }, `split ${ids.join(" | ")}`);
    case "bridge": {
      const half = Math.ceil(others.length / 2);
      const left = others.slice(0, half);
      const right = others.slice(half);
      return network(bridgeLinks(left, target, right), { kind: "drop", how: fault.how }, `bridge ${left.join(" ")} <-> ${target} <-> ${right.join(" ")}`);
    }
    case "one-way": {
      const to = fault.scope === "all" ? others : others.slice(0, 1);
      return network(oneWayLinks([target], to), { kind: "drop", how: fault.how }, `one-way ${target} -> ${to.join(" ")} cut`);
    }
    case "slow":
    case "lossy": {
      const links = fault.scope === "all" ? allLinks(ids) : linksOf(target, ids);
      return network(links, fault.mode, `${fault.kind} ${fault.scope === "all" ? "every link" : `links of ${target}`}`);
    }
  }
}

/**
 * Faults are meant one at a time: a node still down because an earlier restart failed (already recorded
 * as that fault's error) gets another chance first, so one failure does not leave the cluster a node
 * short for the rest of the run.
 */
async function restartDownNodes(context: NemesisContext): Promise<void> {
  for (const id of context.cluster.ids) {
    if (context.cluster.state(id) !== "down") continue;
    const error = await restart(context.cluster, id, "an earlier failed restart");
    context.log(error ?? `node ${id} restarted after an earlier failed restart`);
  }
}

/** Starts a stopped node again; an error message (not a throw) when it does not come back. */
async function restart(cluster: ChaosCluster, id: string, after: string): Promise<string | undefined> {
  try {
    await cluster.restart(id);
    return undefined;
  } catch (error) {
    return `node ${id} did not come back after ${after}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
