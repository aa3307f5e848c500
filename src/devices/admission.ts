/**
 * The seam through which a feature above devices (enrollment, src/enrollment/) decides whether a
 * device that is not in the registry may register. Without one (`--enrollment open`) every
 * registration is accepted and no lookup is added to its path.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Step } from '../db/unit-of-work.js';
import type { Registration } from './store.js';

/** A registration held back (approve mode): what the device is answered with 202. */
export const HeldRecord = Type.Object(
  {
    id: Type.String(),
    ip: Type.String(),
    name: Type.String(),
    userdata: Type.String(),
    state: Type.Literal('pending'),
  },
  { description: 'Stored as pending: no trigger until an admin approves it' },
);
export type HeldRecord = Static<typeof HeldRecord>;

export interface Held {
  held: HeldRecord;
}

export type AdmissionDecision =
  /** Register it; `steps` join the registration's transaction, before the device's own. */
  | { accept: true; steps: Step<unknown>[] }
  /** Held (already stored by the admission); nothing is registered or triggered. */
  | { accept: false; held: HeldRecord };

export interface Admission {
  /** True when `PUT /ztp/mng/{id}` may create a device (allowlist mode). */
  readonly adminCreates: boolean;
  /** A registration of an unknown device: accept, hold, or throw (403 codes). */
  admit(reg: Registration): Promise<AdmissionDecision>;
  /** A lookup found no device: throws a more precise error (device_pending) when there is one. */
  explainMissing(id: string): Promise<void>;
}
