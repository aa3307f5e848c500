/**
 * `ztp export` and `ztp import`: move a registry between SQLite and PostgreSQL, or back it up.
 *
 * Format: JSON lines, one device per line, every field of the record with its history:
 *   {"id":"aa:bb:cc:dd:ee:ff","ip":"10.0.0.5","name":"","userdata":"",
 *    "firstSeen":"2026-…Z","lastSeen":"2026-…Z","updatedAt":"2026-…Z","registrations":3,
 *    "lastSource":"10.0.0.5","history":[{"at":"2026-…Z","ip":"10.0.0.5","source":"10.0.0.5"}],
 *    "aliases":[{"type":"serial","value":"FOC123"}],"pinned":{"name":false,"userdata":false},
 *    "reported":{"name":null,"userdata":null}}
 * Times are ISO 8601 with milliseconds (integers of milliseconds are accepted on import).
 * aliases, pinned and reported may be absent (exports of releases before them): none, unpinned.
 *
 * Import validates each line with the API's rules (src/devices/identity.ts), replaces a device
 * that already exists (so importing twice is harmless), reports every bad line on standard
 * error as `line N: reason` without stopping, and exits 1 when any line was not imported.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { loadTransferConfig, optionsHelp, TRANSFER_OPTIONS } from '../config.js';
import {
  normaliseAliases,
  normaliseId,
  normaliseIp,
  sourceAddress,
  validateName,
  validateUserdata,
} from '../devices/identity.js';
import { CSV_MAX_BYTES, parseEnrollmentCsv, type EnrolledRow } from '../enrollment/csv.js';
import { ConfigError, DeviceNotFoundError, ZtpError } from '../errors.js';
import { refuseLoneSurrogates } from '../unicode.js';
import { userInfo } from 'node:os';
import type { AuditEntry, AuditStore } from '../audit/store.js';
import { auditEntryView } from '../audit/views.js';
import type { AdminContext, AuditRecord } from '../devices/admin.js';
import type { DeviceReadModel } from '../devices/read-model.js';
import type { Alias, Device, DeviceStore, HistoryEntry } from '../devices/store.js';
import type { Stores } from '../devices/service.js';
import { openStores } from '../stores.js';

/** What export and import use of the stores. */
export type TransferStore = Pick<DeviceStore, 'get' | 'history' | 'aliases'> &
  Pick<DeviceReadModel, 'listIds'> & {
    /** One device exactly as exported, committed on its own. */
    importDevice(
      device: Device,
      history: HistoryEntry[],
      aliases?: readonly Alias[],
    ): Promise<'created' | 'replaced'>;
    /** The audit log: an import's entry, and `ztp export --audit`. */
    audit?: {
      append(record: AuditRecord): Promise<void>;
      list(after: number | undefined, limit: number): Promise<AuditEntry[]>;
    };
  };

/** The stores of an open registry as export and import use them. */
export function transferStore(stores: Stores & { audit: AuditStore }): TransferStore {
  return {
    get: (id) => stores.devices.get(id),
    history: (id) => stores.devices.history(id),
    aliases: (id) => stores.devices.aliases(id),
    importDevice: async (device, history, aliases) => {
      const step = stores.devices.importDeviceStep(device, history, aliases);
      const [{ before }] = await stores.db.commit(device.id, [step]);
      return before === undefined ? 'created' : 'replaced';
    },
    listIds: (after, limit) => stores.deviceReads.listIds(after, limit),
    audit: {
      append: async (record) => {
        await stores.db.commit('', [stores.audit.appendStep(() => record)]);
      },
      list: (after, limit) => stores.audit.list({ after, limit }),
    },
  };
}

/**
 * Who runs `ztp import`: the operating system's user (the CLI has no token), from this host. An
 * import is recorded as one entry with its counts, committed after its devices (docs/security.md).
 */
export function cliContext(via: string): AdminContext {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = String(process.getuid?.() ?? 'unknown');
  }
  return { actor: `cli:${user}`, source: 'local', via };
}

/** Records an import that wrote something, with its counts; one entry, not one per device. */
async function recordImport(
  store: TransferStore,
  ctx: AdminContext | undefined,
  counts: Record<string, number>,
  at: number,
): Promise<void> {
  if (!store.audit || !ctx || (counts.created ?? 0) + (counts.replaced ?? 0) === 0) return;
  await store.audit.append({
    ...ctx,
    at,
    action: 'import',
    device: null,
    before: null,
    after: null,
    detail: counts,
  });
}

