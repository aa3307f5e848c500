/**
 * `?token=` for devices that cannot send headers (cloud-init phone_home, BusyBox wget without
 * `--header`, a DHCP-provided URL). Only the registration group's guard reads it (so also any
 * route that installs that guard, e.g. the bootstrap URLs); the URL's token is redacted from
 * every log line and problem document by src/http/redact-url.ts (`token` is a secret name).
 */
import { ZtpError } from '../errors.js';

/** The query parameter a device token may travel in. */
export const TOKEN_QUERY_NAME = 'token';

/** 400: the token is given twice (`?token=` repeated, or both `?token=` and `Authorization`). */
export class AmbiguousTokenError extends ZtpError {
  constructor(detail: string) {
    super('ambiguous_token', detail);
  }
}

function decode(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return undefined; // not valid percent-encoding: it cannot be a configured token
  }
}

/**
 * The `?token=` of a request URL (path and query, as in the request line): undefined when absent,
 * the decoded value otherwise ('' when it cannot be decoded, which no token equals). Throws
 * AmbiguousTokenError when the parameter is repeated. For the bootstrap feature: a served script
 * can carry on the token its URL was fetched with.
 */
export function queryToken(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q === -1) return undefined;
  let found: string | undefined;
  for (const part of url.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name !== TOKEN_QUERY_NAME && decode(name) !== TOKEN_QUERY_NAME) continue;
    if (found !== undefined)
      throw new AmbiguousTokenError('give the token once: ?token= appears more than once');
    found = eq === -1 ? '' : (decode(part.slice(eq + 1)) ?? '');
  }
  return found;
}
