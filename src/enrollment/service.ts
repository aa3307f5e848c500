/**
 * Enrollment use cases (`--enrollment open|allowlist|approve`, docs/enrollment.md): which unknown
 * devices may register, the pending registrations of approve mode, approval and rejection.
 *
 * It is the device service's admission (devices/admission.ts): the device service asks it only
 * about registrations of devices that are not in the registry, so a known device's registration
 * is unchanged. Approving is one transaction: this store's step that takes the pending row, then
 * the device's registration and its trigger (DeviceService.commitRegistration).
 */
import { readFileSync } from 'node:fs';
import { thenStep, type Transactor } from '../db/unit-of-work.js';
import { deviceImage, type AdminContext, type AuditImage } from '../devices/admin.js';
import type { Admission, AdmissionDecision } from '../devices/admission.js';
import { canonicalMac, normaliseId } from '../devices/identity.js';
import type { DeviceService, RegisterResult } from '../devices/service.js';
import type { Alias, Registration } from '../devices/store.js';
import { ConfigError } from '../errors.js';
import {
  DevicePendingError,
  DeviceRejectedError,
  NotEnrolledError,
  NotPendingError,
} from './errors.js';
import { RuleSet, type Candidate, type Rule } from './rules.js';
import type { EnrollmentStore, PendingDevice, RejectedDevice } from './store.js';
import { pendingView, rejectedView } from './views.js';

export const ENROLLMENT_MODES = ['open', 'allowlist', 'approve'] as const;
export type EnrollmentMode = (typeof ENROLLMENT_MODES)[number];

export interface PendingWithRule {
  device: PendingDevice;
  /** The rule that accepts it now (rules reloaded since it registered), or undefined. */
  rule: Rule | undefined;
}

export interface EnrollmentOptions {
  mode: EnrollmentMode;
  rules?: RuleSet;
  now?: () => number;
}

/** Reads and parses a rules file; ConfigError naming the file (and the line) when it is bad. */
export function readRulesFile(path: string): RuleSet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`--enrollment-rules: cannot read '${path}': ${(e as Error).message}`);
  }
  return RuleSet.parse(text, path);
}

/**
 * What a rule sees of a device: its id as a MAC or as a serial, and the mac and serial aliases
 * its registration carries (identity headers, a body's `aliases`); other alias types match no
 * rule.
 */
export function candidateOf(id: string, source: string, aliases: readonly Alias[] = []): Candidate {
  const mac = canonicalMac(id);
  const macs = mac === undefined ? [] : [mac];
  const serials = mac === undefined ? [id] : [];
  for (const a of aliases) {
    if (a.type === 'mac') macs.push(a.value);
    else if (a.type === 'serial') serials.push(a.value);
  }
  return { macs, serials, source };
}

export class EnrollmentService implements Admission {
  readonly mode: EnrollmentMode;
  private rules: RuleSet;
  private devices: DeviceService | undefined;
  private readonly now: () => number;

  constructor(
    private readonly db: Transactor,
    private readonly store: EnrollmentStore,
    opts: EnrollmentOptions,
  ) {
    this.mode = opts.mode;
    this.rules = opts.rules ?? RuleSet.empty;
    this.now = opts.now ?? Date.now;
  }

  /** The device service approvals register through (built after this, which it is given to). */
  attach(devices: DeviceService): void {
    this.devices = devices;
  }

  /** The admission to give the device service: none in open mode (the seed's path, unchanged). */
  get admission(): Admission | undefined {
    return this.mode === 'open' ? undefined : this;
  }

  get adminCreates(): boolean {
    return this.mode === 'allowlist';
  }

  get ruleCount(): number {
    return this.rules.size;
  }

  /** SIGHUP: the new rule set replaces the old one as a whole. */
  setRules(rules: RuleSet): void {
    this.rules = rules;
  }

