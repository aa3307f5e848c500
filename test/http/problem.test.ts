/**
 * The code→status map of src/http/problem.ts: every error code has the status docs/api.md
 * promises, and a domain error (which carries no status) is answered with it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { ZtpError, type ErrorCode } from '../../src/errors.js';
import { HTTP_STATUS_OF_CODE, installProblemHandlers } from '../../src/http/problem.js';
import { RouteMethods } from '../../src/http/route-methods.js';

/** The rows of the "Errors" table in docs/api.md: code → status. */
function documentedStatuses(): Record<string, number> {
  const page = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const section = page.split(/^## /m).find((s) => s.startsWith('Errors\n'));
  assert.ok(section, 'docs/api.md has an "Errors" section');
  const rows = [...section.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)];
  const statuses: Record<string, number> = {};
  for (const [, code, status] of rows) statuses[code!] = Number(status);
  return statuses;
}

describe('error codes and their HTTP status', () => {
  const documented = documentedStatuses();
  const codes = Object.keys(HTTP_STATUS_OF_CODE) as ErrorCode[];

  it('documents every code in docs/api.md with the status the server maps it to, and no other', () => {
    assert.ok(codes.length > 0);
    assert.deepEqual(documented, { ...HTTP_STATUS_OF_CODE });
  });

  describe('a thrown domain error', () => {
    const app = Fastify();
    installProblemHandlers(app, 1024, new RouteMethods());
    app.get<{ Params: { code: ErrorCode } }>('/fail/:code', (request) => {
      throw new ZtpError(request.params.code, `failed with ${request.params.code}`, { hint: 1 });
    });
    after(() => app.close());

    it("is answered with its code's documented status, title and problem document", async () => {
      for (const code of codes) {
        const res = await app.inject({ method: 'GET', url: `/fail/${code}` });
        const body = res.json<Record<string, unknown>>();
        assert.equal(res.statusCode, documented[code], code);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
        assert.equal(body.status, documented[code], code);
        assert.notEqual(body.title, 'Error', `${code} has a status without a title`);
        assert.equal(body.code, code);
        assert.equal(body.type, `urn:ztp:problem:${code}`);
        assert.equal(body.detail, `failed with ${code}`);
        assert.equal(body.hint, 1);
      }
    });
  });
});
