import type { Route } from '../http/http-server.js';
import type { ReloadResult } from './config-reloader.js';

/**
 * POST /api/v1/reload (ADMIN_TOKEN): re-read the config file, as SIGHUP does. 200 with what
 * changed; 422 when the file is invalid (the running config stays), naming every problem.
 */
export function reloadRoutes(agent: { reload(trigger: string): Promise<ReloadResult> }): Route[] {
  return [
    {
      method: 'POST',
      path: '/api/v1/reload',
      auth: 'admin',
      handle: async ({ actor }) => {
        const result = await agent.reload(actor);
        return result.ok ? { status: 200, body: result } : { status: 422, body: { ok: false, error: result.error, issues: result.issues } };
      },
    },
  ];
}
