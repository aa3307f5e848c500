/** Trigger read models, independent of HTTP: the outbox listing and its counts. */
import type { Store, Trigger, TriggerCounts, TriggerState } from '../storage/store.js';

export { TRIGGER_STATES } from '../storage/store.js';

/** What the trigger read models need of a store. */
export type TriggerReadStore = Pick<Store, 'listTriggers' | 'countTriggers'>;

export class TriggerQueries {
  constructor(private readonly store: TriggerReadStore) {}

  /** Triggers oldest first, optionally in one state, strictly after the trigger id `afterId`. */
  list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.store.listTriggers(state, afterId, limit);
  }

  /** Trigger rows by state (finished ones count until retention prunes them). */
  countByState(): Promise<TriggerCounts> {
    return this.store.countTriggers();
  }
}