/** Audit entries read per page by `ztp export --audit`. */
const AUDIT_EXPORT_PAGE = 1000;

/** Writes every audit entry as a line `{"audit":{…}}`, oldest first; returns how many. */
export async function exportAudit(store: TransferStore, out: Writable): Promise<number> {
  if (!store.audit) return 0;
  let after: number | undefined;
  let count = 0;
  for (;;) {
    const page = await store.audit.list(after, AUDIT_EXPORT_PAGE);
    for (const e of page) {
      if (!out.write(`${JSON.stringify({ audit: auditEntryView(e) })}\n`))
        await new Promise((r) => out.once('drain', r));
      count++;
    }
    if (page.length < AUDIT_EXPORT_PAGE) return count;
    after = page.at(-1)!.seq;
  }
}

/** Devices read per page while exporting, and at once within a page. */
const EXPORT_PAGE = 500;
const EXPORT_PARALLEL = 16;
/** Imports in flight at once (they share group commits). */
const IMPORT_CONCURRENCY = 64;
/** Longest accepted input line (a device with 64 KiB userdata and a long history fits). */
export const IMPORT_MAX_LINE = 1024 * 1024;
/** History entries accepted per device. */
export const IMPORT_MAX_HISTORY = 1000;

export interface ExportedDevice {
  id: string;
  ip: string;
  name: string;
  userdata: string;
  firstSeen: string;
  lastSeen: string;
  updatedAt: string;
  registrations: number;
  lastSource: string;
  history: { at: string; ip: string; source: string }[];
  aliases: Alias[];
  pinned: { name: boolean; userdata: boolean };
  reported: { name: string | null; userdata: string | null };
}

const iso = (ms: number) => new Date(ms).toISOString();

export function exportLine(
  device: Device,
  history: HistoryEntry[],
  aliases: readonly Alias[] = [],
): string {
  const out: ExportedDevice = {
    id: device.id,
    ip: device.ip,
    name: device.name,
    userdata: device.userdata,
    firstSeen: iso(device.firstSeen),
    lastSeen: iso(device.lastSeen),
    updatedAt: iso(device.updatedAt),
    registrations: device.registrations,
    lastSource: device.lastSource,
    history: history.map((h) => ({ at: iso(h.at), ip: h.ip, source: h.source })),
    aliases: aliases.map((a) => ({ type: a.type, value: a.value })),
    pinned: { ...device.pinned },
    reported: { ...device.reported },
  };
  return JSON.stringify(out);
}

class LineError extends Error {}

/** An optional object member of a line ({} when absent). */
function object(o: Record<string, unknown>, name: string): Record<string, unknown> {
  const v: unknown = o[name] ?? {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new LineError(`${name} must be an object`);
  return v as Record<string, unknown>;
}

function field<T>(obj: Record<string, unknown>, name: string, kind: string, fallback?: T): T {
  const v = obj[name];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== kind) throw new LineError(`${name} must be a ${kind}`);
  return v as T;
}

function timestamp(v: unknown, name: string): number {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0 || (typeof v === 'string' && !/^\d{4}-/.test(v)))
    throw new LineError(`${name} must be an ISO 8601 time or integer milliseconds`);
  return ms;
}

