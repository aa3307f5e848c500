/** The plain-number HTTP series: cumulative buckets (le is "less or equal"), sum, count, labels. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HttpSeries } from '../../src/metrics/http-series.js';

describe('HttpSeries', () => {
  it('writes cumulative buckets, the sum and the count of each series', () => {
    const h = new HttpSeries([0.01, 0.1, 1]);
    for (const s of [0.005, 0.01, 0.05, 2]) h.observe('GET', '/ztp/check/:id', 200, s);
    h.observe('PUT', '/ztp/register/:id', 201, 0.2);
    const lines = h.text().split('\n');
    const get = 'method="GET",route="/ztp/check/:id",status="200"';
    assert.ok(lines.includes(`ztp_http_requests_total{${get}} 4`));
    assert.ok(lines.includes(`ztp_http_request_duration_seconds_bucket{le="0.01",${get}} 2`));
    assert.ok(lines.includes(`ztp_http_request_duration_seconds_bucket{le="0.1",${get}} 3`));
    assert.ok(lines.includes(`ztp_http_request_duration_seconds_bucket{le="1",${get}} 3`));
    assert.ok(lines.includes(`ztp_http_request_duration_seconds_bucket{le="+Inf",${get}} 4`));
    assert.ok(lines.includes(`ztp_http_request_duration_seconds_count{${get}} 4`));
    const sum = lines.find((l) => l.startsWith(`ztp_http_request_duration_seconds_sum{${get}}`));
    assert.ok(Math.abs(Number(sum?.split(' ')[1]) - 2.065) < 1e-9);
    assert.ok(
      lines.includes(
        'ztp_http_requests_total{method="PUT",route="/ztp/register/:id",status="201"} 1',
      ),
    );
  });

  it('escapes label values', () => {
    const h = new HttpSeries([1]);
    h.observe('GET', 'a"b\\c\nd', 404, 0.1);
    assert.match(h.text(), /route="a\\"b\\\\c\\nd"/);
  });
});
