/**
 * Device id and IP normalisation: one canonical form for each, used by every
 * entry point (HTTP, import, client) so that `AA-BB-CC-DD-EE-FF`,
 * `aabb.ccdd.eeff` and `aa:bb:cc:dd:ee:ff` are the same device everywhere.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidInputError, ZtpError } from '../errors.js';
import type { Alias, AliasType } from './store.js';
import { hasLoneSurrogate, loneSurrogateError } from '../unicode.js';

export const ID_MAX_LENGTH = 128;
export const NAME_MAX_LENGTH = 255;
export const USERDATA_MAX_BYTES = 64 * 1024;

/** Words that are static paths under /ztp/mng/, so a device with such an id could not be addressed. */
export const RESERVED_IDS: ReadonlySet<string> = new Set([
  'list',
  'triggers',
  'events',
  'stats',
  'devices',
  // src/enrollment/routes.ts
  'pending',
  'rejected',
]);

const MAC_COLON_OR_HYPHEN =
  /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;
const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
const MAC_CISCO = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i;
const MAC_BARE = /^[0-9a-f]{12}$/i;
/** `.`, `..`, `...`: browsers and curl collapse such path segments, so the device could not be addressed. */
const ONLY_DOTS = /^\.+$/;
const OTHER_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Returns the canonical lower-case colon form of a MAC address, or undefined when `raw` is not one. */
export function canonicalMac(raw: string): string | undefined {
  // Most ids arrive canonical already (the client sends them so): no rebuilding.
  if (CANONICAL_MAC.test(raw)) return raw;
  const m = MAC_COLON_OR_HYPHEN.exec(raw);
  if (m) return [m[1], m[3], m[4], m[5], m[6], m[7]].join(':').toLowerCase();
  const c = MAC_CISCO.exec(raw);
  if (c) {
    const hex = (c[1]! + c[2]! + c[3]!).toLowerCase();
    return hex.replace(/(..)(?!$)/g, '$1:');
  }
  // Bare 12-hex (vendor tools print MACs so): a MAC, not a separate free-form id.
  if (MAC_BARE.test(raw)) return raw.toLowerCase().replace(/(..)(?!$)/g, '$1:');
  return undefined;
}

/**
 * Canonical device id: MAC addresses in any common notation (colon, hyphen, Cisco dotted, bare
 * 12-hex; any case) become `aa:bb:cc:dd:ee:ff`;
 * any other id (CPU id, serial, machine-id) is 1–128 characters of [A-Za-z0-9._:-], kept as given.
 */
export function normaliseId(raw: string): string {
  const mac = canonicalMac(raw);
  if (mac !== undefined) return mac;
  if (!OTHER_ID.test(raw)) {
    throw new InvalidInputError(
      'invalid_id',
      `device id must be a MAC address or 1-${ID_MAX_LENGTH} characters of A-Z a-z 0-9 . _ : -`,
      { id: raw.slice(0, ID_MAX_LENGTH + 16) },
    );
  }
  if (ONLY_DOTS.test(raw)) {
    throw new InvalidInputError('invalid_id', 'a device id cannot be made only of dots', {
      id: raw,
    });
  }
  if (RESERVED_IDS.has(raw.toLowerCase())) {
    throw new InvalidInputError(
      'invalid_id',
      `'${raw}' is a reserved path word and cannot be a device id`,
      {
        id: raw,
      },
    );
  }
  return raw;
}

/**
 * Canonical IP text: IPv4 dotted quad as given (Node rejects leading zeros and out-of-range
 * octets), IPv6 compressed and lower-case, IPv4-mapped IPv6 shown as plain IPv4.
 * Zone ids (`fe80::1%eth0`) are rejected: they mean nothing off the device.
 */
