import { MemoryStore } from './store-view.js';
import { storeSuite } from './store-suite.js';

storeSuite('memory', () => {
  const store = new MemoryStore();
  return Promise.resolve({ store, cleanup: () => store.close() });
});
