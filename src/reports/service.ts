/**
 * Progress reports, independent of HTTP: validate, commit the report as one unit of the group
 * commit (its step checks the device in the same transaction), publish it. With
 * --report-forward, the outbox's forward step joins that unit: a report accepted is a report
 * the manager will be told about (at least once), and a report refused is never forwarded.
 */
import type { Transactor } from '../db/unit-of-work.js';
import { normaliseId } from '../devices/identity.js';
import type { DeviceService } from '../devices/service.js';
import { withoutLease, type Trigger, type TriggerEventSink } from '../triggers/outbox.js';
import type { TriggerQueue } from '../triggers/queue.js';
import { REPORT_HISTORY_LIMIT, validateProgressType, validateReportMessage } from './progress.js';
import type { Report, ReportEventSink, ReportStore } from './store.js';

export interface ReportInput {
  type: string;
  message?: string | undefined;
}

export interface ReportServiceOptions {
  events: ReportEventSink & TriggerEventSink;
  /**
   * --report-forward: the trigger queue a report's forward joins (its step commits with the
   * report); undefined: reports are not forwarded.
   */
  forward?: Pick<TriggerQueue, 'prepareForward'> | undefined;
  /** Reports kept per device (default REPORT_HISTORY_LIMIT). */
  historyLimit?: number;
  now?: () => number;
}

export class ReportService {
  private readonly now: () => number;
  private readonly historyLimit: number;

  constructor(
    private readonly stores: { db: Transactor; reports: ReportStore },
    /** For the device lookups of reads (404 for an unknown device). */
    private readonly devices: Pick<DeviceService, 'get'>,
    private readonly opts: ReportServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.historyLimit = opts.historyLimit ?? REPORT_HISTORY_LIMIT;
  }

  /** A device's report; DeviceNotFoundError (nothing stored) for an unknown id. */
  async report(rawId: string, input: ReportInput): Promise<Report> {
    const deviceId = normaliseId(rawId);
    const type = validateProgressType(input.type);
    const message = validateReportMessage(input.message ?? '');
    const at = this.now();
    const step = this.stores.reports.reportStep({ deviceId, at, type, message }, this.historyLimit);
    // The forward commits with the report, after its step (which refuses an unknown device).
    const forward = this.opts.forward?.prepareForward(deviceId, { type, message }, at);
    let report: Report;
    let trigger: Trigger | undefined;
    try {
      if (forward) [report, trigger] = await this.stores.db.commit(deviceId, [step, forward.step]);
      else [report] = await this.stores.db.commit(deviceId, [step]);
    } catch (e) {
      forward?.abandoned();
      throw e;
    }
    this.opts.events.emit({ type: 'report', report });
    if (trigger) this.opts.events.emit({ type: 'trigger', trigger: withoutLease(trigger) });
    forward?.committed(trigger);
    return report;
  }

  /** A device's reports, newest first; DeviceNotFoundError for an unknown id. */
  async recent(rawId: string, limit: number): Promise<Report[]> {
    const id = normaliseId(rawId);
    const [reports] = await Promise.all([
      this.stores.reports.recent(id, limit),
      this.devices.get(id),
    ]);
    return reports;
  }

  /** The latest report of each of these (normalised) device ids that has one. */
  async latest(deviceIds: readonly string[]): Promise<Map<string, Report>> {
    const reports = await this.stores.reports.latest(deviceIds);
    return new Map(reports.map((r) => [r.deviceId, r]));
  }
}
