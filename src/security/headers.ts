/** Security headers for the browsable documentation (Swagger UI at /docs). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/**
 * The one inline style Swagger UI adds: the `<style>` element inside its top bar's logo SVG,
 * rendered by its bundle (tied to the @fastify/swagger-ui version; test/console/docs.test.ts
 * fails in Chromium when an upgrade changes it). Allowed by its hash, so no other inline style is.
 */
const SWAGGER_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}';
export const SWAGGER_LOGO_STYLE_HASH = `'sha256-${createHash('sha256').update(SWAGGER_LOGO_STYLE).digest('base64')}'`;

/**
 * The plugin's CSP (script/style hashes of its own inline code) made stricter: no
 * upgrade-insecure-requests, which would break the page on a plain-HTTP server; no framing; and
 * the logo's style hash added to style-src (scripts stay without 'unsafe-inline').
 */
export function docsContentSecurityPolicy(header: string): string {
  return header
    .split(';')
    .map((directive) => directive.trim().split(/\s+/))
    .filter(([name]) => name !== '' && name !== 'upgrade-insecure-requests')
    .map(([name = '', ...values]) => {
      if (name === 'frame-ancestors') return "frame-ancestors 'none'";
      if (name === 'style-src') return [name, ...values, SWAGGER_LOGO_STYLE_HASH].join(' ');
      return [name, ...values].join(' ');
    })
    .join('; ');
}

/** Options for @fastify/swagger-ui: a strict CSP with hashes of its inline parts, and the headers. */
export const docsUiSecurity = {
  staticCSP: true,
  transformStaticCSP: docsContentSecurityPolicy,
  uiHooks: {
    onRequest: (_request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      void reply.headers(PAGE_SECURITY_HEADERS);
      done();
    },
  },
  // Never send the API description to the public validator at validator.swagger.io.
  uiConfig: { validatorUrl: null },
} as const;
