/**
 * Trigger rows and their mappers, shared by both engines. Loads no database driver, so that each
 * engine module loads only its own (scripts/check-boundaries.mjs).
 */
import type { Int } from '../db/sql.js';
import {
  settle,
  type ClaimedTrigger,
  type Trigger,
  type TriggerOutcome,
  type TriggerState,
  type TriggerType,
} from './outbox.js';

export interface TriggerRow {
  id: Int;
  device_id: string;
  ip: string;
  /** Schema version 4. */
  type: TriggerType;
  previous_ip: string | null;
  /** Schema version 10: the forwarded report of a `report` trigger. */
  report_type: string | null;
  report_message: string | null;
  key: string;
  state: TriggerState;
  attempts: Int;
  created_at: Int;
  next_attempt_at: Int;
  lease_until: Int | null;
  lease_token: string | null;
  last_error: string | null;
  delivered_at: Int | null;
  updated_at: Int;
}

/** A trigger as any reader sees it: without the lease token, which only its holder gets. */
export function triggerFromRow(r: TriggerRow): Trigger {
  return {
    id: Number(r.id),
    deviceId: r.device_id,
    ip: r.ip,
    type: r.type,
    previousIp: r.previous_ip,
    report:
      r.report_type === null ? null : { type: r.report_type, message: r.report_message ?? '' },
    key: r.key,
    state: r.state,
    attempts: Number(r.attempts),
    createdAt: Number(r.created_at),
    nextAttemptAt: Number(r.next_attempt_at),
    leaseUntil: r.lease_until === null ? null : Number(r.lease_until),
    lastError: r.last_error,
    deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A row this store just leased (a claim or a hand-over), with its token. */
export function claimedTriggerFromRow(r: TriggerRow): ClaimedTrigger {
  if (r.lease_token === null) throw new Error(`trigger ${r.id} was returned unleased by a claim`);
  return { ...triggerFromRow(r), leaseToken: r.lease_token };
}

/** Orders claimed triggers as they fell due (RETURNING gives no order). */
export function byDueTime(a: Trigger, b: Trigger): number {
  return a.nextAttemptAt - b.nextAttemptAt || a.id - b.id;
}

/** The values completeTrigger writes: the outcome rule of outbox.ts, under the lease's token. */
export function completionParams(trigger: ClaimedTrigger, outcome: TriggerOutcome) {
  const settled = settle(trigger, outcome);
  return {
    id: trigger.id,
    token: trigger.leaseToken,
    at: settled.updatedAt,
    state: settled.state,
    nextAttemptAt: settled.nextAttemptAt,
    error: settled.lastError,
    deliveredAt: settled.deliveredAt,
  };
}
