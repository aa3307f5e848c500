/**
 * The enrollment store on PostgreSQL (see store.ts). Its steps are functions of the
 * transaction's connection: none of them is on the hot path of a known device's registration.
 */
import { refuseNul, type PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep, PgQueryable } from '../db/unit-of-work.js';
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

const DELETE_PENDING = 'DELETE FROM enrollment_pending WHERE id = $1 RETURNING *';

function step<T>(run: (c: PgQueryable) => Promise<T>): PgFunctionStep<T> {
  return { engine: 'postgres', run };
}

async function rejected(c: PgQueryable, id: string): Promise<boolean> {
  const { rows } = await c.query('SELECT 1 FROM enrollment_rejected WHERE id = $1', [id]);
  return rows.length > 0;
}

export class PostgresEnrollmentStore implements EnrollmentStore {
  constructor(private readonly db: PostgresDatabase) {}

  pendStep(reg: PendingRegistration): PgFunctionStep<{ created: boolean; pending: PendingDevice }> {
    refuseNul(reg.id, reg.ip, reg.name, reg.userdata, reg.source);
    return step(async (c) => {
      if (await rejected(c, reg.id)) throw new DeviceRejectedError(reg.id);
      const kept = await c.query(
        'SELECT aliases FROM enrollment_pending WHERE id = $1 FOR UPDATE',
        [reg.id],
      );
      const old = kept.rows[0] as { aliases: string } | undefined;
      const aliases = mergePendingAliases(
        old ? aliasesFromColumn(old.aliases) : [],
        reg.aliases,
        ALIASES_PER_DEVICE_MAX,
      );
      const { rows } = await c.query(
        `INSERT INTO enrollment_pending AS p (id, ip, name, userdata, source, aliases, first_seen, last_seen, registrations)
         VALUES ($1, $2, $3, $4, $5, $7, $6, $6, 1)
         ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
           source = EXCLUDED.source, aliases = EXCLUDED.aliases, last_seen = EXCLUDED.last_seen,
           registrations = p.registrations + 1
         RETURNING p.*, (p.xmax = 0) AS created`,
        [reg.id, reg.ip, reg.name, reg.userdata, reg.source, reg.at, aliasesColumn(aliases)],
      );
      const row = rows[0] as PendingRow & { created: boolean };
      return { created: row.created, pending: pendingFromRow(row) };
    });
  }

  takeStep(id: string): PgFunctionStep<PendingDevice> {
    return step(async (c) => {
      const { rows } = await c.query(DELETE_PENDING, [id]);
      if (!rows[0]) throw new NotPendingError(id);
      return pendingFromRow(rows[0] as PendingRow);
    });
  }

  dropStep(id: string): PgFunctionStep<void> {
    return step(async (c) => {
      await c.query(DELETE_PENDING, [id]);
    });
  }

  rejectStep(id: string, at: number): PgFunctionStep<RejectedDevice> {
    return step(async (c) => {
      if (await rejected(c, id)) throw new AlreadyRejectedError(id);
      const { rows } = await c.query(DELETE_PENDING, [id]);
      const pending = rows[0] as PendingRow | undefined;
      if (!pending) throw new NotPendingError(id);
      // ON CONFLICT: a concurrent rejection of the same id committed first.
      const inserted = await c.query(
        `INSERT INTO enrollment_rejected (id, at, ip, source) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO NOTHING RETURNING *`,
        [id, at, pending.ip, pending.source],
      );
      if (!inserted.rows[0]) throw new AlreadyRejectedError(id);
      return rejectedFromRow(inserted.rows[0] as RejectedRow);
    });
  }

  liftStep(id: string): PgFunctionStep<RejectedDevice> {
    return step(async (c) => {
      const { rows } = await c.query('DELETE FROM enrollment_rejected WHERE id = $1 RETURNING *', [
        id,
      ]);
      if (!rows[0]) throw new NotRejectedError(id);
      return rejectedFromRow(rows[0] as RejectedRow);
    });
  }

  async getPending(id: string): Promise<PendingDevice | undefined> {
    const { rows } = await this.db.query<PendingRow>(
      'SELECT * FROM enrollment_pending WHERE id = $1',
      [id],
    );
    return rows[0] && pendingFromRow(rows[0]);
  }

  async getRejected(id: string): Promise<RejectedDevice | undefined> {
    const { rows } = await this.db.query<RejectedRow>(
      'SELECT * FROM enrollment_rejected WHERE id = $1',
      [id],
    );
    return rows[0] && rejectedFromRow(rows[0]);
  }

  async listPending(after: string | undefined, limit: number): Promise<PendingDevice[]> {
    const { rows } = await this.db.query<PendingRow>(
      'SELECT * FROM enrollment_pending WHERE id > $1 ORDER BY id LIMIT $2',
      [after ?? '', limit],
    );
    return rows.map(pendingFromRow);
  }

  async countPending(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      'SELECT count(*) AS n FROM enrollment_pending',
    );
    return Number(rows[0]?.n ?? 0);
  }

  async listRejected(after: string | undefined, limit: number): Promise<RejectedDevice[]> {
    const { rows } = await this.db.query<RejectedRow>(
      'SELECT * FROM enrollment_rejected WHERE id > $1 ORDER BY id LIMIT $2',
      [after ?? '', limit],
    );
    return rows.map(rejectedFromRow);
  }
}
