/**
 * Groups what arrives during one turn of the event loop by key, and hands every group over at the end
 * of the turn (setImmediate), or earlier when asked (flushNow): the calls the coalescers join into one
 * command each.
 */
export class TurnGroups<Group> {
  private groups = new Map<string, Group>();
  private scheduled = false;

  constructor(
    /** Called once a turn with that turn's groups, in the order their keys first arrived. */
    private readonly onTurnEnd: (groups: ReadonlyMap<string, Group>) => void,
  ) {}

  /** The group of `key` in this turn, created by `create` if it is the first of its key. */
  group(key: string, create: () => Group): Group {
    let group = this.groups.get(key);
    if (group === undefined) this.groups.set(key, (group = create()));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.endTurn());
    }
    return group;
  }

  /** Hands the groups gathered so far over now (the end of the turn then finds only what came after). */
  flushNow(): void {
    if (this.groups.size === 0) return;
    const groups = this.groups;
    this.groups = new Map();
    this.onTurnEnd(groups);
  }

  private endTurn(): void {
    this.scheduled = false;
    this.flushNow();
  }
}
