/**
 * How the API shows a report. Imports only TypeBox and browser-safe modules, so that the
 * console (src/console/static/app.ts) imports its type instead of copying it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';
import { iso } from '../time.js';
import type { Report } from './store.js';

export const ReportView = Type.Object({
  seq: Type.Integer({ description: "The report's number among the device's reports (1, 2, …)" }),
  at: Timestamp,
  type: Type.String({ description: "One of RFC 8572's progress types" }),
  message: Type.String(),
});
export type ReportView = Static<typeof ReportView>;

export function reportView(r: Report): ReportView {
  return { seq: r.seq, at: iso(r.at), type: r.type, message: r.message };
}
