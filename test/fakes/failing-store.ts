/** A store whose every operation fails as an unreachable database would: for error paths. */
import { StorageUnavailableError } from '../../src/errors.js';
import type { Store } from '../../src/storage/store.js';

export function failingStore(): Store {
  const fail = () => Promise.reject(new StorageUnavailableError());
  return new Proxy({} as Store, {
    get(_target, prop) {
      if (prop === 'engine') return 'fake';
      if (prop === 'close') return () => Promise.resolve();
      if (prop === 'then') return undefined;
      return fail;
    },
  });
}
