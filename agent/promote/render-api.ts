/**
 * The Render API calls of the deploy path and of `env diff` (api-docs.render.com; shapes as in
 * Render's OpenAPI schema):
 * - POST /services/{serviceId}/deploys `{clearCache: "do_not_clear"}` → 201 (or 202) a deploy
 *   `{id, status, trigger, commit, createdAt, updatedAt, finishedAt}`;
 * - GET  /services/{serviceId}/deploys/{deployId} → 200 a deploy;
 * - GET  /services/{serviceId}/deploys?limit=1 → `[{cursor, deploy}]` (when a 202 came without a body);
 * - GET  /services/{serviceId}/env-vars?limit=100&cursor=… → `[{cursor, envVar: {key, value}}]`.
 * Deploy statuses: created, queued, build_in_progress, update_in_progress,
 * pre_deploy_in_progress (in progress); live (done); build_failed, update_failed,
 * pre_deploy_failed, canceled, deactivated (ended without going live).
 * Every call goes through sendWithRetry: network errors and 5xx are retried with backoff, 429s
 * wait for Retry-After or Ratelimit-Reset. The key is kept out of every message; env-var values
 * are dropped as soon as they are parsed and never leave this file.
 */
import type { RenderConfig } from '../../config/schema.js';
import { DEFAULT_RETRY, OutboundError, sendWithRetry, type OutboundResponse } from '../outbound.js';
import type { PluginDeps } from '../plugin.js';
import { GreenlightError } from '../../config/errors.js';

export const DEPLOY_IN_PROGRESS = ['created', 'queued', 'build_in_progress', 'update_in_progress', 'pre_deploy_in_progress'] as const;
export const DEPLOY_FAILED = ['build_failed', 'update_failed', 'pre_deploy_failed', 'canceled', 'deactivated'] as const;

export interface RenderDeploy {
  id: string;
  status: string;
  commit: string | null;
}

/** Render is not configured, or answered something that is not what its API documents. */
export class RenderError extends GreenlightError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GL_ERR_RENDER', message, options);
  }
}

export class RenderApi {
  readonly #config: RenderConfig;
  readonly #deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>;
  readonly #signal: AbortSignal;

  constructor(config: RenderConfig, deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>, signal: AbortSignal) {
    this.#config = config;
    this.#deps = deps;
    this.#signal = signal;
    if (config.apiKey) deps.redactor.add([config.apiKey]);
  }

  /** The service id of `env`; throws RenderError saying what to set when Render is not configured for it. */
  serviceOf(env: string): string {
    if (!this.#config.apiKey) throw new RenderError('Render is not configured: set RENDER_API_KEY (render.apiKey in the config)');
    const id = this.#config.services[env];
    if (!id) throw new RenderError(`no Render service for ${env}: set RENDER_${env.toUpperCase()}_SERVICE_ID (render.services.${env} in the config)`);
    return id;
  }

  async triggerDeploy(serviceId: string): Promise<RenderDeploy> {
    const response = await this.#call('POST', `/services/${serviceId}/deploys`, 'trigger a deploy', { clearCache: 'do_not_clear' });
    const deploy = parseDeploy(safeJson(response.body));
    if (deploy) return deploy;
    // 202 Queued may come without a body: the newest deploy is the one just queued.
    const latest = await this.#call('GET', `/services/${serviceId}/deploys?limit=1`, 'read the latest deploy');
    const first = (safeJson(latest.body) as unknown[] | undefined)?.[0] as { deploy?: unknown } | undefined;
    const found = parseDeploy(first?.deploy ?? first);
    if (!found) throw new RenderError(`Render accepted the deploy of ${serviceId} (HTTP ${response.status}) but lists no deploy for it`);
    return found;
  }

  async getDeploy(serviceId: string, deployId: string): Promise<RenderDeploy> {
    const response = await this.#call('GET', `/services/${serviceId}/deploys/${encodeURIComponent(deployId)}`, `read deploy ${deployId}`);
    const deploy = parseDeploy(safeJson(response.body));
    if (!deploy) throw new RenderError(`Render answered the status of deploy ${deployId} with something other than a deploy`);
    return deploy;
  }

  /** The names of a service's environment variables, every page, sorted. Values are never kept. */
  async envVarNames(serviceId: string): Promise<string[]> {
    const names: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const query = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const response = await this.#call('GET', `/services/${serviceId}/env-vars?${query}`, `list the environment variables of ${serviceId}`);
      const items = safeJson(response.body);
      if (!Array.isArray(items)) throw new RenderError(`Render answered the environment variables of ${serviceId} with something other than a list`);
      for (const item of items as { cursor?: unknown; envVar?: { key?: unknown } }[]) {
        if (typeof item?.envVar?.key === 'string') names.push(item.envVar.key);
      }
      const last = items.at(-1) as { cursor?: unknown } | undefined;
      if (items.length < 100 || typeof last?.cursor !== 'string') break;
      cursor = last.cursor;
    }
    return [...new Set(names)].sort();
  }

  #call(method: 'GET' | 'POST', path: string, what: string, json?: unknown): Promise<OutboundResponse> {
    const apiKey = this.#config.apiKey;
    if (!apiKey) throw new RenderError('Render is not configured: set RENDER_API_KEY (render.apiKey in the config)');
    return sendWithRetry(
      this.#deps,
      {
        label: `Render API (${what})`,
        url: `${this.#config.baseUrl}${path}`,
        method,
        headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json' },
        json,
      },
      { ...DEFAULT_RETRY, attempts: this.#config.retries + 1, timeoutMs: this.#config.timeout },
      this.#signal,
    ).catch((error: unknown) => {
      if (error instanceof OutboundError && error.status === 401)
        throw new RenderError(`${error.message} (Render refused the API key: check RENDER_API_KEY)`, { cause: error });
      if (error instanceof OutboundError) throw new RenderError(error.message, { cause: error });
      throw error;
    });
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

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