/** Parses and validates one exported line with the API's rules; throws with the reason. */
export function parseImportLine(line: string): {
  device: Device;
  history: HistoryEntry[];
  aliases: Alias[];
} {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new LineError('not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new LineError('not a JSON object');
  // Any string of the line, as in a request body (e.g. a history source the API never checks).
  refuseLoneSurrogates(raw);
  const o = raw as Record<string, unknown>;
  const id = normaliseId(field<string>(o, 'id', 'string'));
  const ip = normaliseIp(field<string>(o, 'ip', 'string'));
  const name = validateName(field(o, 'name', 'string', ''));
  const userdata = validateUserdata(field(o, 'userdata', 'string', ''));
  const firstSeen = timestamp(o.firstSeen, 'firstSeen');
  const lastSeen = timestamp(o.lastSeen, 'lastSeen');
  const updatedAt = timestamp(o.updatedAt ?? o.lastSeen, 'updatedAt');
  const registrations = field<number>(o, 'registrations', 'number', 0);
  if (!Number.isSafeInteger(registrations) || registrations < 0)
    throw new LineError('registrations must be a non-negative integer');
  const lastSource = field<string>(o, 'lastSource', 'string', '');
  if (lastSource !== '' && sourceAddress(lastSource) !== lastSource)
    throw new LineError('lastSource must be empty or an address as exported (canonical IP)');
  const rawHistory = o.history ?? [];
  if (!Array.isArray(rawHistory)) throw new LineError('history must be an array');
  if (rawHistory.length > IMPORT_MAX_HISTORY)
    throw new LineError(`history has more than ${IMPORT_MAX_HISTORY} entries`);
  if (rawHistory.length > registrations)
    throw new LineError('history has more entries than registrations');
  const history = rawHistory.map((h: unknown, i): HistoryEntry => {
    if (typeof h !== 'object' || h === null || Array.isArray(h))
      throw new LineError(`history[${i}] must be an object`);
    const e = h as Record<string, unknown>;
    const source = field<string>(e, 'source', 'string', '');
    return {
      at: timestamp(e.at, `history[${i}].at`),
      ip: normaliseIp(field<string>(e, 'ip', 'string')),
      source: source === '' ? '' : sourceAddress(source),
    };
  });
  const rawAliases = o.aliases ?? [];
  if (!Array.isArray(rawAliases)) throw new LineError('aliases must be an array');
  const aliases = normaliseAliases(
    rawAliases.map((a: unknown, i) => {
      if (typeof a !== 'object' || a === null || Array.isArray(a))
        throw new LineError(`aliases[${i}] must be an object`);
      const e = a as Record<string, unknown>;
      return {
        type: field<string>(e, 'type', 'string'),
        value: field<string>(e, 'value', 'string'),
      };
    }),
  );
  const pinned = object(o, 'pinned');
  const reported = object(o, 'reported');
  const reportedText = (name: 'name' | 'userdata') => {
    const v = reported[name] ?? null;
    if (v !== null && typeof v !== 'string')
      throw new LineError(`reported.${name} must be a string or null`);
    return v === null ? null : name === 'name' ? validateName(v) : validateUserdata(v);
  };
  return {
    device: {
      id,
      ip,
      name,
      userdata,
      firstSeen,
      lastSeen,
      updatedAt,
      registrations,
      lastSource,
      pinned: {
        name: field<boolean>(pinned, 'name', 'boolean', false),
        userdata: field<boolean>(pinned, 'userdata', 'boolean', false),
      },
      reported: { name: reportedText('name'), userdata: reportedText('userdata') },
    },
    history,
    aliases,
  };
}

/** Writes every device as a JSON line; returns how many. */
export async function exportDevices(store: TransferStore, out: Writable): Promise<number> {
  let after: string | undefined;
  let count = 0;
  // A closed output (`ztp export | head`) ends the export with that error, not a crash.
  const output: { failed?: Error } = {};
  out.on('error', (e) => (output.failed = e));
  const check = () => {
    if (output.failed) throw output.failed;
  };
  for (;;) {
    check();
    const ids = await store.listIds(after, EXPORT_PAGE);
    if (ids.length === 0) return count;
    // Read a few devices at once (PostgreSQL answers them on several connections), write in order.
    for (let i = 0; i < ids.length; i += EXPORT_PARALLEL) {
      const read = await Promise.all(
        ids.slice(i, i + EXPORT_PARALLEL).map(async (id) => {
          try {
            const device = await store.get(id);
            return exportLine(device, await store.history(id), await store.aliases(id));
          } catch (e) {
            if (e instanceof DeviceNotFoundError) return undefined; // deleted meanwhile
            throw e;
          }
        }),
      );
      for (const line of read) {
        if (line === undefined) continue;
        if (!out.write(`${line}\n`))
          await new Promise((r) => {
            out.once('drain', r);
            out.once('error', r);
          });
        check();
        count++;
      }
    }
    after = ids.at(-1);
  }
}

/**
 * A failed write with its cause: the store's message ("the write failed; nothing was stored")
 * alone does not say what to fix. The stores redact passwords from the causes they attach.
 */
export function failureReason(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  return cause === undefined || cause === '' ? e.message : `${e.message}: ${cause}`;
}

export interface ImportReport {
  created: number;
  replaced: number;
  /** Audit entries of `ztp export --audit`: not restored (the log is the source registry's). */
  auditLines: number;
  /** Lines not imported, with their 1-based number and the reason. */
  bad: { line: number; reason: string }[];
}

/** Reads JSON lines and imports each valid one; bad lines are reported, never fatal. */
export async function importDevices(
  store: TransferStore,
  input: Readable,
  onBad: (line: number, reason: string) => void = () => undefined,
  ctx?: AdminContext,
): Promise<ImportReport> {
  const report: ImportReport = { created: 0, replaced: 0, auditLines: 0, bad: [] };
  const bad = (line: number, reason: string) => {
    report.bad.push({ line, reason });
    onBad(line, reason);
  };
  const inFlight = new Set<Promise<void>>();
  const byId = new Map<string, Promise<void>>();
  let n = 0;
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const text of lines) {
    const line = ++n;
    if (text.trim() === '') continue;
    if (text.length > IMPORT_MAX_LINE) {
      bad(line, `longer than ${IMPORT_MAX_LINE} characters`);
      continue;
    }
    if (text.startsWith('{"audit":')) {
      report.auditLines++;
      continue;
    }
    let parsed;
    try {
      parsed = parseImportLine(text);
    } catch (e) {
      bad(line, e instanceof LineError || e instanceof ZtpError ? e.message : String(e));
      continue;
    }
    // Lines of one id are applied in file order: the last one wins.
    const id = parsed.device.id;
    const previous = byId.get(id);
    if (previous) await previous;
    const p = store.importDevice(parsed.device, parsed.history, parsed.aliases).then(
      (r) => {
        report[r]++;
      },
      (e: unknown) => bad(line, failureReason(e)),
    );
    const tracked = p.finally(() => {
      inFlight.delete(tracked);
      if (byId.get(id) === tracked) byId.delete(id);
    });
    inFlight.add(tracked);
    byId.set(id, tracked);
    if (inFlight.size >= IMPORT_CONCURRENCY) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  report.bad.sort((a, b) => a.line - b.line);
  const counts = { created: report.created, replaced: report.replaced, bad: report.bad.length };
  await recordImport(store, ctx, counts, Date.now());
  return report;
}

export interface CsvImportReport {
  created: number;
  /** Rows whose device exists already: left as it is. */
  present: number;
  /** Bad rows, each with its reason; when any, nothing was imported. */
  bad: { row: number; reason: string }[];
}

/**
 * `ztp import --csv`: enrolls the devices of an allowlist CSV (src/enrollment/csv.ts). All or
 * nothing: any bad row and nothing is imported. A device that exists already is left as it is,
 * so running it again after a storage failure part-way finishes the job.
 */
export async function importEnrollmentCsv(
  store: TransferStore,
  text: string,
  now: number,
  ctx?: AdminContext,
): Promise<CsvImportReport> {
  const parsed = parseEnrollmentCsv(text);
  const report: CsvImportReport = { created: 0, present: 0, bad: parsed.bad };
  if (parsed.bad.length > 0) return report;
  // First every row is checked against the database, so that a serial or MAC another device
  // holds is a bad row and nothing is imported (all or nothing), as for a bad line of the file.
  const fresh: EnrolledRow[] = [];
  await inBatches(parsed.rows, async (row) => {
    if ((await holderOf(store, row.id)) !== undefined) {
      report.present++;
      return;
    }
    for (const alias of row.aliases) {
      const holder = await holderOf(store, alias.value);
      if (holder !== undefined) {
        report.bad.push({
          row: row.row,
          reason: `${alias.type} '${alias.value}' is already device '${holder}' (its id or an alias)`,
        });
        return;
      }
    }
    fresh.push(row);
  });
  if (report.bad.length > 0) {
    report.bad.sort((a, b) => a.row - b.row);
    report.present = 0;
    return report;
  }
  await inBatches(fresh, async ({ id, name, aliases }) => {
    // Never registered: no ip until its first registration, registrations 0.
    await store.importDevice(
      {
        id,
        ip: '',
        name,
        userdata: '',
        firstSeen: now,
        lastSeen: now,
        updatedAt: now,
        registrations: 0,
        lastSource: '',
        pinned: { name: false, userdata: false },
        reported: { name: null, userdata: null },
      },
      [],
      aliases,
    );
    report.created++;
  });
  await recordImport(store, ctx, { created: report.created, present: report.present }, now);
  return report;
}

async function inBatches<T>(items: readonly T[], each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += IMPORT_CONCURRENCY)
    await Promise.all(items.slice(i, i + IMPORT_CONCURRENCY).map(each));
}

