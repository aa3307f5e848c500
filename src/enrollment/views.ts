/** How the API shows pending and rejected devices (the console imports the types). */
import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';
import { iso } from '../time.js';
import type { PendingDevice, RejectedDevice } from './store.js';

export const RuleView = Type.Object({
  kind: Type.String(),
  value: Type.String(),
  where: Type.String({ description: 'FILE:LINE of the rule' }),
});

export const PendingView = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  userdata: Type.String(),
  source: Type.String({ description: 'Address the latest registration came from' }),
  aliases: Type.Array(Type.Object({ type: Type.String(), value: Type.String() }), {
    description: 'Aliases its registrations carried (newest first); approval gives them to it',
  }),
  firstSeen: Timestamp,
  lastSeen: Timestamp,
  registrations: Type.Integer(),
  rule: Type.Union([RuleView, Type.Null()], {
    description: 'The rule of the current rules file that accepts this device, or null',
  }),
});
export type PendingView = Static<typeof PendingView>;

export const PendingList = Type.Object({
  pending: Type.Array(PendingView),
  count: Type.Integer({ description: 'Pending devices in all' }),
  next: Type.Optional(Type.String({ description: 'Give as `after` for the next page' })),
});
export type PendingList = Static<typeof PendingList>;

export const RejectedView = Type.Object({
  id: Type.String(),
  rejectedAt: Timestamp,
  ip: Type.String({ description: 'Last ip it registered with' }),
  source: Type.String(),
});
export type RejectedView = Static<typeof RejectedView>;

/** A rule as the console sees it (the browser bundle does not load rules.ts). */
type ShownRule = Static<typeof RuleView>;

export function pendingView(d: PendingDevice, rule: ShownRule | undefined): PendingView {
  return {
    id: d.id,
    ip: d.ip,
    name: d.name,
    userdata: d.userdata,
    source: d.source,
    aliases: d.aliases.map((a) => ({ type: a.type, value: a.value })),
    firstSeen: iso(d.firstSeen),
    lastSeen: iso(d.lastSeen),
    registrations: d.registrations,
    rule: rule ? { kind: rule.kind, value: rule.value, where: rule.where } : null,
  };
}

export function rejectedView(r: RejectedDevice): RejectedView {
  return { id: r.id, rejectedAt: iso(r.at), ip: r.ip, source: r.source };
}
