/**
 * greenlight's one client of Render's public REST API (api-docs.render.com; shapes as in Render's
 * OpenAPI schema, generated into github.com/render-oss/cli pkg/client/types_gen.go), for the
 * `render` traffic adapter, the deploy path of `promote --deploy` and `env diff`:
 * - custom domains: GET /services/{id}/custom-domains → `[{cursor, customDomain: {id, name,
 *   domainType, redirectForName, verificationStatus, …}}]`; POST /services/{id}/custom-domains
 *   `{name}` → 201; DELETE /services/{id}/custom-domains/{name} → 204; POST …/{name}/verify → 202;
 *   GET …/{name} → a customDomain;
 * - deploys: POST /services/{id}/deploys `{clearCache: "do_not_clear"}` → 201 (or 202) a deploy
 *   `{id, status, commit, …}`; GET /services/{id}/deploys/{deployId}; GET …/deploys?limit=1 →
 *   `[{cursor, deploy}]` (when a 202 came without a body);
 * - env vars: GET /services/{id}/env-vars?limit=100&cursor=… → `[{cursor, envVar: {key, value}}]`.
 * Deploy statuses: created, queued, build_in_progress, update_in_progress,
 * pre_deploy_in_progress (in progress); live (done); build_failed, update_failed,
 * pre_deploy_failed, canceled, deactivated (ended without going live).
 *
 * Every call goes through sendWithRetry: network errors and 5xx are retried with backoff, 429s
 * wait for Retry-After or Ratelimit-Reset (Render documents 30 POST/DELETE and 400 GET a minute).
 * Failures are RenderErrors naming the call; the key is in the redactor and never in a message;
 * env-var values are dropped as soon as they are parsed and never leave this file.
 */
import { GreenlightError } from '../../config/errors.js';
import { OutboundError, parseJson, retryPolicyOf, sendWithRetry, type OutboundResponse } from './outbound.js';
import type { PluginDeps } from './plugin.js';

export const DEPLOY_IN_PROGRESS = ['created', 'queued', 'build_in_progress', 'update_in_progress', 'pre_deploy_in_progress'] as const;
export const DEPLOY_FAILED = ['build_failed', 'update_failed', 'pre_deploy_failed', 'canceled', 'deactivated'] as const;

/** What the client needs of a config block (`render:`, or a `render` traffic adapter's). */
export interface RenderConnection {
  apiKey?: string | undefined;
  services: Readonly<Record<string, string>>;
  baseUrl: string;
  timeout: number;
  retries: number;
}

export interface RenderDeploy {
  id: string;
  status: string;
  commit: string | null;
}

export interface RenderCustomDomain {
  id: string;
  name: string;
  redirectForName?: string;
  verificationStatus?: string;
}

/** Render is not configured, refused a call, or answered something that is not what its API documents. */
export class RenderError extends GreenlightError {
  /** The HTTP status of the answer that failed the call, when there was one. */
  readonly status: number | undefined;

  constructor(message: string, options?: { cause?: unknown; status?: number | undefined }) {
    super('GL_ERR_RENDER', message, options);
    this.status = options?.status;
  }
}

export class RenderApi {
  readonly #connection: RenderConnection;
  readonly #deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>;
  readonly #signal: AbortSignal;

  constructor(connection: RenderConnection, deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>, signal: AbortSignal) {
    this.#connection = connection;
    this.#deps = deps;
    this.#signal = signal;
    if (connection.apiKey) deps.redactor.add([connection.apiKey]);
  }

