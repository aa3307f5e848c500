/**
 * API tokens. The server stores only SHA-256 hashes of tokens (`role:name:sha256hex` lines), so
 * a leaked tokens file or environment does not leak a usable credential. A presented token is
 * hashed and compared with every configured hash in constant time.
 *
 * A line may go on with options that restrict the token (docs/security.md, "Which device token"):
 * `role:name:sha256hex[:option]...`, options `bind=<device id>`, `enroll`, `expires=<ISO time>`,
 * `uses=<N>`, `single-use` (= `uses=1`). Values may hold colons (MACs, times), so after the 64
 * hex digits the rest is split at colons and a part that is not an option (`key=` of a known key,
 * or a flag word) continues the previous option's value. Ids and times never contain `=`, so the
 * only ambiguity is an id part spelt like a flag (`x:enroll`): `bind` cannot be combined with a
 * flag, so such a line is refused, never read another way. A line of three fields (every line
 * written before options existed) parses as before; a server that predates options refuses a
 * line with options (more than three fields) instead of ignoring its restriction.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { normaliseId } from '../devices/identity.js';
import { ConfigError } from '../errors.js';

export const ROLES = ['device', 'manager', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenEntry {
  role: Role;
  /** Who holds the token (a person, a site, a service); becomes the principal's subject. */
  name: string;
  /** SHA-256 of the token. */
  hash: Buffer;
  /** `bind=`: the one device (canonical id or alias) this device token may register. */
  bind?: string | undefined;
  /** `enroll`: may create new devices, then register only the devices it enrolled. */
  enroll?: boolean | undefined;
  /** `expires=`: ms since the epoch from which the token is refused (401). */
  expiresAt?: number | undefined;
  /** `uses=` (enrollment tokens): how many devices it may enrol; undefined: no limit. */
  maxUses?: number | undefined;
}

/** The restrictions a line may carry after its hash. */
export interface TokenOptions {
  bind?: string | undefined;
  enroll?: boolean | undefined;
  expiresAt?: number | undefined;
  maxUses?: number | undefined;
}

/** Largest `uses=`: a batch bigger than this is better served by several tokens. */
export const MAX_TOKEN_USES = 1_000_000;
const OPTION_KEYS = ['bind', 'expires', 'uses'] as const;
const OPTION_FLAGS = ['enroll', 'single-use'] as const;
/** An ISO 8601 date-time with its offset (`Z` or `+hh:mm`): a time without one would be local. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
const HASH = /^[0-9a-fA-F]{64}$/;
/** RFC 6750 b64token, bounded. */
export const TOKEN_SYNTAX = /^[A-Za-z0-9\-._~+/]{1,512}=*$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token: `ztp_` and 256 bits in base64url. */
export function generateToken(): string {
  return `ztp_${randomBytes(32).toString('base64url')}`;
}

/** The tokens-file line of a token; options in the order the parser documents. */
export function tokenLine(
  role: Role,
  name: string,
  token: string,
  options: TokenOptions = {},
): string {
  const parts = [role, name, hashToken(token)];
  if (options.enroll === true) parts.push('enroll');
  if (options.expiresAt !== undefined)
    parts.push(`expires=${new Date(options.expiresAt).toISOString()}`);
  if (options.maxUses !== undefined) parts.push(`uses=${options.maxUses}`);
  // Last, so that a reader sees where the id's colons end.
  if (options.bind !== undefined) parts.push(`bind=${options.bind}`);
  checkOptions(role, options, `token '${name}'`);
  const line = parts.join(':');
  // An id with a part spelt like a flag (`x:enroll`) would read back otherwise: refused here.
  parseTokens(line, `the line for '${name}'`);
  return line;
}

/** An ISO time with offset → ms since the epoch; throws ConfigError. */
export function parseExpiry(text: string, where: string): number {
  const ms = ISO_TIME.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms))
    throw new ConfigError(
      `${where}: expires '${text}' must be an ISO 8601 time with its offset, e.g. 2027-01-31T18:00:00Z`,
    );
  return ms;
}

export function parseUses(text: string, where: string): number {
  if (!/^[0-9]{1,7}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TOKEN_USES)
    throw new ConfigError(
      `${where}: uses '${text}' must be a whole number from 1 to ${MAX_TOKEN_USES}`,
    );
  return Number(text);
}

export function parseBind(text: string, where: string): string {
  try {
    return normaliseId(text);
  } catch (e) {
    throw new ConfigError(`${where}: bind '${text.slice(0, 140)}': ${(e as Error).message}`);
  }
}

