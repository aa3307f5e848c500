/**
 * Well-formed Unicode text: JSON can carry lone UTF-16 surrogates, which are not text and which
 * PostgreSQL and SQLite store differently. Every entry point (request bodies, import lines, the
 * device fields) refuses them with the same error.
 */
import { InvalidInputError } from './errors.js';

/**
 * A UTF-16 surrogate not part of a pair (JSON allows `"\ud800"`). It is not Unicode text: the
 * engines store it differently (SQLite as three U+FFFD, PostgreSQL as one), so it never gets in.
 * With the u flag a pair is one code point, so only lone surrogates match.
 */
const LONE_SURROGATE = /\p{Cs}/u;

export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

const escapeLoneSurrogates = (text: string) =>
  text.replace(/\p{Cs}/gu, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

/**
 * The JSON Pointer (RFC 6901) of the first string — member value or member name — holding a lone
 * surrogate anywhere in a parsed JSON value, or undefined when all its text is well-formed.
 * Iterative: a body may nest thousands of levels deep.
 */
export function loneSurrogatePointer(value: unknown): string | undefined {
  const pending: { value: unknown; at: string }[] = [{ value, at: '' }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: v, at } = next;
    if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) return at;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) pending.push({ value: v[i], at: `${at}/${i}` });
    } else if (typeof v === 'object' && v !== null) {
      const members = Object.entries(v as Record<string, unknown>).map(([key, member]) => ({
        key,
        value: member,
        at: `${at}/${escapeLoneSurrogates(key.replace(/~/g, '~0').replace(/\//g, '~1'))}`,
      }));
      const badKey = members.find((m) => hasLoneSurrogate(m.key));
      if (badKey) return badKey.at;
      for (let i = members.length - 1; i >= 0; i--) pending.push(members[i]!);
    }
  }
  return undefined;
}

/**
 * Refuses a parsed JSON value (a request body, an import line) holding a lone surrogate; the
 * message names `what` and the pointer of the offending string.
 */
export function refuseLoneSurrogates(value: unknown, what = ''): void {
  const pointer = loneSurrogatePointer(value);
  if (pointer === undefined) return;
  throw loneSurrogateError([what, pointer].filter((part) => part !== '').join(' ') || 'the text');
}

export function loneSurrogateError(where: string): InvalidInputError {
  return new InvalidInputError(
    'invalid_body',
    `${where} contains a lone UTF-16 surrogate (e.g. \\ud800 without its pair); text must be well-formed Unicode`,
  );
}