  /** The service id of `env`; throws RenderError saying what to set when Render is not configured for it. */
  serviceOf(env: string): string {
    if (!this.#connection.apiKey) throw new RenderError('Render is not configured: set RENDER_API_KEY (render.apiKey in the config)');
    const id = this.#connection.services[env];
    if (!id) throw new RenderError(`no Render service for ${env}: set RENDER_${env.toUpperCase()}_SERVICE_ID (render.services.${env} in the config)`);
    return id;
  }

  /** One call; `what` names it in errors (`remove app.example.com from blue`). */
  call(method: 'GET' | 'POST' | 'DELETE', path: string, what: string, json?: unknown): Promise<OutboundResponse> {
    const { apiKey, baseUrl } = this.#connection;
    if (!apiKey) return Promise.reject(new RenderError('Render is not configured: set RENDER_API_KEY (render.apiKey in the config)'));
    const request = {
      label: `Render API (${what})`,
      url: `${baseUrl}${path}`,
      method,
      headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
      json,
    };
    return sendWithRetry(this.#deps, request, retryPolicyOf(this.#connection), this.#signal).catch((error: unknown) => {
      if (!(error instanceof OutboundError)) throw error;
      const hint = error.status === 401 ? ' (Render refused the API key: check RENDER_API_KEY)' : '';
      throw new RenderError(`${error.message}${hint}`, { cause: error, status: error.status });
    });
  }

  /** A service's custom domains, every cursor page (a service may have more than one page of 100). */
  async listDomains(serviceId: string, what: string): Promise<RenderCustomDomain[]> {
    const items = await this.#everyPage(`/services/${serviceId}/custom-domains`, what, 'a list of custom domains');
    return items.map((item) => parseDomain((item as { customDomain?: unknown })?.customDomain ?? item)).filter((d) => d !== undefined);
  }

  /** Every item of a cursor-paginated list (`[{cursor, <item>}]`, at most 100 a page), up to 100 pages. */
  async #everyPage(path: string, what: string, expected: string): Promise<unknown[]> {
    const all: unknown[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const query = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const response = await this.call('GET', `${path}?${query}`, what);
      const items = parseJson(response.body);
      if (!Array.isArray(items)) throw new RenderError(`Render API (${what}) answered something other than ${expected}`);
      all.push(...(items as unknown[]));
      const last = items.at(-1) as { cursor?: unknown } | undefined;
      if (items.length < 100 || typeof last?.cursor !== 'string') break;
      cursor = last.cursor;
    }
    return all;
  }

  async readDomain(serviceId: string, name: string, what: string): Promise<RenderCustomDomain | undefined> {
    const response = await this.call('GET', `/services/${serviceId}/custom-domains/${encodeURIComponent(name)}`, what);
    return parseDomain(parseJson(response.body));
  }

  async addDomain(serviceId: string, name: string, what: string): Promise<void> {
    await this.call('POST', `/services/${serviceId}/custom-domains`, what, { name });
  }

  async removeDomain(serviceId: string, name: string, what: string): Promise<void> {
    try {
      await this.call('DELETE', `/services/${serviceId}/custom-domains/${encodeURIComponent(name)}`, what);
    } catch (error) {
      // Already gone (a retried DELETE, or removed by hand): the goal is reached.
      if (!(error instanceof RenderError && error.status === 404)) throw error;
    }
  }

  /** Ask Render to check the domain's DNS now (it also checks on its own schedule). */
  async verifyDomain(serviceId: string, name: string, what: string): Promise<void> {
    await this.call('POST', `/services/${serviceId}/custom-domains/${encodeURIComponent(name)}/verify`, what);
  }

  async triggerDeploy(serviceId: string): Promise<RenderDeploy> {
    const response = await this.call('POST', `/services/${serviceId}/deploys`, 'trigger a deploy', { clearCache: 'do_not_clear' });
    const deploy = parseDeploy(parseJson(response.body));
    if (deploy) return deploy;
    // 202 Queued may come without a body: the newest deploy is the one just queued.
    const latest = await this.call('GET', `/services/${serviceId}/deploys?limit=1`, 'read the latest deploy');
    const first = (parseJson(latest.body) as unknown[] | undefined)?.[0] as { deploy?: unknown } | undefined;
    const found = parseDeploy(first?.deploy ?? first);
    if (!found) throw new RenderError(`Render accepted the deploy of ${serviceId} (HTTP ${response.status}) but lists no deploy for it`);
    return found;
  }

  async getDeploy(serviceId: string, deployId: string): Promise<RenderDeploy> {
    const response = await this.call('GET', `/services/${serviceId}/deploys/${encodeURIComponent(deployId)}`, `read deploy ${deployId}`);
    const deploy = parseDeploy(parseJson(response.body));
    if (!deploy) throw new RenderError(`Render answered the status of deploy ${deployId} with something other than a deploy`);
    return deploy;
  }

  /** The names of a service's environment variables, every page, sorted. Values are never kept. */
  async envVarNames(serviceId: string): Promise<string[]> {
    const items = await this.#everyPage(`/services/${serviceId}/env-vars`, `list the environment variables of ${serviceId}`, 'a list of environment variables');
    const names: string[] = [];
    for (const item of items as { envVar?: { key?: unknown } }[]) if (typeof item?.envVar?.key === 'string') names.push(item.envVar.key);
    return [...new Set(names)].sort();
  }
}