/** The primary id of the device with this id or alias, if any. */
async function holderOf(store: TransferStore, idOrAlias: string): Promise<string | undefined> {
  try {
    return (await store.get(idOrAlias)).id;
  } catch (e) {
    if (e instanceof DeviceNotFoundError) return undefined;
    throw e;
  }
}

async function readAll(input: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > limit) throw new ConfigError(`the CSV is larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const EXPORT_HELP = `Usage: ztp export [--audit] [--database <path|url>] > devices.jsonl

Writes every device (record, timestamps, registration history) as one JSON object per line.
--audit: then every audit log entry, oldest first, as a line {"audit":{...}} (as GET
/ztp/mng/audit shows it); 'ztp import' skips those lines.
The database must hold a ztp registry already: a missing SQLite file, or a database without
the ztp schema, is refused (exit status 2) and nothing is created.

Options:
${optionsHelp(TRANSFER_OPTIONS)}`;

const IMPORT_HELP = `Usage: ztp import [--database <path|url>] < devices.jsonl
       ztp import --csv [--database <path|url>] < allowlist.csv

Reads the lines of 'ztp export' and stores each device exactly (replacing one with the same
id), creating the database (or its schema) if needed. Each line is validated like the API; bad lines are reported as 'line N: reason' on
standard error and skipped. Exit status 1 when any line was not imported. Audit lines of
'ztp export --audit' are skipped. The import is recorded in the audit log as one entry with its
counts, by cli:<user> from local.

--csv: enrolls devices for --enrollment allowlist (docs/enrollment.md): rows id,serial,macs,name
(an optional header row names them; macs separated by spaces or ';'; a serial or MAC other than
the id becomes an alias, by which the device may register). All or nothing: every bad
row is reported as 'row N: reason' and nothing is imported (exit status 1). A device that exists
already is left as it is.

Options:
${optionsHelp(TRANSFER_OPTIONS)}`;

/**
 * `existing`: the command only reads a registry (export), so a missing SQLite file or a
 * database without the ztp schema is refused rather than created empty and reported as one.
 */
async function withStore(
  command: string,
  help: string,
  argv: string[],
  existing: boolean,
  run: (store: TransferStore) => Promise<number>,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help);
    return 0;
  }
  let config;
  try {
    config = loadTransferConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ztp ${command}: ${e.message}\nRun 'ztp ${command} --help' for the options.`);
      return 2;
    }
    throw e;
  }
  let stores;
  try {
    stores = await openStores(config.database, {
      existing,
      postgres: {
        poolSize: 4,
        statementTimeout: config.databaseStatementTimeout,
        connectTimeout: config.databaseConnectTimeout,
      },
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ztp ${command}: ${e.message}`);
      return 2;
    }
    throw e;
  }
  try {
    return await run(transferStore(stores));
  } finally {
    await stores.db.close();
  }
}

export function exportMain(argv: string[]): Promise<number> {
  const withAudit = argv.includes('--audit');
  const rest = argv.filter((a) => a !== '--audit');
  return withStore('export', EXPORT_HELP, rest, true, async (store) => {
    const count = await exportDevices(store, process.stdout);
    if (!withAudit) {
      console.error(`ztp export: ${count} devices`);
      return 0;
    }
    const entries = await exportAudit(store, process.stdout);
    console.error(`ztp export: ${count} devices, ${entries} audit entries`);
    return 0;
  });
}

export function importMain(argv: string[]): Promise<number> {
  if (argv.includes('--csv')) return importCsvMain(argv.filter((a) => a !== '--csv'));
  return withStore('import', IMPORT_HELP, argv, false, async (store) => {
    const report = await importDevices(
      store,
      process.stdin,
      (line, reason) => console.error(`line ${line}: ${reason}`),
      cliContext('ztp import'),
    );
    const ignored = report.auditLines > 0 ? `, ${report.auditLines} audit entries ignored` : '';
    console.error(
      `ztp import: ${report.created} created, ${report.replaced} replaced, ${report.bad.length} bad lines${ignored}`,
    );
    return report.bad.length === 0 ? 0 : 1;
  });
}

function importCsvMain(argv: string[]): Promise<number> {
  return withStore('import', IMPORT_HELP, argv, false, async (store) => {
    let text;
    try {
      text = await readAll(process.stdin, CSV_MAX_BYTES);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      console.error(`ztp import: ${e.message}`);
      return 1;
    }
    const report = await importEnrollmentCsv(
      store,
      text,
      Date.now(),
      cliContext('ztp import --csv'),
    );
    for (const { row, reason } of report.bad) console.error(`row ${row}: ${reason}`);
    if (report.bad.length > 0) {
      console.error(`ztp import: ${report.bad.length} bad rows; nothing imported`);
      return 1;
    }
    console.error(`ztp import: ${report.created} created, ${report.present} already present`);
    return 0;
  });
}
