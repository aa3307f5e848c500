/** The device store on PostgreSQL (see store.ts). */
import { int, lit, refuseNul, type PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep, PgQueryable, PostgresStep } from '../db/unit-of-work.js';
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

export class PostgresDeviceStore implements DeviceStore {
  constructor(private readonly db: PostgresDatabase) {}

  /**
   * Statements of one simple-protocol text (values inlined as escaped literals), each still a
   * statement of its own, so the ones after the device upsert — which takes the device's row
   * lock — see what other transactions committed meanwhile. A registration that brings aliases
   * runs as a function instead: it checks them before it writes.
   */
  registerStep(reg: Registration, historyLimit: number): PostgresStep<RegisteredDevice> {
    refuseNul(reg.id, reg.ip, reg.name ?? '', reg.userdata ?? '', reg.source);
    // The service resolved the id; an alias claimed since then still leads to its holder.
    const id = `coalesce((SELECT device_id FROM aliases WHERE value = ${lit(reg.id)}), ${lit(reg.id)})`;
    const at = int(reg.at);
    const name = reg.name === undefined ? 'NULL::text' : lit(reg.name);
    const userdata = reg.userdata === undefined ? 'NULL::text' : lit(reg.userdata);
    // An omitted field keeps its value; a pinned one only records what the device reported.
    const statements = [
      `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source,
         reported_name, reported_userdata)
       VALUES (${id}, ${lit(reg.ip)}, coalesce(${name}, ''), coalesce(${userdata}, ''), ${at}, ${at}, ${at}, 1, ${lit(reg.source)},
         ${name}, ${userdata})
       ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, previous_ip = d.ip,
         name = CASE WHEN EXCLUDED.reported_name IS NULL OR d.pinned_name = 1 THEN d.name ELSE EXCLUDED.reported_name END,
         userdata = CASE WHEN EXCLUDED.reported_userdata IS NULL OR d.pinned_userdata = 1 THEN d.userdata ELSE EXCLUDED.reported_userdata END,
         reported_name = coalesce(EXCLUDED.reported_name, d.reported_name),
         reported_userdata = coalesce(EXCLUDED.reported_userdata, d.reported_userdata),
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
    const parse = (rows: unknown[]): RegisteredDevice => {
      const row = rows[0] as DeviceRow & { created: boolean };
      return { created: row.created, device: deviceFromRow(row) };
    };
    const aliases = reg.aliases ?? [];
    if (aliases.length === 0) {
      return { engine: 'postgres', statements, parse: (results) => parse(results[0]!.rows) };
    }
    return {
      engine: 'postgres',
      run: async (c) => {
        const target = await resolve(c, reg.id);
        const claimed = await checkAliases(c, target, aliases, ALIASES_PER_DEVICE_MAX);
        const results = [];
        for (const s of statements) results.push(await c.query(s));
        await insertAliases(c, target, claimed);
        return parse(results[0]!.rows);
      },
    };
  }

  async get(idOrAlias: string): Promise<Device> {
    const { rows } = await this.db.query<DeviceRow>(
      `SELECT * FROM devices WHERE id = $1
       UNION ALL SELECT d.* FROM aliases a JOIN devices d ON d.id = a.device_id
       WHERE a.value = $1 AND NOT EXISTS (SELECT 1 FROM devices WHERE id = $1) LIMIT 1`,
      [idOrAlias],
    );
    if (!rows[0]) throw new DeviceNotFoundError(idOrAlias);
    return deviceFromRow(rows[0]);
  }

  async record(idOrAlias: string): Promise<DeviceRecord> {
    const { rows } = await this.db.query<DeviceRecord>(
      `SELECT id, ip, name, userdata FROM devices WHERE id = $1
       UNION ALL SELECT d.id, d.ip, d.name, d.userdata FROM aliases a JOIN devices d ON d.id = a.device_id
       WHERE a.value = $1 AND NOT EXISTS (SELECT 1 FROM devices WHERE id = $1) LIMIT 1`,
      [idOrAlias],
    );
    if (!rows[0]) throw new DeviceNotFoundError(idOrAlias);
    return rows[0];
  }

  async resolveId(idOrAlias: string): Promise<string> {
    const { rows } = await this.db.query<{ device_id: string }>(
      'SELECT device_id FROM aliases WHERE value = $1',
      [idOrAlias],
    );
    return rows[0]?.device_id ?? idOrAlias;
  }

  /** FOR UPDATE: the before image is the row this edit changes, not an older read. */
  editStep(id: string, patch: DevicePatch, at: number): PgFunctionStep<Change<Device>> {
    refuseNul(patch.ip ?? '', patch.name ?? '', patch.userdata ?? '');
    const flag = (b: boolean | undefined) => (b === undefined ? null : b ? 1 : 0);
    return {
      engine: 'postgres',
      run: async (c) => {
        const before = await lockedDevice(c, id);
        const { rows } = await c.query(
          `UPDATE devices SET ip = coalesce($2, ip), name = coalesce($3, name), userdata = coalesce($4, userdata),
             pinned_name = coalesce($5, pinned_name), pinned_userdata = coalesce($6, pinned_userdata), updated_at = $7
           WHERE id = $1 RETURNING *`,
          [
            id,
            patch.ip ?? null,
            patch.name ?? null,
            patch.userdata ?? null,
            flag(patch.pinned?.name),
            flag(patch.pinned?.userdata),
            at,
          ],
        );
        return { before, after: deviceFromRow(rows[0] as DeviceRow) };
      },
    };
  }

  deleteStep(id: string): PgFunctionStep<Device> {
    return {
      engine: 'postgres',
      run: async (c) => {
        const { rows } = await c.query(
          `WITH h AS (DELETE FROM history WHERE device_id = $1), a AS (DELETE FROM aliases WHERE device_id = $1)
           DELETE FROM devices WHERE id = $1 RETURNING *`,
          [id],
        );
        if (!rows[0]) throw new DeviceNotFoundError(id);
        return deviceFromRow(rows[0] as DeviceRow);
      },
    };
  }

  async history(id: string): Promise<HistoryEntry[]> {
    const { rows } = await this.db.query<{ at: string; ip: string; source: string }>(
      'SELECT at, ip, source FROM history WHERE device_id = $1 ORDER BY seq DESC',
      [id],
    );
    return rows.map((r) => ({ at: Number(r.at), ip: r.ip, source: r.source }));
  }

  async aliases(id: string): Promise<Alias[]> {
    const { rows } = await this.db.query<AliasRow>(
      'SELECT type, value FROM aliases WHERE device_id = $1 ORDER BY value',
      [id],
    );
    return rows.map(aliasFromRow);
  }

  addAliasesStep(
    id: string,
    aliases: readonly Alias[],
    limit: number,
  ): PgFunctionStep<Change<Alias[]>> {
    return {
      engine: 'postgres',
      run: async (c) => {
        // The row lock orders this with the device's registrations and other alias edits.
        await lockedDevice(c, id);
        const before = await aliasesOf(c, id);
        await insertAliases(c, id, await checkAliases(c, id, aliases, limit));
        return { before, after: await aliasesOf(c, id) };
      },
    };
  }

  removeAliasStep(id: string, alias: Alias): PgFunctionStep<Change<Alias[]>> {
    return {
      engine: 'postgres',
      run: async (c) => {
        await lockedDevice(c, id);
        const before = await aliasesOf(c, id);
        const { rowCount } = await c.query(
          'DELETE FROM aliases WHERE device_id = $1 AND type = $2 AND value = $3',
          [id, alias.type, alias.value],
        );
        if (rowCount === 0) throw new AliasNotFoundError(id, alias.type, alias.value);
        return { before, after: await aliasesOf(c, id) };
      },
    };
  }

  importDeviceStep(
    device: Device,
    history: HistoryEntry[],
    aliases: readonly Alias[] = [],
  ): PgFunctionStep<{ before: Device | undefined; after: Device }> {
    refuseNul(device.id, device.ip, device.name, device.userdata, device.lastSource);
    refuseNul(device.reported.name ?? '', device.reported.userdata ?? '');
    return {
      engine: 'postgres',
      run: async (c) => {
        const holder = await resolve(c, device.id);
        if (holder !== device.id) throw new AliasConflictError(device.id, holder);
        // An import may bring more aliases than a request could add: the limit is the API's.
        const claimed = await checkAliases(c, device.id, aliases, Number.MAX_SAFE_INTEGER);
        const old = await c.query('SELECT * FROM devices WHERE id = $1 FOR UPDATE', [device.id]);
        const { rows } = await c.query(
          `INSERT INTO devices AS d (id, ip, name, userdata, first_seen, last_seen, updated_at, registrations, last_source,
           pinned_name, pinned_userdata, reported_name, reported_userdata)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, name = EXCLUDED.name, userdata = EXCLUDED.userdata,
           first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at,
           registrations = EXCLUDED.registrations, last_source = EXCLUDED.last_source,
           pinned_name = EXCLUDED.pinned_name, pinned_userdata = EXCLUDED.pinned_userdata,
           reported_name = EXCLUDED.reported_name, reported_userdata = EXCLUDED.reported_userdata
         RETURNING d.*`,
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
            device.pinned.name ? 1 : 0,
            device.pinned.userdata ? 1 : 0,
            device.reported.name,
            device.reported.userdata,
          ],
        );
        await c.query('DELETE FROM aliases WHERE device_id = $1', [device.id]);
        await insertAliases(c, device.id, claimed);
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
        const before = old.rows[0] as DeviceRow | undefined;
        return {
          before: before && deviceFromRow(before),
          after: deviceFromRow(rows[0] as DeviceRow),
        };
      },
    };
  }
}

/** The device's row, locked for the rest of the transaction; DeviceNotFoundError without one. */
async function lockedDevice(c: PgQueryable, id: string): Promise<Device> {
  const { rows } = await c.query('SELECT * FROM devices WHERE id = $1 FOR UPDATE', [id]);
  if (!rows[0]) throw new DeviceNotFoundError(id);
  return deviceFromRow(rows[0] as DeviceRow);
}

async function aliasesOf(c: PgQueryable, id: string): Promise<Alias[]> {
  const { rows } = await c.query(
    'SELECT type, value FROM aliases WHERE device_id = $1 ORDER BY value',
    [id],
  );
  return (rows as AliasRow[]).map(aliasFromRow);
}

async function resolve(c: PgQueryable, idOrAlias: string): Promise<string> {
  const { rows } = await c.query('SELECT device_id FROM aliases WHERE value = $1', [idOrAlias]);
  return (rows[0] as { device_id: string } | undefined)?.device_id ?? idOrAlias;
}

/**
 * Of `aliases`, those `id` may claim (its own primary id dropped): AliasConflictError when
 * another device holds one or has it as its primary id, too_many_aliases past `limit`.
 */
async function checkAliases(
  c: PgQueryable,
  id: string,
  aliases: readonly Alias[],
  limit: number,
): Promise<Alias[]> {
  const claimed = aliases.filter((a) => a.value !== id);
  if (claimed.length === 0) return [];
  const values = claimed.map((a) => a.value);
  const { rows } = await c.query(
    `SELECT value, device_id AS holder FROM aliases WHERE value = ANY($1::text[])
     UNION ALL SELECT id, id FROM devices WHERE id = ANY($1::text[])`,
    [values],
  );
  const holders = new Map(
    (rows as { value: string; holder: string }[]).map((r) => [r.value, r.holder]),
  );
  for (const a of claimed) {
    const holder = holders.get(a.value);
    if (holder !== undefined && holder !== id) throw new AliasConflictError(a.value, holder);
  }
  const added = claimed.filter((a) => !holders.has(a.value)).length;
  const count = await c.query('SELECT count(*) AS n FROM aliases WHERE device_id = $1', [id]);
  const held = Number((count.rows[0] as { n: string }).n);
  if (held + added > limit) throw tooManyAliases(held + added);
  return claimed;
}

/** Inserts checked aliases; one another transaction claimed meanwhile is still a conflict. */
async function insertAliases(c: PgQueryable, id: string, aliases: readonly Alias[]): Promise<void> {
  if (aliases.length === 0) return;
  const { rows } = await c.query(
    `INSERT INTO aliases AS a (value, type, device_id)
     SELECT * FROM unnest($1::text[], $2::text[]) AS n(value, type), (SELECT $3::text) AS d(device_id)
     ON CONFLICT (value) DO UPDATE SET type = EXCLUDED.type WHERE a.device_id = EXCLUDED.device_id
     RETURNING value`,
    [aliases.map((a) => a.value), aliases.map((a) => a.type), id],
  );
  if (rows.length === aliases.length) return;
  const stored = new Set((rows as { value: string }[]).map((r) => r.value));
  const lost = aliases.find((a) => !stored.has(a.value))!;
  throw new AliasConflictError(lost.value, await resolve(c, lost.value));
}
