/**
 * Trigger SQL both engines run as it is (each binds its own parameter syntax). Loads no database
 * driver (scripts/check-boundaries.mjs).
 */

/** Trigger ids per pruning write. */
export const PRUNE_WINDOW = 5000;

export function latestTriggerSql(id: string): string {
  return `SELECT t.* FROM devices d JOIN triggers t ON t.id = d.last_trigger_id WHERE d.id = ${id}`;
}

/**
 * A device's triggers, newest first: its row points at the newest, each trigger at the one
 * before (schema version 3). Triggers of a deleted device are no longer its own, as its history
 * is not; a pruned trigger ends the walk.
 */
export function recentTriggersSql(id: string, limit: string): string {
  return `WITH RECURSIVE chain(id, n) AS (
      SELECT last_trigger_id, 1 FROM devices WHERE id = ${id} AND last_trigger_id IS NOT NULL
      UNION ALL
      SELECT t.prev_id, c.n + 1 FROM chain c JOIN triggers t ON t.id = c.id
      WHERE t.prev_id IS NOT NULL AND c.n < ${limit})
    SELECT t.* FROM chain c JOIN triggers t ON t.id = c.id ORDER BY t.id DESC`;
}

/** Finished triggers that are not the newest of an existing device (pruneTriggers). */
export const PRUNABLE_TRIGGER = `t.state <> 'pending'
  AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = t.device_id AND d.last_trigger_id = t.id)`;
