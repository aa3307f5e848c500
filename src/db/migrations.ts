/**
 * Versioned schema migrations, one list for both engines. Each step has the SQL for SQLite and
 * for PostgreSQL; they differ only where the engines do (identity columns, WITHOUT ROWID, and
 * one index whose cost differs between them: see version 3).
 * Applied in order at start-up; the applied version is kept in schema_version.
 * Times are BIGINT milliseconds since the epoch in both engines.
 */
import { ConfigError } from '../errors.js';

export interface Migration {
  version: number;
  description: string;
  sqlite: string;
  postgres: string;
}

/** What a registration sends: kept by a device and by a registration waiting for approval. */
const registeredColumns = `
  id TEXT PRIMARY KEY,
  ip TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  userdata TEXT NOT NULL DEFAULT ''`;

const devicesColumns = `${registeredColumns},
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  registrations BIGINT NOT NULL DEFAULT 0,
  last_source TEXT NOT NULL DEFAULT ''`;

const historyColumns = `
  device_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  at BIGINT NOT NULL,
  ip TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)`;

const triggerColumns = `
  device_id TEXT NOT NULL,
  ip TEXT NOT NULL,
  key TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  next_attempt_at BIGINT NOT NULL,
  lease_until BIGINT,
  lease_token TEXT,
  last_error TEXT,
  delivered_at BIGINT,
  updated_at BIGINT NOT NULL`;

/** src/token-grants/store.ts: `token` is the SHA-256 (hex) of the enrollment token. */
const enrollmentColumns = `
  token TEXT NOT NULL,
  device_id TEXT NOT NULL,
  token_name TEXT NOT NULL,
  enrolled_at BIGINT NOT NULL,
  PRIMARY KEY (token, device_id)`;

const pendingColumns = `${registeredColumns},
  source TEXT NOT NULL DEFAULT '',
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  registrations BIGINT NOT NULL`;

const rejectedColumns = `
  id TEXT PRIMARY KEY,
  at BIGINT NOT NULL,
  ip TEXT NOT NULL,
  source TEXT NOT NULL`;

const triggerIndexes = `
CREATE INDEX triggers_due ON triggers (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX triggers_device ON triggers (device_id, id);
CREATE INDEX triggers_state ON triggers (state, id);
CREATE INDEX devices_last_seen ON devices (last_seen);`;

/**
 * PostgreSQL: text compares and sorts byte-wise (collation "C"), like SQLite's BINARY, whatever
 * the database's locale; ids list and page in the same order on both engines.
 */
function byteOrder(columns: string): string {
  return columns.replace(/ TEXT\b/g, ' TEXT COLLATE "C"');
}

/** Migration 3 on both engines; the backfill runs while triggers_device still exists. */
const latestTriggerLinks = `
ALTER TABLE devices ADD COLUMN last_trigger_id BIGINT;
ALTER TABLE triggers ADD COLUMN prev_id BIGINT;
UPDATE devices SET last_trigger_id = (SELECT max(t.id) FROM triggers t WHERE t.device_id = devices.id)
  WHERE id IN (SELECT device_id FROM triggers);
UPDATE triggers SET prev_id = (SELECT max(o.id) FROM triggers o
  WHERE o.device_id = triggers.device_id AND o.id < triggers.id);`;

/**
 * Migration 6: aliases, pins and the last reported values, and bare 12-hex ids moved to their
 * canonical MAC (`aabbccddeeff` → `aa:bb:cc:dd:ee:ff`), with their history and triggers, when no
 * device holds that MAC yet and no other id differs from it only by case. The devices left (two
 * devices for one MAC) are named in a warning at start (see the device read model's
 * bareMacIds): the operator merges them.
 */
