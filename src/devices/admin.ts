/**
 * Who does an admin write, and the seam through which a feature above devices (the audit log,
 * src/audit/) records it in the write's own transaction. Defined here, beside the device service,
 * so that the device and enrollment services take them without importing the audit feature: the
 * service builds the entry, the recorder only turns it into a step of the same unit of work.
 */
import type { Step } from '../db/unit-of-work.js';
import { deviceFieldsView } from './views.js';
import type { Alias, Device } from './store.js';

/** Who does an admin write, from where, by which request. */
export interface AdminContext {
  /**
   * The token's subject, the client certificate's name, `anonymous` when the management API
   * needs neither, `cli:<user>` for `ztp import`.
   */
  actor: string;
  /** The request's source address (trust-proxy aware), `local` for the CLI. */
  source: string;
  /** The request that did it (method and route, e.g. `GET /ztp/mng/:id/delete`), or the command. */
  via: string;
}

/** The audit log's stable vocabulary: what an entry records. */
export const AUDIT_ACTIONS = [
  'edit',
  'create',
  'delete',
  'approve',
  'reject',
  'lift',
  'retrigger',
  'alias-add',
  'alias-remove',
  'import',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** A JSON object as an entry keeps it (a device as the API shows it, a pending record, counts). */
export type AuditImage = Record<string, unknown>;

/** One admin write, as the service describes it to the recorder. */
export interface AuditRecord {
  at: number;
  actor: string;
  source: string;
  via: string;
  action: AuditAction;
  /** The device's primary id; null for a whole-registry action (an import). */
  device: string | null;
  before: AuditImage | null;
  after: AuditImage | null;
  /** What the images do not show: counts of an import, the queued trigger of a re-trigger. */
  detail: AuditImage | null;
}

/**
 * Appends entries to the audit log. The entry is a function, called when the step runs: it
 * reads the results of the steps before it in the same unit (the device as it was and is), so
 * its "before" is never older than the change it records.
 */
export interface AuditRecorder {
  appendStep(entry: () => AuditRecord): Step<unknown>;
}

/** A device as an entry's image: what the API shows of it (ISO times), optionally its aliases. */
export function deviceImage(d: Device, aliases?: readonly Alias[]): AuditImage {
  const image: AuditImage = deviceFieldsView(d);
  if (aliases) image.aliases = aliases.map((a) => ({ type: a.type, value: a.value }));
  return image;
}
