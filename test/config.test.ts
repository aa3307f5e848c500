import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadServeConfig, parseDuration } from '../src/config.js';
import { renderOperationsDoc } from '../src/docs.js';
import { ConfigError } from '../src/errors.js';

describe('server configuration', () => {
  it('has working defaults', () => {
    const c = loadServeConfig([], {});
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.port, 8080);
    assert.equal(c.database, './ztp.db');
    assert.equal(c.managerUrl, undefined);
    assert.equal(c.triggerTimeout, 10_000);
    assert.equal(c.triggerMaxAge, 24 * 3_600_000);
  });

  it('takes flags over environment over defaults', () => {
    const env = { ZTP_PORT: '9000', ZTP_HOST: '127.0.0.1' };
    const c = loadServeConfig(['--port', '9100'], env);
    assert.equal(c.port, 9100);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(
      loadServeConfig([], { ZTP_PORT: '' }).port,
      8080,
      'an empty variable counts as unset',
    );
  });

  it('rejects bad values naming the option', () => {
    assert.throws(() => loadServeConfig(['--port', '70000'], {}), /--port.*70000/);
    assert.throws(() => loadServeConfig([], { ZTP_LOG_LEVEL: 'loud' }), /ZTP_LOG_LEVEL/);
    assert.throws(() => loadServeConfig(['--trigger-timeout', '10 seconds'], {}), ConfigError);
    assert.throws(() => loadServeConfig(['--nope'], {}), ConfigError);
    assert.throws(() => loadServeConfig(['positional'], {}), ConfigError);
  });

  it('parses durations', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('0'), 0, 'zero needs no unit');
    assert.throws(() => parseDuration('-1s'), ConfigError);
  });

  it('refuses a duration without a unit, on the command line and in the environment', () => {
    // It used to be milliseconds: --trigger-timeout 10 timed out every first call.
    assert.throws(
      () => loadServeConfig(['--trigger-timeout', '10'], {}),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.includes('--trigger-timeout') &&
        e.message.includes("'10' has no unit: write e.g. 10s"),
    );
    assert.throws(
      () => loadServeConfig([], { ZTP_TRIGGER_TIMEOUT: '10000' }),
      /ZTP_TRIGGER_TIMEOUT \(trigger-timeout\): '10000' has no unit/,
    );
    assert.throws(() => loadServeConfig(['--register-rate-limit', '60/10'], {}), /no unit/);
    assert.equal(loadServeConfig(['--trigger-timeout', '10s'], {}).triggerTimeout, 10_000);
    assert.equal(loadServeConfig([], { ZTP_SHUTDOWN_GRACE: '0' }).shutdownGrace, 0);
  });

  it('refuses durations that are surely a mistake, naming the minimum', () => {
    const cases: [string[], RegExp][] = [
      [['--trigger-timeout', '50ms'], /--trigger-timeout.*less than the minimum 100ms/],
      [['--trigger-poll-interval', '1ms'], /--trigger-poll-interval.*minimum 10ms/],
      [['--trigger-max-age', '30s'], /--trigger-max-age.*minimum 1m/],
      [['--trigger-retention', '0'], /--trigger-retention.*minimum 1m/],
      [['--database-statement-timeout', '5ms'], /minimum 100ms/],
      [['--headers-timeout', '500ms'], /--headers-timeout.*minimum 1s/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => loadServeConfig(argv, {}), message, argv.join(' '));
    }
  });

  it('accepts only plain http(s) manager URLs, refusing each bad one with the reason', () => {
    const url = (u: string) => loadServeConfig(['--manager-url', u], {}).managerUrl;
    assert.equal(url('http://mgr:9000/'), 'http://mgr:9000/');
    assert.equal(
      url('https://mgr.example/base/{id}?ip={ip}'),
      'https://mgr.example/base/{id}?ip={ip}',
    );
    for (const [bad, reason] of [
      ['ftp://mgr', /must be http/],
      ['ftp://mgr/{ip}', /must be http/],
      ['http://mgr/?a=1', /must not have a query.*placeholders/],
      ['http://mgr/#x', /fragment/],
      ['http://u:p@mgr', /credentials/],
      ['not a url', /not a URL/],
      ['http://mgr/{ip', /unbalanced '\{'/],
      ['http://mgr/ip}', /unbalanced '\}'/],
      ['http://mgr/{mac}', /unknown placeholder \{mac\}/],
      ['http://{ip}/x', /path or the query/],
    ] as const) {
      assert.throws(
        () => url(bad),
        (e) => e instanceof ConfigError && reason.test(e.message),
        bad,
      );
    }
    // json posts to the URL as written: a query is fine there
    const c = loadServeConfig(
      ['--manager-url', 'http://mgr/hook?src=ztp', '--manager-format', 'json'],
      {},
    );
    assert.equal(c.managerFormat, 'json');
  });

  it('keeps the configuration table of docs/operations.md in sync (npm run docs)', () => {
    const page = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
    assert.equal(
      page,
      renderOperationsDoc(page),
      'docs/operations.md configuration table is stale: run `npm run docs`',
    );
  });
});
