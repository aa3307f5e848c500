/**
 * The trigger outbox on PostgreSQL (see outbox.ts).
 *
 * Claims run as one autocommit statement with `FOR UPDATE SKIP LOCKED`: dispatchers of several
 * replicas never wait on each other and never claim the same trigger, and a device's newer
 * trigger is only claimable once its older one is finished (per-device order).
 */
import { randomUUID } from 'node:crypto';
import { int, lit, type PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep, PgStatementsStep } from '../db/unit-of-work.js';
import { DeviceNotFoundError } from '../errors.js';
import type {
  ClaimedTrigger,
  EnqueueOptions,
  ForwardedReport,
  OutboxStore,
  Trigger,
  TriggerOutcome,
  TriggerType,
} from './outbox.js';
import {
  byDueTime,
  claimedTriggerFromRow,
  completionParams,
  triggerFromRow,
  type TriggerRow,
} from './rows.js';
import { PRUNABLE_TRIGGER, PRUNE_WINDOW } from './sql.js';

/** An older pending trigger of the same device (per-device order); uses triggers_device. */
const OLDER_PENDING = `SELECT 1 FROM triggers o
  WHERE o.device_id = t.device_id AND o.state = 'pending' AND o.id < t.id`;

export interface PostgresOutboxOptions {
  /**
   * This replica's stable identity (the same across its restarts, different from every other
   * live replica's): its lease tokens carry it, so that releaseStaleLeases() can release the
   * leases of its own previous incarnation. Without it leases wait for --trigger-lease.
   */
  instanceId?: string;
}

/** A one-statement step whose `RETURNING *` gives the trigger it wrote, if it wrote one. */
function maybeTriggerStatement(sql: string): PgStatementsStep<Trigger | undefined> {
  return {
    engine: 'postgres',
    statements: [sql],
    parse: (results) => {
      const row = results[0]!.rows[0] as TriggerRow | undefined;
      return row && triggerFromRow(row);
    },
  };
}

export class PostgresOutbox implements OutboxStore {
  /** Lease-token prefix: instance id and this process's incarnation. */
  private readonly instancePrefix: string | undefined;
  private readonly incarnationPrefix: string | undefined;

  constructor(
    private readonly db: PostgresDatabase,
    opts: PostgresOutboxOptions = {},
  ) {
    if (opts.instanceId !== undefined) {
      // A space never occurs in an instance id (config.ts), so no id is a prefix of another's.
      this.instancePrefix = `${opts.instanceId} `;
      this.incarnationPrefix = `${this.instancePrefix}${randomUUID()} `;
    }
  }

  /** One statement of the registration's round trip; no hand-over on PostgreSQL (it is ignored). */
  enqueueStep(
    deviceId: string,
    ip: string,
    at: number,
    opts: EnqueueOptions = {},
  ): PgStatementsStep<Trigger | undefined> {
    const sql = enqueueTriggerSql(
      lit(deviceId),
      lit(ip),
      'registered',
      lit(randomUUID()),
      int(at),
      {
        onIpChangeOnly: opts.onIpChangeOnly === true,
      },
    );
    return maybeTriggerStatement(sql);
  }

  /** One statement of the report's transaction (the report step before it checks the device). */
  forwardStep(
    deviceId: string,
    report: ForwardedReport,
    at: number,
  ): PgStatementsStep<Trigger | undefined> {
    const sql = `INSERT INTO triggers (device_id, ip, type, previous_ip, report_type, report_message, key, state,
        attempts, created_at, next_attempt_at, updated_at, prev_id)
      SELECT id, ip, 'report', NULL, ${lit(report.type)}, ${lit(report.message)}, ${lit(randomUUID())}, 'pending',
        0, ${int(at)}, ${int(at)}, ${int(at)}, NULL
      FROM devices WHERE id = ${lit(deviceId)}
      RETURNING *`;
    return maybeTriggerStatement(sql);
  }

