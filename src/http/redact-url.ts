/**
 * Credentials in query strings (`?access_token=…`, a future device `?token=…`) must not reach a
 * log line, a problem document's `instance` or any other echo of the URL. One pure function does
 * it for every place that writes a URL out.
 */

/** Query parameter names whose values are credentials, lower case (docs/security.md). */
export const SECRET_QUERY_NAMES: ReadonlySet<string> = new Set([
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'accesstoken',
  'api_key',
  'api-key',
  'apikey',
  'key',
  'secret',
  'client_secret',
  'password',
  'passwd',
  'pwd',
  'auth',
  'authorization',
  'signature',
  'sig',
  'session',
  'sessionid',
]);

/** Last words that make any compound name a credential: `device_token`, `X-Amz-Signature`. */
const SECRET_LAST_WORDS: ReadonlySet<string> = new Set([
  'token',
  'key',
  'secret',
  'password',
  'passwd',
  'signature',
  'sig',
]);

export const REDACTED = '[redacted]';

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw; // not valid percent-encoding: compare it as sent
  }
}

/** True when a query parameter of this name (as sent, percent-encoded or not) is a credential. */
export function isSecretQueryName(rawName: string): boolean {
  const name = decodeName(rawName).toLowerCase().replace(/\[\]$/, '');
  if (SECRET_QUERY_NAMES.has(name)) return true;
  const words = name.split(/[_.\-\s]/);
  return words.length > 1 && SECRET_LAST_WORDS.has(words.at(-1)!);
}

/**
 * The URL (path + query, as in a request line) with the value of every credential-like query
 * parameter replaced by `[redacted]`; everything else is kept byte for byte.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url; // the common case costs one scan
  const parts = url.slice(q + 1).split('&');
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    if (eq === -1 || eq === part.length - 1) continue; // no value to hide
    if (isSecretQueryName(part.slice(0, eq))) {
      parts[i] = `${part.slice(0, eq + 1)}${REDACTED}`;
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q + 1)}${parts.join('&')}` : url;
}
