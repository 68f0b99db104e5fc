// GET /metrics: the engine's counters and the HTTP responses in Prometheus' text exposition format (version 0.0.4).
// Latencies are summaries without quantiles (a _sum and a _count): a scraper's rate(sum)/rate(count) is the mean.

import type { EngineStats } from './engine.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Kind = 'counter' | 'gauge' | 'summary';

/** HTTP responses by route (the route pattern, never the raw URL: bounded label values) and status. */
export class HttpCounters {
  private readonly counts = new Map<string, number>();

  count(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): { route: string; status: string; n: number }[] {
    return [...this.counts].map(([k, n]) => {
      const [route, status] = k.split('\u0000');
      return { route, status, n };
    });
  }
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The exposition text. */
export function renderMetrics(s: EngineStats, http: HttpCounters): string {
  const out: string[] = [];
  const metric = (name: string, kind: Kind, help: string, samples: [string, number][]): void => {
    out.push(`# HELP nomoat_${name} ${help}`, `# TYPE nomoat_${name} ${kind}`);
    for (const [suffix, v] of samples) out.push(`nomoat_${name}${suffix} ${Number.isFinite(v) ? v : 0}`);
  };
  metric('requests_total', 'counter', 'Generation requests submitted to the engine (one per choice).', [['', s.requests]]);
  metric('requests_completed_total', 'counter', 'Generation requests that ended normally.', [['', s.completed]]);
  metric('requests_failed_total', 'counter', 'Generation requests refused, cancelled or stopped by an error.', [['', s.failed]]);
  metric('prompt_tokens_total', 'counter', 'Prompt tokens prefilled.', [['', s.promptTokens]]);
  metric('generation_tokens_total', 'counter', 'Tokens generated.', [['', s.generatedTokens]]);
  metric('queue_depth', 'gauge', 'Requests waiting for a row of the running batch.', [['', s.queued]]);
  metric('running_requests', 'gauge', 'Requests holding a row of the running batch.', [['', s.running]]);
  metric('batch_rows', 'gauge', 'Rows in the last decode step.', [['', s.batchRows]]);
  metric('kv_cache_bytes', 'gauge', 'Bytes of KV cache held by the running rows.', [['', s.kvBytes]]);
  metric('time_to_first_token_seconds', 'summary', 'Time from submit to the first generated token.', [['_sum', s.ttftSumMs / 1000], ['_count', s.ttftCount]]);
  metric('inter_token_seconds', 'summary', 'Time between consecutive tokens of one request.', [['_sum', s.interTokenSumMs / 1000], ['_count', s.interTokenCount]]);
  metric('http_responses_total', 'counter', 'HTTP responses by route and status.', http.entries().map(({ route, status, n }) => [`{route="${escapeLabel(route)}",status="${status}"}`, n]));
  return out.join('\n') + '\n';
}
