/**
 * What one manager call says (ManagerCall), how the dispatcher builds it from an outbox trigger,
 * and the HTTP request it becomes for the configured form (--manager-url, --manager-format,
 * the secrets). Pure but for the injected device lookup.
 */
import type { ForwardedReport, Trigger, TriggerType } from './outbox.js';
import type { ManagerFormat, ManagerTarget } from './manager-url.js';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from './signature.js';

export type ManagerEventType = TriggerType;

export interface DeviceSnapshot {
  id: string;
  /** The ip the trigger was queued for (the latest registration's, see coalescing). */
  ip: string;
  /** The device's ip before the registration that queued the trigger; null for a new device. */
  previousIp: string | null;
  /** null when the call does not need it, or the device was deleted before the call. */
  name: string | null;
  userdata: string | null;
  aliases: string[];
}

export interface ManagerCall {
  /** The trigger key: ZTP-Event-Id, Idempotency-Key and the json's event_id. */
  key: string;
  /** The device's ip (device.ip): the seed's call carries only this. */
  ip: string;
  type: ManagerEventType;
  /** When the event happened (the trigger's creation), ms since the epoch. */
  at: number;
  device: DeviceSnapshot;
  /** The progress report a `report` call forwards (--report-forward); null otherwise. */
  report: ForwardedReport | null;
}

/**
 * A call that can never be made as configured (a forwarded report while --report-forward is
 * off): the dispatcher fails its trigger at once instead of retrying it, so that it does not
 * hold back the device's later triggers until its maximum age.
 */
export class UndeliverableCall extends Error {}

/** What the dispatcher may learn about a device at call time. */
export interface DescribedDevice {
  name: string;
  userdata: string;
  /** Its last registration (ms). */
  lastSeen: number;
  /** Its aliases' values (a forwarded report carries them). */
  aliases?: string[] | undefined;
}

/**
 * Looks a device up (with its aliases when asked); undefined when it no longer exists. Throws on
 * a storage error.
 */
export type DescribeDevice = (
  id: string,
  withAliases?: boolean,
) => Promise<DescribedDevice | undefined>;

type TriggerFields = Pick<
  Trigger,
  'key' | 'ip' | 'deviceId' | 'createdAt' | 'type' | 'previousIp' | 'report'
>;

/**
 * A call from the trigger alone: what the seed's form and a template of {ip}/{id}/{previous_ip}
 * need (the outbox records the type and previous ip).
 */
export function basicCall(t: Pick<Trigger, 'key' | 'ip'> & Partial<TriggerFields>): ManagerCall {
  return {
    key: t.key,
    ip: t.ip,
    type: t.type ?? 'registered',
    at: t.createdAt ?? 0,
    device: {
      id: t.deviceId ?? '',
      ip: t.ip,
      previousIp: t.previousIp ?? null,
      name: null,
      userdata: null,
      aliases: [],
    },
    report: t.report ?? null,
  };
}

/**
 * The dispatcher's call builder. The device is looked up only when the call carries its name or
 * userdata (json, or a {name} placeholder), or is a forwarded report (name and aliases), so the
 * seed's call costs no read. `reportForward`: whether forwarded reports can be sent
 * (--report-forward); without it their calls are UndeliverableCall.
 */
export function callBuilder(
  describe: DescribeDevice | undefined,
  needsDevice: boolean,
  reportForward = false,
): (t: TriggerFields) => Promise<ManagerCall> {
  return async (t) => {
    const report = t.type === 'report';
    if (report && !reportForward)
      throw new UndeliverableCall(
        'a forwarded report, and --report-forward is off: not sent (queued while it was on)',
      );
    const call = basicCall(t);
    if (!describe || !(needsDevice || report)) return call;
    const d = await describe(t.deviceId, report);
    if (d) {
      call.device.name = d.name;
      if (report) call.device.aliases = d.aliases ?? [];
      else call.device.userdata = d.userdata;
    }
    return call;
  };
}

/** Whether a form of call needs the device looked up. */
export function needsDevice(format: ManagerFormat, target: ManagerTarget): boolean {
  return format === 'json' || target.uses.has('name');
}

/** The json form's body (--manager-format json). */
export function jsonBody(call: ManagerCall): string {
  const d = call.device;
  return JSON.stringify({
    event_id: call.key,
    type: call.type,
    at: new Date(call.at).toISOString(),
    device: {
      id: d.id,
      ip: d.ip,
      previous_ip: d.previousIp,
      name: d.name,
      userdata: d.userdata,
      aliases: d.aliases,
    },
  });
}

export interface ManagerRequest {
  method: 'GET' | 'POST';
  /** Path and query. */
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/**
 * The forwarded report's body (--report-forward), whatever --manager-format says: the seed's
 * GET cannot carry a report.
 */
export function reportBody(call: ManagerCall): string {
  const d = call.device;
  const at = new Date(call.at).toISOString();
  return JSON.stringify({
    event_id: call.key,
    type: 'report',
    at,
    device: { id: d.id, ip: d.ip, name: d.name, aliases: d.aliases },
    report: { type: call.report?.type ?? '', message: call.report?.message ?? '', at },
  });
}

export interface CallForm {
  target: ManagerTarget;
  /** Where forwarded reports are POSTed (--report-forward); undefined: off. */
  reportTarget?: ManagerTarget | undefined;
  format: ManagerFormat;
  /** Signing secrets; empty: unsigned. */
  secrets: readonly string[];
}

/**
 * The request for a call made at `nowSeconds`. The seed's form (get, no secret) is exactly the
 * request of old: no header added, so existing managers see no difference.
 */
export function managerRequest(
  form: CallForm,
  call: ManagerCall,
  nowSeconds: number,
): ManagerRequest {
  const d = call.device;
  const report = call.type === 'report';
  const target = report ? form.reportTarget : form.target;
  if (target === undefined)
    throw new UndeliverableCall('a forwarded report, and no --report-forward URL is configured');
  const path = target.target({
    ip: call.ip,
    id: d.id,
    name: d.name,
    previous_ip: d.previousIp,
  });
  const headers: Record<string, string> = {
    'idempotency-key': call.key,
    'user-agent': 'ztp-trigger',
  };
  const json = report || form.format === 'json';
  const body = report ? reportBody(call) : json ? jsonBody(call) : undefined;
  const method = json ? 'POST' : 'GET';
  if (json || form.secrets.length > 0) headers[EVENT_ID_HEADER] = call.key;
  if (json) headers['content-type'] = 'application/json';
  if (form.secrets.length > 0)
    headers[SIGNATURE_HEADER] = signatureHeader(form.secrets, nowSeconds, method, path, body ?? '');
  return { method, path, headers, body };
}
