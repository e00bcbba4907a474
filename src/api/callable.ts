// `locker(name, fn)`: the Locker made callable (locker.ts). Kept apart from the facade so
// the facade reads as the API it is, and this trick is read once, here.

/**
 * `core`, callable as `call`: every other property read, write and method call goes to
 * `core` (methods bound to it; a method returning `core`, like `on`, returns the
 * callable), and `instanceof` sees `core`'s class — for a locker, `instanceof Locker` and
 * `instanceof EventEmitter` hold.
 *
 * Why a Proxy: a class instance cannot be called, and a function cannot be the
 * EventEmitter that `super()` builds; a function target forwarding everything else to the
 * instance is the one way to have `locker(name, fn)` and a real Locker in one value.
 */
export function callable<T extends object, A extends unknown[], R>(core: T, call: (...args: A) => R): T & ((...args: A) => R) {
  type Callable = T & ((...args: A) => R);
  const bound = new Map<PropertyKey, unknown>();
  const target = ((...args: A) => call(...args)) as Callable;
  const proxy: Callable = new Proxy(target, {
    apply: (_t, _this, args: unknown[]) => call(...(args as A)),
    get: (_t, p) => {
      const v: unknown = Reflect.get(core, p, core);
      if (typeof v !== 'function' || p === 'constructor') return v;
      let b = bound.get(p);
      if (b === undefined || (b as { original?: unknown }).original !== v) {
        const f = v as (...a: unknown[]) => unknown;
        const w = (...a: unknown[]): unknown => {
          const r = f.apply(core, a);
          return r === core ? proxy : r;
        };
        (w as { original?: unknown }).original = v;
        bound.set(p, (b = w));
      }
      return b;
    },
    set: (_t, p, v) => Reflect.set(core, p, v, core),
    has: (_t, p) => Reflect.has(core, p),
    getPrototypeOf: () => Object.getPrototypeOf(core) as object,
    ownKeys: (t) => [
      ...new Set([...Reflect.ownKeys(core), ...Reflect.ownKeys(t).filter((k) => !Reflect.getOwnPropertyDescriptor(t, k)?.configurable)]),
    ],
    getOwnPropertyDescriptor: (t, p) => {
      const own = Reflect.getOwnPropertyDescriptor(t, p);
      if (own && !own.configurable) return own;
      const d = Reflect.getOwnPropertyDescriptor(core, p);
      return d ? { ...d, configurable: true } : undefined;
    },
  });
  return proxy;
}
