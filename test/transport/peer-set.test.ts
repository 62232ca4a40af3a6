import { describe, expect, it } from "vitest";
import { MessageType, type Heartbeat, type Message } from "../../src/raft/types.js";
import { useTransportFixtures, waitFor } from "./helpers.js";

function heartbeat(to: string, readRound: number): Heartbeat {
  return { type: MessageType.Heartbeat, from: "n1", to, term: 3, commit: 7, readRound };
}

const rounds = (messages: readonly Message[]): number[] => messages.map((message) => (message as Heartbeat).readRound);

describe("GrpcPeerTransport peer set", () => {
  const fixtures = useTransportFixtures();

  it("opens a link to a member that joins, and closes the link of a member that leaves", async () => {
    const n2 = await fixtures.receiver("n2");
    const n3 = await fixtures.receiver("n3");
    const transport = fixtures.transport({ peers: new Map([["n2", n2.address]]) });

    transport.send([heartbeat("n2", 1), heartbeat("n3", 1)]);
    await waitFor(() => n2.delivered.length === 1, "n2 to get its heartbeat");

    transport.setPeers(new Map([["n3", n3.address]]));
    expect(transport.peers()).toEqual(new Map([["n3", n3.address]]));
    transport.send([heartbeat("n2", 2), heartbeat("n3", 2)]);
    await waitFor(() => n3.delivered.length === 1, "n3 to get its heartbeat");
    // Give a message to the removed n2 every chance to arrive: it must not.
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(rounds(n2.delivered)).toEqual([1]);
    expect(rounds(n3.delivered)).toEqual([2]);
  });

  it("reconnects a member whose address changed", async () => {
    const before = await fixtures.receiver("n2");
    const after = await fixtures.receiver("n2");
    const transport = fixtures.transport({ peers: new Map([["n2", before.address]]) });
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => before.delivered.length === 1, "the old address to get a heartbeat");

    transport.setPeers(new Map([["n2", after.address]]));
    transport.send([heartbeat("n2", 2)]);
    await waitFor(() => after.delivered.length === 1, "the new address to get a heartbeat");

    expect(rounds(before.delivered)).toEqual([1]);
    expect(rounds(after.delivered)).toEqual([2]);
  });

  it("keeps the link of a member that stays, stream and all", async () => {
    const n2 = await fixtures.receiver("n2");
    const downs: string[] = [];
    const transport = fixtures.transport({ peers: new Map([["n2", n2.address]]), onPeerDown: (peer) => downs.push(peer) });
    transport.send([heartbeat("n2", 1)]);
    await waitFor(() => n2.delivered.length === 1, "n2 to get its heartbeat");

    transport.setPeers(new Map([["n2", n2.address]]));
    transport.send([heartbeat("n2", 2)]);
    await waitFor(() => n2.delivered.length === 2, "n2 to get the second heartbeat");

    expect(downs).toEqual([]);
  });
});
