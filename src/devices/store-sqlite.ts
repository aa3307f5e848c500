/** The device store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import { AliasConflictError, AliasNotFoundError, DeviceNotFoundError } from '../errors.js';
import { ALIASES_PER_DEVICE_MAX, tooManyAliases } from './identity.js';
import { aliasFromRow, deviceFromRow, type AliasRow, type DeviceRow } from './rows.js';
import type {
  Alias,
  Change,
  Device,
  DeviceRecord,
  DevicePatch,
  DeviceStore,
  HistoryEntry,
  RegisteredDevice,
  Registration,
} from './store.js';

const GET = 'SELECT * FROM devices WHERE id = ?';
// The primary id first; an alias only when no device has that id (an alias never equals one).
const GET_BY_ID_OR_ALIAS = `SELECT * FROM devices WHERE id = @v
  UNION ALL SELECT d.* FROM aliases a JOIN devices d ON d.id = a.device_id
  WHERE a.value = @v AND NOT EXISTS (SELECT 1 FROM devices WHERE id = @v) LIMIT 1`;
const RECORD_BY_ID_OR_ALIAS = `SELECT id, ip, name, userdata FROM devices WHERE id = @v
  UNION ALL SELECT d.id, d.ip, d.name, d.userdata FROM aliases a JOIN devices d ON d.id = a.device_id
  WHERE a.value = @v AND NOT EXISTS (SELECT 1 FROM devices WHERE id = @v) LIMIT 1`;
const ALIAS_HOLDER = 'SELECT device_id FROM aliases WHERE value = ?';
const DEVICE_EXISTS = 'SELECT 1 FROM devices WHERE id = ?';
const ALIASES = 'SELECT type, value FROM aliases WHERE device_id = ? ORDER BY value';
const COUNT_ALIASES = 'SELECT count(*) FROM aliases WHERE device_id = ?';
const INSERT_ALIAS = `INSERT INTO aliases (value, type, device_id) VALUES (?, ?, ?)
  ON CONFLICT (value) DO UPDATE SET type = excluded.type`;
const DELETE_ALIAS = 'DELETE FROM aliases WHERE device_id = ? AND type = ? AND value = ?';
const DELETE_ALIASES = 'DELETE FROM aliases WHERE device_id = ?';
const INSERT_ON_REGISTER = `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source,
    reported_name, reported_userdata)
  VALUES (@id, @ip, coalesce(@name, ''), coalesce(@userdata, ''), @at, @at, @at, 1, @source, @name, @userdata) RETURNING *`;
// An omitted field keeps its value; a pinned one only records what the device reported.
// previous_ip: the ip before this registration (the SET reads the row as it was).
const UPDATE_ON_REGISTER = `UPDATE devices SET ip = @ip, previous_ip = ip,
  name = CASE WHEN @name IS NULL OR pinned_name = 1 THEN name ELSE @name END,
  userdata = CASE WHEN @userdata IS NULL OR pinned_userdata = 1 THEN userdata ELSE @userdata END,
  reported_name = coalesce(@name, reported_name), reported_userdata = coalesce(@userdata, reported_userdata),
  last_seen = @at, updated_at = @at, registrations = registrations + 1, last_source = @source
  WHERE id = @id RETURNING *`;
const EDIT = `UPDATE devices SET ip = coalesce(@ip, ip), name = coalesce(@name, name), userdata = coalesce(@userdata, userdata),
  pinned_name = coalesce(@pinName, pinned_name), pinned_userdata = coalesce(@pinUserdata, pinned_userdata),
  updated_at = @at WHERE id = @id`;
const DELETE = 'DELETE FROM devices WHERE id = ?';
const DELETE_HISTORY = 'DELETE FROM history WHERE device_id = ?';
const INSERT_HISTORY =
  'INSERT OR REPLACE INTO history (device_id, seq, at, ip, source) VALUES (?, ?, ?, ?, ?)';
const TRIM_HISTORY = 'DELETE FROM history WHERE device_id = ? AND seq <= ?';
const HISTORY = 'SELECT at, ip, source FROM history WHERE device_id = ? ORDER BY seq DESC';
const IMPORT = `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source, last_trigger_id,
    pinned_name, pinned_userdata, reported_name, reported_userdata)
  VALUES (@id, @ip, @name, @userdata, @firstSeen, @lastSeen, @updatedAt, @registrations, @lastSource, @lastTriggerId,
    @pinName, @pinUserdata, @reportedName, @reportedUserdata)`;

const flag = (b: boolean | undefined) => (b === undefined ? null : b ? 1 : 0);

export class SqliteDeviceStore implements DeviceStore {
  constructor(private readonly db: SqliteDatabase) {}

  registerStep(reg: Registration, historyLimit: number): Step<RegisteredDevice> {
    return this.db.step(() => {
      const update = this.db.statement<DeviceRow>(UPDATE_ON_REGISTER);
      const params = (id: string) => ({
        id,
        ip: reg.ip,
        name: reg.name ?? null,
        userdata: reg.userdata ?? null,
        at: reg.at,
        source: reg.source,
      });
      // One statement in the common case: a known device re-registers by its primary id (a
      // primary id is never another device's alias). Only a value that is no device's id may be
      // an alias, claimed perhaps since the service resolved it: then its holder registers.
      let id = reg.id;
      let updated = update.get(params(id));
      if (updated === undefined) {
        const holder = this.holder(id);
        if (holder !== undefined) {
          id = holder;
          updated = update.get(params(id));
        }
      }
      const claimed = this.checkAliases(id, reg.aliases ?? [], ALIASES_PER_DEVICE_MAX);
      const created = updated === undefined;
      const row = updated ?? this.db.statement<DeviceRow>(INSERT_ON_REGISTER).get(params(id))!;
      this.insertAliases(id, claimed);
      if (historyLimit > 0) {
        const count = Number(row.registrations);
        this.db.statement(INSERT_HISTORY).run(id, count, reg.at, reg.ip, reg.source);
        // History seq runs 1..registrations: nothing to trim until it exceeds the limit.
        if (count > historyLimit) this.db.statement(TRIM_HISTORY).run(id, count - historyLimit);
      }
      return { created, device: deviceFromRow(row) };
    });
  }

  private holder(value: string): string | undefined {
    return this.db.statement(ALIAS_HOLDER).pluck().get(value) as string | undefined;
  }

  /**
   * Of `aliases`, those `id` may claim (its own primary id dropped): AliasConflictError when
   * another device holds one or has it as its primary id, too_many_aliases past `limit`.
   */
  private checkAliases(id: string, aliases: readonly Alias[], limit: number): Alias[] {
    if (aliases.length === 0) return [];
    const claimed: Alias[] = [];
    let added = 0;
    for (const a of aliases) {
      if (a.value === id) continue;
      const holder = this.holder(a.value);
      if (holder !== undefined && holder !== id) throw new AliasConflictError(a.value, holder);
      if (holder === undefined && this.db.statement(DEVICE_EXISTS).get(a.value) !== undefined)
        throw new AliasConflictError(a.value, a.value);
      if (holder === undefined) added++;
      claimed.push(a);
    }
    const held = this.db.statement(COUNT_ALIASES).pluck().get(id) as number;
    if (held + added > limit) throw tooManyAliases(held + added);
    return claimed;
  }

  private insertAliases(id: string, aliases: readonly Alias[]): void {
    const insert = this.db.statement(INSERT_ALIAS);
    for (const a of aliases) insert.run(a.value, a.type, id);
  }

  get(idOrAlias: string): Promise<Device> {
    return this.db.read(() => {
      const row = this.db.statement<DeviceRow>(GET_BY_ID_OR_ALIAS).get({ v: idOrAlias });
      if (!row) throw new DeviceNotFoundError(idOrAlias);
      return deviceFromRow(row);
    });
  }

  record(idOrAlias: string): Promise<DeviceRecord> {
    return this.db.read(() => {
      const row = this.db.statement<DeviceRecord>(RECORD_BY_ID_OR_ALIAS).get({ v: idOrAlias });
      if (!row) throw new DeviceNotFoundError(idOrAlias);
      return row;
    });
  }

  resolveId(idOrAlias: string): Promise<string> {
    return this.db.read(() => this.holder(idOrAlias) ?? idOrAlias);
  }

  editStep(id: string, patch: DevicePatch, at: number): Step<Change<Device>> {
    return this.db.step(() => {
      const before = this.db.statement<DeviceRow>(GET).get(id);
      if (!before) throw new DeviceNotFoundError(id);
      this.db.statement(EDIT).run({
        id,
        at,
        ip: patch.ip ?? null,
        name: patch.name ?? null,
        userdata: patch.userdata ?? null,
        pinName: flag(patch.pinned?.name),
        pinUserdata: flag(patch.pinned?.userdata),
      });
      return {
        before: deviceFromRow(before),
        after: deviceFromRow(this.db.statement<DeviceRow>(GET).get(id)!),
      };
    });
  }

  deleteStep(id: string): Step<Device> {
    return this.db.step(() => {
      const row = this.db.statement<DeviceRow>(GET).get(id);
      if (!row) throw new DeviceNotFoundError(id);
      this.db.statement(DELETE).run(id);
      this.db.statement(DELETE_HISTORY).run(id);
      this.db.statement(DELETE_ALIASES).run(id);
      return deviceFromRow(row);
    });
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.db.read(() => this.db.statement<HistoryEntry>(HISTORY).all(id));
  }

  aliases(id: string): Promise<Alias[]> {
    return this.db.read(() => this.db.statement<AliasRow>(ALIASES).all(id).map(aliasFromRow));
  }

  addAliasesStep(id: string, aliases: readonly Alias[], limit: number): Step<Change<Alias[]>> {
    return this.db.step(() => {
      if (this.db.statement(DEVICE_EXISTS).get(id) === undefined) throw new DeviceNotFoundError(id);
      const before = this.aliasesNow(id);
      this.insertAliases(id, this.checkAliases(id, aliases, limit));
      return { before, after: this.aliasesNow(id) };
    });
  }

  removeAliasStep(id: string, alias: Alias): Step<Change<Alias[]>> {
    return this.db.step(() => {
      const before = this.aliasesNow(id);
      if (this.db.statement(DELETE_ALIAS).run(id, alias.type, alias.value).changes === 0) {
        if (this.db.statement(DEVICE_EXISTS).get(id) === undefined)
          throw new DeviceNotFoundError(id);
        throw new AliasNotFoundError(id, alias.type, alias.value);
      }
      return { before, after: this.aliasesNow(id) };
    });
  }

  private aliasesNow(id: string): Alias[] {
    return this.db.statement<AliasRow>(ALIASES).all(id).map(aliasFromRow);
  }

  importDeviceStep(
    device: Device,
    history: HistoryEntry[],
    aliases: readonly Alias[] = [],
  ): Step<{ before: Device | undefined; after: Device }> {
    return this.db.step(() => {
      const holder = this.holder(device.id);
      if (holder !== undefined && holder !== device.id)
        throw new AliasConflictError(device.id, holder);
      // An import may bring more aliases than a request could add: the limit is the API's.
      const claimed = this.checkAliases(device.id, aliases, Number.MAX_SAFE_INTEGER);
      // A replaced device keeps its triggers (as an upsert on PostgreSQL does).
      const old = this.db.statement<DeviceRow>(GET).get(device.id);
      const lastTriggerId = old?.last_trigger_id ?? null;
      this.db.statement(DELETE).run(device.id);
      this.db.statement(DELETE_HISTORY).run(device.id);
      this.db.statement(DELETE_ALIASES).run(device.id);
      this.db.statement(IMPORT).run({
        ...device,
        lastTriggerId,
        pinName: device.pinned.name ? 1 : 0,
        pinUserdata: device.pinned.userdata ? 1 : 0,
        reportedName: device.reported.name,
        reportedUserdata: device.reported.userdata,
      });
      this.insertAliases(device.id, claimed);
      // history is newest first; seq counts down from the registration count.
      const insert = this.db.statement(INSERT_HISTORY);
      history.forEach((h, i) =>
        insert.run(device.id, device.registrations - i, h.at, h.ip, h.source),
      );
      return {
        before: old && deviceFromRow(old),
        after: deviceFromRow(this.db.statement<DeviceRow>(GET).get(device.id)!),
      };
    });
  }
}
