/** The enrollment store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { SqliteStep } from '../db/unit-of-work.js';
import {
  AlreadyRejectedError,
  DeviceRejectedError,
  NotPendingError,
  NotRejectedError,
} from './errors.js';
import { ALIASES_PER_DEVICE_MAX } from '../devices/identity.js';
import {
  aliasesColumn,
  aliasesFromColumn,
  pendingFromRow,
  rejectedFromRow,
  type PendingRow,
  type RejectedRow,
} from './rows.js';
import {
  mergePendingAliases,
  type EnrollmentStore,
  type PendingDevice,
  type PendingRegistration,
  type RejectedDevice,
} from './store.js';

const GET_PENDING = 'SELECT * FROM enrollment_pending WHERE id = ?';
const GET_REJECTED = 'SELECT * FROM enrollment_rejected WHERE id = ?';
const UPDATE_PENDING = `UPDATE enrollment_pending SET ip = @ip, name = @name, userdata = @userdata, source = @source,
  aliases = @aliases, last_seen = @at, registrations = registrations + 1 WHERE id = @id RETURNING *`;
const INSERT_PENDING = `INSERT INTO enrollment_pending (id, ip, name, userdata, source, aliases, first_seen, last_seen, registrations)
  VALUES (@id, @ip, @name, @userdata, @source, @aliases, @at, @at, 1) RETURNING *`;
const DELETE_PENDING = 'DELETE FROM enrollment_pending WHERE id = ? RETURNING *';
const INSERT_REJECTED =
  'INSERT INTO enrollment_rejected (id, at, ip, source) VALUES (?, ?, ?, ?) RETURNING *';
const DELETE_REJECTED = 'DELETE FROM enrollment_rejected WHERE id = ? RETURNING *';
const LIST_PENDING = 'SELECT * FROM enrollment_pending WHERE id > ? ORDER BY id LIMIT ?';
const COUNT_PENDING = 'SELECT count(*) AS n FROM enrollment_pending';
const LIST_REJECTED = 'SELECT * FROM enrollment_rejected WHERE id > ? ORDER BY id LIMIT ?';

export class SqliteEnrollmentStore implements EnrollmentStore {
  constructor(private readonly db: SqliteDatabase) {}

  pendStep(reg: PendingRegistration): SqliteStep<{ created: boolean; pending: PendingDevice }> {
    return this.db.step(() => {
      if (this.db.statement(GET_REJECTED).get(reg.id) !== undefined)
        throw new DeviceRejectedError(reg.id);
      const old = this.db.statement<PendingRow>(GET_PENDING).get(reg.id);
      const aliases = mergePendingAliases(
        old ? aliasesFromColumn(old.aliases) : [],
        reg.aliases,
        ALIASES_PER_DEVICE_MAX,
      );
      const params = {
        id: reg.id,
        ip: reg.ip,
        name: reg.name,
        userdata: reg.userdata,
        source: reg.source,
        at: reg.at,
        aliases: aliasesColumn(aliases),
      };
      const updated = old && this.db.statement<PendingRow>(UPDATE_PENDING).get(params);
      const row = updated ?? this.db.statement<PendingRow>(INSERT_PENDING).get(params)!;
      return { created: updated === undefined, pending: pendingFromRow(row) };
    });
  }

  takeStep(id: string): SqliteStep<PendingDevice> {
    return this.db.step(() => {
      const row = this.db.statement<PendingRow>(DELETE_PENDING).get(id);
      if (row === undefined) throw new NotPendingError(id);
      return pendingFromRow(row);
    });
  }

  dropStep(id: string): SqliteStep<void> {
    return this.db.step(() => {
      this.db.statement(DELETE_PENDING).run(id);
    });
  }

  rejectStep(id: string, at: number): SqliteStep<RejectedDevice> {
    return this.db.step(() => {
      if (this.db.statement(GET_REJECTED).get(id) !== undefined) throw new AlreadyRejectedError(id);
      const pending = this.db.statement<PendingRow>(DELETE_PENDING).get(id);
      if (pending === undefined) throw new NotPendingError(id);
      const row = this.db
        .statement<RejectedRow>(INSERT_REJECTED)
        .get(id, at, pending.ip, pending.source)!;
      return rejectedFromRow(row);
    });
  }

  liftStep(id: string): SqliteStep<RejectedDevice> {
    return this.db.step(() => {
      const row = this.db.statement<RejectedRow>(DELETE_REJECTED).get(id);
      if (row === undefined) throw new NotRejectedError(id);
      return rejectedFromRow(row);
    });
  }

  getPending(id: string): Promise<PendingDevice | undefined> {
    return this.db.read(() => {
      const row = this.db.statement<PendingRow>(GET_PENDING).get(id);
      return row && pendingFromRow(row);
    });
  }

  getRejected(id: string): Promise<RejectedDevice | undefined> {
    return this.db.read(() => {
      const row = this.db.statement<RejectedRow>(GET_REJECTED).get(id);
      return row && rejectedFromRow(row);
    });
  }

  listPending(after: string | undefined, limit: number): Promise<PendingDevice[]> {
    return this.db.read(() =>
      this.db
        .statement<PendingRow>(LIST_PENDING)
        .all(after ?? '', limit)
        .map(pendingFromRow),
    );
  }

  countPending(): Promise<number> {
    return this.db.read(() => this.db.statement<{ n: number }>(COUNT_PENDING).get()!.n);
  }

  listRejected(after: string | undefined, limit: number): Promise<RejectedDevice[]> {
    return this.db.read(() =>
      this.db
        .statement<RejectedRow>(LIST_REJECTED)
        .all(after ?? '', limit)
        .map(rejectedFromRow),
    );
  }
}