export interface DeployProgress {
  deploy: RenderDeploy;
  elapsedMs: number;
}

/**
 * Trigger a deploy of `serviceId` and follow it until it is live (resolves) or ends otherwise
 * (throws RenderError naming the status). `onStatus` hears every status change.
 */
export async function deployAndFollow(
  api: RenderApi,
  serviceId: string,
  options: {
    pollIntervalMs: number;
    timeoutMs: number;
    now: () => number;
    sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
    signal: AbortSignal;
    onStatus: (progress: DeployProgress) => void;
  },
): Promise<RenderDeploy & { elapsedMs: number; statuses: string[] }> {
  const started = options.now();
  let deploy = await api.triggerDeploy(serviceId);
  const statuses = [deploy.status];
  options.onStatus({ deploy, elapsedMs: 0 });
  while (!isDone(deploy.status)) {
    if (options.now() - started >= options.timeoutMs)
      throw new RenderError(
        `deploy ${deploy.id} of ${serviceId} is still ${deploy.status} after ${Math.round(options.timeoutMs / 1_000)}s; see the Render Dashboard`,
      );
    await options.sleep(options.pollIntervalMs, options.signal);
    if (options.signal.aborted) throw new RenderError(`following deploy ${deploy.id} was cancelled (it goes on at Render)`);
    const next = await api.getDeploy(serviceId, deploy.id);
    if (next.status !== deploy.status) {
      statuses.push(next.status);
      options.onStatus({ deploy: next, elapsedMs: options.now() - started });
    }
    deploy = next;
  }
  if (deploy.status !== 'live')
    throw new RenderError(`deploy ${deploy.id} of ${serviceId} ended ${deploy.status} (${statuses.join(' → ')}); see its logs in the Render Dashboard`);
  return { ...deploy, elapsedMs: options.now() - started, statuses };
}

function isDone(status: string): boolean {
  return status === 'live' || (DEPLOY_FAILED as readonly string[]).includes(status) || !(DEPLOY_IN_PROGRESS as readonly string[]).includes(status);
}

function parseDeploy(value: unknown): RenderDeploy | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const d = value as { id?: unknown; status?: unknown; commit?: { id?: unknown } | null };
  if (typeof d.id !== 'string' || typeof d.status !== 'string') return undefined;
  return { id: d.id, status: d.status, commit: typeof d.commit?.id === 'string' ? d.commit.id : null };
}

function parseDomain(value: unknown): RenderCustomDomain | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const d = value as Record<string, unknown>;
  if (typeof d.name !== 'string') return undefined;
  return {
    id: typeof d.id === 'string' ? d.id : d.name,
    name: d.name,
    ...(typeof d.redirectForName === 'string' && d.redirectForName !== '' ? { redirectForName: d.redirectForName } : {}),
    ...(typeof d.verificationStatus === 'string' ? { verificationStatus: d.verificationStatus } : {}),
  };
}
