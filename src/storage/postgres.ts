/** PostgreSQL store: not built yet (its own issue). */
import { ConfigError } from '../config.js';
import type { Store } from './store.js';

export function openPostgresStore(_url: string): Promise<Store> {
  return Promise.reject(new ConfigError('PostgreSQL support is not available in this build'));
}
