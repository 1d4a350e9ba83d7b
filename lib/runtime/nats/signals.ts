/** Exit status after a second signal cut a drain short (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/**
 * On SIGTERM or SIGINT calls `stop` once (a clean drain); a second signal
 * exits at once. Returns a function that removes the handlers.
 */
export function drainOnSignals(stop: (signal: NodeJS.Signals) => Promise<void>, signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(EXIT_INTERRUPTED);
    stopping = true;
    void stop(signal);
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
