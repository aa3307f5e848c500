/**
 * The per-request HTTP metrics (`ztp_http_requests_total`, `ztp_http_request_duration_seconds`)
 * kept in plain numbers and written as Prometheus text on scrape. They are updated on every
 * request, and prom-client hashes the label set on each inc()/observe() even through a bound
 * child: measured here, that was most of the cost of observing a lookup (docs/performance.md).
 * The series are bounded: route templates × the methods node parses × status codes.
 */

interface Series {
  /** `method="GET",route="/x",status="200"` */
  labels: string;
  count: number;
  sum: number;
  /** Non-cumulative count per bucket (the last is +Inf); made cumulative when written. */
  buckets: number[];
}

export class HttpSeries {
  /** route → method → status → series: no key string is built per request. */
  private readonly byRoute = new Map<string, Map<string, Map<number, Series>>>();

  constructor(private readonly bounds: readonly number[]) {}

  observe(method: string, route: string, status: number, seconds: number): void {
    let methods = this.byRoute.get(route);
    if (!methods) this.byRoute.set(route, (methods = new Map<string, Map<number, Series>>()));
    let statuses = methods.get(method);
    if (!statuses) methods.set(method, (statuses = new Map<number, Series>()));
    let s = statuses.get(status);
    if (!s) {
      s = {
        labels: `method="${escape(method)}",route="${escape(route)}",status="${status}"`,
        count: 0,
        sum: 0,
        buckets: new Array<number>(this.bounds.length + 1).fill(0),
      };
      statuses.set(status, s);
    }
    s.count++;
    s.sum += seconds;
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]!) i++;
    s.buckets[i]!++;
  }

  /** Both families in the text exposition format 0.0.4. */
  text(): string {
    const all = [...this.byRoute.values()].flatMap((methods) =>
      [...methods.values()].flatMap((statuses) => [...statuses.values()]),
    );
    const lines = [
      '# HELP ztp_http_requests_total HTTP requests answered, by route template, method and status',
      '# TYPE ztp_http_requests_total counter',
      ...all.map((s) => `ztp_http_requests_total{${s.labels}} ${s.count}`),
      '# HELP ztp_http_request_duration_seconds Time from request start to response end, by route template, method and status',
      '# TYPE ztp_http_request_duration_seconds histogram',
    ];
    for (const s of all) {
      let cumulative = 0;
      s.buckets.forEach((n, i) => {
        cumulative += n;
        const le = i < this.bounds.length ? String(this.bounds[i]) : '+Inf';
        lines.push(
          `ztp_http_request_duration_seconds_bucket{le="${le}",${s.labels}} ${cumulative}`,
        );
      });
      lines.push(`ztp_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      lines.push(`ztp_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Label value escaping of the text format: backslash, double quote, line feed. */
function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
