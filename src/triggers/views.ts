/**
 * How the API shows a trigger. The schema imports only TypeBox and browser-safe modules, so that
 * the console (src/console/static/app.ts) imports its type instead of copying it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { iso } from '../time.js';
import { NullableTimestamp, Timestamp } from '../http/schemas.js';
import type { Trigger } from './outbox.js';

export const TriggerView = Type.Object({
  id: Type.Integer(),
  deviceId: Type.String(),
  ip: Type.String(),
  type: Type.String({
    description:
      'What the manager is told happened: registered, retriggered, approved, or report (a forwarded progress report, --report-forward)',
  }),
  previousIp: Type.Union([Type.String(), Type.Null()], {
    description: "The device's ip before the registration that queued it; null for a new device",
  }),
  state: Type.Union([
    Type.Literal('pending'),
    Type.Literal('delivered'),
    Type.Literal('failed'),
    Type.Literal('dead'),
  ]),
  attempts: Type.Integer(),
  createdAt: Timestamp,
  nextAttemptAt: NullableTimestamp,
  lastError: Type.Union([Type.String(), Type.Null()]),
  deliveredAt: NullableTimestamp,
  inFlight: Type.Boolean(),
});
export type TriggerView = Static<typeof TriggerView>;

export function triggerView(t: Trigger, now = Date.now()): TriggerView {
  return {
    id: t.id,
    deviceId: t.deviceId,
    ip: t.ip,
    type: t.type,
    previousIp: t.previousIp,
    state: t.state,
    attempts: t.attempts,
    createdAt: iso(t.createdAt),
    nextAttemptAt: t.state === 'pending' ? iso(t.nextAttemptAt) : null,
    lastError: t.lastError,
    deliveredAt: t.deliveredAt === null ? null : iso(t.deliveredAt),
    inFlight: t.state === 'pending' && t.leaseUntil !== null && t.leaseUntil > now,
  };
}
