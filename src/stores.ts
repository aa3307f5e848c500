/**
 * Opens the database and every feature's stores on it: what a process that serves or transfers
 * the registry holds. A new feature opens its stores here too.
 */
import type { AuditStore } from './audit/store.js';
import { openAuditStore } from './audit/stores.js';
import { openDatabase, type EngineDatabase, type OpenDatabaseOptions } from './db/open.js';
import type { Stores } from './devices/service.js';
import { openDeviceStores } from './devices/stores.js';
import type { TokenGrantStore } from './token-grants/store.js';
import { openTokenGrantStore } from './token-grants/stores.js';
import type { EnrollmentStore } from './enrollment/store.js';
import { openEnrollmentStore } from './enrollment/stores.js';
import { openReportStore } from './reports/stores.js';
import type { ReportStore } from './reports/store.js';
import { openTriggerStores, type TriggerStoreOptions } from './triggers/stores.js';

export interface OpenedStores extends Stores {
  db: EngineDatabase;
  /** Enrollment tokens' use counter (src/token-grants/). */
  tokenGrants: TokenGrantStore;
  /** Pending and rejected devices (src/enrollment/). */
  enrollment: EnrollmentStore;
  /** Devices' progress reports (src/reports/). */
  reports: ReportStore;
  /** The audit log of admin writes (src/audit/). */
  audit: AuditStore;
}

export async function openStores(
  database: string,
  opts: OpenDatabaseOptions & { triggers?: TriggerStoreOptions } = {},
): Promise<OpenedStores> {
  const db = await openDatabase(database, opts);
  try {
    const [devices, triggers, tokenGrants, enrollment, reports, audit] = await Promise.all([
      openDeviceStores(db),
      openTriggerStores(db, opts.triggers),
      openTokenGrantStore(db),
      openEnrollmentStore(db),
      openReportStore(db),
      openAuditStore(db),
    ]);
    return {
      db,
      devices: devices.store,
      deviceReads: devices.reads,
      outbox: triggers.outbox,
      triggerReads: triggers.reads,
      tokenGrants,
      enrollment,
      reports,
      audit,
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
