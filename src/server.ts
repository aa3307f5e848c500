/**
 * Starts the server: opens the database and the feature stores, wires the service, the trigger dispatcher and the HTTP
 * app, listens, and shuts all of it down in order on SIGTERM/SIGINT.
 */
import { auditRoutes } from './audit/routes.js';
import { AuditService } from './audit/service.js';
import { ReportService } from './reports/service.js';
import { reportRoutes } from './reports/routes.js';
import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import { buildApp } from './app.js';
import type { ServeConfig } from './config.js';
import { DeviceService } from './devices/service.js';
import { enrollmentPlugin } from './enrollment/routes.js';
import { EnrollmentService, readRulesFile } from './enrollment/service.js';
import { EventBus } from './events/bus.js';
import { operatorFeatures } from './operator.js';
import { loggerOptions } from './security/logging.js';
import { setupSecurity } from './security/setup.js';
import { openStores, type OpenedStores } from './stores.js';
import { TokenAdmission, type DeviceOf } from './token-grants/admission.js';
import { DeviceNotFoundError } from './errors.js';
import { Dispatcher, validateTriggerTiming } from './triggers/dispatcher.js';
import { callBuilder, needsDevice, type DescribeDevice } from './triggers/manager-call.js';
import { parseManagerUrl } from './triggers/manager-url.js';
import { readManagerSecretFile } from './triggers/secret-file.js';
import { openTriggerSender } from './triggers/sender.js';
import { TriggerQueue } from './triggers/queue.js';

export interface RunningServer {
  app: FastifyInstance;
  stores: OpenedStores;
  /** The trigger dispatcher, when a manager URL is configured (stats() for metrics). */
  dispatcher: Dispatcher | undefined;
  url: string;
  /** Enrollment mode, rules, pending devices (src/enrollment/). */
  enrollment: EnrollmentService;
  /** SIGHUP: re-read the TLS certificate/key/CA files, the tokens file and the enrollment rules. */
  reload(): void;
  close(): Promise<void>;
}

