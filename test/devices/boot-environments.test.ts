/**
 * Contract tests: the exact bytes each boot environment sends to register, replayed over a TCP
 * socket to the real server, on both engines, and the device stored from them.
 *
 * Where the bytes come from:
 * - BusyBox 1.3x `wget --post-data`: captured from BusyBox 1.35 (Debian 12), byte for byte.
 * - OpenWrt uclient-fetch: from its source as we read it (Host, User-Agent, the form
 *   Content-Type for any data, the body chunked); assumed, not captured.
 * - cloud-init phone_home: Python requests' form encoding of phone_home's members (instance_id,
 *   hostname, fqdn, pub_key_*; key files' text with their newline), the instance id in the URL
 *   (`url: http://…/ztp/register/$INSTANCE_ID/`, trailing slash as in cloud-init's example).
 * - Cisco IOS `copy flash:file http://…`: a PUT of the file's bytes, Host set to the server's IP
 *   (a documented IOS habit), User-Agent cisco-IOS. Which Content-Type IOS sends is not
 *   documented anywhere we could find: both none and application/octet-stream are replayed.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { json, tempSqliteStore, testApp, type TestApp } from '../helpers.js';
import { createTestDatabase, skippedPgSuite } from '../pg-helpers.js';
import type { OpenedStore } from '../storage/store-suite.js';

interface Answer {
  status: number;
  body: string;
}

/** Sends `request` on a fresh connection and reads the answer until the server closes it. */
function replay(port: number, request: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (data += c));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', ...rest] = data.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      let body = rest.join('\r\n\r\n');
      if (/\r\ntransfer-encoding: chunked/i.test(head))
        body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
      resolve({ status, body });
    });
    socket.write(request);
  });
}

