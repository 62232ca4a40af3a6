/** Majority arithmetic for a single voter set. */

/** How many voters make a majority of `voterCount`. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest value that a majority of voters has reached: sort descending, take the majority-th.
 * Used for the commit index (over match indexes) and for confirmed read rounds.
 */
export function majorityValue(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => b - a);
  const value = sorted[majority(values.length) - 1];
  if (value === undefined) throw new Error("majorityValue needs at least one voter");
  return value;
}

/** Outcome of counting granted and rejected votes. */
export enum VoteOutcome {
  Pending = "pending",
  Won = "won",
  Lost = "lost",
}

/** Whether granted votes already form a majority, or rejections make one impossible. */
export function tallyVotes(votes: ReadonlyMap<string, boolean>, voterCount: number): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const vote of votes.values()) {
    if (vote) granted++;
    else rejected++;
  }
  const needed = majority(voterCount);
  if (granted >= needed) return VoteOutcome.Won;
  if (rejected > voterCount - needed) return VoteOutcome.Lost;
  return VoteOutcome.Pending;
}