function aliasesAndPins(engine: 'sqlite' | 'postgres'): string {
  const isBare = (col: string) =>
    engine === 'sqlite'
      ? `(length(${col}) = 12 AND ${col} NOT GLOB '*[^0-9A-Fa-f]*')`
      : `(${col} ~ '^[0-9A-Fa-f]{12}$')`;
  const canon = (col: string) =>
    engine === 'sqlite'
      ? `lower(${[1, 3, 5, 7, 9, 11].map((i) => `substr(${col}, ${i}, 2)`).join(" || ':' || ")})`
      : `lower(regexp_replace(${col}, '^(..)(..)(..)(..)(..)(..)$', '\\1:\\2:\\3:\\4:\\5:\\6'))`;
  // A device id `col` that moves: bare, its MAC free, and alone among ids that differ by case.
  const moves = (col: string) => `${isBare(col)}
    AND ${col} IN (SELECT id FROM devices)
    AND ${canon(col)} NOT IN (SELECT id FROM devices)
    AND (SELECT count(*) FROM devices o WHERE lower(o.id) = lower(${col})) = 1`;
  const text = engine === 'sqlite' ? 'TEXT' : 'TEXT COLLATE "C"';
  return `
ALTER TABLE devices ADD COLUMN pinned_name INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN pinned_userdata INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN reported_name TEXT;
ALTER TABLE devices ADD COLUMN reported_userdata TEXT;
CREATE TABLE aliases (value ${text} PRIMARY KEY, type TEXT NOT NULL, device_id ${text} NOT NULL)${engine === 'sqlite' ? ' WITHOUT ROWID' : ''};
CREATE INDEX aliases_device ON aliases (device_id);
UPDATE history SET device_id = ${canon('device_id')} WHERE ${moves('history.device_id')};
UPDATE triggers SET device_id = ${canon('device_id')} WHERE ${moves('triggers.device_id')};
UPDATE devices SET id = ${canon('id')} WHERE ${moves('devices.id')};`;
}

/**
 * Migration 7. devices.previous_ip: the ip before the latest registration, set by the
 * registration's upsert (null for a device created by it). trigger_deliveries: one row per
 * device id, written in the transaction that marks a trigger delivered.
 */
function deliveredIps(text: string): string {
  return `
ALTER TABLE devices ADD COLUMN previous_ip ${text};
ALTER TABLE triggers ADD COLUMN type ${text} NOT NULL DEFAULT 'registered';
ALTER TABLE triggers ADD COLUMN previous_ip ${text};
CREATE TABLE trigger_deliveries (
  device_id ${text} PRIMARY KEY,
  ip ${text} NOT NULL,
  trigger_id BIGINT NOT NULL,
  delivered_at BIGINT NOT NULL);`;
}

/** Migration 8 (src/reports/). */
function reports(text: string, tableOptions: string): string {
  return `
CREATE TABLE reports (
  device_id ${text} NOT NULL,
  seq BIGINT NOT NULL,
  at BIGINT NOT NULL,
  type ${text} NOT NULL,
  message ${text} NOT NULL,
  PRIMARY KEY (device_id, seq))${tableOptions};`;
}

/**
 * Migration 10. triggers.report_type/report_message: the progress report a `report` trigger
 * forwards (--report-forward). enrollment_pending.aliases: the aliases of a pending
 * registration (a JSON array of {type, value}), which rules match and approval keeps.
 */
function forwardsAndPendingAliases(text: string): string {
  return `
ALTER TABLE triggers ADD COLUMN report_type ${text};
ALTER TABLE triggers ADD COLUMN report_message ${text};
ALTER TABLE enrollment_pending ADD COLUMN aliases ${text} NOT NULL DEFAULT '[]';`;
}

/**
 * Migration 9: the audit log of admin writes (src/audit/). `seq` is the paging cursor; the
 * images are JSON text; device_id is NULL for a whole-registry action (an import) and stays
 * after the device is deleted, so a deleted device's trail is still found by its id.
 */
const auditColumns = `
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  source TEXT NOT NULL,
  action TEXT NOT NULL,
  via TEXT NOT NULL,
  device_id TEXT,
  before TEXT,
  after TEXT,
  detail TEXT`;
