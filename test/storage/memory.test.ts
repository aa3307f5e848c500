import { MemoryStore } from '../fakes/memory-store.js';
import { storeSuite } from './store-suite.js';

storeSuite('memory', () => {
  const store = new MemoryStore();
  return Promise.resolve({ store, cleanup: () => store.close() });
});
