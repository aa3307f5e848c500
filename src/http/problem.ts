/**
 * The one domain→HTTP error map. Domain errors carry only a stable `code`; this module decides
 * each code's status, and every error leaves as an RFC 9457 problem document
 * (application/problem+json); unexpected errors are logged with their stack and answered with a
 * generic 500 that reveals nothing internal.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ZtpError, type ErrorCode } from '../errors.js';
import { redactUrl } from './redact-url.js';
import type { RouteMethods } from './route-methods.js';

/**
 * The HTTP status of every error code, and the only place one is decided. A `Record` over the
 * `ErrorCode` union, so a new code does not compile until it has a status here; docs/api.md
 * "Errors" lists the same table for clients.
 */
export const HTTP_STATUS_OF_CODE: Readonly<Record<ErrorCode, number>> = {
  invalid_id: 400,
  invalid_ip: 400,
  invalid_body: 400,
  invalid_json: 400,
  invalid_query: 400,
  invalid_url: 400,
  invalid_identity_header: 400,
  invalid_form: 400,
  duplicate_field: 400,
  ambiguous_token: 400,
  invalid_forwarded: 400,
  unknown_progress_type: 400,
  report_message_too_long: 400,
  https_required: 400,
  unknown_alias_type: 400,
  invalid_alias: 400,
  too_many_aliases: 400,
  unauthorized: 401,
  forbidden: 403,
  token_not_for_device: 403,
  token_used_up: 403,
  cross_site_request: 403,
  not_enrolled: 403,
  device_rejected: 403,
  device_not_found: 404,
  route_not_found: 404,
  unknown_platform: 404,
  device_pending: 404,
  device_not_rejected: 404,
  method_not_allowed: 405,
  triggers_disabled: 409,
  device_not_pending: 409,
  already_rejected: 409,
  alias_not_found: 404,
  alias_conflict: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  storage_unavailable: 503,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extra: string]: unknown;
}

/**
 * The problem `type`: a URN, stable and resolvable without any server (the project has no public
 * documentation site); docs/api.md#errors lists every code.
 */
export function problemType(code: ErrorCode): string {
  return `urn:ztp:problem:${code}`;
}

/** The problem document for an error code, with the status the code maps to. */
export function problemBody(
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
): ProblemBody {
  return problemDocument(HTTP_STATUS_OF_CODE[code], code, detail, extra);
}

function problemDocument(
  status: number,
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown>,
): ProblemBody {
  return {
    ...extra,
    type: problemType(code),
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
  };
}

export function sendProblem(
  reply: FastifyReply,
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  return sendDocument(reply, problemBody(code, detail, extra));
}

function sendDocument(reply: FastifyReply, body: ProblemBody): FastifyReply {
  // The URL as requested, minus the values of credential-like query parameters.
  body.instance = redactUrl(reply.request.url).slice(0, 512);
  return reply
    .code(body.status)
    .type('application/problem+json; charset=utf-8')
    .serializer(JSON.stringify)
    .send(body);
}

/** Fastify's own error codes that are the client's fault, mapped to ours. */
const FASTIFY_CODES: Record<string, { code: ErrorCode; detail?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json', detail: 'the body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'invalid_json',
    detail: 'the body is empty but declared as JSON',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'unsupported_media_type',
    detail: 'send the body as application/json',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'invalid_body',
    detail: 'Content-Length does not match the body',
  },
  FST_ERR_CTP_INVALID_TYPE: {
    code: 'unsupported_media_type',
    detail: 'send the body as application/json',
  },
};

/**
 * Errors Fastify raises before routing, given as its `frameworkErrors` option: a URL that is not
 * valid percent-encoded UTF-8 (`/ztp/check/%C0%AF`) is a problem document like every other 400.
 */
export function frameworkError(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  void sendProblem(
    reply,
    'invalid_url',
    error.code === 'FST_ERR_BAD_URL'
      ? 'the URL is not valid percent-encoded UTF-8'
      : 'the request cannot be routed',
  );
}

export function installProblemHandlers(
  app: FastifyInstance,
  bodyLimit: number,
  routeMethods: RouteMethods,
): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ZtpError) {
      if (HTTP_STATUS_OF_CODE[error.code] >= 500)
        request.log.warn({ err: error, code: error.code }, error.message);
      if (error.code === 'rate_limited' && typeof error.extra.retryAfter === 'number') {
        void reply.header('retry-after', String(error.extra.retryAfter));
      }
      return sendProblem(reply, error.code, error.message, error.extra);
    }
    if (error.validation) {
      const context = error.validationContext ?? 'request';
      const code: ErrorCode =
        context === 'querystring'
          ? 'invalid_query'
          : context === 'params'
            ? 'invalid_id'
            : 'invalid_body';
      // One sentence per member (src/http/validation.ts): `ip is required; name must be …`.
      const errors = error.validation.map((v) => ({
        path: v.instancePath || '/',
        message: v.message ?? 'is not valid',
      }));
      return sendProblem(reply, code, errors.map((e) => e.message).join('; '), { errors });
    }
    if (error instanceof SyntaxError || error.code in FASTIFY_CODES) {
      const mapped = FASTIFY_CODES[error.code] ?? FASTIFY_CODES.FST_ERR_CTP_INVALID_JSON_BODY!;
      const detail =
        mapped.code === 'body_too_large'
          ? `the body is larger than the limit of ${bodyLimit} bytes`
          : (mapped.detail ?? error.message);
      return sendProblem(reply, mapped.code, detail);
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      // Another framework or plugin error that is the client's fault keeps its own 4xx status.
      return sendDocument(
        reply,
        problemDocument(error.statusCode, 'invalid_body', error.message, {}),
      );
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(reply, 'internal_error', 'an unexpected error occurred; it has been logged');
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]?.slice(0, 256) ?? '';
    const allowed = routeMethods.allowed(request.url);
    if (allowed.length === 0)
      return sendProblem(reply, 'route_not_found', `no route ${request.method} ${path}`);
    const allow = allowed.join(', ');
    void reply.header('allow', allow);
    return sendProblem(
      reply,
      'method_not_allowed',
      `${request.method} is not allowed on ${path}; allowed: ${allow}`,
      { allow: allowed },
    );
  });
}