const auditIndexes = `
CREATE INDEX audit_log_device ON audit_log (device_id, seq);
CREATE INDEX audit_log_at ON audit_log (at);`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'devices, registration history, trigger outbox',
    sqlite: `
CREATE TABLE devices (${devicesColumns}) WITHOUT ROWID;
CREATE TABLE history (${historyColumns}) WITHOUT ROWID;
CREATE TABLE triggers (id INTEGER PRIMARY KEY AUTOINCREMENT, ${triggerColumns});
${triggerIndexes}`,
    postgres: `
CREATE TABLE devices (${byteOrder(devicesColumns)});
CREATE TABLE history (${byteOrder(historyColumns)});
CREATE TABLE triggers (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ${byteOrder(triggerColumns)});
${triggerIndexes}`,
  },
  {
    version: 2,
    description:
      'pending triggers by device: per-device order checks and coalescing stay O(1) for a device with many finished triggers',
    sqlite: `CREATE INDEX triggers_device_pending ON triggers (device_id, id) WHERE state = 'pending';`,
    postgres: `CREATE INDEX triggers_device_pending ON triggers (device_id, id) WHERE state = 'pending';`,
  },
  {
    version: 3,
    description:
      "each device points at its latest trigger and each trigger at the device's previous one: a device's triggers are found without an index over every trigger by device",
    // SQLite: the index triggers_device took one random page write per registration (device ids
    // are random), which cost a registration about a third of its time once a manager is set.
    sqlite: `${latestTriggerLinks}
DROP INDEX triggers_device;`,
    // PostgreSQL keeps triggers_device: its per-device order check uses it.
    postgres: latestTriggerLinks,
  },
  {
    version: 4,
    description:
      'which device each enrollment token enrolled (its use counter), keyed by the token hash',
    sqlite: `CREATE TABLE token_enrollments (${enrollmentColumns}) WITHOUT ROWID;`,
    postgres: `CREATE TABLE token_enrollments (${byteOrder(enrollmentColumns)});`,
  },
  {
    version: 5,
    description:
      'enrollment: registrations of unknown devices waiting for approval, and rejected ids (kept out of devices)',
    sqlite: `
CREATE TABLE enrollment_pending (${pendingColumns}) WITHOUT ROWID;
CREATE TABLE enrollment_rejected (${rejectedColumns}) WITHOUT ROWID;`,
    postgres: `
CREATE TABLE enrollment_pending (${byteOrder(pendingColumns)});
CREATE TABLE enrollment_rejected (${byteOrder(rejectedColumns)});`,
  },
  {
    version: 6,
    description:
      'device aliases (one device per value), pinned fields with the values the device reported, bare 12-hex ids moved to their canonical MAC',
    sqlite: aliasesAndPins('sqlite'),
    postgres: aliasesAndPins('postgres'),
  },
  {
    version: 7,
    description:
      "what a trigger tells the manager (its type, the device's ip before it) and the ip last delivered per device (--trigger-on ip-change), kept apart from the triggers so that retention never forgets it",
    sqlite: deliveredIps('TEXT'),
    postgres: deliveredIps('TEXT COLLATE "C"'),
  },
  {
    version: 8,
    description:
      "devices' progress reports (POST /ztp/report/{id}): the newest of each device, by device and seq",
    sqlite: reports('TEXT', ' WITHOUT ROWID'),
    postgres: reports('TEXT COLLATE "C"', ''),
  },
  {
    version: 9,
    description:
      'the audit log: every admin write (who, when, from where, the device before and after), by seq and by device',
    sqlite: `
CREATE TABLE audit_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, ${auditColumns});${auditIndexes}`,
    postgres: `
CREATE TABLE audit_log (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ${byteOrder(auditColumns)});${auditIndexes}`,
  },
  {
    version: 10,
    description:
      'progress reports forwarded to the manager (--report-forward) as triggers of their own type, and the aliases of a pending registration',
    sqlite: forwardsAndPendingAliases('TEXT'),
    postgres: forwardsAndPendingAliases('TEXT COLLATE "C"'),
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * For a command that reads an existing registry (`ztp export`) and so must neither create nor
 * migrate one: refuses a database without the ztp schema (`version` undefined: a mistyped
 * database would otherwise be exported as an empty registry) or with another version of it.
 */
export function requireCurrentSchema(version: number | undefined, database: string): void {
  if (version === undefined)
    throw new ConfigError(`${database} holds no ztp registry (no ztp schema); check --database`);
  if (version < LATEST_SCHEMA_VERSION)
    throw new ConfigError(
      `${database} has an older ztp schema (version ${version}, this build ${LATEST_SCHEMA_VERSION}): start 'ztp serve' of this build on it once to upgrade it, or use the ztp version that wrote it`,
    );
  if (version > LATEST_SCHEMA_VERSION)
    throw new ConfigError(
      `${database} has a newer ztp schema (version ${version}, this build ${LATEST_SCHEMA_VERSION}); upgrade ztp`,
    );
}
