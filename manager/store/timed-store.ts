import { metrics } from '../../services/metrics/metrics';

/**
 * The store, with every call that returns a promise timed into
 * swarmlet_etcd_request_duration_seconds{operation=<method>} (failures also counted): the method
 * names are the label's only values. A method that returns another store of the same class
 * (`withSnapshot`, `fenced`) returns it timed too.
 */
export function timedStore<T extends object>(store: T): T {
  // Each method's timed wrapper, made once: a loop's pass calls the store thousands of times.
  const wrappers = new Map<string, { value: unknown; wrapper: (...args: unknown[]) => unknown }>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      const made = wrappers.get(prop);
      if (made?.value === value) return made.wrapper;
      const wrapper = (...args: unknown[]) => {
        const end = metrics.etcdSeconds.startTimer({ operation: prop });
        let result: unknown;
        try {
          result = value.apply(target, args);
        } catch (err) {
          end();
          metrics.etcdErrors.inc({ operation: prop });
          throw err;
        }
        if (result instanceof Promise) {
          return result.then(
            (v) => (end(), v),
            (err) => {
              end();
              metrics.etcdErrors.inc({ operation: prop });
              throw err;
            },
          );
        }
        // Not a request: nothing to time.
        return result instanceof (target.constructor as new (...a: never[]) => object) ? timedStore(result as object) : result;
      };
      wrappers.set(prop, { value, wrapper });
      return wrapper;
    },
  });
}
