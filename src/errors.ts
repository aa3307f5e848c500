/**
 * Domain errors with stable machine-readable codes and no HTTP status: the HTTP layer maps each
 * code to its status and an RFC 9457 problem response in one place (src/http/problem.ts), so the
 * domain, storage and CLI never decide a status code.
 */
export type ErrorCode =
  | 'invalid_id'
  | 'invalid_ip'
  | 'invalid_body'
  | 'invalid_json'
  | 'invalid_query'
  | 'invalid_url'
  | 'invalid_identity_header'
  | 'invalid_form'
  | 'duplicate_field'
  | 'ambiguous_token'
  | 'invalid_forwarded'
  | 'unknown_progress_type'
  | 'report_message_too_long'
  | 'unsupported_media_type'
  | 'body_too_large'
  | 'unknown_alias_type'
  | 'invalid_alias'
  | 'too_many_aliases'
  | 'alias_conflict'
  | 'alias_not_found'
  | 'device_not_found'
  | 'route_not_found'
  | 'unknown_platform'
  | 'method_not_allowed'
  | 'unauthorized'
  | 'forbidden'
  | 'token_not_for_device'
  | 'token_used_up'
  | 'cross_site_request'
  | 'https_required'
  | 'rate_limited'
  | 'storage_unavailable'
  | 'triggers_disabled'
  | 'not_enrolled'
  | 'device_rejected'
  | 'device_pending'
  | 'device_not_pending'
  | 'already_rejected'
  | 'device_not_rejected'
  | 'internal_error';

/**
 * An operator's setting (option, environment variable, file, database) cannot be used: the
 * command prints the message and stops. Not a request error, so it has no code.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export class ZtpError extends Error {
  readonly code: ErrorCode;
  /** Extra members for the problem document (e.g. validation details). */
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ZtpError';
    this.code = code;
    this.extra = extra;
  }
}

export class InvalidInputError extends ZtpError {
  constructor(
    code: 'invalid_id' | 'invalid_ip' | 'invalid_body' | 'invalid_query',
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(code, message, extra);
  }
}

export class DeviceNotFoundError extends ZtpError {
  constructor(id: string) {
    super('device_not_found', `no device is registered with id '${id}'`, { id });
  }
}

/** The database cannot be reached or refused a write; nothing was committed. */
export class StorageUnavailableError extends ZtpError {
  constructor(
    message = 'storage is unavailable; nothing was stored, retry later',
    cause?: unknown,
  ) {
    super('storage_unavailable', message);
    if (cause !== undefined) this.cause = cause;
  }
}

/** An alias is held by another device (or is another device's primary id); nothing was stored. */
export class AliasConflictError extends ZtpError {
  constructor(value: string, holder: string) {
    super('alias_conflict', `'${value}' already identifies device '${holder}'`, {
      alias: value,
      holder,
    });
  }
}

export class AliasNotFoundError extends ZtpError {
  constructor(id: string, type: string, value: string) {
    super('alias_not_found', `device '${id}' has no ${type} alias '${value}'`, { id, type, value });
  }
}