const crlf = (lines: string[], body = '') => `${lines.join('\r\n')}\r\n\r\n${body}`;
const len = (body: string) => Buffer.byteLength(body);
const chunked = (body: string) => `${len(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;

function bootEnvironments(name: string, open: () => Promise<OpenedStore>): void {
  describe(`boot environments register: ${name}`, () => {
    let t: TestApp;
    let opened: OpenedStore;
    let port: number;
    let host: string;
    before(async () => {
      opened = await open();
      t = await testApp({ store: opened.store });
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      port = (t.app.server.address() as { port: number }).port;
      host = `127.0.0.1:${port}`;
    });
    after(async () => {
      await t.close();
      await opened.cleanup();
    });
    const detail = async (id: string) => {
      const res = await t.app.inject({ url: `/ztp/mng/${id}` });
      return res.statusCode === 200 ? json(res) : undefined;
    };

    it('BusyBox 1.3x wget --post-data (captured bytes)', async () => {
      const body = 'ip=10.0.0.5&name=ap-1';
      const a = await replay(
        port,
        crlf(
          [
            'POST /ztp/register/aa-bb-cc-dd-ee-01 HTTP/1.1',
            `Host: ${host}`,
            'User-Agent: Wget',
            'Connection: close',
            'Content-Type: application/x-www-form-urlencoded',
            `Content-Length: ${len(body)}`,
          ],
          body,
        ),
      );
      assert.equal(a.status, 201, a.body);
      const d = await detail('aa:bb:cc:dd:ee:01');
      assert.deepEqual(
        { id: d?.id, ip: d?.ip, name: d?.name, userdata: d?.userdata, src: d?.lastSource },
        { id: 'aa:bb:cc:dd:ee:01', ip: '10.0.0.5', name: 'ap-1', userdata: '', src: '127.0.0.1' },
      );
    });

    it('OpenWrt uclient-fetch: POST and PUT of a form, chunked', async () => {
      const post = 'ip=10.0.0.6&userdata=fw%3D23.05';
      const a = await replay(
        port,
        crlf(
          [
            'POST /ztp/register/AABB.CCDD.EE02 HTTP/1.1',
            `Host: ${host}`,
            'User-Agent: uclient-fetch',
            'Content-Type: application/x-www-form-urlencoded',
            'Transfer-Encoding: chunked',
            'Connection: close',
          ],
          chunked(post),
        ),
      );
      assert.equal(a.status, 201, a.body);
      const put = 'name=gw-2';
      const b = await replay(
        port,
        crlf(
          [
            'PUT /ztp/register/aa:bb:cc:dd:ee:02 HTTP/1.1',
            `Host: ${host}`,
            'User-Agent: uclient-fetch',
            'Content-Type: application/x-www-form-urlencoded',
            'Transfer-Encoding: chunked',
            'Connection: close',
          ],
          chunked(put),
        ),
      );
      assert.equal(b.status, 200, b.body);
      assert.deepEqual(JSON.parse(b.body), {
        id: 'aa:bb:cc:dd:ee:02',
        ip: '127.0.0.1',
        name: 'gw-2',
        // Not in this form: the userdata of the first registration stays.
        userdata: 'fw=23.05',
      });
    });

    it('cloud-init phone_home: form POST, instance id in the URL, hostname as name', async () => {
      const members: [string, string][] = [
        ['pub_key_rsa', 'ssh-rsa AAAAB3NzaC1yc2E+/w== root@web-1\n'],
        ['pub_key_ecdsa', 'ecdsa-sha2-nistp256 AAAAE2VjZHNh= root@web-1\n'],
        ['pub_key_ed25519', 'N/A'],
        ['instance_id', 'i-0abc1234'],
        ['hostname', 'web-1'],
        ['fqdn', 'web-1.example.com'],
      ];
      // Python's urlencode (quote_plus): space as +, everything but A-Za-z0-9_.-~ escaped.
      const enc = (v: string) =>
        encodeURIComponent(v)
          .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
          .replace(/%20/g, '+');
      const body = members.map(([k, v]) => `${k}=${enc(v)}`).join('&');
      const a = await replay(
        port,
        crlf(
          [
            'POST /ztp/register/i-0abc1234/ HTTP/1.1',
            `Host: ${host}`,
            'User-Agent: Cloud-Init/23.1.2',
            'Accept-Encoding: gzip, deflate',
            'Accept: */*',
            'Connection: close',
            `Content-Length: ${len(body)}`,
            'Content-Type: application/x-www-form-urlencoded',
          ],
          body,
        ),
      );
      assert.equal(a.status, 201, a.body);
      assert.deepEqual(JSON.parse(a.body), {
        id: 'i-0abc1234',
        ip: '127.0.0.1',
        name: 'web-1',
        userdata: '',
      });
    });

    it('Cisco IOS copy flash:file http://… (PUT of the raw file, no or a generic type)', async () => {
      const file = '{"name":"rtr-7","userdata":"IOS-XE 17.9"}\n';
      for (const type of [[], ['Content-Type: application/octet-stream']]) {
        const a = await replay(
          port,
          crlf(
            [
              'PUT /ztp/register/aabb.ccdd.ee07 HTTP/1.1',
              `Host: 127.0.0.1`,
              'User-Agent: cisco-IOS',
              ...type,
              `Content-Length: ${len(file)}`,
              'Connection: close',
            ],
            file,
          ),
        );
        assert.ok(a.status === 201 || a.status === 200, a.body);
      }
      const d = await detail('aa:bb:cc:dd:ee:07');
      assert.ok(d);
      assert.equal(d.name, 'rtr-7');
      assert.equal(d.userdata, 'IOS-XE 17.9');
      assert.equal(d.ip, '127.0.0.1');
      assert.equal(d.registrations, 2);
      // A router that copies its running-config instead: 415, nothing stored.
      const config = 'hostname rtr-8\n!\ninterface Gi0/0\n';
      const refused = await replay(
        port,
        crlf(
          [
            'PUT /ztp/register/aabb.ccdd.ee08 HTTP/1.1',
            'Host: 127.0.0.1',
            'User-Agent: cisco-IOS',
            `Content-Length: ${len(config)}`,
            'Connection: close',
          ],
          config,
        ),
      );
      assert.equal(refused.status, 415, refused.body);
      assert.equal(json(refused).code, 'unsupported_media_type');
      assert.equal(await detail('aa:bb:cc:dd:ee:08'), undefined);
    });
  });
}

// Awaited before any suite is declared: a suite declared after this await was not run.
const db = await createTestDatabase('boot_env');

bootEnvironments('sqlite', async () => {
  const { store, cleanup } = tempSqliteStore();
  return { store, cleanup };
});

if (!db) {
  skippedPgSuite('boot environments on PostgreSQL');
} else {
  after(() => db.drop());
  bootEnvironments('postgres', () => db.openStore());
}
