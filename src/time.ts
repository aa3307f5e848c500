/**
 * The one timestamp representation on the wire: ISO 8601 text in UTC. Stores keep integers
 * (milliseconds since the epoch) in every engine; the API, events and exports render them here.
 */
export const iso = (ms: number): string => new Date(ms).toISOString();
