/** redactUrl: credentials in query strings never reach logs or problem documents. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSecretQueryName, redactUrl } from '../../src/http/redact-url.js';

describe('redactUrl', () => {
  it('leaves a URL without a query, or without secrets, unchanged', () => {
    assert.equal(redactUrl('/ztp/check/aa:bb'), '/ztp/check/aa:bb');
    assert.equal(redactUrl('/ztp/mng/list?limit=5&after=x'), '/ztp/mng/list?limit=5&after=x');
    assert.equal(redactUrl('/x?'), '/x?');
    assert.equal(redactUrl('/x?token'), '/x?token');
    assert.equal(redactUrl('/x?token='), '/x?token=');
    assert.equal(redactUrl('/x?monkey=1&keyboard=2'), '/x?monkey=1&keyboard=2');
  });

  it('hides the value of every listed name, in any case, keeping the others', () => {
    for (const name of [
      'token',
      'access_token',
      'api_key',
      'apikey',
      'key',
      'secret',
      'password',
      'passwd',
      'auth',
      'signature',
      'sig',
    ]) {
      for (const spelled of [name, name.toUpperCase()]) {
        assert.equal(
          redactUrl(`/ztp/register/x?limit=3&${spelled}=s3cr3t&after=y`),
          `/ztp/register/x?limit=3&${spelled}=[redacted]&after=y`,
          spelled,
        );
      }
    }
  });

  it('hides compound and percent-encoded names and repeated parameters', () => {
    assert.equal(
      redactUrl('/x?device_token=a&token=b&token=c'),
      '/x?device_token=[redacted]&token=[redacted]&token=[redacted]',
    );
    assert.equal(redactUrl('/x?X-Amz-Signature=abc'), '/x?X-Amz-Signature=[redacted]');
    assert.equal(redactUrl('/x?access%5Ftoken=abc'), '/x?access%5Ftoken=[redacted]');
    assert.equal(redactUrl('/x?%E0%A4%A=1&token=abc'), '/x?%E0%A4%A=1&token=[redacted]');
    assert.equal(redactUrl('/x?token=a=b=c'), '/x?token=[redacted]');
  });

  it('names what counts as a secret', () => {
    assert.ok(isSecretQueryName('Client_Secret'));
    assert.ok(isSecretQueryName('token[]'));
    assert.ok(!isSecretQueryName('limit'));
    assert.ok(!isSecretQueryName('tokenizer'));
  });
});
