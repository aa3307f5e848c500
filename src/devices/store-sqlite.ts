/** The device store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import { DeviceNotFoundError } from '../errors.js';
import { deviceFromRow, type DeviceRow } from './rows.js';
import type {
  Device,
  DeviceFields,
  DeviceStore,
  HistoryEntry,
  RegisteredDevice,
  Registration,
} from './store.js';

const GET = 'SELECT * FROM devices WHERE id = ?';
const INSERT_ON_REGISTER = `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
  VALUES (@id, @ip, @name, @userdata, @at, @at, @at, 1, @source) RETURNING *`;
// previous_ip: the ip before this registration (the SET reads the row as it was).
const UPDATE_ON_REGISTER = `UPDATE devices SET ip = @ip, previous_ip = ip, name = @name, userdata = @userdata, last_seen = @at, updated_at = @at,
  registrations = registrations + 1, last_source = @source WHERE id = @id RETURNING *`;
const EDIT =
  'UPDATE devices SET ip = @ip, name = @name, userdata = @userdata, updated_at = @at WHERE id = @id';
const DELETE = 'DELETE FROM devices WHERE id = ?';
const DELETE_HISTORY = 'DELETE FROM history WHERE device_id = ?';
const INSERT_HISTORY =
  'INSERT OR REPLACE INTO history (device_id, seq, at, ip, source) VALUES (?, ?, ?, ?, ?)';
const TRIM_HISTORY = 'DELETE FROM history WHERE device_id = ? AND seq <= ?';
const HISTORY = 'SELECT at, ip, source FROM history WHERE device_id = ? ORDER BY seq DESC';
const IMPORT = `INSERT INTO devices (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source, last_trigger_id)
  VALUES (@id, @ip, @name, @userdata, @firstSeen, @lastSeen, @updatedAt, @registrations, @lastSource, @lastTriggerId)`;

export class SqliteDeviceStore implements DeviceStore {
  constructor(private readonly db: SqliteDatabase) {}

  registerStep(reg: Registration, historyLimit: number): Step<RegisteredDevice> {
    return this.db.step(() => {
      const params = {
        id: reg.id,
        ip: reg.ip,
        name: reg.name,
        userdata: reg.userdata,
        at: reg.at,
        source: reg.source,
      };
      // One statement in the common case (a known device re-registers): the upsert returns the row.
      const updated = this.db.statement<DeviceRow>(UPDATE_ON_REGISTER).get(params);
      const created = updated === undefined;
      const row = updated ?? this.db.statement<DeviceRow>(INSERT_ON_REGISTER).get(params)!;
      if (historyLimit > 0) {
        const count = Number(row.registrations);
        this.db.statement(INSERT_HISTORY).run(reg.id, count, reg.at, reg.ip, reg.source);
        // History seq runs 1..registrations: nothing to trim until it exceeds the limit.
        if (count > historyLimit) this.db.statement(TRIM_HISTORY).run(reg.id, count - historyLimit);
      }
      return { created, device: deviceFromRow(row) };
    });
  }

  get(id: string): Promise<Device> {
    return this.db.read(() => {
      const row = this.db.statement<DeviceRow>(GET).get(id);
      if (!row) throw new DeviceNotFoundError(id);
      return deviceFromRow(row);
    });
  }

  edit(id: string, fields: DeviceFields, at: number): Promise<Device> {
    return this.db.write(() => {
      if (this.db.statement(EDIT).run({ id, ...fields, at }).changes === 0)
        throw new DeviceNotFoundError(id);
      return deviceFromRow(this.db.statement<DeviceRow>(GET).get(id)!);
    });
  }

  delete(id: string): Promise<Device> {
    return this.db.write(() => {
      const row = this.db.statement<DeviceRow>(GET).get(id);
      if (!row) throw new DeviceNotFoundError(id);
      this.db.statement(DELETE).run(id);
      this.db.statement(DELETE_HISTORY).run(id);
      return deviceFromRow(row);
    });
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.db.read(() => this.db.statement<HistoryEntry>(HISTORY).all(id));
  }

  importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'> {
    return this.db.write(() => {
      // A replaced device keeps its triggers (as an upsert on PostgreSQL does).
      const lastTriggerId =
        this.db.statement<DeviceRow>(GET).get(device.id)?.last_trigger_id ?? null;
      const existed = this.db.statement(DELETE).run(device.id).changes > 0;
      this.db.statement(DELETE_HISTORY).run(device.id);
      this.db.statement(IMPORT).run({ ...device, lastTriggerId });
      // history is newest first; seq counts down from the registration count.
      const insert = this.db.statement(INSERT_HISTORY);
      history.forEach((h, i) =>
        insert.run(device.id, device.registrations - i, h.at, h.ip, h.source),
      );
      return existed ? 'replaced' : 'created';
    });
  }
}
