/**
 * The response bodies the operator console reads. This module imports nothing but TypeBox, so that
 * the browser bundle (src/console/static/app.ts) can import their types instead of copying them.
 */
import { Type, type Static } from '@sinclair/typebox';

const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

export const TriggerView = Type.Object({
  id: Type.Integer(),
  deviceId: Type.String(),
  ip: Type.String(),
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

export const HistoryView = Type.Object({ at: Timestamp, ip: Type.String(), source: Type.String() });

export const DeviceDetailView = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  userdata: Type.String(),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  updatedAt: Timestamp,
  registrations: Type.Integer(),
  lastSource: Type.String({ description: 'Address the last registration came from' }),
  trigger: Type.Union([TriggerView, Type.Null()], {
    description: 'Latest manager trigger of this device',
  }),
  history: Type.Array(HistoryView, { description: 'Last registrations, newest first' }),
});
export type DeviceDetailView = Static<typeof DeviceDetailView>;

export const DeviceRow = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  registrations: Type.Integer(),
  lastSource: Type.String(),
  trigger: Type.Union([TriggerView, Type.Null()], {
    description: 'Latest manager trigger of this device',
  }),
});
export type DeviceRow = Static<typeof DeviceRow>;

export const DevicePage = Type.Object({
  total: Type.Integer({ description: 'Devices matching the search and the trigger filter' }),
  offset: Type.Integer(),
  limit: Type.Integer(),
  items: Type.Array(DeviceRow),
});
export type DevicePage = Static<typeof DevicePage>;

const TriggerCountsView = Type.Object({
  pending: Type.Integer(),
  delivered: Type.Integer(),
  failed: Type.Integer(),
  dead: Type.Integer(),
});

export const StatsView = Type.Object({
  time: Type.String({ format: 'date-time', description: 'Server clock (for relative times)' }),
  devices: Type.Integer(),
  registeredLastHour: Type.Integer({
    description: 'Devices whose last registration is within the last hour',
  }),
  triggersEnabled: Type.Boolean({ description: 'A manager URL is configured' }),
  triggers: Type.Object(TriggerCountsView.properties, {
    description:
      'Devices by the state of their latest trigger (a device re-queued after a failure counts once, by its new state)',
  }),
  eventStreams: Type.Integer({ description: 'Open /ztp/mng/events streams on this server' }),
});
export type StatsView = Static<typeof StatsView>;
