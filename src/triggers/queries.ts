/** Trigger read models as services see them, independent of HTTP: the outbox listing and its counts. */
import type { Trigger, TriggerCounts, TriggerState } from './outbox.js';
import type { TriggerReadModel } from './read-model.js';

export { TRIGGER_STATES } from './outbox.js';

export class TriggerQueries {
  constructor(private readonly reads: TriggerReadModel) {}

  /** Triggers oldest first, optionally in one state, strictly after the trigger id `afterId`. */
  list(
    state: TriggerState | undefined,
    afterId: number | undefined,
    limit: number,
  ): Promise<Trigger[]> {
    return this.reads.list(state, afterId, limit);
  }

  /** Trigger rows by state (finished ones count until retention prunes them). */
  countByState(): Promise<TriggerCounts> {
    return this.reads.countByState();
  }
}
