/**
 * TypeBox schemas: the same objects validate requests, serialize responses and produce the
 * OpenAPI document at /openapi.json.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ID_MAX_LENGTH, NAME_MAX_LENGTH } from '../devices/identity.js';
import { iso } from '../events/wire.js';
import type { Device, HistoryEntry } from '../devices/store.js';
import type { Trigger } from '../triggers/outbox.js';
import type { DeviceDetailView, TriggerView } from './views.js';

export const IdParams = Type.Object({
  id: Type.String({
    description:
      'Device id: a MAC address (any common notation) or 1-128 characters of [A-Za-z0-9._:-]',
    maxLength: 256,
  }),
});

/** Body of a registration: every member optional (ip defaults to the request source address). */
export const RegisterBody = Type.Object(
  {
    ip: Type.Optional(
      Type.String({
        description: 'IPv4 or IPv6; omitted: the request source address',
        maxLength: 64,
      }),
    ),
    name: Type.Optional(Type.String({ maxLength: NAME_MAX_LENGTH, default: '' })),
    userdata: Type.Optional(Type.String({ description: 'Free text up to 64 KiB', default: '' })),
  },
  { description: 'Unknown members are ignored.' },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const EditBody = Type.Object(
  {
    ip: Type.String({ maxLength: 64 }),
    name: Type.Optional(Type.String({ maxLength: NAME_MAX_LENGTH, default: '' })),
    userdata: Type.Optional(Type.String({ default: '' })),
  },
  { description: 'Replaces ip, name and userdata. Unknown members are ignored.' },
);
export type EditBody = Static<typeof EditBody>;

export const DeviceRecord = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  userdata: Type.String(),
});

export const HostList = Type.Object({
  hosts: Type.Array(Type.String()),
  next: Type.Optional(Type.String({ description: 'Pass as ?after= to get the next page' })),
});

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  after: Type.Optional(Type.String({ maxLength: ID_MAX_LENGTH })),
});

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    instance: Type.Optional(Type.String()),
  },
  {
    additionalProperties: true,
    description: 'RFC 9457 problem document (application/problem+json)',
  },
);

/** Response schema entries for the problem statuses a route can answer. */
export function problems(...statuses: number[]): Record<number, typeof Problem> {
  return Object.fromEntries(statuses.map((s) => [s, Problem]));
}

export function recordView(d: Device) {
  return { id: d.id, ip: d.ip, name: d.name, userdata: d.userdata };
}

export function triggerView(t: Trigger, now = Date.now()): TriggerView {
  return {
    id: t.id,
    deviceId: t.deviceId,
    ip: t.ip,
    state: t.state,
    attempts: t.attempts,
    createdAt: iso(t.createdAt),
    nextAttemptAt: t.state === 'pending' ? iso(t.nextAttemptAt) : null,
    lastError: t.lastError,
    deliveredAt: t.deliveredAt === null ? null : iso(t.deliveredAt),
    inFlight: t.state === 'pending' && t.leaseUntil !== null && t.leaseUntil > now,
  };
}

export function detailView(
  d: Device,
  trigger: Trigger | undefined,
  history: HistoryEntry[],
): DeviceDetailView {
  return {
    ...recordView(d),
    firstSeen: iso(d.firstSeen),
    lastSeen: iso(d.lastSeen),
    updatedAt: iso(d.updatedAt),
    registrations: d.registrations,
    lastSource: d.lastSource,
    trigger: trigger ? triggerView(trigger) : null,
    history: history.map((h) => ({ at: iso(h.at), ip: h.ip, source: h.source })),
  };
}
