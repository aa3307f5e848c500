/**
 * Starts the server: opens the store, wires the service, the trigger dispatcher and the HTTP
 * app, listens, and shuts all of it down in order on SIGTERM/SIGINT.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ServeConfig } from './config.js';
import { DeviceService } from './devices/service.js';
import { EventBus } from './events/bus.js';
import { operatorFeatures } from './http/operator.js';
import { openStore } from './storage/open.js';
import type { Store } from './storage/store.js';

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const logger = {
    level: config.logLevel,
    redact: ['req.headers.authorization', 'headers.authorization'],
  };
  const store = await openStore(config.database, { background: true });
  const events = new EventBus();
  const service = new DeviceService(store, {
    triggersEnabled: config.managerUrl !== undefined,
    historyLimit: config.historyLimit,
    events,
  });
  // Console at /, its data and live events under /ztp/mng/, /metrics (src/http/operator.ts).
  const operator = operatorFeatures({ service, events });
  const app = await buildApp({
    service,
    bodyLimit: config.bodyLimit,
    logger,
    plugins: [operator.plugin],
  });
  if (config.managerUrl === undefined) {
    app.log.warn(
      'no --manager-url (ZTP_MANAGER_URL) configured: registrations are stored but no manager trigger is queued',
    );
  }

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await store.close();
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting, let in-flight requests finish (bounded), then close storage.
      const timer = setTimeout(() => app.server.closeAllConnections(), config.shutdownGrace);
      await app.close();
      clearTimeout(timer);
      await store.close();
    })());

  app.log.info(
    { url, storage: store.engine, database: redactDatabase(config.database) },
    'ztp listening',
  );
  return { app, store, url, close };
}

/** Never log a database password. */
export function redactDatabase(database: string): string {
  return database.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
