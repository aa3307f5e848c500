/**
 * Request validation with TypeBox (as @fastify/type-provider-typebox does it) that words every
 * problem as one sentence a person can act on: `ip is required`, `name must be a string of at
 * most 255 characters`, instead of TypeBox's several raw messages per member.
 */
import { Kind, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';

/** Fastify's name of the request part: body, querystring, params or headers. */
type Part = string;

const WHOLE: Record<string, string> = {
  body: 'the body',
  querystring: 'the query string',
  params: 'the path',
  headers: 'the headers',
};

function subject(path: string, part: Part): string {
  return path === '' ? (WHOLE[part] ?? 'the request') : path.slice(1).replace(/\//g, '.');
}

function range(min: unknown, max: unknown, unit: string): string {
  const suffix = unit ? ` ${unit}` : '';
  if (typeof min === 'number' && typeof max === 'number') return ` from ${min} to ${max}${suffix}`;
  if (typeof max === 'number') return ` of at most ${max}${suffix}`;
  if (typeof min === 'number') return ` of at least ${min}${suffix}`;
  return '';
}

/** What a value of this schema must be, as the end of "x must be …". */
export function expectation(schema: TSchema): string {
  const s = schema as TSchema & Record<string, unknown>;
  // A schema whose check says more than its type (a pattern) names what it wants (an OpenAPI
  // extension, so that the published document stays valid).
  if (typeof s['x-expected'] === 'string') return s['x-expected'];
  switch (s[Kind]) {
    case 'String':
      return `a string${range(s.minLength, s.maxLength, 'characters')}`;
    case 'Integer':
      return `an integer${range(s.minimum, s.maximum, '')}`;
    case 'Number':
      return `a number${range(s.minimum, s.maximum, '')}`;
    case 'Boolean':
      return 'true or false';
    case 'Object':
      return 'a JSON object';
    case 'Array':
      return 'an array';
    case 'Literal':
      return JSON.stringify(s.const);
    case 'Union': {
      const options = (s.anyOf as TSchema[]).map((o) => (o as { const?: unknown }).const);
      return options.every((o) => o !== undefined)
        ? `one of ${options.map((o) => JSON.stringify(o)).join(', ')}`
        : (s.anyOf as TSchema[]).map(expectation).join(' or ');
    }
    case 'Null':
      return 'null';
    default:
      return 'valid';
  }
}

/** One sentence for one TypeBox error. */
export function sentence(error: ValueError, part: Part): string {
  const name = subject(error.path, part);
  return error.type === ValueErrorType.ObjectRequiredProperty
    ? `${name} is required`
    : `${name} must be ${expectation(error.schema)}`;
}

/** At most one sentence per member: TypeBox reports a missing `ip` as missing and not a string. */
export function validationErrors(
  errors: Iterable<ValueError>,
  part: Part,
): FastifySchemaValidationError[] {
  const seen = new Set<string>();
  const out: FastifySchemaValidationError[] = [];
  for (const error of errors) {
    if (seen.has(error.path)) continue;
    seen.add(error.path);
    out.push({
      keyword: ValueErrorType[error.type],
      instancePath: error.path,
      schemaPath: '',
      params: {},
      message: sentence(error, part),
    });
  }
  return out;
}

/**
 * Bodies are checked exactly (no coercion: {"name": 5} is a 400, not "5"); query strings and path
 * parameters are converted first (`?limit=5` is the integer 5).
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema);
  const part = httpPart ?? 'request';
  return (value: unknown) => {
    const converted = httpPart === 'body' ? value : Value.Convert(schema, value);
    if (check.Check(converted)) return { value: converted };
    return { error: validationErrors(check.Errors(converted), part) };
  };
};
