/** How the API shows an audit entry (the console imports the types). */
import { Type, type Static } from '@sinclair/typebox';
import { AUDIT_ACTIONS } from '../devices/admin.js';
import { Timestamp } from '../http/schemas.js';
import { iso } from '../time.js';
import type { AuditEntry } from './store.js';

const image = (description: string) =>
  Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], { description });

export const AuditEntryView = Type.Object({
  seq: Type.Integer({ description: 'Increases with every entry: give the last as `after`' }),
  at: Timestamp,
  actor: Type.String({
    description:
      "The token's name, the client certificate's name, `anonymous` (no credential needed), or `cli:<user>` (ztp import)",
  }),
  source: Type.String({ description: 'Address the request came from; `local` for the CLI' }),
  action: Type.Union(AUDIT_ACTIONS.map((a) => Type.Literal(a))),
  via: Type.String({ description: 'The request (method and route) or command that did it' }),
  device: Type.Union([Type.String(), Type.Null()], {
    description: 'Primary id of the device; null for an import',
  }),
  before: image('The device (or pending record) before; null: none'),
  after: image('The device (or record) after; null: none'),
  detail: image('Counts of an import, the trigger of a re-trigger'),
});
export type AuditEntryView = Static<typeof AuditEntryView>;

export const AuditPage = Type.Object({
  entries: Type.Array(AuditEntryView),
  next: Type.Optional(Type.Integer({ description: 'Give as `after` for the next page' })),
});
export type AuditPage = Static<typeof AuditPage>;

export function auditEntryView(e: AuditEntry): AuditEntryView {
  return {
    seq: e.seq,
    at: iso(e.at),
    actor: e.actor,
    source: e.source,
    action: e.action,
    via: e.via,
    device: e.device,
    before: e.before,
    after: e.after,
    detail: e.detail,
  };
}
