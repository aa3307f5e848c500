/** GET /metrics: valid Prometheus text, counters that follow what happens, guarded like /ztp/mng. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { buildApp } from '../../src/app.js';
import { DeviceService } from '../../src/devices/service.js';
import { EventBus } from '../../src/events/bus.js';
import { operatorFeatures } from '../../src/operator.js';
import { triggerOutcome } from '../../src/metrics/metrics.js';
import { startConsoleServer, type ConsoleServer } from '../console/fixture.js';
import { failingStores } from '../fakes/failing-store.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
// Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
const VALUE = '(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?[Ii]nf|[Nn]a[Nn])';
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (${VALUE})(?: -?\\d+)?$`,
);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/**
 * A strict parser of the text exposition format 0.0.4: every line is HELP, TYPE, a sample or
 * empty; every sample belongs to a declared family (histogram/summary suffixes included); no
 * family is declared twice. Throws on anything else.
 */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const where = `line ${i + 1}: ${line}`;
    const type = TYPE.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]!), `family declared twice: ${where}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (HELP.test(line)) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a valid sample: ${where}`);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => types.has(n));
    assert.ok(family, `sample without a TYPE: ${where}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    if (name.endsWith('_bucket') && types.get(family) === 'histogram') assert.ok('le' in labels);
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { types, samples };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found.reduce((sum, s) => sum + s.value, 0);
}

describe('metrics', () => {
  let server: ConsoleServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function scrape(s: ConsoleServer, headers: Record<string, string> = {}) {
    const res = await fetch(`${s.url}/metrics`, { headers });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await res.text());
  }

  it('the strict parser refuses malformed text (so passing it means something)', () => {
    assert.throws(() => parsePrometheus('# TYPE a counter\na{x="1"} one\n'));
    assert.throws(() => parsePrometheus('b 1\n'));
    assert.throws(() => parsePrometheus('# TYPE a counter\na{x=1} 1\n'));
    assert.equal(parsePrometheus('# TYPE a counter\na{x="1"} 2\n').samples[0]!.value, 2);
  });

  it('parses as Prometheus text and its counters move with registrations and triggers', async () => {
    server = await startConsoleServer();
    const before = (await scrape(server)).samples;
    assert.equal(value(before, 'ztp_devices'), 0);
    assert.equal(value(before, 'ztp_registrations_total'), 0);

    await fetch(`${server.url}/ztp/register/dev-1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"ip":"10.0.0.1"}',
    });
    await server.service.register('dev-1', { ip: '10.0.0.2' }, '10.0.0.2');
    await server.service.register('dev-2', { ip: '10.0.0.3' }, '10.0.0.3');
    await server.setTriggerState('dev-1', 'delivered');
    await server.setTriggerState('dev-2', 'dead');
    await fetch(`${server.url}/ztp/check/nope`);

    const { types, samples } = await scrape(server);
    assert.equal(types.get('ztp_http_requests_total'), 'counter');
    assert.equal(types.get('ztp_http_request_duration_seconds'), 'histogram');
    assert.equal(types.get('ztp_trigger_delivery_lag_seconds'), 'histogram');
    assert.equal(value(samples, 'ztp_registrations_total', { result: 'created' }), 2);
    assert.equal(value(samples, 'ztp_registrations_total', { result: 'updated' }), 1);
    assert.equal(value(samples, 'ztp_devices'), 2);
    assert.equal(value(samples, 'ztp_store_up'), 1);
    // Two registrations of dev-1 coalesce into one pending trigger; dev-2 has its own.
    assert.equal(value(samples, 'ztp_triggers_total', { outcome: 'queued' }), 3);
    assert.equal(value(samples, 'ztp_triggers_total', { outcome: 'delivered' }), 1);
    assert.equal(value(samples, 'ztp_triggers_total', { outcome: 'dead' }), 1);
    assert.equal(value(samples, 'ztp_triggers', { state: 'delivered' }), 1);
    assert.equal(value(samples, 'ztp_triggers', { state: 'dead' }), 1);
    assert.equal(value(samples, 'ztp_triggers_pending'), 0);
    assert.equal(value(samples, 'ztp_trigger_delivery_lag_seconds_count'), 1);
    const put = { method: 'PUT', route: '/ztp/register/:id', status: '201' };
    assert.equal(value(samples, 'ztp_http_requests_total', put), 1);
    assert.equal(value(samples, 'ztp_http_request_duration_seconds_count', put), 1);
    assert.equal(
      value(samples, 'ztp_http_request_duration_seconds_bucket', { ...put, le: '+Inf' }),
      1,
    );
    assert.equal(
      value(samples, 'ztp_http_requests_total', { route: '/ztp/check/:id', status: '404' }),
      1,
    );
    // The previous scrape is counted by route template too.
    assert.equal(value(samples, 'ztp_http_requests_total', { route: '/metrics' }), 1);
  });

  it('is protected by the management guard', async () => {
    server = await startConsoleServer();
    server.auth.token = 'tok';
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { code: string }).code, 'unauthorized');
    const ok = await scrape(server, { authorization: 'Bearer tok' });
    assert.ok(ok.types.has('ztp_devices'));
  });

  it('counts storage errors, includes process metrics, and still answers when the store is down', async () => {
    const events = new EventBus();
    const service = new DeviceService(failingStores(), {
      triggersEnabled: false,
      historyLimit: 20,
      events,
    });
    const operator = operatorFeatures({ service, events });
    const app = await buildApp({ service, plugins: [operator.plugin] });
    try {
      const reg = await app.inject({ method: 'PUT', url: '/ztp/register/dev-1', payload: {} });
      assert.equal(reg.statusCode, 503);
      const res = await app.inject('/metrics');
      assert.equal(res.statusCode, 200);
      const { samples, types } = parsePrometheus(res.body);
      assert.equal(value(samples, 'ztp_storage_errors_total'), 1);
      assert.equal(value(samples, 'ztp_metrics_scrape_errors_total'), 1);
      assert.equal(value(samples, 'ztp_store_up'), 0);
      assert.ok(types.has('process_cpu_user_seconds_total'));
      assert.ok(types.has('nodejs_heap_size_used_bytes'));
    } finally {
      await app.close();
    }
  });

  it('shows whether the dispatcher sees the manager as down (circuit open)', async () => {
    const events = new EventBus();
    const service = new DeviceService(failingStores(), {
      triggersEnabled: true,
      historyLimit: 20,
      events,
    });
    let managerDown = false;
    const dispatcher = { stats: () => ({ managerDown }) };
    const operator = operatorFeatures({
      service,
      events,
      processMetrics: false,
      dispatcher: () => dispatcher,
    });
    const app = await buildApp({ service, plugins: [operator.plugin] });
    try {
      const scrapeOpen = async () => {
        const { samples, types } = parsePrometheus((await app.inject('/metrics')).body);
        assert.equal(types.get('ztp_manager_circuit_open'), 'gauge');
        return value(samples, 'ztp_manager_circuit_open');
      };
      assert.equal(await scrapeOpen(), 0);
      managerDown = true;
      assert.equal(await scrapeOpen(), 1);
      managerDown = false;
      assert.equal(await scrapeOpen(), 0);
    } finally {
      await app.close();
    }
  });

  it('has a histogram of manager call durations by result', async () => {
    const events = new EventBus();
    const service = new DeviceService(failingStores(), {
      triggersEnabled: true,
      historyLimit: 20,
      events,
    });
    const operator = operatorFeatures({ service, events, processMetrics: false });
    const app = await buildApp({ service, plugins: [operator.plugin] });
    try {
      const m = operator.metrics;
      m.observeManagerCall(0.02, { kind: 'response', status: 204, detail: '' });
      m.observeManagerCall(0.3, { kind: 'response', status: 503, detail: '' });
      m.observeManagerCall(0.4, { kind: 'response', status: 404, detail: '' });
      m.observeManagerCall(0.5, { kind: 'response', status: 302, detail: '' });
      m.observeManagerCall(10, { kind: 'timeout', error: 'timeout after 10000 ms' });
      m.observeManagerCall(0.001, { kind: 'error', error: 'connect ECONNREFUSED' });
      const { samples, types } = parsePrometheus((await app.inject('/metrics')).body);
      const name = 'ztp_manager_call_duration_seconds';
      assert.equal(types.get(name), 'histogram');
      for (const result of ['2xx', '5xx', '4xx', 'other', 'timeout', 'error'])
        assert.equal(value(samples, `${name}_count`, { result }), 1, result);
      assert.equal(value(samples, `${name}_bucket`, { result: '2xx', le: '0.025' }), 1);
      assert.equal(value(samples, `${name}_bucket`, { result: '5xx', le: '0.25' }), 0);
      assert.equal(value(samples, `${name}_sum`, { result: 'timeout' }), 10);
    } finally {
      await app.close();
    }
  });

  it('classifies trigger changes', () => {
    assert.equal(triggerOutcome('pending', 0, null), 'queued');
    assert.equal(triggerOutcome('pending', 2, 'manager answered 503'), 'retried');
    assert.equal(triggerOutcome('delivered', 1, null), 'delivered');
    assert.equal(triggerOutcome('failed', 1, 'x'), 'failed');
    assert.equal(triggerOutcome('dead', 9, 'x'), 'dead');
  });
});