  async admit(reg: Registration): Promise<AdmissionDecision> {
    // An admin's rejection wins over every rule.
    if ((await this.store.getRejected(reg.id)) !== undefined) throw new DeviceRejectedError(reg.id);
    const rule = this.rules.match(candidateOf(reg.id, reg.source, reg.aliases));
    if (this.mode === 'allowlist') {
      if (rule === undefined) throw new NotEnrolledError(reg.id);
      return { accept: true, steps: [] };
    }
    // A rule accepts it: registered at once, and a pending row it may have is removed with it.
    if (rule !== undefined) return { accept: true, steps: [this.store.dropStep(reg.id)] };
    const [{ pending }] = await this.db.commit(reg.id, [
      this.store.pendStep({
        id: reg.id,
        ip: reg.ip,
        name: reg.name ?? '',
        userdata: reg.userdata ?? '',
        source: reg.source,
        aliases: reg.aliases ?? [],
        at: reg.at,
      }),
    ]);
    return {
      accept: false,
      held: {
        id: pending.id,
        ip: pending.ip,
        name: pending.name,
        userdata: pending.userdata,
        state: 'pending',
      },
    };
  }

  async explainMissing(id: string): Promise<void> {
    if ((await this.store.getPending(id)) !== undefined) throw new DevicePendingError(id);
  }

  /**
   * Makes a pending device a normal device and queues its trigger for its latest ip, in one
   * transaction; NotPendingError (409) when it is not pending (approved already, say).
   */
  async approve(rawId: string, ctx: AdminContext): Promise<RegisterResult> {
    const id = normaliseId(rawId);
    const devices = this.attached();
    const pending = await this.store.getPending(id);
    if (pending === undefined) throw new NotPendingError(id);
    const reg: Registration = {
      id,
      ip: pending.ip,
      name: pending.name,
      userdata: pending.userdata,
      source: pending.source,
      aliases: pending.aliases,
      at: this.now(),
    };
    // takeStep fails (and nothing is registered) when a concurrent approval took it first.
    // The entry's "before" is the pending row the step took, not the one read above.
    let taken: PendingDevice | undefined;
    const take = thenStep(this.store.takeStep(id), (p) => (taken = p));
    return devices.commitRegistration(reg, [take], {
      ctx,
      describe: ({ device }) => ({
        action: 'approve',
        device: id,
        before: taken === undefined ? null : pendingImage(taken),
        after: deviceImage(device),
      }),
    });
  }

  /** Removes a pending device and refuses its registrations until lift(). */
  async reject(rawId: string, ctx: AdminContext): Promise<RejectedDevice> {
    const id = normaliseId(rawId);
    return this.attached().commitAdminWrite(
      id,
      this.store.rejectStep(id, this.now()),
      (rejected) => ({
        action: 'reject',
        device: id,
        before: null,
        after: rejectedImage(rejected),
      }),
      ctx,
    );
  }

  /** Lifts a rejection: the device's next registration is treated as an unknown device's. */
  async lift(rawId: string, ctx: AdminContext): Promise<RejectedDevice> {
    const id = normaliseId(rawId);
    return this.attached().commitAdminWrite(
      id,
      this.store.liftStep(id),
      (lifted) => ({ action: 'lift', device: id, before: rejectedImage(lifted), after: null }),
      ctx,
    );
  }

  private attached(): DeviceService {
    if (this.devices === undefined) throw new Error('EnrollmentService.attach() was not called');
    return this.devices;
  }

  async listPending(after: string | undefined, limit: number): Promise<PendingWithRule[]> {
    const rows = await this.store.listPending(after, limit);
    return rows.map((device) => ({
      device,
      rule: this.rules.match(candidateOf(device.id, device.source, device.aliases)),
    }));
  }

  countPending(): Promise<number> {
    return this.store.countPending();
  }

  listRejected(after: string | undefined, limit: number): Promise<RejectedDevice[]> {
    return this.store.listRejected(after, limit);
  }
}

/** A pending registration as an audit entry shows it (as the API's pending list). */
function pendingImage(p: PendingDevice): AuditImage {
  const { rule: _rule, ...view } = pendingView(p, undefined);
  return view;
}

/** A rejection as an audit entry shows it (as the API's rejected list). */
function rejectedImage(r: RejectedDevice): AuditImage {
  return rejectedView(r);
}
