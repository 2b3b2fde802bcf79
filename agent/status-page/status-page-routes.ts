/**
 * The status page: `GET /` and its static assets (agent/status-page/, shipped as they are — no
 * build step), plus `GET /api/v1/overview`, the compact state the page polls.
 *
 * The page is plain HTML, CSS and JavaScript under a strict Content-Security-Policy: scripts and
 * styles only from this origin, no inline code, connections only back to the agent (its API and
 * the WebSocket stream), never framed. It holds no secret: the operator types a token, which
 * stays in the tab's memory (or sessionStorage when asked) and goes out only as a Bearer header.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterView } from '../cluster/cluster.js';
import type { LifecycleOverview } from '../alerts/alert-lifecycle.js';
import type { AgentState } from '../http/state-view.js';
import type { SeriesSummary } from '../../probes/probe-series.js';
import { LOCKED_FLAGS } from '../flags/flag-store.js';
import { HttpError, type Route, type RouteResponse } from '../http/http-server.js';
import { packageRoot } from '../package.js';

/** `connect-src 'self'` covers the WebSocket to the same host and port (CSP Level 3). */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Latest results per series in the overview unless `samples` says otherwise; at most RECENT_SAMPLES are kept. */
const DEFAULT_SAMPLES = 30;
const MAX_SAMPLES = 60;
/** The events the page shows from the history when it opens, before the live ones. */
const EVENTS_REPLAYED = 100;

const ASSETS: readonly { path: string; file: string; type: string }[] = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/status-page/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/status-page/app.css', file: 'app.css', type: 'text/css; charset=utf-8' },
  { path: '/status-page/icon.svg', file: 'icon.svg', type: 'image/svg+xml' },
];

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The directory of the page's files: in the package next to dist/, whether run from sources or the build. */
export function statusPageDir(): string {
  return join(packageRoot(), 'agent', 'status-page');
}

/** What the page's overview reads. */
export interface OverviewSource {
  state(withSeries: false): AgentState;
  summaries(samples: number): SeriesSummary[];
  /** The id after which the newest `count` events of the history lie: where the page's stream starts. */
  replayFrom(count: number): number;
  /** Who leads and the members (GET /api/v1/cluster's answer). */
  cluster(): ClusterView;
  /** The alert lifecycle's overview: incidents, silences, windows, muted alerts. */
  alerts(): LifecycleOverview;
}

export function statusPageRoutes(agent: OverviewSource): Route[] {
  const dir = statusPageDir();
  const routes: Route[] = ASSETS.map(({ path, file, type }) => {
    let text: string;
    try {
      text = readFileSync(join(dir, file), 'utf8');
    } catch (error) {
      throw new Error(`the status page's ${file} is missing from ${dir}: the package is incomplete (package.json "files" must list agent/status-page)`, {
        cause: error,
      });
    }
    const etag = `"${createHash('sha256').update(text).digest('base64url').slice(0, 22)}"`;
    const headers: Record<string, string> = { 'content-type': type, 'cache-control': 'no-cache', etag, ...SECURITY_HEADERS };
    if (file === 'index.html') headers['content-security-policy'] = STATUS_PAGE_CSP;
    return {
      method: 'GET',
      path,
      auth: 'none',
      handle: ({ headers: request }): RouteResponse => (request['if-none-match'] === etag ? { status: 304, headers } : { status: 200, text, headers }),
    };
  });
  routes.push({
    method: 'GET',
    path: '/api/v1/overview',
    auth: 'none',
    bulk: true,
    handle: ({ query }) => {
      const text = query.get('samples');
      if (text !== null && !/^\d{1,2}$/.test(text))
        throw new HttpError(400, `samples must be a whole number from 0 to ${MAX_SAMPLES}, not ${JSON.stringify(text)}`);
      const samples = text === null ? DEFAULT_SAMPLES : Math.min(Number(text), MAX_SAMPLES);
      const { series: _detail, ...state } = agent.state(false);
      // `alerts`: incidents, silences, maintenance windows and muted alerts (the page's Alerts section).
      return {
        status: 200,
        body: {
          ...state,
          locked: LOCKED_FLAGS,
          replayFrom: agent.replayFrom(EVENTS_REPLAYED),
          cluster: agent.cluster(),
          series: agent.summaries(samples),
          alerts: agent.alerts(),
        },
      };
    },
  });
  return routes;
}
