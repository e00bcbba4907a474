// Graceful shutdown on SIGTERM / SIGINT, shared by every locker of the process.
//
// Installing a listener replaces Node's default action (exit), so after resigning we
// re-raise the signal when nobody else listens: the process then exits exactly as it
// would have without us, exit code included.

type Closer = () => Promise<void>;

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type Sig = (typeof SIGNALS)[number];

const closers = new Set<Closer>();
let installed = false;

async function onSignal(signal: Sig): Promise<void> {
  const pending = [...closers];
  closers.clear();
  uninstall();
  await Promise.allSettled(pending.map((close) => close()));
  // Other listeners own the process's fate; with none, do what Node would have done.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

const handlers: Record<Sig, () => void> = {
  SIGTERM: () => void onSignal('SIGTERM'),
  SIGINT: () => void onSignal('SIGINT'),
};

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.removeListener(s, handlers[s]);
}

/** Closes `close` on SIGTERM/SIGINT until the returned function is called. */
export function onShutdown(close: Closer): () => void {
  closers.add(close);
  if (!installed) {
    installed = true;
    for (const s of SIGNALS) process.on(s, handlers[s]);
  }
  return () => {
    closers.delete(close);
    if (closers.size === 0) uninstall();
  };
}
