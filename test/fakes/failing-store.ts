/** Stores whose every operation fails as an unreachable database would: for error paths. */
import type { Stores } from '../../src/devices/service.js';
import { StorageUnavailableError } from '../../src/errors.js';
import { StoreView } from '../storage/store-view.js';

/** Every method rejects with StorageUnavailableError; a step (…Step()) fails when committed. */
function failing(extra: Record<string, unknown> = {}): never {
  const fail = () => Promise.reject(new StorageUnavailableError());
  const failingStep = () => ({
    engine: 'memory',
    run: () => {
      throw new StorageUnavailableError();
    },
  });
  return new Proxy({} as never, {
    get(_target, prop) {
      if (typeof prop === 'string' && prop in extra) return extra[prop];
      if (prop === 'then') return undefined;
      if (typeof prop === 'string' && prop.endsWith('Step')) return failingStep;
      return fail;
    },
  });
}

export function failingStores(): Stores {
  return {
    db: failing({ engine: 'memory', close: () => Promise.resolve() }),
    devices: failing(),
    deviceReads: failing(),
    outbox: failing(),
    triggerReads: failing(),
  };
}

/** The same behind the contract suites' view (test/storage/store-view.ts). */
export function failingStore(): StoreView {
  return new StoreView(failingStores());
}
