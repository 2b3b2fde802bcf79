/**
 * The child's side of a bench process's IPC (the parent's is `forkWorker` and the client pools in
 * harness.ts): each message `{id, ...command}` gets one answer `{id, ok, result}` or
 * `{id, ok: false, error}`, and a child whose parent went away does not linger.
 */
export function answerParent<C>(handle: (command: C) => Promise<unknown>, options: { onGone?: () => void; exitAfterMs: number }): void {
  process.on('message', (message: { id: number } & C) => {
    handle(message).then(
      (result) => process.send?.({ id: message.id, ok: true, result }),
      (error: unknown) => process.send?.({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on('disconnect', () => {
    options.onGone?.();
    setTimeout(() => process.exit(0), options.exitAfterMs).unref();
  });
}
