/**
 * What one manager call says (ManagerCall), how the dispatcher builds it from an outbox trigger,
 * and the HTTP request it becomes for the configured form (--manager-url, --manager-format,
 * the secrets). Pure but for the injected device lookup.
 */
import type { Trigger, TriggerType } from './outbox.js';
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
}

/** What the dispatcher may learn about a device at call time. */
export interface DescribedDevice {
  name: string;
  userdata: string;
  /** Its last registration (ms). */
  lastSeen: number;
}

/** Looks a device up; undefined when it no longer exists. Throws on a storage error. */
export type DescribeDevice = (id: string) => Promise<DescribedDevice | undefined>;

type TriggerFields = Pick<Trigger, 'key' | 'ip' | 'deviceId' | 'createdAt' | 'type' | 'previousIp'>;

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
  };
}

/**
 * The dispatcher's call builder. The device is looked up only when the call carries its name or
 * userdata (json, or a {name} placeholder), so the seed's call costs no read.
 */
export function callBuilder(
  describe: DescribeDevice | undefined,
  needsDevice: boolean,
): (t: TriggerFields) => Promise<ManagerCall> {
  if (!needsDevice || !describe) return (t) => Promise.resolve(basicCall(t));
  return async (t) => {
    const call = basicCall(t);
    const d = await describe(t.deviceId);
    if (d) {
      call.device.name = d.name;
      call.device.userdata = d.userdata;
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

export interface CallForm {
  target: ManagerTarget;
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
  const path = form.target.target({
    ip: call.ip,
    id: d.id,
    name: d.name,
    previous_ip: d.previousIp,
  });
  const headers: Record<string, string> = {
    'idempotency-key': call.key,
    'user-agent': 'ztp-trigger',
  };
  const json = form.format === 'json';
  const body = json ? jsonBody(call) : undefined;
  const method = json ? 'POST' : 'GET';
  if (json || form.secrets.length > 0) headers[EVENT_ID_HEADER] = call.key;
  if (json) headers['content-type'] = 'application/json';
  if (form.secrets.length > 0)
    headers[SIGNATURE_HEADER] = signatureHeader(form.secrets, nowSeconds, method, path, body ?? '');
  return { method, path, headers, body };
}
