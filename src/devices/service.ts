/**
 * Device use cases, independent of HTTP: normalise and validate input, call the stores, publish
 * committed changes. Routes stay thin and every entry point shares these rules.
 *
 * A registration is one transaction of the database's group commit made of the steps of each
 * feature concerned (db/unit-of-work.ts): the device store's upsert and, when a manager is
 * configured, the trigger queue's outbox step.
 */
import { thenStep, type Database, type Engine, type Step } from '../db/unit-of-work.js';
import { DeviceNotFoundError, ZtpError } from '../errors.js';
import type { DeviceScope, Principal } from '../http/auth.js';
import {
  withoutLease,
  type OutboxStore,
  type Trigger,
  type TriggerOn,
} from '../triggers/outbox.js';
import { TriggerQueries } from '../triggers/queries.js';
import { TriggerQueue, type LocalDispatcher } from '../triggers/queue.js';
import type { TriggerReadModel } from '../triggers/read-model.js';
import {
  ALIASES_PER_DEVICE_MAX,
  normaliseAlias,
  normaliseAliases,
  normaliseId,
  normaliseIp,
  sourceAddress,
  validateName,
  validateUserdata,
} from './identity.js';
import type { Admission, Held } from './admission.js';
import { deviceImage, type AdminContext, type AuditRecord, type AuditRecorder } from './admin.js';
import type { DeviceEventSink } from './events.js';
import { DeviceQueries } from './queries.js';
import type { DeviceReadModel } from './read-model.js';
import type {
  Alias,
  Change,
  Device,
  DeviceRecord,
  DevicePatch,
  DeviceStore,
  HistoryEntry,
  Pins,
  RegisteredDevice,
  Registration,
} from './store.js';

/** The stores of the features a device's use cases touch, all on one database. */
export interface Stores {
  db: Database;
  devices: DeviceStore;
  deviceReads: DeviceReadModel;
  outbox: OutboxStore;
  triggerReads: TriggerReadModel;
}

export interface RegisterInput {
  ip?: string | undefined;
  /** Omitted: the stored name stays (a device never erases what an operator wrote). */
  name?: string | undefined;
  userdata?: string | undefined;
  /** Added to the device's aliases, never removed by a registration. */
  aliases?: readonly { type: string; value: string }[] | undefined;
}

/**
 * An admin edit: members absent keep their stored value; `null` (PATCH) empties name or
 * userdata and unpins a pin.
 */
export interface EditInput {
  ip?: string | undefined;
  name?: string | null | undefined;
  userdata?: string | null | undefined;
  pinned?: { name?: boolean | null | undefined; userdata?: boolean | null | undefined } | undefined;
}

/**
 * Enforces a restricted credential's scope (a bound or enrollment token) on a registration:
 * throws a ZtpError to refuse before anything is stored, or returns a step that joins the
 * registration's transaction ahead of the device's upsert (an enrollment's use counter), so
 * that a device is never enrolled without being counted. Built by src/token-grants/.
 */
export interface RegistrationAdmission {
  /**
   * `id`: the registering device's primary id (the id it registers by when it is unknown);
   * `claimed`: the values of the aliases its registration carries.
   */
  admit(
    scope: DeviceScope,
    id: string,
    at: number,
    claimed: readonly string[],
  ): Promise<Step<unknown> | undefined>;
}

export interface ServiceOptions {
  /** True when a manager URL is configured: registrations enqueue a trigger. */
  triggersEnabled: boolean;
  historyLimit: number;
  events: DeviceEventSink;
  /**
   * The local trigger dispatcher, if any (looked up at each registration: it is built after the
   * service); the trigger queue (triggers/queue.ts) tells it about new triggers.
   */
  dispatcher?: () => LocalDispatcher | undefined;
  /** Who may register when unknown (src/enrollment/); none: anyone (`--enrollment open`). */
  admission?: Admission | undefined;
  /** --trigger-on; default every-registration. */
  triggerOn?: TriggerOn;
  now?: () => number;
  /** Checks restricted tokens; without it a registration by one is refused (fail closed). */
  tokenAdmission?: RegistrationAdmission | undefined;
  /**
   * Records every admin write in the write's own transaction (src/audit/); none: admin writes
   * are not recorded (tests of other features).
   */
  audit?: AuditRecorder | undefined;
}

export type RegisterResult = RegisteredDevice & { trigger?: Trigger };

export interface DeviceDetail {
  device: Device;
  trigger: Trigger | undefined;
  history: HistoryEntry[];
  aliases: Alias[];
}