export function normaliseIp(raw: string): string {
  if (isIPv4(raw)) return raw;
  if (isIPv6(raw) && !raw.includes('%')) {
    const compressed = new URL(`http://[${raw}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
    if (mapped) {
      const hi = parseInt(mapped[1]!, 16);
      const lo = parseInt(mapped[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return compressed;
  }
  throw new InvalidInputError('invalid_ip', 'ip must be an IPv4 or IPv6 address', {
    field: 'ip',
    ip: raw.slice(0, 64),
  });
}

/** The address a request came from, for recording; never throws (sockets can be gone). */
export function sourceAddress(raw: string | undefined): string {
  if (raw === undefined || raw === '') return '';
  try {
    return normaliseIp(raw);
  } catch {
    return raw.slice(0, 64);
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function validateName(name: string): string {
  if (name.length > NAME_MAX_LENGTH) {
    throw new InvalidInputError(
      'invalid_body',
      `name must be at most ${NAME_MAX_LENGTH} characters`,
      { field: 'name' },
    );
  }
  if (CONTROL_CHARS.test(name)) {
    throw new InvalidInputError('invalid_body', 'name must not contain control characters', {
      field: 'name',
    });
  }
  if (hasLoneSurrogate(name)) throw loneSurrogateError('name');
  return name;
}

export function validateUserdata(userdata: string): string {
  if (Buffer.byteLength(userdata, 'utf8') > USERDATA_MAX_BYTES) {
    throw new InvalidInputError(
      'invalid_body',
      `userdata must be at most ${USERDATA_MAX_BYTES} bytes (UTF-8)`,
      { field: 'userdata' },
    );
  }
  // PostgreSQL text cannot hold NUL; refusing it for every engine keeps them interchangeable.
  if (userdata.includes('\u0000')) {
    throw new InvalidInputError(
      'invalid_body',
      'userdata must not contain NUL (\\u0000) characters',
      { field: 'userdata' },
    );
  }
  if (hasLoneSurrogate(userdata)) throw loneSurrogateError('userdata');
  return userdata;
}

/** The kinds of identifier a device may be known by besides its primary id. */
export const ALIAS_TYPES: readonly AliasType[] = ['mac', 'serial', 'cpu', 'dmi', 'machine-id'];

/** Aliases one device may hold: enough for every port MAC of a switch plus its other ids. */
export const ALIASES_PER_DEVICE_MAX = 32;

function isAliasType(t: string): t is AliasType {
  return (ALIAS_TYPES as readonly string[]).includes(t);
}

/**
 * A canonical alias: the value follows the id rules (so a path `{id}` normalised as an id finds
 * it; a 12-hex serial therefore reads as a MAC), and a `mac` alias must be a MAC.
 */
export function normaliseAlias(type: string, value: string): Alias {
  if (!isAliasType(type)) {
    throw new ZtpError(
      'unknown_alias_type',
      `alias type must be one of ${ALIAS_TYPES.join(', ')}`,
      { type: type.slice(0, 32) },
    );
  }
  let canonical: string;
  try {
    canonical = normaliseId(value);
  } catch {
    throw new ZtpError(
      'invalid_alias',
      `a ${type} alias must be ${type === 'mac' ? 'a MAC address' : `1-${ID_MAX_LENGTH} characters of A-Z a-z 0-9 . _ : - (not only dots)`}`,
      {
        type,
        value: value.slice(0, ID_MAX_LENGTH + 16),
      },
    );
  }
  if (type === 'mac' && canonicalMac(value) === undefined) {
    throw new ZtpError('invalid_alias', 'a mac alias must be a MAC address', {
      type,
      value: value.slice(0, ID_MAX_LENGTH + 16),
    });
  }
  return { type, value: canonical };
}

/** Canonical, de-duplicated aliases of a request; refuses more than one device may hold. */
export function normaliseAliases(raw: readonly { type: string; value: string }[]): Alias[] {
  if (raw.length > ALIASES_PER_DEVICE_MAX) throw tooManyAliases(raw.length);
  const byValue = new Map<string, Alias>();
  for (const a of raw) {
    const alias = normaliseAlias(a.type, a.value);
    byValue.set(alias.value, alias);
  }
  return [...byValue.values()];
}

export function tooManyAliases(count: number): ZtpError {
  return new ZtpError(
    'too_many_aliases',
    `a device may hold at most ${ALIASES_PER_DEVICE_MAX} aliases`,
    { limit: ALIASES_PER_DEVICE_MAX, count },
  );
}
