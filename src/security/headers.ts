/** Security headers for the browsable documentation (Swagger UI at /docs). */
import type { FastifyReply, FastifyRequest } from 'fastify';

export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Options for @fastify/swagger-ui: a strict CSP with hashes of its inline parts, and the headers. */
export const docsUiSecurity = {
  // The plugin's CSP (script/style hashes of its own inline code), without
  // upgrade-insecure-requests, which would break the page on a plain-HTTP server.
  staticCSP: true,
  transformStaticCSP: (header: string): string =>
    header
      .replace(/\s*upgrade-insecure-requests;?/, '')
      .replace("frame-ancestors 'self'", "frame-ancestors 'none'"),
  uiHooks: {
    onRequest: (_request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      void reply.headers(PAGE_SECURITY_HEADERS);
      done();
    },
  },
  // Never send the API description to the public validator at validator.swagger.io.
  uiConfig: { validatorUrl: null },
} as const;
