/**
 * Schemas every feature's routes share: timestamps and the problem document. TypeBox only, so
 * that the browser bundle can import the view types built on them.
 */
import { Type } from '@sinclair/typebox';

export const Timestamp = Type.String({ format: 'date-time' });
export const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);

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
