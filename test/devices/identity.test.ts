import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  canonicalMac,
  normaliseId,
  normaliseIp,
  sourceAddress,
  validateName,
  validateUserdata,
} from '../../src/devices/identity.js';
import { InvalidInputError } from '../../src/errors.js';
import { loneSurrogatePointer } from '../../src/unicode.js';

describe('device id normalisation', () => {
  it('unifies colon, hyphen and Cisco dotted MAC notations in any case', () => {
    for (const raw of [
      'aa:bb:cc:dd:ee:ff',
      'AA:BB:CC:DD:EE:FF',
      'AA-BB-CC-DD-EE-FF',
      'aabb.ccdd.eeff',
      'AABB.CCDD.EEFF',
      'Aa-bB-cc-DD-ee-FF',
    ]) {
      assert.equal(normaliseId(raw), 'aa:bb:cc:dd:ee:ff', raw);
    }
  });

  it('does not treat mixed separators or wrong lengths as MACs', () => {
    assert.equal(canonicalMac('aa:bb-cc:dd:ee:ff'), undefined);
    assert.equal(canonicalMac('aa:bb:cc:dd:ee'), undefined);
    assert.equal(canonicalMac('aabb.ccdd.eef'), undefined);
    // Not MACs, but valid other ids kept as given.
    assert.equal(normaliseId('aa:bb-cc:dd:ee:ff'), 'aa:bb-cc:dd:ee:ff');
    assert.equal(normaliseId('AABBCCDDEEF'), 'AABBCCDDEEF');
    assert.equal(normaliseId('AABBCCDDEEFF0'), 'AABBCCDDEEFF0');
  });

  it('reads bare 12-hex as a MAC, in any case', () => {
    assert.equal(normaliseId('AABBCCDDEEFF'), 'aa:bb:cc:dd:ee:ff');
    assert.equal(canonicalMac('aAbBcCdDeEfF'), 'aa:bb:cc:dd:ee:ff');
  });

  it('refuses ids made only of dots (browsers and curl collapse them)', () => {
    for (const raw of ['.', '..', '...', '.....']) {
      assert.throws(() => normaliseId(raw), { code: 'invalid_id' }, raw);
    }
    assert.equal(normaliseId('.a.'), '.a.');
  });

  it('keeps other ids exactly as given', () => {
    for (const raw of [
      'CPU-0x1F2E',
      'serial.123_abc',
      '4c4c4544-0042-3510-8052-b4c04f564433',
      'a',
      'x'.repeat(128),
    ]) {
      assert.equal(normaliseId(raw), raw);
    }
  });

  it('rejects empty, over-long, reserved and out-of-alphabet ids', () => {
    for (const raw of [
      '',
      'x'.repeat(129),
      'list',
      'LIST',
      'triggers',
      'events',
      'has space',
      'slash/id',
      'ünï',
      'semi;colon',
      'a\nb',
    ]) {
      assert.throws(
        () => normaliseId(raw),
        (e: unknown) => e instanceof InvalidInputError && e.code === 'invalid_id',
        JSON.stringify(raw),
      );
    }
  });
});

describe('ip normalisation', () => {
  it('accepts IPv4 and canonical IPv6', () => {
    assert.equal(normaliseIp('1.1.1.1'), '1.1.1.1');
    assert.equal(normaliseIp('255.255.255.255'), '255.255.255.255');
    assert.equal(normaliseIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(normaliseIp('::1'), '::1');
  });

  it('shows IPv4-mapped IPv6 as plain IPv4', () => {
    assert.equal(normaliseIp('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(normaliseIp('::FFFF:0a01:0203'), '10.1.2.3');
  });

  it('rejects out-of-range quads, junk, hostnames and zone ids', () => {
    for (const raw of [
      '1.1.1.256',
      '1.1.1',
      '01.1.1.1',
      '1.1.1.1 ',
      ' 1.1.1.1',
      '1.1.1.1&x=y',
      '1.1.1.1/24',
      'localhost',
      '',
      'fe80::1%eth0',
      '::ffff:1.1.1.256',
      '1.1.1.1@evil',
      '[::1]',
    ]) {
      assert.throws(
        () => normaliseIp(raw),
        (e: unknown) => e instanceof InvalidInputError && e.code === 'invalid_ip',
        JSON.stringify(raw),
      );
    }
  });

  it('records any source address without throwing', () => {
    assert.equal(sourceAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(sourceAddress(undefined), '');
    assert.equal(sourceAddress('not-an-ip'), 'not-an-ip');
  });
});

describe('name and userdata', () => {
  it('enforces the documented limits', () => {
    assert.equal(validateName('x'.repeat(255)), 'x'.repeat(255));
    assert.throws(() => validateName('x'.repeat(256)), InvalidInputError);
    assert.throws(() => validateName('tab\there'), InvalidInputError);
    assert.throws(() => validateName('del\u007f'), InvalidInputError);
    assert.equal(validateName('Zürich – rack 4'), 'Zürich – rack 4');
    assert.equal(validateUserdata('x'.repeat(65536)).length, 65536);
    assert.throws(() => validateUserdata('x'.repeat(65537)), InvalidInputError);
    assert.throws(
      () => validateUserdata('é'.repeat(32769)),
      InvalidInputError,
      'counted in UTF-8 bytes',
    );
    assert.equal(validateUserdata('multi\nline\tok'), 'multi\nline\tok');
    assert.throws(
      () => validateUserdata('nul\u0000inside'),
      InvalidInputError,
      'NUL is refused on every engine',
    );
  });

  it('refuses lone UTF-16 surrogates and keeps paired ones (astral characters)', () => {
    for (const text of ['a\ud800b', '\udc00', 'end\ud83d', '\ude00start']) {
      assert.throws(() => validateName(text), /lone UTF-16 surrogate/, JSON.stringify(text));
      assert.throws(() => validateUserdata(text), /lone UTF-16 surrogate/, JSON.stringify(text));
    }
    assert.throws(() => validateName('\ud800'.repeat(255)), { code: 'invalid_body' });
    assert.equal(validateName('rack 😀 4'), 'rack 😀 4');
    assert.equal(validateUserdata('\ud83d\ude00'), '😀');
  });
});

describe('lone surrogates in a JSON value', () => {
  it('points at the first string or member name holding one', () => {
    assert.equal(loneSurrogatePointer({ ip: '1.1.1.1', name: 'ok 😀', userdata: '' }), undefined);
    assert.equal(loneSurrogatePointer({ ip: '1.1.1.1', name: 'a\ud800' }), '/name');
    assert.equal(loneSurrogatePointer({ a: [1, { 'b/c': ['x', '\udfff'] }] }), '/a/1/b~1c/1');
    assert.equal(loneSurrogatePointer({ ok: 1, 'k\ud800': 2 }), '/k\\ud800');
    assert.equal(loneSurrogatePointer('\ud800'), '');
  });

  it('walks values nested deeper than the call stack', () => {
    let deep: unknown = '\ud800';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.equal(loneSurrogatePointer(deep), '/0'.repeat(100_000));
  });
});
