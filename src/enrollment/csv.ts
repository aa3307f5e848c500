/**
 * The allowlist CSV of `ztp import --csv` (docs/enrollment.md): devices an admin enrolls before
 * they first register. One device per row, columns `id,serial,macs,name`; an optional first row
 * naming exactly those columns is a header. Fields may be double-quoted ("" is a quote inside
 * one); `macs` holds MAC addresses separated by spaces or semicolons.
 *
 * `id` may be empty: the serial is then the id, or else the one MAC. A serial or MAC that differs
 * from the id becomes one of the device's aliases (a `serial` or `mac` alias), so the device is
 * found, and admitted in allowlist mode, when it registers by any of them. A value may name one
 * device only: the same serial or MAC on two rows, or as another row's id, is a bad row.
 *
 * All or nothing: every bad row is reported and then nothing is imported.
 */
import {
  ALIASES_PER_DEVICE_MAX,
  canonicalMac,
  normaliseAlias,
  normaliseId,
  validateName,
} from '../devices/identity.js';
import type { Alias } from '../devices/store.js';
import { ZtpError } from '../errors.js';
import { refuseLoneSurrogates } from '../unicode.js';

export const CSV_COLUMNS = ['id', 'serial', 'macs', 'name'] as const;
/** Largest accepted CSV file. */
export const CSV_MAX_BYTES = 64 * 1024 * 1024;

export interface EnrolledRow {
  /** 1-based row (line) number in the file. */
  row: number;
  id: string;
  name: string;
  /** Its serial and MACs that differ from its id. */
  aliases: Alias[];
}

export interface CsvReport {
  rows: EnrolledRow[];
  bad: { row: number; reason: string }[];
}

class RowError extends Error {}

/** Splits one CSV line into fields (RFC 4180 quoting, no line breaks inside a field). */
function fields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let value = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new RowError('a quoted field is not closed');
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line.charAt(i++);
      }
      if (i < line.length && line[i] !== ',')
        throw new RowError('text after a quoted field; quote the whole field');
    } else {
      const end = line.indexOf(',', i);
      value = line.slice(i, end === -1 ? line.length : end);
      if (value.includes('"')) throw new RowError('a quote inside an unquoted field');
      i = end === -1 ? line.length : end;
    }
    out.push(value.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

function parseRow(line: string): Omit<EnrolledRow, 'row'> {
  const f = fields(line);
  if (f.length !== CSV_COLUMNS.length)
    throw new RowError(
      `${f.length} columns; expected ${CSV_COLUMNS.length}: ${CSV_COLUMNS.join(',')}`,
    );
  const [rawId = '', serial = '', rawMacs = '', rawName = ''] = f;
  const macs = rawMacs === '' ? [] : rawMacs.split(/[\s;]+/).filter((m) => m !== '');
  const canonical = macs.map((m) => {
    const c = canonicalMac(m);
    if (c === undefined) throw new RowError(`'${m}' is not a MAC address`);
    return c;
  });
  let idText = rawId;
  if (idText === '') {
    if (serial !== '') idText = serial;
    else if (canonical.length === 1) idText = canonical[0]!;
    else throw new RowError('no id: give an id, a serial or one MAC address');
  }
  const id = normaliseId(idText);
  const aliases = new Map<string, Alias>();
  if (serial !== '' && serial !== id) {
    const alias = normaliseAlias('serial', serial);
    if (alias.value !== id) aliases.set(alias.value, alias);
  }
  for (const mac of canonical)
    if (mac !== id && !aliases.has(mac)) aliases.set(mac, { type: 'mac', value: mac });
  if (aliases.size > ALIASES_PER_DEVICE_MAX)
    throw new RowError(`${aliases.size} aliases; a device holds at most ${ALIASES_PER_DEVICE_MAX}`);
  return { id, name: validateName(rawName), aliases: [...aliases.values()] };
}

/** Parses the whole file: the good rows and every bad one with its reason. */
export function parseEnrollmentCsv(text: string): CsvReport {
  const report: CsvReport = { rows: [], bad: [] };
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((line, index) => {
    const row = index + 1;
    if (line.trim() === '') return;
    if (row === 1 && line.replace(/\s/g, '').toLowerCase() === CSV_COLUMNS.join(',')) return;
    try {
      refuseLoneSurrogates(line);
      const parsed = parseRow(line);
      // Ids and aliases share one namespace: each value names one device.
      for (const value of [parsed.id, ...parsed.aliases.map((a) => a.value)]) {
        const first = seen.get(value);
        if (first !== undefined) throw new RowError(`'${value}' is already on row ${first}`);
      }
      for (const value of [parsed.id, ...parsed.aliases.map((a) => a.value)]) seen.set(value, row);
      report.rows.push({ row, ...parsed });
    } catch (e) {
      if (!(e instanceof RowError || e instanceof ZtpError)) throw e;
      report.bad.push({ row, reason: e.message });
    }
  });
  return report;
}