export async function startServer(config: ServeConfig): Promise<RunningServer> {
  const logger = loggerOptions(config.logLevel);
  // TLS files and tokens are read (and checked) before anything is opened.
  const security = setupSecurity(config);
  // A bad rules file stops start-up (ConfigError: exit 2), naming its line.
  const rules =
    config.enrollmentRules === undefined ? undefined : readRulesFile(config.enrollmentRules);
  const triggerTiming = {
    timeoutMs: config.triggerTimeout,
    leaseMs: config.triggerLease,
    initialBackoffMs: config.triggerInitialBackoff,
    maxBackoffMs: config.triggerMaxBackoff,
    pollIntervalMs: config.triggerPollInterval,
  };
  if (config.managerUrl !== undefined) validateTriggerTiming(triggerTiming);
  // The call's form, checked (and the secret file read) before anything is opened.
  const target =
    config.managerUrl === undefined
      ? undefined
      : parseManagerUrl(config.managerUrl, config.managerFormat);
  const secrets =
    config.managerSecretFile === undefined
      ? config.managerSecret
      : readManagerSecretFile(config.managerSecretFile);
  // PostgreSQL: a connection lost while idle is reported here (the pool reconnects on demand).
  let onConnectionError: (message: string) => void = () => undefined;
  const stores = await openStores(config.database, {
    background: true,
    owner: true,
    triggers: { instanceId: instanceIdOf(config) },
    postgres: {
      poolSize: config.databasePoolSize,
      statementTimeout: config.databaseStatementTimeout,
      connectTimeout: config.databaseConnectTimeout,
      onConnectionError: (message) => onConnectionError(message),
    },
  });
  const events = new EventBus();
  let dispatcher: Dispatcher | undefined;
  const enrollment = new EnrollmentService(stores.db, stores.enrollment, {
    mode: config.enrollment,
    ...(rules ? { rules } : {}),
  });
  const service = new DeviceService(stores, {
    triggersEnabled: config.managerUrl !== undefined,
    triggerOn: config.triggerOn,
    historyLimit: config.historyLimit,
    events,
    dispatcher: () => dispatcher,
    // A token bound to an alias names the device holding it (and one bound to its primary id,
    // its aliases).
    tokenAdmission: new TokenAdmission(stores.tokenGrants, deviceOf(stores)),
    admission: enrollment.admission,
    // Admin writes append their entries to the audit log in their own transaction.
    audit: stores.audit,
  });
  const audit = new AuditService(stores.audit, {
    retentionMs: config.auditRetention,
    resolveId: (rawId) => service.resolveId(rawId),
  });
  enrollment.attach(service);
  // --report-forward: each report's forward is queued in the report's own transaction.
  const reports = new ReportService(stores, service, {
    events,
    forward:
      config.reportForward === undefined
        ? undefined
        : new TriggerQueue(stores.outbox, () => dispatcher),
  });
  // Console at /, its data and live events under /ztp/mng/, /metrics (src/operator.ts).
  const operator = operatorFeatures({ service, reports, events, dispatcher: () => dispatcher });
  const app = await buildApp({
    service,
    bodyLimit: config.bodyLimit,
    logger,
    plugins: [
      enrollmentPlugin(enrollment),
      reportRoutes(reports),
      auditRoutes(audit),
      operator.plugin,
    ],
    guards: security.guards,
    https: security.https,
    trustProxy: security.trustProxy,
    limits: {
      headersTimeout: config.headersTimeout,
      requestTimeout: config.requestTimeout,
      idleTimeout: config.idleTimeout,
      keepAliveTimeout: config.keepAliveTimeout,
    },
  });
  for (const warning of security.warnings) app.log.warn(warning);
  // Migration 4 leaves a bare 12-hex id whose MAC another device holds: no path reaches it.
  const bareIds = await stores.deviceReads.bareMacIds(20);
  if (bareIds.length > 0) {
    app.log.warn(
      { ids: bareIds },
      'devices stored under a bare 12-hex id whose canonical MAC another device holds: no request reaches them (docs/api.md, canonical ids)',
    );
  }
  onConnectionError = (message) =>
    app.log.warn({ reason: message }, 'database connection lost; reconnecting on demand');
  if (config.managerUrl === undefined) {
    app.log.warn(
      'no --manager-url (ZTP_MANAGER_URL) configured: registrations are stored but no manager trigger is queued',
    );
  }
  const managerClient =
    config.managerUrl === undefined
      ? undefined
      : await openTriggerSender(config.triggerSender, {
          managerUrl: config.managerUrl,
          format: config.managerFormat,
          reportForwardUrl: config.reportForward,
          secrets: secrets?.reveal(),
          timeoutMs: config.triggerTimeout,
          connections: config.triggerConcurrency,
        });
  // Name and userdata for the json form and {name}, aliases for a forwarded report, read at call
  // time from the registry.
  const describeDevice: DescribeDevice = async (id, withAliases) => {
    try {
      const d = await service.get(id);
      const aliases = withAliases ? await stores.devices.aliases(d.id) : undefined;
      return {
        name: d.name,
        userdata: d.userdata,
        lastSeen: d.lastSeen,
        aliases: aliases?.map((a) => a.value),
      };
    } catch (e) {
      if (e instanceof DeviceNotFoundError) return undefined;
      throw e;
    }
  };
  if (managerClient && target) {
    dispatcher = new Dispatcher({
      ...triggerTiming,
      outbox: stores.outbox,
      sender: managerClient,
      events,
      logger: app.log,
      concurrency: config.triggerConcurrency,
      maxAgeMs: config.triggerMaxAge,
      retentionMs: config.triggerRetention,
      handOver: config.triggerHandOver === 'on',
      buildCall: callBuilder(
        describeDevice,
        needsDevice(config.managerFormat, target),
        config.reportForward !== undefined,
      ),
      onCall: (seconds, result) => operator.metrics.observeManagerCall(seconds, result),
    });
  }

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (e) {
    await managerClient?.close();
    await stores.db.close();
    throw e;
  }
  // After listen: a previous incarnation with this instance id (same host and port) is dead
  // now, or listen would have failed; its leases go back to the queue before the first claim.
  if (dispatcher) {
    try {
      const released = await stores.outbox.releaseStaleLeases();
      if (released > 0)
        app.log.info({ released }, 'released trigger leases of a previous run of this instance');
    } catch (e) {
      app.log.warn({ err: e }, 'could not release stale trigger leases; they wait for expiry');
    }
  }
  dispatcher?.start();
  audit.start((e) => app.log.warn({ err: e }, 'audit log retention failed; retried in an hour'));
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${security.https ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // Stop accepting, let in-flight requests finish (bounded), stop the dispatcher (in-flight
      // trigger calls get the same grace; the rest stay pending), then close the database.
      const timer = setTimeout(() => app.server.closeAllConnections(), config.shutdownGrace);
      await app.close();
      clearTimeout(timer);
      audit.stop();
      await dispatcher?.stop(config.shutdownGrace);
      await managerClient?.close();
      await stores.db.close();
    })());

  // The start-up line is what operators and supervisors wait for: written at any level but silent.
  const startupLog = config.logLevel === 'silent' ? app.log : app.log.child({}, { level: 'info' });
  startupLog.info(
    { url, storage: stores.db.engine, database: redactDatabase(config.database) },
    'ztp listening',
  );
  if (config.enrollmentRules !== undefined && config.enrollment === 'open')
    app.log.warn(
      '--enrollment-rules has no effect with --enrollment open: every device may register',
    );
  const reload = () => {
    security.reload(app.server, app.log);
    if (config.enrollmentRules !== undefined) {
      try {
        const next = readRulesFile(config.enrollmentRules);
        enrollment.setRules(next);
        app.log.info({ count: next.size }, 'enrollment rules reloaded');
      } catch (e) {
        app.log.error({ err: e }, 'enrollment rules reload failed; the previous rules stay in use');
      }
    }
  };
  return { app, stores, dispatcher, enrollment, url, reload, close };
}

/**
 * PostgreSQL lease ownership (see PostgresOutboxOptions.instanceId): --instance-id, or else the host
 * name and listen address, which no other live process on this host can share; none with
 * --port 0 (a new port each run).
 */
export function instanceIdOf(config: ServeConfig): string | undefined {
  if (config.instanceId !== undefined) return config.instanceId;
  if (config.port === 0) return undefined;
  return `${hostname()}/${config.host}:${config.port}`.replace(/\s/g, '_');
}

/** Never log a database password. */
export function redactDatabase(database: string): string {
  return database.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/** The device an id or alias names, for bound tokens (token-grants/admission.ts). */
export function deviceOf(stores: Pick<OpenedStores, 'devices'>): DeviceOf {
  return async (idOrAlias) => {
    try {
      return (await stores.devices.get(idOrAlias)).id;
    } catch (e) {
      if (e instanceof DeviceNotFoundError) return undefined;
      throw e;
    }
  };
}
