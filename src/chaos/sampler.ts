/**
 * Samples every node's own view (Cluster.Status: role, term, leader, commit and applied index) about
 * every SAMPLE_INTERVAL_MS into the history, for the cluster checks (one leader per term, commit index
 * never moving back). One call per node at a time, so a node's samples are in the order it answered;
 * a paused or dead node simply has no samples for that time.
 */
import type { ChaosCluster } from "./cluster.js";
import type { HistoryRecorder } from "./history.js";
import { sleep } from "./timing.js";

/** How often each node is asked. */
export const SAMPLE_INTERVAL_MS = 200;
/** Deadline of one sample: shorter than the interval would lose samples of a slow node, so a bit longer. */
const SAMPLE_TIMEOUT_MS = 500;

/** Samples until `signal` aborts; resolves once every node's loop has stopped. */
export async function sampleStatuses(cluster: ChaosCluster, history: HistoryRecorder, signal: AbortSignal): Promise<void> {
  await Promise.all(
    cluster.ids.map(async (id) => {
      while (!signal.aborted) {
        const startedAt = Date.now();
        if (cluster.state(id) === "running") {
          const sample = await cluster.sample(id, SAMPLE_TIMEOUT_MS);
          if (sample && !signal.aborted) {
            const { status, incarnation } = sample;
            history.record({
              type: "status",
              node: id,
              incarnation,
              role: status.role,
              term: status.term,
              leader: status.leaderId,
              commit: status.commitIndex,
              applied: status.appliedIndex,
            });
          }
        }
        await sleep(SAMPLE_INTERVAL_MS - (Date.now() - startedAt), signal);
      }
    }),
  );
}
