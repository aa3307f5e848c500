/**
 * Which methods each registered path answers, from Fastify's onRoute hook: a known path asked
 * with another method is a 405 with an `Allow` header computed here, never hand-written.
 */

interface RouteEntry {
  pattern: RegExp;
  method: string;
}

/**
 * find-my-way's route syntax as this server uses it: static segments, `:name` parameters (one
 * segment) and a trailing `*` wildcard; a trailing slash is optional (`ignoreTrailingSlash`).
 */
export function routePattern(url: string): RegExp {
  const trimmed = url.length > 1 && url.endsWith('/') ? url.slice(0, -1) : url;
  let source = '';
  for (const token of trimmed.split(/(:[A-Za-z0-9_]+|\*)/)) {
    if (token === '*') source += '.*';
    else if (token.startsWith(':')) source += '[^/]+';
    else source += token.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}/?$`);
}

export class RouteMethods {
  private readonly routes: RouteEntry[] = [];

  add(methods: string | readonly string[], url: string): void {
    const pattern = routePattern(url);
    for (const method of typeof methods === 'string' ? [methods] : methods)
      this.routes.push({ pattern, method: method.toUpperCase() });
  }

  /** The methods some route answers for this request URL (its query ignored), sorted. */
  allowed(url: string): string[] {
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const methods = new Set<string>();
    for (const route of this.routes) if (route.pattern.test(path)) methods.add(route.method);
    return [...methods].sort();
  }
}
