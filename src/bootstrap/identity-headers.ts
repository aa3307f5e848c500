/**
 * Devices that identify themselves by fetching: ONIE sends ONIE-* headers on every HTTP request,
 * SONiC ZTP sends SERIAL-NUMBER/BASE-MAC-ADDRESS/PRODUCT-NAME, Cumulus ZTP sends CUMULUS-*. This
 * module turns one such header set into the device's id (its base MAC, canonical) and what else
 * it says about itself; pure, so the rules are tested without HTTP.
 */
import { canonicalMac } from '../devices/identity.js';
import { ZtpError } from '../errors.js';

export type IdentitySource = 'onie' | 'sonic' | 'cumulus';

/** Typed as issue 18's aliases will be: a device's other identifiers. */
export interface IdentityAlias {
  type: 'mac' | 'serial';
  value: string;
}

export interface HeaderIdentity {
  source: IdentitySource;
  /** The base MAC, canonical: the device id. */
  id: string;
  /** Serial number and other MACs than the id. */
  aliases: IdentityAlias[];
  /** Every other header of the set, by its lower-case name (model, arch, versions, …). */
  facts: Record<string, string>;
}

interface HeaderSet {
  source: IdentitySource;
  /** The header whose MAC is the device id. */
  idMac: string;
  serial: string;
  otherMacs: readonly string[];
  /** Headers that are part of the set but kept only as facts. */
  facts: readonly string[];
  /** Sent by the device but never kept: ONIE's security key is a credential. */
  ignored: readonly string[];
}

/** Header names as the platforms document them, lower case as Node delivers them. */
const SETS: readonly HeaderSet[] = [
  {
    source: 'onie',
    idMac: 'onie-eth-addr',
    serial: 'onie-serial-number',
    otherMacs: [],
    facts: [
      'onie-vendor-id',
      'onie-machine',
      'onie-machine-rev',
      'onie-arch',
      'onie-operation',
      'onie-version',
    ],
    ignored: ['onie-security-key'],
  },
  {
    source: 'sonic',
    idMac: 'base-mac-address',
    serial: 'serial-number',
    otherMacs: [],
    facts: ['product-name', 'sonic-version'],
    ignored: [],
  },
  {
    source: 'cumulus',
    idMac: 'cumulus-base-mac',
    serial: 'cumulus-serial',
    otherMacs: ['cumulus-mgmt-mac'],
    facts: [
      'cumulus-arch',
      'cumulus-build',
      'cumulus-license-installed',
      'cumulus-manufacturer',
      'cumulus-productname',
      'cumulus-version',
      'cumulus-prov-count',
      'cumulus-prov-max',
    ],
    ignored: [],
  },
];

/** Longest serial number or other text value kept from a header. */
export const IDENTITY_TEXT_MAX = 128;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

function invalid(header: string, detail: string): ZtpError {
  return new ZtpError('invalid_identity_header', `${header.toUpperCase()}: ${detail}`, {
    header: header.toUpperCase(),
  });
}

function macOf(header: string, value: string): string {
  const mac = canonicalMac(value.trim());
  if (mac === undefined) throw invalid(header, 'must be a MAC address (e.g. 44:38:39:ff:40:94)');
  return mac;
}

function textOf(header: string, value: string): string {
  const text = value.trim();
  if (text.length > IDENTITY_TEXT_MAX || !PRINTABLE_ASCII.test(text))
    throw invalid(header, `must be 1-${IDENTITY_TEXT_MAX} printable ASCII characters`);
  return text;
}

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** A header's single value; a repeated header is malformed (Node joins custom ones with ", "). */
function valueOf(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (Array.isArray(v)) throw invalid(name, 'must be sent once');
  return v;
}

/**
 * The identity a request's headers carry, or undefined when it carries none of these sets.
 * Throws `invalid_identity_header` (naming the header) for a malformed value, a set without
 * its MAC, or headers of more than one set. Empty values count as absent (ONIE sends an empty
 * ONIE-SECURITY-KEY, for one).
 */
export function identityFromHeaders(headers: Headers): HeaderIdentity | undefined {
  const present = SETS.filter((set) =>
    [set.idMac, set.serial, ...set.otherMacs, ...set.facts, ...set.ignored].some(
      (name) => (valueOf(headers, name) ?? '').trim() !== '',
    ),
  );
  if (present.length === 0) return undefined;
  if (present.length > 1)
    throw invalid(
      present[1]!.idMac,
      `identity headers of ${present.map((s) => s.source).join(' and ')} in one request; a device sends one set`,
    );
  const set = present[0]!;
  const given = (name: string): string | undefined => {
    const v = valueOf(headers, name)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };

  const idValue = given(set.idMac);
  if (idValue === undefined)
    throw invalid(set.idMac, `is required with the other ${set.source} identity headers`);
  const id = macOf(set.idMac, idValue);
  const aliases: IdentityAlias[] = [];
  const serial = given(set.serial);
  if (serial !== undefined) aliases.push({ type: 'serial', value: textOf(set.serial, serial) });
  for (const name of set.otherMacs) {
    const v = given(name);
    if (v === undefined) continue;
    const mac = macOf(name, v);
    if (mac !== id && !aliases.some((a) => a.value === mac))
      aliases.push({ type: 'mac', value: mac });
  }
  const facts: Record<string, string> = {};
  for (const name of set.facts) {
    const v = given(name);
    if (v !== undefined) facts[name] = textOf(name, v);
  }
  return { source: set.source, id, aliases, facts };
}
