/**
 * Signed manager calls (docs/service-manager.md#signatures).
 *
 *   ZTP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<METHOD> <path?query>.<body>")>
 *
 * one `v1=` per configured secret (two during a rotation), so a manager that knows either one
 * accepts the call. The key is the secret's UTF-8 bytes as written (surrounding whitespace
 * removed). Pure: the caller reads the secret file and gives the time.
 */
import { createHmac } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError } from '../errors.js';

export const SIGNATURE_HEADER = 'ztp-signature';
export const EVENT_ID_HEADER = 'ztp-event-id';
/** At most this many secrets sign at once: the current one and the next (rotation). */
export const MAX_SECRETS = 2;
/** Shortest secret accepted: a short HMAC key can be guessed offline from one signed call. */
export const MIN_SECRET_CHARS = 16;

/** The bytes that are signed. */
export function signedPayload(t: number, method: string, target: string, body: string): string {
  return `${t}.${method} ${target}.${body}`;
}

/** The ZTP-Signature header value for a call made at `t` (unix seconds). */
export function signatureHeader(
  secrets: readonly string[],
  t: number,
  method: string,
  target: string,
  body: string,
): string {
  const payload = signedPayload(t, method, target, body);
  let out = `t=${t}`;
  for (const secret of secrets) {
    out += `,v1=${createHmac('sha256', secret).update(payload).digest('hex')}`;
  }
  return out;
}

/**
 * Secrets from a file (one per line) or from ZTP_MANAGER_SECRET (separated by commas or
 * newlines). Blank lines and lines starting with `#` are skipped. Throws ConfigError naming the
 * source, never the secret.
 */
export function parseSecrets(text: string, source: string, separator: 'line' | 'comma-or-line') {
  const pieces = separator === 'line' ? text.split(/\r?\n/) : text.split(/[,\r\n]/);
  const secrets = pieces.map((s) => s.trim()).filter((s) => s !== '' && !s.startsWith('#'));
  if (secrets.length === 0) throw new ConfigError(`${source}: no secret in it`);
  if (secrets.length > MAX_SECRETS)
    throw new ConfigError(
      `${source}: ${secrets.length} secrets; at most ${MAX_SECRETS} (the current one and the next, during a rotation)`,
    );
  secrets.forEach((s, i) => {
    if (s.length < MIN_SECRET_CHARS)
      throw new ConfigError(
        `${source}: secret ${i + 1} is shorter than ${MIN_SECRET_CHARS} characters (e.g. \`openssl rand -hex 32\`)`,
      );
  });
  return new ManagerSecrets(secrets);
}

/** Secrets that print as [redacted] in logs, JSON and inspection. */
export class ManagerSecrets {
  readonly #values: readonly string[];

  constructor(values: readonly string[]) {
    this.#values = [...values];
  }

  /** The secrets themselves: only for the manager client. */
  reveal(): string[] {
    return [...this.#values];
  }

  get count(): number {
    return this.#values.length;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return `ManagerSecrets(${this.#values.length}) [redacted]`;
  }
}