export class DeviceService {
  readonly now: () => number;
  /** Device read models (lists, the console's page, counts). */
  readonly queries: DeviceQueries;
  /** Trigger read models (the outbox listing, counts). */
  readonly triggerQueries: TriggerQueries;
  /** Where registrations put their triggers; undefined without a manager. */
  private readonly triggers: TriggerQueue | undefined;

  constructor(
    private readonly stores: Stores,
    private readonly opts: ServiceOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.queries = new DeviceQueries(stores.deviceReads, stores.triggerReads, stores.devices);
    this.triggerQueries = new TriggerQueries(stores.triggerReads);
    this.triggers = opts.triggersEnabled
      ? new TriggerQueue(stores.outbox, opts.dispatcher, opts.triggerOn)
      : undefined;
  }

  /** Resolves with the storage engine's name when it answers; throws StorageUnavailableError. */
  async checkStorage(): Promise<Engine> {
    await this.stores.db.ping();
    return this.stores.db.engine;
  }

  get triggersEnabled(): boolean {
    return this.opts.triggersEnabled;
  }

  /**
   * Upsert from a device's own registration; `source` is the request's peer address, `principal`
   * who registers (a restricted token's scope is enforced by the token admission). With an
   * admission (enrollment), a device not in the registry may be held (pending) or refused.
   */
  async register(
    rawId: string,
    input: RegisterInput,
    source: string | undefined,
    principal?: Principal,
  ): Promise<RegisterResult | Held> {
    const requested = normaliseId(rawId);
    const src = sourceAddress(source);
    const ip = input.ip === undefined ? normaliseIp(src) : normaliseIp(input.ip);
    const fields = {
      ip,
      name: input.name === undefined ? undefined : validateName(input.name),
      userdata: input.userdata === undefined ? undefined : validateUserdata(input.userdata),
      aliases: input.aliases === undefined ? [] : normaliseAliases(input.aliases),
    };
    // A registration by an alias is its holder's. The store's step resolves it too; a trigger,
    // a token's scope and enrollment need the primary id before the step runs, so only then is
    // it looked up here.
    const resolve = this.triggers ?? this.opts.admission ?? principal?.scope;
    const id = resolve ? await this.stores.devices.resolveId(requested) : requested;
    const reg: Registration = { id, ...fields, source: src, at: this.now() };
    // Steps of other features that must commit with the registration, and run first.
    const before: Step<unknown>[] = [];
    if (principal?.scope) {
      const claimed = fields.aliases.map((a) => a.value);
      const granted = await this.admitToken(principal.scope, id, reg.at, claimed);
      if (granted) before.push(granted);
    }
    const admission = this.opts.admission;
    if (admission && !(await this.known(id))) {
      const decision = await admission.admit(reg);
      if (!decision.accept) return { held: decision.held };
      before.push(...decision.steps);
    }
    return this.commitRegistration(reg, before);
  }

  /**
   * Commits a registration (device upsert, trigger) with `before`, steps of another feature
   * that must be atomic with it and run first (enrollment's approval takes the pending row: when
   * it fails, nothing is registered); publishes it and hands its trigger over. `admin`: an
   * admin's write (an approval), recorded in the audit log in the same transaction.
   */
  async commitRegistration(
    reg: Registration,
    before: Step<unknown>[],
    admin?: { ctx: AdminContext; describe: (registered: RegisteredDevice) => AuditDescription },
  ): Promise<RegisterResult> {
    let registration = this.stores.devices.registerStep(reg, this.opts.historyLimit);
    const audit = admin && this.opts.audit;
    let after: Step<unknown> | undefined;
    if (admin && audit) {
      let registered: RegisteredDevice | undefined;
      registration = thenStep(registration, (r) => (registered = r));
      after = audit.appendStep(() => {
        if (registered === undefined) throw new Error('the audit step ran before its change');
        return { detail: null, ...admin.describe(registered), ...admin.ctx, at: reg.at };
      });
    }
    const queued = this.triggers?.prepare(reg.id, reg.ip, reg.at);
    let result: RegisteredDevice;
    let trigger: Trigger | undefined;
    try {
      if (before.length > 0 || after) {
        const steps: Step<unknown>[] = [...before, registration];
        if (queued) steps.push(queued.step);
        if (after) steps.push(after);
        const results = await this.stores.db.commit(reg.id, steps);
        result = results[before.length] as RegisteredDevice;
        trigger = queued ? (results[before.length + 1] as Trigger | undefined) : undefined;
      } else if (queued)
        [result, trigger] = await this.stores.db.commit(reg.id, [registration, queued.step]);
      else [result] = await this.stores.db.commit(reg.id, [registration]);
    } catch (e) {
      queued?.abandoned();
      throw e;
    }
    this.opts.events.emit({ type: 'registered', device: result.device, created: result.created });
    if (trigger) this.opts.events.emit({ type: 'trigger', trigger: withoutLease(trigger) });
    // Also without a trigger (--trigger-on ip-change suppressed it): the hand-over place is freed.
    queued?.committed(trigger);
    return trigger ? { ...result, trigger: withoutLease(trigger) } : result;
  }

