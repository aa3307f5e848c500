/**
 * The trigger read models (the outbox listing, its counts, a device's triggers), one
 * implementation per engine (read-model-sqlite.ts, read-model-postgres.ts).
 */
import type { Trigger, TriggerCounts, TriggerState } from './outbox.js';

export interface TriggerReadModel {
  /** The device's newest trigger, if it has one. */
  latest(deviceId: string): Promise<Trigger | undefined>;
  /** The device's triggers, newest first (a pruned one ends the list). */
  recent(deviceId: string, limit: number): Promise<Trigger[]>;
  /** Triggers oldest first, optionally in one state, strictly after the trigger id `afterId`. */
  list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]>;
  /** Trigger rows by state (finished ones count until retention prunes them). */
  countByState(): Promise<TriggerCounts>;
}
