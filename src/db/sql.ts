/**
 * SQL helpers every feature store may use on either engine. Loads no database driver
 * (scripts/check-boundaries.mjs).
 */

/** Escapes LIKE wildcards so a search is a plain substring match (with `ESCAPE '\'`). */
export function likePattern(search: string): string {
  return `%${search.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `pg` returns BIGINT columns as strings. */
export type Int = number | string;