  private admitToken(
    scope: DeviceScope,
    id: string,
    at: number,
    claimed: readonly string[],
  ): Promise<Step<unknown> | undefined> {
    if (!this.opts.tokenAdmission)
      throw new ZtpError(
        'forbidden',
        `token '${scope.name}' is restricted to some devices and this server cannot check that`,
      );
    return this.opts.tokenAdmission.admit(scope, id, at, claimed);
  }

  private async known(id: string): Promise<boolean> {
    try {
      await this.stores.devices.get(id);
      return true;
    } catch (e) {
      if (e instanceof DeviceNotFoundError) return false;
      throw e;
    }
  }

  /** The manager's lookup: like get(), but a device waiting for approval is device_pending. */
  async check(rawId: string): Promise<DeviceRecord> {
    const id = normaliseId(rawId);
    try {
      return await this.stores.devices.record(id);
    } catch (e) {
      if (e instanceof DeviceNotFoundError) await this.opts.admission?.explainMissing(id);
      throw e;
    }
  }

  /** The primary id of the device holding this alias, else the (normalised) id itself. */
  resolveId(rawId: string): Promise<string> {
    return this.stores.devices.resolveId(normaliseId(rawId));
  }

  /** The device with this primary id or alias. */
  get(rawId: string): Promise<Device> {
    return this.stores.devices.get(normaliseId(rawId));
  }

  async detail(rawId: string): Promise<DeviceDetail> {
    const device = await this.get(rawId);
    const [trigger, history, aliases] = await Promise.all([
      this.stores.triggerReads.latest(device.id),
      this.stores.devices.history(device.id),
      this.stores.devices.aliases(device.id),
    ]);
    return { device, trigger, history, aliases };
  }

  async edit(rawId: string, input: EditInput, ctx: AdminContext): Promise<Device> {
    return (await this.put(rawId, input, ctx)).device;
  }

  /**
   * Edits a device (members absent keep their value); creates it when it does not exist and the
   * admission lets admins create devices (allowlist mode). A created device has never registered
   * (registrations 0) and queues no trigger: its first registration does.
   */
  async put(
    rawId: string,
    input: EditInput,
    ctx: AdminContext,
  ): Promise<{ device: Device; created: boolean }> {
    const requested = normaliseId(rawId);
    const patch: DevicePatch = {
      ip: input.ip === undefined ? undefined : normaliseIp(input.ip),
      name: input.name === undefined ? undefined : validateName(input.name ?? ''),
      userdata: input.userdata === undefined ? undefined : validateUserdata(input.userdata ?? ''),
      pinned: pins(input.pinned),
    };
    const at = this.now();
    try {
      const { id } = await this.stores.devices.get(requested);
      const { after: device } = await this.commitAdminWrite(
        id,
        this.stores.devices.editStep(id, patch, at),
        ({ before, after }) => ({
          action: 'edit',
          device: id,
          before: deviceImage(before),
          after: deviceImage(after),
        }),
        ctx,
        at,
      );
      this.opts.events.emit({ type: 'edited', device });
      return { device, created: false };
    } catch (e) {
      if (!(e instanceof DeviceNotFoundError) || this.opts.admission?.adminCreates !== true)
        throw e;
    }
    const created: Device = {
      id: requested,
      ip: patch.ip ?? '',
      name: patch.name ?? '',
      userdata: patch.userdata ?? '',
      firstSeen: at,
      lastSeen: at,
      updatedAt: at,
      registrations: 0,
      lastSource: '',
      pinned: { name: patch.pinned?.name ?? false, userdata: patch.pinned?.userdata ?? false },
      reported: { name: null, userdata: null },
    };
    const { before, after: device } = await this.commitAdminWrite(
      requested,
      this.stores.devices.importDeviceStep(created, []),
      (r) => ({
        action: r.before === undefined ? 'create' : 'edit',
        device: requested,
        before: r.before === undefined ? null : deviceImage(r.before),
        after: deviceImage(r.after),
      }),
      ctx,
      at,
    );
    // Not a registration (metrics count those): an admin's write, like an edit.
    this.opts.events.emit({ type: 'edited', device });
    return { device, created: before === undefined };
  }

