/**
 * Progress reports, independent of HTTP: validate, commit the report as one unit of the group
 * commit (its step checks the device in the same transaction), publish it.
 */
import type { Transactor } from '../db/unit-of-work.js';
import { normaliseId } from '../devices/identity.js';
import type { DeviceService } from '../devices/service.js';
import { REPORT_HISTORY_LIMIT, validateProgressType, validateReportMessage } from './progress.js';
import type { Report, ReportEventSink, ReportStore } from './store.js';

export interface ReportInput {
  type: string;
  message?: string | undefined;
}

export interface ReportServiceOptions {
  events: ReportEventSink;
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
    const step = this.stores.reports.reportStep(
      { deviceId, at: this.now(), type, message },
      this.historyLimit,
    );
    const [report] = await this.stores.db.commit(deviceId, [step]);
    this.opts.events.emit({ type: 'report', report });
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
