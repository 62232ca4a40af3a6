/** `raftq cluster …`: the cluster's membership (add, remove) and the status of its nodes and members. */
import type { Command } from "commander";
import { clientCommand, requireAnswer, withClient, type ConnectionFlags } from "./client-commands.js";
import { nodeRows, renderMembers, renderNodeRows, reportedMembers } from "./format.js";
import type { CliOutput } from "./output.js";

/** Adds the `cluster` command and its subcommands to `program`. */
export function registerClusterCommands(program: Command, output: CliOutput): void {
  const print = (text: string): void => output.stdout(text);
  const printJson = (value: unknown): void => output.stdout(`${JSON.stringify(value)}\n`);
  const cluster = program.command("cluster").description("see and change the cluster's membership");

  clientCommand(cluster, "status", "show every node of --addr (role, term, commit, applied, lag) and every member (voter or learner)")
    .action(
      withClient<[], ConnectionFlags>(async (client, [], flags) => {
        const reports = await client.clusterStatus();
        const rows = nodeRows(reports);
        const members = reportedMembers(reports);
        if (flags.json) printJson({ nodes: rows, members });
        else print(`${renderNodeRows(rows)}\n${renderMembers(members)}`);
        requireAnswer(rows, flags.addr);
      }),
    );

  clientCommand(cluster, "add", "add a node as a learner; the leader makes it a voter once it has caught up")
    .argument("<id>", "the new node's id (what it runs with --id): 1-63 letters, digits, '.', '_' or '-'")
    .argument("<address>", "host:port where the other nodes and clients reach it")
    .addHelpText("after", "\nStart the new node first (raftq serve --id <id> --join <any member's address> does both steps).")
    .action(
      withClient<[string, string], ConnectionFlags>(async (client, [id, address], flags) => {
        const members = await client.addMember(id, address);
        if (flags.json) printJson({ members });
        else print(`added ${id} (${address}); it becomes a voter once it has caught up\n\n${renderMembers(members)}`);
      }),
    );

  clientCommand(cluster, "remove", "remove a node (voter or learner) from the cluster")
    .argument("<id>", "the node's id")
    .action(
      withClient<[string], ConnectionFlags>(async (client, [id], flags) => {
        const members = await client.removeMember(id);
        if (flags.json) printJson({ members });
        else print(`removed ${id}; it can be stopped now\n\n${renderMembers(members)}`);
      }),
    );
}
