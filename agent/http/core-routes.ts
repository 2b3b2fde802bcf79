import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { EVENT_FILTER_PARAMS, parseEventFilter, type EncodedEvent, type HistoryQuery } from '../events/journal-pages.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { HttpError, type Route, type RouteResponse } from './http-server.js';
import type { AgentState } from './state-view.js';

/** What the core routes read. */
export interface CoreSource {
  readonly metrics: Pick<AgentMetrics, 'render'>;
  /** Runs one part of a bulk answer (a scrape's series) in its own turn of the event loop; undefined once stopping. */
  slice<T>(work: () => T): Promise<T | undefined>;
  ready(): boolean;
  /** Why the state store cannot be used now (a cluster's PostgreSQL down); undefined while it can. */
  storeProblem(): string | undefined;
  state(): AgentState;
  /** The environments of the config in force: what an `env=` filter may name. */
  environments(): readonly string[];
  /** Journaled events that match the query, serialized; undefined while starting or once stopping. */
  history(query: HistoryQuery): Promise<{ events: EncodedEvent[]; next: number } | undefined>;
}

const COMMA = Buffer.from(',');
const gzipAsync = promisify(gzip);

/**
 * Whether an Accept or Accept-Encoding header wants `wanted` at least as much as any of `others`
 * (RFC 9110: media types and codings compare without case, `q` weighs them, 0 refuses): a
 * Prometheus asking for OpenMetrics at q=0.5 over text/plain at 0.3 gets it; a client that puts
 * OpenMetrics at q=0, or below text/plain, does not.
 */
export function acceptsMore(header: string | undefined, wanted: string, others: readonly string[]): boolean {
  if (!header) return false;
  let mine = 0;
  let theirs = 0;
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = params.map((param) => /^q=([0-9.]+)$/.exec(param)?.[1]).find((value) => value !== undefined);
    const weight = q === undefined ? 1 : Math.min(1, Number(q) || 0);
    if (name === wanted) mine = Math.max(mine, weight);
    else if (name !== undefined && others.includes(name)) theirs = Math.max(theirs, weight);
  }
  return mine > 0 && mine >= theirs;
}

/** /metrics, /healthz, /readyz, /api/v1/state (read-only, no token) and /api/v1/events (see api.streamToken). */
export function coreRoutes(agent: CoreSource): Route[] {
  return [
    {
      method: 'GET',
      path: '/metrics',
      auth: 'none',
      bulk: true,
      handle: async ({ headers }): Promise<RouteResponse> => {
        const openMetrics = acceptsMore(headers.accept, 'application/openmetrics-text', ['text/plain', 'text/*', '*/*']);
        // In slices of series: at 10,000 series one render is 400 ms of work.
        const { contentType, body } = await agent.metrics.render(openMetrics, (work) => agent.slice(work));
        // Prometheus asks for gzip, and a scrape of 1,000 probes is 5 MB of text (an audit's figure);
        // zlib's work runs on libuv's threads, not the event loop.
        if (acceptsMore(headers['accept-encoding'], 'gzip', ['identity'])) {
          return {
            status: 200,
            text: await gzipAsync(body),
            headers: { 'content-type': contentType, 'content-encoding': 'gzip', vary: 'accept, accept-encoding' },
          };
        }
        return { status: 200, text: body, headers: { 'content-type': contentType, vary: 'accept, accept-encoding' } };
      },
    },
    { method: 'GET', path: '/healthz', auth: 'none', immediate: true, handle: () => ({ status: 200, body: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      auth: 'none',
      immediate: true,
      handle: () => {
        const started = agent.ready();
        // A store that cannot be used (a cluster's database down) leaves an agent that cannot act.
        const storeProblem = agent.storeProblem();
        const ready = started && storeProblem === undefined;
        return {
          status: ready ? 200 : 503,
          body: {
            status: ready ? 'ready' : started ? 'not ready' : 'starting',
            checks: {
              config: 'loaded',
              store: storeProblem === undefined ? 'open' : `unavailable: ${storeProblem}`,
              firstProbeRound: started ? 'done' : 'pending',
            },
          },
        };
      },
    },
    { method: 'GET', path: '/api/v1/state', auth: 'none', bulk: true, handle: () => ({ status: 200, body: agent.state() }) },
    // The stream is a WebSocket (its upgrade never reaches the routes): a plain GET is told so, not "no route".
    {
      method: 'GET',
      path: '/api/v1/stream',
      auth: 'none',
      handle: () => ({
        status: 426,
        headers: { upgrade: 'websocket' },
        body: {
          error: '/api/v1/stream is a WebSocket: open it with an Upgrade (greenlight tail, or a WebSocket client); GET /api/v1/events reads the same history',
        },
      }),
    },
    {
      method: 'GET',
      path: '/api/v1/events',
      auth: 'history',
      query: [...EVENT_FILTER_PARAMS, 'limit'],
      handle: async ({ query }) => {
        const filter = parseEventFilter(query, agent.environments());
        if (typeof filter === 'string') throw new HttpError(400, filter);
        const history = await agent.history({ limit: parseLimit(query.get('limit')), filter });
        if (!history) throw new HttpError(503, 'greenlight is starting or stopping: try again');
        // The events are already JSON (serialized once for every reader): joined, not re-encoded.
        const parts: Buffer[] = [Buffer.from('{"events":[')];
        history.events.forEach((event, i) => parts.push(...(i ? [COMMA, event.bytes] : [event.bytes])));
        parts.push(Buffer.from(`],"next":${history.next}}`));
        return { status: 200, text: Buffer.concat(parts), headers: { 'content-type': 'application/json; charset=utf-8' } };
      },
    },
  ];
}

/** `limit` of GET /api/v1/events: 100 when not given. */
function parseLimit(text: string | null): number {
  if (text === null || text === '') return 100;
  const limit = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(limit >= 1 && limit <= 1_000)) throw new HttpError(400, `limit must be a whole number from 1 to 1000, not ${JSON.stringify(text)}`);
  return limit;
}
