/**
 * `application/x-www-form-urlencoded` bodies, parsed strictly: what BusyBox `wget --post-data`,
 * OpenWrt's uclient-fetch and cloud-init's phone_home send. URLSearchParams would silently
 * turn bytes that are not UTF-8 into U+FFFD, keep a stray `%` as text and let the last of two
 * equal keys win; here each of those is a 400, so a device never stores a value it did not send.
 */
import { ZtpError } from '../errors.js';

/** Most members a form body may have (cloud-init sends about ten). */
export const FORM_MAX_FIELDS = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const hexValue = (code: number): number => {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
};

const shown = (key: string) => JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);

/** One name or value: `+` is a space, `%XX` a byte; the bytes must be UTF-8. `raw` holds bytes as latin1. */
function decodeComponent(raw: string, what: () => string, field?: string): string {
  const extra = field === undefined ? {} : { field: field.slice(0, 64) };
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x2b) {
      bytes[n++] = 0x20;
    } else if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0)
        throw new ZtpError(
          'invalid_form',
          `${what()} has a '%' not followed by two hex digits (encode '%' as %25)`,
          extra,
        );
      bytes[n++] = hi * 16 + lo;
      i += 2;
    } else {
      bytes[n++] = c;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    throw new ZtpError(
      'invalid_form',
      `${what()} is not UTF-8 text (after percent-decoding)`,
      extra,
    );
  }
}

/**
 * The members of a form body, in order. Empty pieces (`a=1&&b=2`, a trailing `&`) are skipped;
 * a member without `=` has the empty value. Throws `invalid_form` (bad percent-encoding, not
 * UTF-8, more than `maxFields` members) or `duplicate_field` (a member given twice).
 */
export function parseFormBody(body: Buffer, maxFields = FORM_MAX_FIELDS): Map<string, string> {
  const members = new Map<string, string>();
  const text = body.toString('latin1');
  for (const piece of text.split('&')) {
    if (piece === '') continue;
    if (members.size >= maxFields)
      throw new ZtpError('invalid_form', `a form body may have at most ${maxFields} members`);
    const eq = piece.indexOf('=');
    const key = decodeComponent(eq === -1 ? piece : piece.slice(0, eq), () => 'a member name');
    const value =
      eq === -1
        ? ''
        : decodeComponent(piece.slice(eq + 1), () => `the form member ${shown(key)}`, key);
    if (members.has(key))
      throw new ZtpError(
        'duplicate_field',
        `the form member ${shown(key)} is given more than once`,
        {
          field: key.slice(0, 64),
        },
      );
    members.set(key, value);
  }
  return members;
}
