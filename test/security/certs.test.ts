/** Which device ids a client certificate names (the basis of --bind-cert-to-id). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { certDeviceIds, parseSubjectAltName } from '../../src/security/certs.js';

describe('subjectAltName parsing', () => {
  it('splits entries and keeps a quoted value whole, commas included', () => {
    assert.deepEqual(
      parseSubjectAltName(
        'DNS:a.example, IP Address:10.0.0.1, URI:"http://x/, DNS:victim", email:d@x',
      ),
      [
        { type: 'DNS', value: 'a.example' },
        { type: 'IP Address', value: '10.0.0.1' },
        { type: 'URI', value: 'http://x/, DNS:victim' },
        { type: 'email', value: 'd@x' },
      ],
    );
    assert.deepEqual(parseSubjectAltName(undefined), []);
    assert.deepEqual(parseSubjectAltName(''), []);
  });
});

describe('certificate device ids', () => {
  it('are the CN and the DNS/URI/email SANs, MACs in canonical form; never IP addresses', () => {
    const ids = certDeviceIds({
      authorized: true,
      commonNames: ['AA-BB-CC-DD-EE-01'],
      altNames: parseSubjectAltName(
        'DNS:aabb.ccdd.ee02, IP Address:10.0.0.1, URI:"urn:x, DNS:aa:bb:cc:dd:ee:03", DNS:serial-7',
      ),
    });
    assert.deepEqual([...ids].sort(), [
      'aa:bb:cc:dd:ee:01',
      'aa:bb:cc:dd:ee:02',
      'serial-7',
      'urn:x, DNS:aa:bb:cc:dd:ee:03',
    ]);
    assert.ok(!ids.has('10.0.0.1'));
    assert.ok(!ids.has('aa:bb:cc:dd:ee:03'), 'a value smuggled inside a quoted SAN does not count');
  });
});
