import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeValue, parseManagerUrl } from '../../src/triggers/manager-url.js';

const values = (v: Partial<Record<'ip' | 'id' | 'name' | 'previous_ip', string | null>>) => ({
  ip: '10.0.0.1',
  id: 'aa:bb:cc:dd:ee:ff',
  name: null,
  previous_ip: null,
  ...v,
});

describe('manager URL templates', () => {
  it('keeps the seed meaning for a base URL: /api/exec?ip={ip} appended, trailing slashes dropped', () => {
    const t = parseManagerUrl('http://mgr:9000/base//');
    assert.equal(t.origin, 'http://mgr:9000');
    assert.equal(t.target(values({ ip: '2001:db8::1' })), '/base/api/exec?ip=2001%3Adb8%3A%3A1');
    assert.equal(parseManagerUrl('https://mgr').target(values({})), '/api/exec?ip=10.0.0.1');
  });

  it('fills placeholders in the path and query, percent-encoding awkward values', () => {
    const t = parseManagerUrl(
      'https://mgr.example/devices/{id}/{name}?ip={ip}&was={previous_ip}&kind=ztp',
    );
    assert.deepEqual([...t.uses].sort(), ['id', 'ip', 'name', 'previous_ip']);
    assert.equal(
      t.target(
        values({
          ip: 'fe80::1%eth0',
          name: "sw core/1 Ü ✓ 😀 (a)*!'~._-",
          previous_ip: null,
        }),
      ),
      '/devices/aa%3Abb%3Acc%3Add%3Aee%3Aff/sw%20core%2F1%20%C3%9C%20%E2%9C%93%20%F0%9F%98%80%20%28a%29%2A%21%27~._-' +
        '?ip=fe80%3A%3A1%25eth0&was=&kind=ztp',
    );
  });

  it('never lets a value add a segment, a parameter or a fragment', () => {
    const t = parseManagerUrl('http://m/x/{name}?n={name}');
    const target = t.target(values({ name: '../../admin?x=1&y=2#frag' }));
    assert.equal(
      target,
      '/x/..%2F..%2Fadmin%3Fx%3D1%26y%3D2%23frag?n=..%2F..%2Fadmin%3Fx%3D1%26y%3D2%23frag',
    );
    assert.equal(new URL(target, 'http://m').pathname.split('/').length, 3);
  });

  it('encodes a lone surrogate as U+FFFD instead of failing the call', () => {
    assert.equal(encodeValue('a\uD800b'), 'a%EF%BF%BDb');
  });

  it('uses a URL without placeholders as written in the json format (nothing appended)', () => {
    const t = parseManagerUrl('http://m/hooks/ztp/?src=a b', 'json');
    assert.equal(t.target(values({})), '/hooks/ztp/?src=a%20b');
  });
});
