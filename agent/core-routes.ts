import type { Agent } from './agent.js';
import type { Route } from './http-server.js';

/** /metrics, /healthz, /readyz and /api/v1/state: read-only, no token. */
export function coreRoutes(agent: Agent): Route[] {
  return [
    {
      method: 'GET',
      path: '/metrics',
      auth: 'none',
      handle: async ({ headers }) => {
        const openMetrics = (headers.accept ?? '').includes('application/openmetrics-text');
        const { contentType, body } = await agent.metrics.render(openMetrics);
        return { status: 200, text: body, headers: { 'content-type': contentType } };
      },
    },
    { method: 'GET', path: '/healthz', auth: 'none', handle: () => ({ status: 200, body: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      auth: 'none',
      handle: () => {
        const ready = agent.ready;
        return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'starting', checks: { config: 'loaded', store: 'open', firstProbeRound: ready ? 'done' : 'pending' } } };
      },
    },
    { method: 'GET', path: '/api/v1/state', auth: 'none', handle: () => ({ status: 200, body: agent.state() }) },
  ];
}