  async delete(rawId: string, ctx: AdminContext): Promise<Device> {
    const { id } = await this.get(rawId);
    const device = await this.commitAdminWrite(
      id,
      this.stores.devices.deleteStep(id),
      (removed) => ({ action: 'delete', device: id, before: deviceImage(removed), after: null }),
      ctx,
    );
    this.opts.events.emit({ type: 'deleted', device });
    return device;
  }

  /** Add aliases to a device (by primary id or alias); resolves with all its aliases. */
  async addAliases(
    rawId: string,
    raw: readonly { type: string; value: string }[],
    ctx: AdminContext,
  ): Promise<Alias[]> {
    const aliases = normaliseAliases(raw);
    const { id } = await this.get(rawId);
    const { after } = await this.commitAdminWrite(
      id,
      this.stores.devices.addAliasesStep(id, aliases, ALIASES_PER_DEVICE_MAX),
      (change) => ({ action: 'alias-add', device: id, ...aliasImages(change) }),
      ctx,
    );
    return after;
  }

  async removeAlias(rawId: string, type: string, value: string, ctx: AdminContext): Promise<void> {
    const alias = normaliseAlias(type, value);
    const { id } = await this.get(rawId);
    await this.commitAdminWrite(
      id,
      this.stores.devices.removeAliasStep(id, alias),
      (change) => ({ action: 'alias-remove', device: id, ...aliasImages(change) }),
      ctx,
    );
  }

  /** Queue a trigger for the device's current ip now (re-provision, or retry a dead/failed one). */
  async requeueTrigger(rawId: string, ctx: AdminContext): Promise<Trigger> {
    if (!this.triggers) {
      throw new ZtpError(
        'triggers_disabled',
        'no manager URL is configured, so no trigger can be queued',
      );
    }
    const { id } = await this.get(rawId);
    const requeue = this.triggers.prepareRequeue(id, this.now());
    const trigger = await this.commitAdminWrite(
      id,
      requeue.step,
      (t) => ({
        action: 'retrigger',
        device: id,
        before: null,
        after: null,
        detail: { trigger: t.id, ip: t.ip, type: t.type },
      }),
      ctx,
    );
    requeue.committed();
    this.opts.events.emit({ type: 'trigger', trigger });
    return trigger;
  }

  /**
   * Commits an admin write's `change` with its audit entry (when an audit recorder is
   * configured) in one transaction: both or neither. The entry is described from the change's
   * result, so its images are the ones the change read and wrote.
   */
  async commitAdminWrite<T>(
    key: string,
    change: Step<T>,
    describe: (result: T) => AuditDescription,
    ctx: AdminContext,
    at: number = this.now(),
  ): Promise<T> {
    const audit = this.opts.audit;
    if (!audit) return (await this.stores.db.commit(key, [change]))[0];
    let result: { value: T } | undefined;
    const tapped = thenStep(change, (value) => {
      result = { value };
      return value;
    });
    const entry = audit.appendStep(() => {
      // The steps run in order: the change's result is there when the entry's step runs.
      if (result === undefined) throw new Error('the audit step ran before its change');
      return { detail: null, ...describe(result.value), ...ctx, at };
    });
    return (await this.stores.db.commit(key, [tapped, entry]))[0];
  }
}

/** What an admin write's entry says beyond who, when and how (AdminContext). */
export type AuditDescription = Pick<AuditRecord, 'action' | 'device' | 'before' | 'after'> &
  Partial<Pick<AuditRecord, 'detail'>>;

function aliasImages(change: Change<Alias[]>): Pick<AuditRecord, 'before' | 'after'> {
  const image = (aliases: Alias[]) => ({
    aliases: aliases.map((a) => ({ type: a.type, value: a.value })),
  });
  return { before: image(change.before), after: image(change.after) };
}

function pins(input: EditInput['pinned']): Partial<Pins> | undefined {
  if (input === undefined) return undefined;
  const out: Partial<Pins> = {};
  if (input.name !== undefined) out.name = input.name === true;
  if (input.userdata !== undefined) out.userdata = input.userdata === true;
  return out;
}
