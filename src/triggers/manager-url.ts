/**
 * The manager URL (--manager-url) and the request target of a call built from it.
 *
 * Two forms:
 * - a base URL without placeholders, with --manager-format get (the seed's meaning): the call is
 *   `GET {base}/api/exec?ip={ip}`, the base's path kept, no query allowed in it;
 * - a template with placeholders `{ip}`, `{id}`, `{name}`, `{previous_ip}` in its path or query
 *   (or any URL with --manager-format json): used as written, each placeholder replaced by its
 *   value percent-encoded (everything but RFC 3986's unreserved characters), nothing appended.
 *
 * Pure: no I/O. Every refusal is a ConfigError with the reason, so `ztp serve` exits 2 at start.
 */
import { ConfigError } from '../errors.js';

export const PLACEHOLDERS = ['ip', 'id', 'name', 'previous_ip'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type ManagerFormat = 'get' | 'json';

/** The values a target is filled with; null is filled as the empty string. */
export type TargetValues = Record<Placeholder, string | null>;

export interface ManagerTarget {
  /** scheme://host[:port] */
  origin: string;
  /** The placeholders the URL uses (empty for the seed's base URL). */
  uses: ReadonlySet<Placeholder>;
  /** The request target (path and query), values percent-encoded. */
  target(values: TargetValues): string;
}

/** `GET {base}/api/exec?ip={ip}`: the seed's call, byte for byte. */
export function execUrl(base: string, ip: string): string {
  return `${base}/api/exec?ip=${encodeURIComponent(ip)}`;
}

/**
 * Percent-encodes all but RFC 3986's unreserved characters (ALPHA DIGIT - . _ ~), as UTF-8: a
 * value can never add a path segment, a query parameter or a fragment.
 */
export function encodeValue(value: string): string {
  return encodeURIComponent(wellFormed(value)).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** A lone surrogate (not UTF-8 encodable) becomes U+FFFD instead of throwing. */
function wellFormed(s: string): string {
  return s.replace(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    '\uFFFD',
  );
}

type Part = { literal: string } | { placeholder: Placeholder };

/** Parses and checks a manager URL for a format; throws ConfigError with the reason. */
export function parseManagerUrl(
  raw: string,
  format: ManagerFormat = 'get',
  where = '--manager-url',
): ManagerTarget {
  const parts = splitTemplate(raw, where);
  const uses = new Set<Placeholder>();
  // Each placeholder becomes a marker that URL parsing keeps as it is, anywhere in a URL.
  const markers: string[] = [];
  let marked = '';
  for (const p of parts) {
    if ('literal' in p) {
      marked += p.literal;
    } else {
      uses.add(p.placeholder);
      const marker = `ztpplaceholder${markers.length}x`;
      markers.push(p.placeholder);
      marked += marker;
    }
  }
  let url: URL;
  try {
    url = new URL(marked);
  } catch {
    throw new ConfigError(`${where}: '${raw}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`${where}: must be http:// or https://`);
  if (url.username !== '' || url.password !== '')
    throw new ConfigError(`${where}: credentials in the URL are not supported`);
  if (url.hash !== '' || raw.includes('#'))
    throw new ConfigError(`${where}: must not have a fragment`);
  if (/ztpplaceholder\d+x/.test(url.origin))
    throw new ConfigError(`${where}: placeholders may only stand in the path or the query`);

  if (uses.size === 0 && format === 'get') {
    // The seed's form: the exec path and query are appended to the base URL.
    if (url.search !== '')
      throw new ConfigError(
        `${where}: a base URL must not have a query (the call appends /api/exec?ip={ip}); ` +
          'to choose the query, write the placeholders, e.g. http://manager/api/exec?ip={ip}',
      );
    const base = url.pathname.replace(/\/+$/, '');
    return { origin: url.origin, uses, target: (v) => execUrl(base, v.ip ?? '') };
  }

  // As written, the URL's own normalisation kept (spaces and non-ASCII in the path encoded).
  const pieces = (url.pathname + url.search).split(/ztpplaceholder(\d+)x/);
  return {
    origin: url.origin,
    uses,
    target: (v) => {
      let out = '';
      for (let i = 0; i < pieces.length; i++) {
        const piece = pieces[i]!;
        out += i % 2 === 0 ? piece : encodeValue(v[markers[Number(piece)] as Placeholder] ?? '');
      }
      return out;
    },
  };
}

/** Literal text and `{name}` placeholders; unknown names and unbalanced braces refused. */
function splitTemplate(raw: string, where: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < raw.length) {
    const open = raw.indexOf('{', i);
    const close = raw.indexOf('}', i);
    if (close !== -1 && (open === -1 || close < open))
      throw new ConfigError(`${where}: unbalanced '}' at position ${close + 1}`);
    if (open === -1) {
      parts.push({ literal: raw.slice(i) });
      break;
    }
    const end = raw.indexOf('}', open);
    const nextOpen = raw.indexOf('{', open + 1);
    if (end === -1 || (nextOpen !== -1 && nextOpen < end))
      throw new ConfigError(`${where}: unbalanced '{' at position ${open + 1}`);
    const name = raw.slice(open + 1, end);
    if (!(PLACEHOLDERS as readonly string[]).includes(name))
      throw new ConfigError(
        `${where}: unknown placeholder {${name}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')})`,
      );
    if (open > i) parts.push({ literal: raw.slice(i, open) });
    parts.push({ placeholder: name as Placeholder });
    i = end + 1;
  }
  return parts;
}

/**
 * --report-forward: a URL or template like --manager-url's json form (the same placeholders,
 * used as written), on the manager's origin: forwarded reports share its connections, its
 * circuit breaker and its signing secret, so they must go to the same server.
 */
export function parseReportForwardUrl(raw: string, manager: ManagerTarget): ManagerTarget {
  const target = parseManagerUrl(raw, 'json', '--report-forward');
  if (target.origin !== manager.origin)
    throw new ConfigError(
      `--report-forward: must be on the manager's origin ${manager.origin} (it shares the manager's connections, circuit breaker and secret), not ${target.origin}`,
    );
  return target;
}
