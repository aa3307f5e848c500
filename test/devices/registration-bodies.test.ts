/**
 * What a registration may send besides the seed's JSON PUT: POST, form bodies, JSON labelled as
 * text/plain, application/octet-stream or not labelled at all, and the refusals (each a 4xx
 * problem with a stable code, nothing stored). Admin routes stay JSON-only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FORM_MAX_FIELDS, parseFormBody } from '../../src/http/form-body.js';
import { json, testApp, type TestApp } from '../helpers.js';

const FORM = 'application/x-www-form-urlencoded';

describe('registration bodies', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(() => t.close());

  const send = (
    method: 'PUT' | 'POST',
    id: string,
    payload: string | Buffer | undefined,
    contentType?: string,
  ) =>
    t.app.inject({
      method,
      url: `/ztp/register/${id}`,
      remoteAddress: '192.0.2.9',
      headers: contentType === undefined ? {} : { 'content-type': contentType },
      ...(payload === undefined ? {} : { payload }),
    });
  const stored = async (id: string) => {
    const res = await t.app.inject({ url: `/ztp/check/${id}` });
    return res.statusCode === 200 ? json(res) : undefined;
  };
  const problem = (res: { statusCode: number; body: string }, status: number, code: string) => {
    assert.equal(res.statusCode, status, res.body);
    const p = json(res);
    assert.equal(p.code, code, res.body);
    return p;
  };

  it('POST does what PUT does: 201 first, 200 after, the same record', async () => {
    const a = await send(
      'POST',
      'AA-BB-CC-00-00-01',
      '{"ip":"10.0.0.1","name":"n"}',
      'application/json',
    );
    assert.equal(a.statusCode, 201, a.body);
    const b = await send(
      'PUT',
      'aa:bb:cc:00:00:01',
      '{"ip":"10.0.0.2","name":"n"}',
      'application/json',
    );
    assert.equal(b.statusCode, 200, b.body);
    const c = await send('POST', 'aabb.cc00.0001', undefined);
    assert.equal(c.statusCode, 200, c.body);
    // No body: the source address is the ip, the stored name stays.
    assert.deepEqual(json(c), {
      id: 'aa:bb:cc:00:00:01',
      ip: '192.0.2.9',
      name: 'n',
      userdata: '',
    });
  });

  it('a form body registers ip, name and userdata (percent-encoding, + as space, UTF-8)', async () => {
    const res = await send(
      'POST',
      'form-1',
      'ip=10.1.2.3&name=edge+router%20%C3%9C&userdata=rack%3D4%26slot%0A2',
      FORM,
    );
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(json(res), {
      id: 'form-1',
      ip: '10.1.2.3',
      name: 'edge router Ü',
      userdata: 'rack=4&slot\n2',
    });
    const charset = await send('PUT', 'form-1', 'name=x', `${FORM}; charset=utf-8`);
    assert.equal(charset.statusCode, 200, charset.body);
    assert.equal(json(charset).ip, '192.0.2.9', 'a form without ip registers the source address');
  });

  it("cloud-init's hostname is the name when name is absent; its other members are ignored", async () => {
    const res = await send(
      'POST',
      'i-0abc',
      'instance_id=i-0abc&hostname=web-1&fqdn=web-1.example&pub_key_rsa=ssh-rsa+AAAA&unknown=1',
      FORM,
    );
    assert.deepEqual(json(res), { id: 'i-0abc', ip: '192.0.2.9', name: 'web-1', userdata: '' });
    const both = await send('POST', 'i-0abc', 'hostname=web-1&name=given', FORM);
    assert.equal(json(both).name, 'given');
  });

  it('a JSON object sent as text/plain, application/octet-stream or without a type is read as JSON', async () => {
    for (const [i, type] of ['text/plain', 'application/octet-stream', undefined].entries()) {
      const res = await send('PUT', `generic-${i}`, ' {"ip":"10.9.9.9","name":"g"}\n', type);
      assert.equal(res.statusCode, 201, `${type}: ${res.body}`);
      assert.equal(json(res).name, 'g');
    }
    const empty = await send('POST', 'generic-empty', '', 'text/plain');
    assert.equal(empty.statusCode, 201, empty.body);
    assert.equal(json(empty).ip, '192.0.2.9');
  });

  it('refusals: a clear 4xx problem with a stable code, nothing stored, never a 5xx', async () => {
    const cases: [string, string | Buffer, string | undefined, number, string][] = [
      ['text', 'hello', 'text/plain', 415, 'unsupported_media_type'],
      ['array', '[1]', 'application/octet-stream', 415, 'unsupported_media_type'],
      ['untyped-form', 'ip=10.0.0.1', undefined, 415, 'unsupported_media_type'],
      ['xml', '<ip>10.0.0.1</ip>', 'application/xml', 415, 'unsupported_media_type'],
      ['multipart', '--x\r\n', 'multipart/form-data; boundary=x', 415, 'unsupported_media_type'],
      ['broken-json', '{"ip":', 'text/plain', 400, 'invalid_json'],
      ['dup', 'ip=10.0.0.1&name=a&ip=10.0.0.2', FORM, 400, 'duplicate_field'],
      ['not-utf8', 'name=%C3%28', FORM, 400, 'invalid_form'],
      ['raw-latin1', Buffer.from('name=caf\xe9', 'latin1'), FORM, 400, 'invalid_form'],
      ['encoded-surrogate', 'name=%ED%A0%80', FORM, 400, 'invalid_form'],
      ['stray-percent', 'userdata=100%', FORM, 400, 'invalid_form'],
      ['long-hostname', `hostname=${'h'.repeat(256)}`, FORM, 400, 'invalid_body'],
      ['long-name', `name=${'n'.repeat(256)}`, FORM, 400, 'invalid_body'],
      ['bad-ip', 'ip=10.0.0.300', FORM, 400, 'invalid_ip'],
      ['control', 'name=a%07b', FORM, 400, 'invalid_body'],
      ['nul', 'userdata=a%00b', FORM, 400, 'invalid_body'],
      [
        'many',
        Array.from({ length: FORM_MAX_FIELDS + 1 }, (_, i) => `k${i}=v`).join('&'),
        FORM,
        400,
        'invalid_form',
      ],
    ];
    for (const [id, body, type, status, code] of cases) {
      const res = await send('POST', `refused-${id}`, body, type);
      const p = problem(res, status, code);
      assert.equal(typeof p.detail, 'string');
      assert.equal(await stored(`refused-${id}`), undefined, `${id}: nothing stored`);
    }
    const dup = json(await send('POST', 'refused-dup', 'name=a&name=b', FORM));
    assert.equal(dup.field, 'name');
    assert.match(String(dup.detail), /"name" is given more than once/);
    const longHost = json(await send('POST', 'x', `hostname=${'h'.repeat(256)}`, FORM));
    const longJson = json(
      await send('PUT', 'x', JSON.stringify({ name: 'n'.repeat(256) }), 'application/json'),
    );
    assert.equal(longHost.detail, longJson.detail, 'the same message as for JSON');
  });

  it('the body limit holds for forms and generic bodies (413)', async () => {
    const big = `userdata=${'a'.repeat(100 * 1024)}`;
    problem(await send('POST', 'big-form', big, FORM), 413, 'body_too_large');
    problem(
      await send('PUT', 'big-text', `{"userdata":"${'a'.repeat(100 * 1024)}"}`, 'text/plain'),
      413,
      'body_too_large',
    );
    assert.equal(await stored('big-form'), undefined);
  });

  it('admin routes stay JSON-only', async () => {
    await send('PUT', 'admin-1', '{"ip":"10.0.0.1"}', 'application/json');
    for (const [type, body] of [
      [FORM, 'ip=10.0.0.2'],
      ['text/plain', '{"ip":"10.0.0.2"}'],
    ] as const) {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/ztp/mng/admin-1',
        headers: { 'content-type': type },
        payload: body,
      });
      problem(res, 415, 'unsupported_media_type');
    }
    assert.equal((await stored('admin-1'))?.ip, '10.0.0.1');
  });

  it('the OpenAPI document has POST with the same schema as PUT, and the media types', async () => {
    const spec = json<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(
      await t.app.inject({ url: '/openapi.json' }),
    );
    const path = spec.paths['/ztp/register/{id}']!;
    assert.ok(path.put && path.post);
    assert.deepEqual(path.post.requestBody, path.put.requestBody);
    const content = (path.post.requestBody as { content: Record<string, unknown> }).content;
    assert.ok(content[FORM] && content['application/json'] && content['text/plain']);
  });
});

describe('parseFormBody', () => {
  it('skips empty pieces, keeps a member without = as empty, decodes names too', () => {
    const m = parseFormBody(Buffer.from('a=1&&b&c%20d=x+y&'));
    assert.deepEqual(
      [...m],
      [
        ['a', '1'],
        ['b', ''],
        ['c d', 'x y'],
      ],
    );
  });
  it('refuses a member name that is not UTF-8', () => {
    assert.throws(() => parseFormBody(Buffer.from('%FF=1')), /member name is not UTF-8/);
  });
});
