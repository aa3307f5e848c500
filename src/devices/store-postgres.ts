/** The device store on PostgreSQL (see store.ts). */
import { int, lit, refuseNul, type PostgresDatabase } from '../db/postgres/database.js';
import type { PgStatementsStep } from '../db/unit-of-work.js';
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

export class PostgresDeviceStore implements DeviceStore {
  constructor(private readonly db: PostgresDatabase) {}

  /**
   * Statements of one simple-protocol text (values inlined as escaped literals), each still a
   * statement of its own, so the ones after the device upsert — which takes the device's row
   * lock — see what other transactions committed meanwhile.
   */
  registerStep(reg: Registration, historyLimit: number): PgStatementsStep<RegisteredDevice> {
    refuseNul(reg.id, reg.ip, reg.name, reg.userdata, reg.source);
    const id = lit(reg.id);
    const at = int(reg.at);
    const statements = [
      `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
       VALUES (${id}, ${lit(reg.ip)}, ${lit(reg.name)}, ${lit(reg.userdata)}, ${at}, ${at}, ${at}, 1, ${lit(reg.source)})
       ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, previous_ip = d.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
         last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at,
         registrations = d.registrations + 1, last_source = EXCLUDED.last_source
       RETURNING d.*, (d.xmax = 0) AS created`,
    ];
    if (historyLimit > 0) {
      statements.push(
        `INSERT INTO history (device_id, seq, at, ip, source)
         SELECT id, registrations, ${at}, ${lit(reg.ip)}, ${lit(reg.source)} FROM devices WHERE id = ${id}
         ON CONFLICT (device_id, seq) DO UPDATE SET at = EXCLUDED.at, ip = EXCLUDED.ip, source = EXCLUDED.source`,
        `DELETE FROM history WHERE device_id = ${id}
           AND seq <= (SELECT registrations FROM devices WHERE id = ${id}) - ${int(historyLimit)}`,
      );
    }
    return {
      engine: 'postgres',
      statements,
      parse: (results) => {
        const row = results[0]!.rows[0] as DeviceRow & { created: boolean };
        return { created: row.created, device: deviceFromRow(row) };
      },
    };
  }

  async get(id: string): Promise<Device> {
    const { rows } = await this.db.query<DeviceRow>('SELECT * FROM devices WHERE id = $1', [id]);
    if (!rows[0]) throw new DeviceNotFoundError(id);
    return deviceFromRow(rows[0]);
  }

  async edit(id: string, fields: DeviceFields, at: number): Promise<Device> {
    refuseNul(fields.ip, fields.name, fields.userdata);
    return await this.db.write(id, async (c) => {
      const { rows } = await c.query(
        'UPDATE devices SET ip = $2, name = $3, userdata = $4, updated_at = $5 WHERE id = $1 RETURNING *',
        [id, fields.ip, fields.name, fields.userdata, at],
      );
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return deviceFromRow(rows[0] as DeviceRow);
    });
  }

  delete(id: string): Promise<Device> {
    return this.db.write(id, async (c) => {
      const { rows } = await c.query(
        `WITH h AS (DELETE FROM history WHERE device_id = $1)
         DELETE FROM devices WHERE id = $1 RETURNING *`,
        [id],
      );
      if (!rows[0]) throw new DeviceNotFoundError(id);
      return deviceFromRow(rows[0] as DeviceRow);
    });
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const { rows } = await this.db.query<{ at: string; ip: string; source: string }>(
      'SELECT at, ip, source FROM history WHERE device_id = $1 ORDER BY seq DESC',
      [id],
    );
    return rows.map((r) => ({ at: Number(r.at), ip: r.ip, source: r.source }));
  }

  async importDevice(device: Device, history: HistoryEntry[]): Promise<'created' | 'replaced'> {
    refuseNul(device.id, device.ip, device.name, device.userdata, device.lastSource);
    return await this.db.write(device.id, async (c) => {
      const { rows } = await c.query(
        `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, previous_ip = d.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
           first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at,
           registrations = EXCLUDED.registrations, last_source = EXCLUDED.last_source
         RETURNING (d.xmax = 0) AS created`,
        [
          device.id,
          device.ip,
          device.name,
          device.userdata,
          device.firstSeen,
          device.lastSeen,
          device.updatedAt,
          device.registrations,
          device.lastSource,
        ],
      );
      // Two statements: in one (a DELETE in a WITH), the INSERT would not see the deletion and
      // a replaced device's (device_id, seq) keys would collide with its old rows.
      await c.query('DELETE FROM history WHERE device_id = $1', [device.id]);
      // history is newest first; seq counts down from the registration count.
      await c.query(
        `INSERT INTO history (device_id, seq, at, ip, source)
         SELECT $1, s, a, i, src FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) AS h(s, a, i, src)`,
        [
          device.id,
          history.map((_, i) => device.registrations - i),
          history.map((h) => h.at),
          history.map((h) => h.ip),
          history.map((h) => h.source),
        ],
      );
      return (rows[0] as { created: boolean }).created ? 'created' : 'replaced';
    });
  }
}
