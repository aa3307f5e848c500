/**
 * The bodies a registration accepts, beyond JSON: boot environments that cannot send our JSON
 * (BusyBox wget, uclient-fetch, cloud-init phone_home, a router's `copy` to a URL) still
 * register. Installed in the registration routes' scope only: every other route stays JSON-only.
 */
import type { FastifyInstance } from 'fastify';
import { ZtpError } from '../../errors.js';
import { parseFormBody } from '../../http/form-body.js';
import { jsonTextParser } from '../../http/json-body.js';

/** Labels file-upload tools put on any body: read as JSON when the body is a JSON object. */
const GENERIC_TYPES = ['text/plain', 'application/octet-stream'];
const FORM_TYPE = 'application/x-www-form-urlencoded';
const ACCEPTED: ReadonlySet<string> = new Set(['application/json', FORM_TYPE, ...GENERIC_TYPES]);

export const REGISTRATION_MEDIA_TYPES: readonly string[] = [...ACCEPTED];

const acceptedText = (formMembers: string) =>
  `send application/json, application/x-www-form-urlencoded (${formMembers}), or a JSON object as text/plain, application/octet-stream or without a Content-Type`;

/**
 * A form's registration members: `ip`, `name`, `userdata`. cloud-init's phone_home calls the
 * name `hostname` (used when `name` is absent); its other members (`instance_id`, `fqdn`,
 * `pub_key_*`) and any unknown member are ignored, as unknown JSON members are.
 */
export function registrationFromForm(members: ReadonlyMap<string, string>): Record<string, string> {
  const body: Record<string, string> = {};
  for (const key of ['ip', 'name', 'userdata']) {
    const value = members.get(key);
    if (value !== undefined) body[key] = value;
  }
  const hostname = members.get('hostname');
  if (body.name === undefined && hostname !== undefined) body.name = hostname;
  return body;
}

const mediaTypeOf = (header: string) => (header.split(';')[0] ?? '').trim().toLowerCase();

/**
 * Another device route's bodies (progress reports, src/reports/): the same media types, its own
 * form members (`fromForm`) and name in the errors (`what`, e.g. 'a report body').
 */
export interface DeviceBodyOptions {
  fromForm?: (members: ReadonlyMap<string, string>) => Record<string, string>;
  what?: string;
  /** The form members, as the errors list them. */
  formMembers?: string;
}

export function installRegistrationBodies(
  app: FastifyInstance,
  opts: DeviceBodyOptions = {},
): void {
  const fromForm = opts.fromForm ?? registrationFromForm;
  const what = opts.what ?? 'a registration body';
  const ACCEPTED_TEXT = acceptedText(opts.formMembers ?? 'ip, name, userdata');
  const parseJson = jsonTextParser(app);
  // Refused before the body is read (a 415 should not wait for a large upload).
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const header = request.headers['content-type'];
    if (header !== undefined && !ACCEPTED.has(mediaTypeOf(header))) {
      done(
        new ZtpError(
          'unsupported_media_type',
          `${what} cannot be ${mediaTypeOf(header) || 'an empty media type'}: ${ACCEPTED_TEXT}`,
        ),
      );
      return;
    }
    done(null, payload);
  });
  const generic = (
    request: Parameters<typeof parseJson>[0],
    body: string,
    done: (error: Error | null, value?: unknown) => void,
  ): void => {
    if (/^\s*$/.test(body)) {
      done(null, {});
      return;
    }
    if (body.trimStart().startsWith('{')) {
      parseJson(request, body, done);
      return;
    }
    const header = request.headers['content-type'];
    const label =
      header === undefined ? 'a body without a Content-Type' : `a ${mediaTypeOf(header)} body`;
    done(
      new ZtpError('unsupported_media_type', `${label} must be a JSON object: ${ACCEPTED_TEXT}`),
    );
  };
  app.addContentTypeParser(GENERIC_TYPES, { parseAs: 'string' }, generic);
  // Fastify's catch-all: here only bodies without a Content-Type reach it (the hook above
  // refused every type not accepted).
  app.addContentTypeParser('*', { parseAs: 'string' }, generic);
  app.addContentTypeParser(FORM_TYPE, { parseAs: 'buffer' }, (_request, body: Buffer, done) => {
    try {
      done(null, fromForm(parseFormBody(body)));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}
