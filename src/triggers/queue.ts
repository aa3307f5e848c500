/**
 * The seam between a registration and the trigger dispatcher: the outbox step that joins the
 * registration's transaction, and what follows its commit. A service calls prepare() before the
 * commit and committed() or abandoned() after it; how the trigger then reaches the dispatcher
 * (handed over under a lease taken in the same transaction, or claimed by its loop after a
 * wake-up) is decided here and in dispatcher.ts, not by the service.
 *
 * Hand-over off (--trigger-hand-over off: the dispatcher never grants one) or no local
 * dispatcher: every trigger is committed unleased and the dispatcher's loop claims it.
 */
import type { Step } from '../db/unit-of-work.js';
import {
  isClaimed,
  type ClaimedTrigger,
  type ForwardedReport,
  type OutboxStore,
  type Trigger,
  type TriggerOn,
} from './outbox.js';

/** What the queue needs of the local trigger dispatcher (dispatcher.ts). */
export interface LocalDispatcher {
  /** The lease for a hand-over, or undefined; endReservation() once the write has ended. */
  reserveHandOver(): number | undefined;
  endReservation(): void;
  /** A trigger the outbox leased with that lease. */
  handOver(trigger: ClaimedTrigger): void;
  /** A trigger was committed that the dispatcher must claim. */
  wake(): void;
}

/** A trigger on its way into a registration's transaction. */
export interface PreparedTrigger {
  /** The outbox's step, to commit together with the registration's (after it). */
  readonly step: Step<Trigger | ClaimedTrigger | undefined>;
  /**
   * After the commit, with the step's result: hand it over, or wake the dispatcher; undefined
   * when --trigger-on ip-change suppressed it.
   */
  committed(trigger: Trigger | ClaimedTrigger | undefined): void;
  /** The transaction failed: nothing to deliver, the hand-over place is given back. */
  abandoned(): void;
}

export class TriggerQueue {
  /**
   * `dispatcher`: the local dispatcher, if any, looked up at each use (it is built after the
   * services that enqueue).
   */
  constructor(
    private readonly outbox: OutboxStore,
    private readonly dispatcher: () => LocalDispatcher | undefined = () => undefined,
    private readonly triggerOn: TriggerOn = 'every-registration',
  ) {}

  /** The trigger of a registration of `deviceId` from `ip` at `at`. */
  prepare(deviceId: string, ip: string, at: number): PreparedTrigger {
    const dispatcher = this.dispatcher();
    const leaseMs = dispatcher?.reserveHandOver();
    let reserved = leaseMs !== undefined;
    const endReservation = () => {
      if (!reserved) return;
      reserved = false;
      dispatcher?.endReservation();
    };
    let step;
    try {
      step = this.outbox.enqueueStep(deviceId, ip, at, {
        handOverLeaseMs: leaseMs,
        onIpChangeOnly: this.triggerOn === 'ip-change',
      });
    } catch (e) {
      endReservation();
      throw e;
    }
    return {
      step,
      committed: (trigger) => {
        endReservation();
        // Leased by the outbox (only when asked): handed over, the lease is the claim;
        // otherwise the loop claims it.
        if (trigger === undefined) return;
        if (isClaimed(trigger)) dispatcher?.handOver(trigger);
        else dispatcher?.wake();
      },
      abandoned: endReservation,
    };
  }

  /**
   * A progress report to forward (--report-forward), to commit with the report (after its
   * step). Never handed over: the dispatcher is woken after the commit and claims it, in the
   * device's order behind any older pending trigger.
   */
  prepareForward(deviceId: string, report: ForwardedReport, at: number): PreparedTrigger {
    return {
      step: this.outbox.forwardStep(deviceId, report, at),
      committed: (trigger) => {
        if (trigger !== undefined) this.dispatcher()?.wake();
      },
      abandoned: () => undefined,
    };
  }

  /**
   * A trigger for the device's current ip: the outbox's step, to commit with the caller's
   * others (an audit entry), and what to do once it is committed (wake the dispatcher).
   */
  prepareRequeue(deviceId: string, at: number): { step: Step<Trigger>; committed(): void } {
    return {
      step: this.outbox.requeueStep(deviceId, at),
      committed: () => this.dispatcher()?.wake(),
    };
  }
}
