/**
 * A simulated network over simulated time. Each sent message gets a delivery tick (base latency plus a
 * random extra delay, so messages reorder), may be lost or duplicated, and is dropped at delivery if its
 * directed link is blocked then (A→B blocked while B→A passes models one-way loss). Messages are frozen
 * when sent: a duplicate is the very same immutable object, and a core that mutates what it received fails.
 */
import { MessageType, type Message, type NodeId } from "../../src/raft/types.js";
import { formatMessage } from "./format.js";
import type { Prng } from "../../src/chaos/prng.js";
import type { Trace } from "./trace.js";

/** Tunable network behaviour; every field may change during a run. */
export interface NetworkConditions {
  /** Probability that a sent message is silently lost. */
  readonly lossRate: number;
  /** Probability that a sent message is delivered twice (each copy with its own delay). */
  readonly dupRate: number;
  /** Every message takes at least this long; at least 1 so a reply never arrives in the tick it was caused. */
  readonly minLatencyTicks: number;
  /** Extra delay, uniform in [0, maxExtraDelayTicks]; above 0 it reorders messages. */
  readonly maxExtraDelayTicks: number;
}

export const RELIABLE_NETWORK: NetworkConditions = { lossRate: 0, dupRate: 0, minLatencyTicks: 1, maxExtraDelayTicks: 0 };

/** Most messages in flight at once: a run that exceeds it has a message storm, which is a bug. */
export const MAX_IN_FLIGHT_MESSAGES = 200_000;

/** Counters for the run summary. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  blocked: number;
}

export class SimNetwork {
  private conditions: NetworkConditions = RELIABLE_NETWORK;
  /** Messages by delivery tick, each list in send order. */
  private readonly pending = new Map<number, Message[]>();
  private inFlight = 0;
  /** Blocked directed links, as `from>to`. */
  private readonly blockedLinks = new Set<string>();
  private dropFilter: ((message: Message) => boolean) | null = null;
  private deliveryObserver: ((message: Message) => void) | null = null;
  private holdFilter: ((message: Message) => boolean) | null = null;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, duplicated: 0, blocked: 0 };

  constructor(
    private readonly prng: Prng,
    private readonly trace: Trace,
  ) {}

  /** Changes loss, duplication or latency from now on (messages already in flight keep their tick). */
  setConditions(change: Partial<NetworkConditions>): void {
    const next = { ...this.conditions, ...change };
    if (!(next.lossRate >= 0 && next.lossRate <= 1 && next.dupRate >= 0 && next.dupRate <= 1)) {
      throw new Error(`loss ${next.lossRate} and dup ${next.dupRate} must be probabilities in [0, 1]`);
    }
    if (!(Number.isInteger(next.minLatencyTicks) && next.minLatencyTicks >= 1 && Number.isInteger(next.maxExtraDelayTicks) && next.maxExtraDelayTicks >= 0)) {
      throw new Error(`latency ${next.minLatencyTicks}+[0, ${next.maxExtraDelayTicks}] must be whole ticks, at least 1`);
    }
    this.conditions = next;
  }

  current(): NetworkConditions {
    return this.conditions;
  }

  /** Queues `message`, sent at tick `now`. */
  send(message: Message, now: number): void {
    this.stats.sent++;
    freezeMessage(message);
    if (this.prng.chance(this.conditions.lossRate)) {
      this.stats.lost++;
      this.trace.add(now, () => `${formatMessage(message)} (lost)`);
      return;
    }
    const copies = this.prng.chance(this.conditions.dupRate) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      if (this.inFlight >= MAX_IN_FLIGHT_MESSAGES) {
        throw new Error(`more than ${MAX_IN_FLIGHT_MESSAGES} messages in flight: a message storm`);
      }
      const at = now + this.conditions.minLatencyTicks + this.prng.int(0, this.conditions.maxExtraDelayTicks);
      let bucket = this.pending.get(at);
      if (!bucket) this.pending.set(at, (bucket = []));
      bucket.push(message);
      this.inFlight++;
      if (copy === 1) this.stats.duplicated++;
      this.trace.add(now, () => `${formatMessage(message)} (arrives t=${at}${copy === 1 ? ", duplicate" : ""})`);
    }
  }

  /**
   * Removes and returns the messages due at tick `now`, in send order; held messages (see
   * setHoldFilter) wait for the next tick instead. Must be called for every tick in turn.
   */
  takeDue(now: number): Message[] {
    const bucket = this.pending.get(now);
    if (!bucket) return [];
    this.pending.delete(now);
    if (!this.holdFilter) {
      this.inFlight -= bucket.length;
      return bucket;
    }
    const due: Message[] = [];
    const held: Message[] = [];
    for (const message of bucket) (this.holdFilter(message) ? held : due).push(message);
    this.inFlight -= due.length;
    if (held.length > 0) this.pending.set(now + 1, [...held, ...(this.pending.get(now + 1) ?? [])]);
    return due;
  }

  /**
   * Decides, at the moment of delivery, whether a due message arrives: not if its link is blocked or the
   * scenario filter drops it. Deciding per message (not per tick) lets a filter react to the delivery
   * just before it.
   */
  admit(message: Message, now: number): boolean {
    if (this.isBlocked(message.from, message.to)) {
      this.stats.blocked++;
      this.trace.add(now, () => `${formatMessage(message)} (blocked by partition)`);
      return false;
    }
    if (this.dropFilter?.(message)) {
      this.stats.blocked++;
      this.trace.add(now, () => `${formatMessage(message)} (dropped by scenario filter)`);
      return false;
    }
    this.stats.delivered++;
    this.deliveryObserver?.(message);
    return true;
  }

  messagesInFlight(): number {
    return this.inFlight;
  }

  /** Blocks the directed link from → to (to → from is unaffected). */
  block(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(`${from}>${to}`);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.size > 0 && this.blockedLinks.has(`${from}>${to}`);
  }

  /** Blocks every link between nodes of different groups, both ways. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const [i, group] of groups.entries()) {
      for (const [j, other] of groups.entries()) {
        if (i === j) continue;
        for (const from of group) for (const to of other) this.block(from, to);
      }
    }
  }

  /** Unblocks every link. */
  heal(): void {
    this.blockedLinks.clear();
  }

  /** Sees every message handed out for delivery (scenario tests count round trips with it). */
  setDeliveryObserver(observe: ((message: Message) => void) | null): void {
    this.deliveryObserver = observe;
  }

  /**
   * Holds back every message for which `hold` returns true: it stays in flight, in order, and is
   * delivered once the filter lets it go (null releases everything). Scenarios use it to deliver a
   * message at an exact moment.
   */
  setHoldFilter(hold: ((message: Message) => boolean) | null): void {
    this.holdFilter = hold;
  }

  /** Drops every message for which `drop` returns true (scenario tests); null removes the filter. */
  setDropFilter(drop: ((message: Message) => boolean) | null): void {
    this.dropFilter = drop;
  }
}

function freezeMessage(message: Message): void {
  if (Object.isFrozen(message)) return;
  if (message.type === MessageType.Append) {
    for (const entry of message.entries) Object.freeze(entry);
    Object.freeze(message.entries);
  }
  Object.freeze(message);
}
