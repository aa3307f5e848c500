/**
 * The trigger outbox on SQLite (see outbox.ts); statements through the database's cache.
 *
 * Only the owner process (the server) leases triggers, and its lock says no other owner is
 * alive: every lease found in the file on open belongs to a process that died, and is released
 * then (still pending, due as it was), so a restart delivers it at once instead of after
 * --trigger-lease.
 */
import { randomUUID } from 'node:crypto';
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import { DeviceNotFoundError } from '../errors.js';
import type {
  ClaimedTrigger,
  CompleteOptions,
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

/**
 * An older pending trigger of the same device (per-device order). INDEXED BY: without statistics
 * the planner would otherwise search triggers_state (every pending trigger) for each candidate,
 * which made claims O(pending^2) during a manager outage; the partial index keeps the check O(1)
 * for a device with thousands of retained finished triggers.
 */
const OLDER_PENDING = `SELECT 1 FROM triggers o INDEXED BY triggers_device_pending
  WHERE o.device_id = t.device_id AND o.state = 'pending' AND o.id < t.id`;

const DEVICE_LINK = 'SELECT ip, previous_ip, last_trigger_id FROM devices WHERE id = ?';
const COALESCE = `UPDATE triggers SET ip = @ip, type = @type, key = @key, attempts = 0, created_at = @at, next_attempt_at = @at,
    last_error = NULL, lease_until = NULL, lease_token = NULL, updated_at = @at,
    prev_id = CASE WHEN id IS @prevId THEN prev_id ELSE @prevId END
  WHERE id = (SELECT id FROM triggers INDEXED BY triggers_device_pending
              WHERE device_id = @deviceId AND state = 'pending' AND type <> 'report'
                AND (lease_until IS NULL OR lease_until < @at) ORDER BY id DESC LIMIT 1)
  RETURNING *`;
const INSERT = `INSERT INTO triggers (device_id, ip, type, previous_ip, key, state, attempts, created_at, next_attempt_at,
    updated_at, prev_id, lease_until, lease_token)
  VALUES (@deviceId, @ip, @type, @previousIp, @key, 'pending', @attempts, @at, @at, @at, @prevId, @leaseUntil, @leaseToken)
  RETURNING *`;
const DEVICE_PENDING = `SELECT 1 AS one FROM triggers INDEXED BY triggers_device_pending
  WHERE device_id = ? AND state = 'pending' LIMIT 1`;
/** A waiting trigger of a registration (a forwarded report is not one: --trigger-on ip-change). */
const DEVICE_PENDING_TRIGGER = `SELECT 1 AS one FROM triggers INDEXED BY triggers_device_pending
  WHERE device_id = ? AND state = 'pending' AND type <> 'report' LIMIT 1`;
// A forwarded report: the device's current ip, no previous ip, not linked into its triggers.
const FORWARD = `INSERT INTO triggers (device_id, ip, type, previous_ip, report_type, report_message, key, state,
    attempts, created_at, next_attempt_at, updated_at, prev_id)
  SELECT id, ip, 'report', NULL, @reportType, @reportMessage, @key, 'pending', 0, @at, @at, @at, NULL
  FROM devices WHERE id = @deviceId
  RETURNING *`;
const UNLEASED_PENDING = `SELECT 1 AS one FROM triggers INDEXED BY triggers_due
  WHERE state = 'pending' AND lease_until IS NULL LIMIT 1`;
const SET_LAST_TRIGGER = 'UPDATE devices SET last_trigger_id = ? WHERE id = ?';
const CLAIM = `UPDATE triggers SET lease_until = @leaseUntil, lease_token = @token, attempts = attempts + 1, updated_at = @now
  WHERE id IN (
    SELECT t.id FROM triggers t INDEXED BY triggers_due
    WHERE t.state = 'pending' AND t.next_attempt_at <= @now AND (t.lease_until IS NULL OR t.lease_until < @now)
      AND NOT EXISTS (${OLDER_PENDING})
    ORDER BY t.next_attempt_at, t.id LIMIT @limit)
  RETURNING *`;
const DELIVERED_IP = 'SELECT ip FROM trigger_deliveries WHERE device_id = ?';
// A newer trigger's delivery already recorded wins (ids grow with time).
const RECORD_DELIVERY = `INSERT INTO trigger_deliveries (device_id, ip, trigger_id, delivered_at)
  VALUES (@deviceId, @ip, @id, @at)
  ON CONFLICT (device_id) DO UPDATE SET ip = excluded.ip, trigger_id = excluded.trigger_id,
    delivered_at = excluded.delivered_at
  WHERE excluded.trigger_id >= trigger_deliveries.trigger_id`;
const COMPLETE = `UPDATE triggers SET state = @state, next_attempt_at = @nextAttemptAt, last_error = @error,
    delivered_at = @deliveredAt, lease_until = NULL, lease_token = NULL, updated_at = @at
  WHERE id = @id AND lease_token = @token`;
// One window of ids at a time (see prune()); the latest trigger of an existing device is kept.
const PRUNE = `DELETE FROM triggers AS t WHERE t.id > @after AND t.id <= @upto AND t.updated_at < @before
  AND ${PRUNABLE_TRIGGER}`;
const PRUNE_WINDOW_END = `SELECT id FROM triggers WHERE id > ? ORDER BY id LIMIT 1 OFFSET ${PRUNE_WINDOW - 1}`;
const MAX_ID = 'SELECT max(id) AS m FROM triggers';
const COUNT_PENDING =
  "SELECT count(*) AS n FROM triggers INDEXED BY triggers_due WHERE state = 'pending'";
const NEXT_DUE = `SELECT t.next_attempt_at AS t FROM triggers t INDEXED BY triggers_due
  WHERE t.state = 'pending' AND t.lease_until IS NULL AND NOT EXISTS (${OLDER_PENDING})
  ORDER BY t.next_attempt_at, t.id LIMIT 1`;
const RELEASE_DEAD_LEASES = `UPDATE triggers SET lease_until = NULL, lease_token = NULL
  WHERE state = 'pending' AND lease_until IS NOT NULL`;

/** The statements whose query plans test/triggers/outbox.test.ts checks. */
export const PLANNED_SQL = {
  claim: CLAIM,
  coalesce: COALESCE,
  nextDue: NEXT_DUE,
  unleasedPending: UNLEASED_PENDING,
  devicePending: DEVICE_PENDING,
  devicePendingTrigger: DEVICE_PENDING_TRIGGER,
};

interface DeviceLink {
  ip: string;
  previous_ip: string | null;
  last_trigger_id: number | null;
}

export class SqliteOutbox implements OutboxStore {
  /** Leases of a dead owner released on open (owner only). */
  releasedLeases = 0;

  constructor(private readonly db: SqliteDatabase) {
    db.onOwnerOpen(() => {
      this.releasedLeases += db.statement(RELEASE_DEAD_LEASES).run().changes;
    });
  }

  enqueueStep(
    deviceId: string,
    ip: string,
    at: number,
    opts: EnqueueOptions = {},
  ): Step<Trigger | ClaimedTrigger | undefined> {
    return this.db.step(() => {
      // The device row, as its registration left it in this transaction.
      const link = this.db.statement<DeviceLink>(DEVICE_LINK).get(deviceId);
      const previousIp = link?.previous_ip ?? null;
      if (
        opts.onIpChangeOnly === true &&
        previousIp !== null &&
        this.db.statement<{ ip: string }>(DELIVERED_IP).get(deviceId)?.ip === ip &&
        this.db.statement(DEVICE_PENDING_TRIGGER).get(deviceId) === undefined
      )
        return undefined;
      const prevId = link?.last_trigger_id ?? null;
      return this.enqueue(deviceId, ip, 'registered', previousIp, at, prevId, opts.handOverLeaseMs);
    });
  }

  /** `prevId`: the device row's last_trigger_id, read in the same transaction. */
  private enqueue(
    deviceId: string,
    ip: string,
    type: TriggerType,
    previousIp: string | null,
    at: number,
    prevId: number | null,
    handOverLeaseMs: number | undefined,
  ): Trigger | ClaimedTrigger {
    const p = { deviceId, ip, type, previousIp, at, key: randomUUID(), prevId };
    // A waiting trigger is normally the device's newest already (a newer one is only made while
    // it is leased); not so if it was left by a deleted device of the same id: then it becomes
    // this device's first (COALESCE relinks it).
    const coalesced = this.db.statement<TriggerRow>(COALESCE).get(p);
    // Hand-over (OutboxStore.enqueueStep): leased at once, unless another trigger of the device
    // is pending (per-device order: that one goes first, and this one through a claim after it).
    const lease =
      coalesced === undefined &&
      handOverLeaseMs !== undefined &&
      this.db.statement(DEVICE_PENDING).get(deviceId) === undefined;
    const row =
      coalesced ??
      this.db.statement<TriggerRow>(INSERT).get({
        ...p,
        attempts: lease ? 1 : 0,
        leaseUntil: lease ? at + handOverLeaseMs : null,
        leaseToken: lease ? randomUUID() : null,
      })!;
    if (Number(row.id) !== prevId) this.db.statement(SET_LAST_TRIGGER).run(row.id, deviceId);
    return lease ? claimedTriggerFromRow(row) : triggerFromRow(row);
  }

  forwardStep(deviceId: string, report: ForwardedReport, at: number): Step<Trigger | undefined> {
    return this.db.step(() => {
      const row = this.db.statement<TriggerRow>(FORWARD).get({
        deviceId,
        reportType: report.type,
        reportMessage: report.message,
        key: randomUUID(),
        at,
      });
      return row && triggerFromRow(row);
    });
  }

  requeueStep(deviceId: string, at: number): Step<Trigger> {
    return this.db.step(() => {
      const link = this.db.statement<DeviceLink>(DEVICE_LINK).get(deviceId);
      if (!link) throw new DeviceNotFoundError(deviceId);
      const prevId = link.last_trigger_id;
      return this.enqueue(
        deviceId,
        link.ip,
        'retriggered',
        link.previous_ip,
        at,
        prevId,
        undefined,
      );
    });
  }

  claim(now: number, limit: number, leaseMs: number): Promise<ClaimedTrigger[]> {
    return this.db.write(
      () =>
        this.db
          .statement<TriggerRow>(CLAIM)
          .all({ now, limit, leaseUntil: now + leaseMs, token: randomUUID() })
          .map(claimedTriggerFromRow)
          .sort(byDueTime),
      'relaxed',
    );
  }

  complete(
    trigger: ClaimedTrigger,
    outcome: TriggerOutcome,
    opts: CompleteOptions = {},
  ): Promise<boolean> {
    return this.db.write(
      () => {
        const p = completionParams(trigger, outcome);
        if (this.db.statement(COMPLETE).run(p).changes !== 1) return false;
        if (outcome.kind === 'delivered' && trigger.type !== 'report')
          this.db.statement(RECORD_DELIVERY).run({
            deviceId: trigger.deviceId,
            ip: trigger.ip,
            id: trigger.id,
            at: outcome.at,
          });
        return true;
      },
      opts.lazy === true ? 'lazy' : 'relaxed',
    );
  }

  /**
   * Deletes in windows of PRUNE_WINDOW ids, each its own short write, so that pruning a large
   * table never holds the writer (and the registrations queued behind it) for long.
   */
  async prune(before: number): Promise<number> {
    const max =
      (await this.db.read(() => this.db.statement<{ m: number | null }>(MAX_ID).get()!.m)) ?? 0;
    let deleted = 0;
    let after = 0;
    while (after < max) {
      const from = after;
      const upto =
        (await this.db.read(
          () => this.db.statement<{ id: number }>(PRUNE_WINDOW_END).get(from)?.id,
        )) ?? max;
      deleted += await this.db.write(
        () => this.db.statement(PRUNE).run({ after: from, upto, before }).changes,
      );
      after = upto;
    }
    return deleted;
  }

  lastDeliveredIp(deviceId: string): Promise<string | undefined> {
    return this.db.read(() => this.db.statement<{ ip: string }>(DELIVERED_IP).get(deviceId)?.ip);
  }

  countPending(): Promise<number> {
    return this.db.read(() => this.db.statement<{ n: number }>(COUNT_PENDING).get()!.n);
  }

  nextDue(): Promise<number | undefined> {
    return this.db.read(() => this.db.statement<{ t: number }>(NEXT_DUE).get()?.t);
  }

  hasUnleased(): Promise<boolean> {
    return this.db.read(() => this.db.statement(UNLEASED_PENDING).get() !== undefined);
  }

  /** Done on open (see the top of this file). */
  releaseStaleLeases(): Promise<number> {
    return Promise.resolve(0);
  }
}
