/**
 * What a bench script started (processes, temp dirs, servers), undone in reverse order, once: at the end
 * of the run, or on Ctrl-C / SIGTERM, so no process outlives the script.
 */
export class Cleanup {
  private readonly closers: Array<() => unknown> = [];
  private cleaning: Promise<void> | undefined;
  /** Set once a signal stopped the run. */
  interrupted = false;

  constructor() {
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      process.once(signal, () => {
        console.error(`\n${signal}: stopping every process the bench started`);
        this.interrupted = true;
        void this.run().finally(() => process.exit(code));
      });
    }
  }

  /** Registers how to undo something just started. */
  add(close: () => unknown): void {
    this.closers.push(close);
  }

  /** Undoes everything registered, newest first; a failure is reported and the rest still runs. */
  run(): Promise<void> {
    this.cleaning ??= (async () => {
      for (const close of this.closers.splice(0).reverse()) {
        try {
          await close();
        } catch (error) {
          console.error(`while cleaning up: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.cleaning;
  }
}
