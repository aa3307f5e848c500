/**
 * Progress report records and the report store. A device's reports are kept newest first, at
 * most REPORT_HISTORY_LIMIT of them; its latest is its provisioning status. Imports only types.
 */
import type { Step } from '../db/unit-of-work.js';
import type { ProgressType } from './progress.js';

export interface Report {
  deviceId: string;
  /** 1, 2, … per device id. */
  seq: number;
  at: number;
  type: ProgressType;
  message: string;
}

export type NewReport = Omit<Report, 'seq'>;

/** One implementation per engine: store-sqlite.ts, store-postgres.ts (and a fake in test/fakes/). */
export interface ReportStore {
  /**
   * A report of an existing device, as a step of a transaction (DeviceNotFoundError, nothing
   * written, for an unknown id); drops the device's reports beyond `historyLimit`, and those
   * left by a deleted device of the same id.
   */
  reportStep(report: NewReport, historyLimit: number): Step<Report>;
  /**
   * The device's reports, newest first (none for an unknown id). Reports older than the device
   * (left by a deleted device of the same id) are not its own.
   */
  recent(deviceId: string, limit: number): Promise<Report[]>;
  /** The latest report of each of these devices that has one (in no order). */
  latest(deviceIds: readonly string[]): Promise<Report[]>;
}

/** What the report feature publishes after a commit (events/bus.ts carries it). */
export interface ReportEvent {
  type: 'report';
  report: Report;
}

export interface ReportEventSink {
  emit(event: ReportEvent): void;
}
