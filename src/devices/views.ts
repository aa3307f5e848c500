/**
 * How the API shows a device (the detail view, the console's device page). The schemas import only
 * TypeBox and browser-safe modules, so that the console imports their types instead of copying them.
 */
import { Type, type Static } from '@sinclair/typebox';
import { iso } from '../time.js';
import { Timestamp } from '../http/schemas.js';
import type { Alias, Device, HistoryEntry } from './store.js';
import type { Trigger } from '../triggers/outbox.js';
import { TriggerView, triggerView } from '../triggers/views.js';

export const HistoryView = Type.Object({ at: Timestamp, ip: Type.String(), source: Type.String() });

export const AliasView = Type.Object({ type: Type.String(), value: Type.String() });

export const DeviceDetailView = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  userdata: Type.String(),
  aliases: Type.Array(AliasView, { description: 'Other ids of the device, by value' }),
  pinned: Type.Object(
    { name: Type.Boolean(), userdata: Type.Boolean() },
    { description: 'Fields an operator pinned: registrations do not change them' },
  ),
  reported: Type.Object(
    {
      name: Type.Union([Type.String(), Type.Null()]),
      userdata: Type.Union([Type.String(), Type.Null()]),
    },
    { description: 'What the device last reported for each field (null: never)' },
  ),
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

export function recordView(d: Device) {
  return { id: d.id, ip: d.ip, name: d.name, userdata: d.userdata };
}

/** A device's stored fields as the API shows them (ISO times): the detail's and an audit image's. */
export function deviceFieldsView(d: Device) {
  return {
    ...recordView(d),
    pinned: { ...d.pinned },
    reported: { ...d.reported },
    firstSeen: iso(d.firstSeen),
    lastSeen: iso(d.lastSeen),
    updatedAt: iso(d.updatedAt),
    registrations: d.registrations,
    lastSource: d.lastSource,
  };
}

export function detailView(
  d: Device,
  trigger: Trigger | undefined,
  history: HistoryEntry[],
  aliases: Alias[] = [],
): DeviceDetailView {
  return {
    ...deviceFieldsView(d),
    aliases: aliases.map((a) => ({ type: a.type, value: a.value })),
    trigger: trigger ? triggerView(trigger) : null,
    history: history.map((h) => ({ at: iso(h.at), ip: h.ip, source: h.source })),
  };
}
