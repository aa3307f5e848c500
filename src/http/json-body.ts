/**
 * The JSON body parser: Fastify's own (same errors, same prototype-poisoning protection), then a
 * refusal of any string holding a lone UTF-16 surrogate (`{"name":"\ud800"}` is valid JSON but
 * not Unicode text; see refuseLoneSurrogates), in every member of every body, before any route. An empty body is `{}`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { refuseLoneSurrogates } from '../unicode.js';

/**
 * Lone surrogates can only come from `\uD800`-`\uDFFF` escapes (invalid UTF-8 bytes decode to
 * U+FFFD), so a body without such an escape is not walked: the common case costs one scan.
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Parses a JSON body given as text; Fastify's content-type parser signature. */
export type JsonTextParser = (
  request: FastifyRequest,
  body: string,
  done: (error: Error | null, value?: unknown) => void,
) => void;

/** The JSON text parser of this app: also used by routes that read other media types as JSON. */
export function jsonTextParser(app: FastifyInstance): JsonTextParser {
  const parseJson = app.getDefaultJsonParser(
    app.initialConfig.onProtoPoisoning ?? 'error',
    app.initialConfig.onConstructorPoisoning ?? 'error',
  );
  return (request, body, done) => {
    // An empty JSON body (curl -X PUT -H 'content-type: application/json' with no data) means
    // "no members": {} (a registration may be empty; an edit then says `ip is required`).
    if (/^\s*$/.test(body)) {
      done(null, {});
      return;
    }
    // Fastify's parser answers through `done` (synchronously); its return value is nothing.
    void parseJson(request, body, (error, value) => {
      if (error) {
        done(error, undefined);
        return;
      }
      if (SURROGATE_ESCAPE.test(body)) {
        try {
          refuseLoneSurrogates(value, 'body:');
        } catch (e) {
          done(e as Error, undefined);
          return;
        }
      }
      done(null, value);
    });
  };
}

export function installJsonBodyParser(app: FastifyInstance): void {
  const parse = jsonTextParser(app);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parse);
}
