/**
 * Progress reports from devices: RFC 8572's progress vocabulary (ietf-sztp-bootstrap-server,
 * the `progress-type` of its report-progress RPC) and the limits of a report. Imports nothing at
 * run time but the error type, so that the console's bundle may import the list.
 */
import { ZtpError } from '../errors.js';

/** RFC 8572, section 7.3, in the order the YANG module lists them. */
export const PROGRESS_TYPES = [
  'bootstrap-initiated',
  'parsing-initiated',
  'parsing-warning',
  'parsing-error',
  'parsing-complete',
  'boot-image-initiated',
  'boot-image-warning',
  'boot-image-error',
  'boot-image-mismatch',
  'boot-image-installed-rebooting',
  'boot-image-complete',
  'pre-script-initiated',
  'pre-script-warning',
  'pre-script-error',
  'pre-script-complete',
  'config-initiated',
  'config-warning',
  'config-error',
  'config-complete',
  'post-script-initiated',
  'post-script-warning',
  'post-script-error',
  'post-script-complete',
  'bootstrap-warning',
  'bootstrap-error',
  'bootstrap-complete',
  'informational',
] as const;

export type ProgressType = (typeof PROGRESS_TYPES)[number];

const KNOWN: ReadonlySet<string> = new Set(PROGRESS_TYPES);

/** Longest report message, in UTF-8 bytes (a line or two of a script's error output). */
export const REPORT_MESSAGE_MAX_BYTES = 1024;
/** Reports kept per device, newest first; older ones are dropped as new ones arrive. */
export const REPORT_HISTORY_LIMIT = 50;

export function isProgressType(type: string): type is ProgressType {
  return KNOWN.has(type);
}

/** How a progress type reads as an outcome: the console's colour, the manager's attention. */
export function severityOf(type: ProgressType): 'error' | 'warning' | 'complete' | 'progress' {
  if (type.endsWith('-error') || type === 'boot-image-mismatch') return 'error';
  if (type.endsWith('-warning')) return 'warning';
  if (type.endsWith('-complete')) return 'complete';
  return 'progress';
}

export function validateProgressType(type: string): ProgressType {
  if (isProgressType(type)) return type;
  throw new ZtpError(
    'unknown_progress_type',
    `type must be one of RFC 8572's progress types (${PROGRESS_TYPES.join(', ')})`,
    { field: 'type' },
  );
}

const LONE_SURROGATE = /\p{Cs}/u;

export function validateReportMessage(message: string): string {
  if (new TextEncoder().encode(message).length > REPORT_MESSAGE_MAX_BYTES)
    throw new ZtpError(
      'report_message_too_long',
      `message must be at most ${REPORT_MESSAGE_MAX_BYTES} bytes (UTF-8)`,
      { field: 'message' },
    );
  // PostgreSQL text holds no NUL and the engines store lone surrogates differently (unicode.ts).
  if (message.includes('\u0000') || LONE_SURROGATE.test(message))
    throw new ZtpError('invalid_body', 'message must be text without NUL characters', {
      field: 'message',
    });
  return message;
}
