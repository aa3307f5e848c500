/**
 * API tokens. The server stores only SHA-256 hashes of tokens (`role:name:sha256hex` lines), so
 * a leaked tokens file or environment does not leak a usable credential. A presented token is
 * hashed and compared with every configured hash in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

export const ROLES = ['device', 'manager', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface TokenEntry {
  role: Role;
  /** Who holds the token (a person, a site, a service); becomes the principal's subject. */
  name: string;
  /** SHA-256 of the token. */
  hash: Buffer;
}

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

export function tokenLine(role: Role, name: string, token: string): string {
  return `${role}:${name}:${hashToken(token)}`;
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
      const fields = entry.split(':');
      if (fields.length !== 3)
        throw new ConfigError(
          `${where}: expected role:name:sha256hex, got ${fields.length} fields`,
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
      out.push({ role, name, hash: Buffer.from(hash, 'hex') });
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
