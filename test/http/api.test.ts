import { tempSqliteStore } from '../helpers.js';
import { apiSuite } from './api-suite.js';

apiSuite('sqlite', async () => {
  const { store, cleanup } = tempSqliteStore();
  return { store, cleanup };
});