/** Which combinations make sense: restrictions are for device tokens, bound xor enrollment. */
function checkOptions(role: Role, o: TokenOptions, where: string): void {
  const restricts = o.bind !== undefined || o.enroll === true;
  if (restricts && role !== 'device')
    throw new ConfigError(`${where}: bind and enroll are for device tokens, not ${role} tokens`);
  if (o.bind !== undefined && o.enroll === true)
    throw new ConfigError(
      `${where}: a token is either bound to one device (bind=) or an enrollment token (enroll), not both`,
    );
  if (o.maxUses !== undefined && o.enroll !== true)
    throw new ConfigError(
      `${where}: uses (or single-use) needs enroll: it counts enrolled devices`,
    );
}

/** The options after a line's hash (`rest`: the text after its colon). */
function parseOptions(rest: string, role: Role, where: string): TokenOptions {
  const items: { key: string; value: string | undefined }[] = [];
  for (const part of rest.split(':')) {
    const eq = part.indexOf('=');
    const key = eq === -1 ? part : part.slice(0, eq);
    if (eq !== -1 && (OPTION_KEYS as readonly string[]).includes(key)) {
      items.push({ key, value: part.slice(eq + 1) });
    } else if (eq === -1 && (OPTION_FLAGS as readonly string[]).includes(part)) {
      items.push({ key: part, value: undefined });
    } else {
      const last = items.at(-1);
      if (eq !== -1 || last?.value === undefined)
        throw new ConfigError(
          `${where}: unknown option '${part.slice(0, 40)}' (options: bind=ID, enroll, expires=TIME, uses=N, single-use)`,
        );
      last.value += `:${part}`;
    }
  }
  const o: TokenOptions = {};
  const seen = new Set<string>();
  for (const { key, value } of items) {
    const name = key === 'single-use' ? 'uses' : key;
    if (seen.has(name)) throw new ConfigError(`${where}: option ${key} is given twice`);
    seen.add(name);
    if (key === 'bind') o.bind = parseBind(value!, where);
    else if (key === 'expires') o.expiresAt = parseExpiry(value!, where);
    else if (key === 'uses') o.maxUses = parseUses(value!, where);
    else if (key === 'single-use') o.maxUses = 1;
    else o.enroll = true;
  }
  checkOptions(role, o, where);
  return o;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function validateName(name: string): string {
  if (!NAME.test(name))
    throw new ConfigError(`token name '${name}' must be 1-64 characters of A-Z a-z 0-9 . _ @ -`);
  return name;
}

/**
 * Parses tokens-file text: one `role:name:sha256hex` per entry, entries separated by newlines
 * (and, when `commas` is true, by commas, for the environment variable); `#` starts a comment.
 */
export function parseTokens(text: string, source: string, commas = false): TokenEntry[] {
  const out: TokenEntry[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const line = rawLine.replace(/#.*$/, '');
    for (const part of commas ? line.split(',') : [line]) {
      const entry = part.trim();
      if (entry === '') continue;
      const where = `${source}${commas ? '' : `:${index + 1}`}`;
      // role, name and hash hold no colon; the options after them may (see the top).
      const fields = entry.split(':');
      if (fields.length < 3)
        throw new ConfigError(
          `${where}: expected role:name:sha256hex[:option]..., got ${fields.length} fields`,
        );
      const [role, name, hash] = fields as [string, string, string];
      if (!isRole(role))
        throw new ConfigError(`${where}: role '${role}' is not one of ${ROLES.join(', ')}`);
      try {
        validateName(name);
      } catch (e) {
        throw new ConfigError(`${where}: ${(e as Error).message}`);
      }
      if (!HASH.test(hash))
        throw new ConfigError(
          `${where}: the third field must be the 64-hex-digit SHA-256 of the token (see 'ztp token create'), not the token itself`,
        );
      const options = fields.length > 3 ? parseOptions(fields.slice(3).join(':'), role, where) : {};
      out.push({ role, name, hash: Buffer.from(hash, 'hex'), ...options });
    }
  });
  return out;
}

export function readTokensFile(path: string): TokenEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`--tokens-file: cannot read '${path}': ${(e as Error).message}`);
  }
  return parseTokens(text, path);
}

/** The configured tokens. Lookup hashes the candidate and compares it with every entry. */
export class TokenSet {
  constructor(readonly entries: readonly TokenEntry[]) {
    const seen = new Set<string>();
    for (const e of entries) {
      const hex = e.hash.toString('hex');
      if (seen.has(hex))
        throw new ConfigError(`the same token hash is configured twice (name '${e.name}')`);
      seen.add(hex);
    }
  }

  get size(): number {
    return this.entries.length;
  }

  find(token: string): TokenEntry | undefined {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: TokenEntry | undefined;
    // No early exit: the time taken does not depend on which entry (if any) matches.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.hash, digest) && found === undefined) found = entry;
    }
    return found;
  }
}
