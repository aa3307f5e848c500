/**
 * The device stores on an open database, by its engine: the engine's modules are loaded by a
 * dynamic import(), so a process loads only the driver it uses.
 */
import type { EngineDatabase } from '../db/open.js';
import type { DeviceReadModel } from './read-model.js';
import type { DeviceStore } from './store.js';

export interface DeviceStores {
  store: DeviceStore;
  reads: DeviceReadModel;
}

export async function openDeviceStores(db: EngineDatabase): Promise<DeviceStores> {
  if (db.engine === 'sqlite') {
    const [{ SqliteDeviceStore }, { SqliteDeviceReadModel }] = await Promise.all([
      import('./store-sqlite.js'),
      import('./read-model-sqlite.js'),
    ]);
    return { store: new SqliteDeviceStore(db), reads: new SqliteDeviceReadModel(db) };
  }
  const [{ PostgresDeviceStore }, { PostgresDeviceReadModel }] = await Promise.all([
    import('./store-postgres.js'),
    import('./read-model-postgres.js'),
  ]);
  return { store: new PostgresDeviceStore(db), reads: new PostgresDeviceReadModel(db) };
}