  requeueStep(deviceId: string, at: number): PgFunctionStep<Trigger> {
    return {
      engine: 'postgres',
      run: async (c) => {
        // FOR UPDATE: the same lock a registration takes, so the device's trigger rows are ours.
        const { rows } = await c.query('SELECT ip FROM devices WHERE id = $1 FOR UPDATE', [
          deviceId,
        ]);
        const device = rows[0] as { ip: string } | undefined;
        if (!device) throw new DeviceNotFoundError(deviceId);
        const sql = enqueueTriggerSql(
          lit(deviceId),
          lit(device.ip),
          'retriggered',
          lit(randomUUID()),
          int(at),
          { onIpChangeOnly: false },
        );
        const result = await c.query(sql);
        return triggerFromRow(result.rows[0] as TriggerRow);
      },
    };
  }

  async claim(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    const { rows } = await this.db.query<TriggerRow>(
      `UPDATE triggers SET lease_until = $1, lease_token = $2, attempts = attempts + 1, updated_at = $3
       WHERE id IN (
         SELECT t.id FROM triggers t
         WHERE t.state = 'pending' AND t.next_attempt_at <= $3 AND (t.lease_until IS NULL OR t.lease_until < $3)
           AND NOT EXISTS (${OLDER_PENDING})
         ORDER BY t.next_attempt_at, t.id LIMIT $4
         FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [now + leaseMs, `${this.incarnationPrefix ?? ''}${randomUUID()}`, now, limit],
    );
    return rows.map(claimedTriggerFromRow).sort(byDueTime);
  }

  complete(trigger: ClaimedTrigger, outcome: TriggerOutcome): Promise<boolean> {
    const p = completionParams(trigger, outcome);
    // Inlined values: one round trip within the batch (PostgresDatabase.writeSql), as for a registration.
    const update = `UPDATE triggers SET state = ${lit(p.state)}, next_attempt_at = ${int(p.nextAttemptAt)},
        last_error = ${p.error === null ? 'NULL' : lit(p.error)},
        delivered_at = ${p.deliveredAt === null ? 'NULL' : int(p.deliveredAt)},
        lease_until = NULL, lease_token = NULL, updated_at = ${int(p.at)}
      WHERE id = ${int(p.id)} AND lease_token = ${lit(p.token)}
      RETURNING device_id, ip, id`;
    // A delivery records the device's last delivered ip only if the update took (same lease);
    // a newer trigger's delivery already recorded wins.
    const sql =
      outcome.kind === 'delivered' && trigger.type !== 'report'
        ? `WITH u AS (${update}),
             d AS (INSERT INTO trigger_deliveries (device_id, ip, trigger_id, delivered_at)
               SELECT device_id, ip, id, ${int(p.at)} FROM u
               ON CONFLICT (device_id) DO UPDATE SET ip = EXCLUDED.ip, trigger_id = EXCLUDED.trigger_id,
                 delivered_at = EXCLUDED.delivered_at
               WHERE EXCLUDED.trigger_id >= trigger_deliveries.trigger_id)
           SELECT id FROM u`
        : update;
    return this.db.writeSql(trigger.deviceId, [sql], (results) => results[0]?.rowCount === 1);
  }

  async lastDeliveredIp(deviceId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ ip: string }>(
      'SELECT ip FROM trigger_deliveries WHERE device_id = $1',
      [deviceId],
    );
    return rows[0]?.ip;
  }

  /**
   * Leases whose token carries this instance id but not this process's incarnation were taken
   * by a previous run of this replica, which is dead: nobody will complete them.
   */
  async releaseStaleLeases(): Promise<number> {
    if (this.instancePrefix === undefined || this.incarnationPrefix === undefined) return 0;
    const { rowCount } = await this.db.query(
      `UPDATE triggers SET lease_until = NULL, lease_token = NULL
       WHERE state = 'pending' AND lease_token IS NOT NULL
         AND left(lease_token, length($1)) = $1 AND left(lease_token, length($2)) <> $2`,
      [this.instancePrefix, this.incarnationPrefix],
    );
    return rowCount ?? 0;
  }

  /**
   * Deletes in windows of PRUNE_WINDOW ids, each its own short autocommit statement, so pruning
   * a large table never runs into the statement timeout. Finished triggers only: no write of a
   * batch touches them, so pruning never waits on (or blocks) registrations.
   */
  async prune(before: number): Promise<number> {
    const { rows } = await this.db.query<{ m: string | null }>('SELECT max(id) AS m FROM triggers');
    const max = Number(rows[0]?.m ?? 0);
    let deleted = 0;
    let after = 0;
    while (after < max) {
      const end = await this.db.query<{ id: string }>(
        `SELECT id FROM triggers WHERE id > $1 ORDER BY id LIMIT 1 OFFSET ${PRUNE_WINDOW - 1}`,
        [after],
      );
      const upto = end.rows[0] ? Number(end.rows[0].id) : max;
      const r = await this.db.query(
        `DELETE FROM triggers t WHERE t.id > $1 AND t.id <= $2 AND t.updated_at < $3 AND ${PRUNABLE_TRIGGER}`,
        [after, upto, before],
      );
      deleted += r.rowCount ?? 0;
      after = upto;
    }
    return deleted;
  }

  async countPending(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM triggers WHERE state = 'pending'",
    );
    return Number(rows[0]!.n);
  }

  /** Earliest due time among triggers a claim could take now (not leased, not behind an older one). */
  async nextDue(): Promise<number | undefined> {
    const { rows } = await this.db.query<{ t: string }>(
      `SELECT t.next_attempt_at AS t FROM triggers t
       WHERE t.state = 'pending' AND t.lease_until IS NULL AND NOT EXISTS (${OLDER_PENDING})
       ORDER BY t.next_attempt_at, t.id LIMIT 1`,
    );
    return rows[0] ? Number(rows[0].t) : undefined;
  }

  async hasUnleased(): Promise<boolean> {
    const { rows } = await this.db.query(
      "SELECT 1 FROM triggers WHERE state = 'pending' AND lease_until IS NULL LIMIT 1",
    );
    return rows.length > 0;
  }
}

/**
 * Coalesces into the device's newest waiting trigger (a forwarded report is none), or inserts a
 * new one; either is made the device's newest, linked to the one before (arguments are SQL
 * literals). The lease condition is
 * repeated outside the subquery so that, if a dispatcher claimed the row meanwhile, the re-check
 * after the row lock skips it and a new trigger is inserted. With `onIpChangeOnly`, nothing is
 * inserted for a known device whose ip is the one last delivered (OutboxStore.enqueueStep).
 */
function enqueueTriggerSql(
  deviceId: string,
  ip: string,
  type: TriggerType,
  key: string,
  at: string,
  opts: { onIpChangeOnly: boolean },
): string {
  const last = `SELECT last_trigger_id FROM devices WHERE id = ${deviceId}`;
  const previousIp = `SELECT previous_ip FROM devices WHERE id = ${deviceId}`;
  const suppressed = opts.onIpChangeOnly
    ? `AND NOT (EXISTS (SELECT 1 FROM trigger_deliveries x JOIN devices dv ON dv.id = x.device_id
                  WHERE x.device_id = ${deviceId} AND x.ip = ${ip} AND dv.previous_ip IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM triggers WHERE device_id = ${deviceId} AND state = 'pending'
                               AND type <> 'report'))`
    : '';
  return `WITH c AS (
       UPDATE triggers SET ip = ${ip}, type = ${lit(type)}, key = ${key}, attempts = 0, created_at = ${at}, next_attempt_at = ${at},
         last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = ${at},
         prev_id = CASE WHEN id IS NOT DISTINCT FROM (${last}) THEN prev_id ELSE (${last}) END
       WHERE id = (SELECT id FROM triggers WHERE device_id = ${deviceId} AND state = 'pending'
                     AND type <> 'report' AND (lease_until IS NULL OR lease_until < ${at})
                   ORDER BY id DESC LIMIT 1)
         AND state = 'pending' AND (lease_until IS NULL OR lease_until < ${at})
       RETURNING *),
     i AS (
       INSERT INTO triggers (device_id, ip, type, previous_ip, key, state, attempts, created_at, next_attempt_at,
         updated_at, prev_id)
       SELECT ${deviceId}, ${ip}, ${lit(type)}, (${previousIp}), ${key}, 'pending', 0, ${at}, ${at}, ${at}, (${last})
       WHERE NOT EXISTS (SELECT 1 FROM c) ${suppressed}
       RETURNING *),
     l AS (UPDATE devices d SET last_trigger_id = n.id FROM (SELECT id FROM c UNION ALL SELECT id FROM i) n
       WHERE d.id = ${deviceId} AND d.last_trigger_id IS DISTINCT FROM n.id)
     SELECT * FROM c UNION ALL SELECT * FROM i`;
}
