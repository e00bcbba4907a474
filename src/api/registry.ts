// The names registered on one locker: at most one registration per name that may
// campaign, and at most one more waiting behind it while it retires. A removed name (or
// an aborted try-lock, a released lock) may still have a write or an fn to settle; a new
// registration of the same name campaigning beside it would write the same key, so the
// new one waits here until the old one has left.
import type { Singleton } from './singleton.js';

export class Registry {
  private readonly names = new Map<string, Singleton>();
  /** Registrations waiting behind a retiring one of the same name (removed, an aborted try-lock): admitted once it has left. */
  private readonly successors = new Map<string, Singleton>();
  /** Registrations that may campaign with preferred hosts: none, and a planning pass asks no name for them. */
  private preferring = 0;

  /** `nodeId` only words the error of a second registration. */
  constructor(private readonly nodeId: string) {}

  /** The registration of `name` that may campaign (not one waiting behind it). */
  get(name: string): Singleton | undefined {
    return this.names.get(name);
  }

  /** Names of the registrations that may campaign. */
  keys(): IterableIterator<string> {
    return this.names.keys();
  }

  /** The registrations that may campaign. */
  values(): IterableIterator<Singleton> {
    return this.names.values();
  }

  /** The registrations that may campaign, by name. */
  record(): Record<string, Singleton> {
    return Object.fromEntries(this.names);
  }

  /** Every registration, the ones waiting behind a retiring one too. */
  all(): Singleton[] {
    return [...this.names.values(), ...this.successors.values()];
  }

  /**
   * Registers the singleton `make()` returns under `name` — made only once the name is
   * known to be free, since a made singleton starts its health check. Throws if the name
   * is registered already and not retiring, or has a registration waiting already.
   */
  add(name: string, make: () => Singleton): Singleton {
    const old = this.names.get(name);
    if ((old && !old.retiring) || this.successors.has(name)) {
      throw new Error(`singleton '${name}' is already registered on this locker (id ${this.nodeId})`);
    }
    const s = make();
    if (old) {
      // The old registration is on its way out (removed, an aborted try-lock, a lock
      // released) but its write or fn has not settled: campaigning beside it would write
      // the same key. This one waits and campaigns once the old one has left.
      this.successors.set(name, s);
      void old.released().then(() => this.admit(s));
    } else {
      this.names.set(name, s);
      if (s.prefer?.length) this.preferring++;
    }
    return s;
  }

  /** Campaigns now, or — waiting behind a retiring registration of the name — once admitted. */
  begin(s: Singleton): void {
    if (this.names.get(s.name) === s) s.start();
  }

  /** The name has left for good (Singleton.retired): forget it. */
  unregister(s: Singleton): void {
    if (this.names.get(s.name) === s) {
      this.names.delete(s.name);
      if (s.prefer?.length) this.preferring--;
    } else if (this.successors.get(s.name) === s) this.successors.delete(s.name);
  }

  /** On close, once every registration was asked to stop (a waiting one has left by then: it retires at once). */
  clear(): void {
    this.names.clear();
    this.preferring = 0;
  }

  /** True if a registration that may campaign names preferred hosts. */
  get anyPrefer(): boolean {
    return this.preferring > 0;
  }

  /** The retiring registration has left: its successor takes the name, unless it was removed or the locker closed meanwhile. */
  private admit(s: Singleton): void {
    if (this.successors.get(s.name) !== s) return;
    this.successors.delete(s.name);
    this.names.set(s.name, s);
    if (s.prefer?.length) this.preferring++;
    s.start();
  }
}
