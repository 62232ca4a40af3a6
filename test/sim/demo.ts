/**
 * The interim `make run`: a simulated three-node cluster tells its story. It elects a leader, replicates
 * proposals, loses the leader to a crash, elects another, brings the old leader back, and shows that every
 * node applied the same log. The safety checker watches every step; any violation ends the demo with exit 1.
 */
import { SimCluster } from "./cluster.js";

/** Trace lines worth showing in the story: elections, role changes, crashes, restarts. */
const STORY_LINE = /became leader|starts election|starts pre-vote|steps down|crashed|restarted|lost the/;

function say(cluster: SimCluster, text: string): void {
  console.log(`t=${cluster.now} ${text}`);
}

function main(): void {
  const cluster = new SimCluster({
    nodes: 3,
    seed: 7,
    echo: (line) => {
      if (STORY_LINE.test(line)) console.log(`    ${line}`);
    },
  });
  console.log("raftq simulator demo: 3 nodes (n1, n2, n3), simulated network, election timeout 10-20 ticks\n");

  say(cluster, "cluster starts: no leader yet, every node waits for its election timer");
  const first = cluster.waitAgreedLeader();
  say(cluster, `${first} is leader of term ${cluster.status(first).term}, followed by every node`);

  const firstIndex = cluster.proposeAndWait(5);
  say(cluster, `client proposed p1..p5 through ${first}: committed and applied on every node at indexes ${firstIndex}..${firstIndex + 4}`);

  say(cluster, `${first} crashes; its disk survives`);
  cluster.crash(first, "demo: leader crash");
  const second = cluster.waitAgreedLeader();
  say(cluster, `${second} is the new leader, term ${cluster.status(second).term}`);

  const moreIndex = cluster.proposeAndWait(3);
  say(cluster, `client proposed p6..p8 through ${second}: committed by the two live nodes at ${moreIndex}..${moreIndex + 2}`);

  say(cluster, `${first} restarts from its persisted term, vote and log`);
  cluster.restart(first);
  const last = cluster.status(second).lastIndex;
  cluster.waitApplied(last, cluster.ids);
  say(cluster, `${first} caught up: every node applied indexes 1..${last}`);

  console.log("\nfinal state:");
  console.log(cluster.describe());
  const leaders = [...cluster.checker.leaders()].map(([term, id]) => `term ${term}: ${id}`).join(", ");
  console.log(`\nleaders by term: ${leaders}`);
  console.log(`safety checker: no violation in ${cluster.now} ticks (${cluster.network.stats.sent} messages)`);
}

main();
