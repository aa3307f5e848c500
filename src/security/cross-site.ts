/**
 * Cross-site request refusal. With tokens off, any web page an operator opens could make the
 * browser call a state-changing URL of this server (the seed's `GET /ztp/mng/{id}/delete` works
 * from an <img> tag). Browsers label every request with `Sec-Fetch-Site`; a state-changing request
 * labelled `cross-site` or `same-site` is refused with 403 `cross_site_request` before anything
 * else runs. curl, scripts and devices send no such header; the console is `same-origin`; a URL
 * typed into the address bar is `none`: all of those pass.
 */
import type { FastifyRequest } from 'fastify';
import { ZtpError } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A GET route that changes state (the seed's delete): logged and guarded like a write. */
    changesState?: boolean;
  }
}

/** Methods that never change state, unless their route says otherwise (`changesState`). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `same-site` is refused too: it includes every other port and subdomain of the site (another
 * web application on the same host), which is no more trusted than a foreign site.
 */
export const REFUSED_FETCH_SITES: ReadonlySet<string> = new Set(['cross-site', 'same-site']);

export function changesState(method: string, config: { changesState?: boolean }): boolean {
  return !SAFE_METHODS.has(method) || config.changesState === true;
}

export class CrossSiteRequestError extends ZtpError {
  constructor(site: string) {
    super(
      'cross_site_request',
      `a state-changing request from another site (Sec-Fetch-Site: ${site}) is refused; use the console or an API client`,
    );
  }
}

/** onRequest hook of the root instance (callback style: it runs on every request). */
export function refuseCrossSite(
  request: FastifyRequest,
  _reply: unknown,
  done: (err?: Error) => void,
): void {
  const site = request.headers['sec-fetch-site'];
  if (
    typeof site === 'string' &&
    REFUSED_FETCH_SITES.has(site.toLowerCase()) &&
    changesState(request.method, request.routeOptions.config)
  ) {
    done(new CrossSiteRequestError(site.toLowerCase()));
    return;
  }
  done();
}
