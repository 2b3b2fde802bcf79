/**
 * `render`: blue/green between two Render web services by moving the custom domain users reach
 * from one service to the other through Render's public REST API.
 *
 * What this rests on (https://api-docs.render.com, Render's OpenAPI schema as generated into
 * github.com/render-oss/cli pkg/client/types_gen.go):
 * - base https://api.render.com/v1, `Authorization: Bearer <API key>` on every request;
 * - GET    /services/{serviceId}/custom-domains → 200 `[{cursor, customDomain: {id, name,
 *          domainType, publicSuffix, redirectForName, verificationStatus, createdAt, server}}]`
 *          (query `name`, `limit`, `cursor`);
 * - POST   /services/{serviceId}/custom-domains `{name}` → 201 `[customDomain …]` (adding a root
 *          domain also adds its www redirect, and the other way round: docs.render.com/custom-domains);
 * - DELETE /services/{serviceId}/custom-domains/{customDomainIdOrName} → 204;
 * - POST   /services/{serviceId}/custom-domains/{customDomainIdOrName}/verify → 202 (re-checks DNS);
 * - GET    /services/{serviceId}/custom-domains/{customDomainIdOrName} → 200 customDomain;
 * - rate limits (api-docs.render.com/reference/rate-limiting): 429 when exceeded, 30 POST/DELETE
 *   and 400 GET a minute; one switch makes about six writes, and a verification poll every 2s.
 *
 * A domain belongs to one service at a time, so the move is delete-then-add: between the two
 * calls (well under a second) Render answers nothing for the domain. Render offers no atomic
 * move; the alternative, re-pointing DNS, takes the records' TTL instead.
 */
import { z } from 'zod';
import { Duration, HttpUrl } from '../../config/schema.js';
import { formatDuration, quote } from '../../config/units.js';
import type { PluginDefinition, PluginDeps } from '../plugins/plugin.js';
import { RenderApi, RenderError } from '../plugins/render-api.js';
import { TrafficError, type SwitchRequest, type SwitchOutcome, type TrafficAdapter } from './traffic-adapter.js';

export const RenderTrafficSchema = z.strictObject({
  type: z.literal('render'),
  apiKey: z
    .string()
    .min(1, { error: 'is empty: set RENDER_API_KEY to a key from the Render Dashboard (Account Settings → API Keys)' })
    .meta({ description: 'Render API key. A secret: take it from ${RENDER_API_KEY}.' }),
  services: z
    .record(
      z.string(),
      z.string().regex(/^[A-Za-z0-9_-]+$/, { error: (issue) => `${quote(issue.input)} is not a Render service id such as srv-cu1h2k3l4m5n6o7p8q9r` }),
    )
    .refine((services) => Object.keys(services).length >= 2, { error: 'needs a Render service id per environment, e.g. {blue: srv-…, green: srv-…}' })
    .meta({ description: 'Per environment, the id of its Render web service (srv-…): ${RENDER_BLUE_SERVICE_ID}, ${RENDER_GREEN_SERVICE_ID}.' }),
  domain: z
    .string()
    .regex(/^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i, {
      error: (issue) => `${quote(issue.input)} is not a domain name such as app.example.com`,
    })
    .transform((name) => name.toLowerCase())
    .meta({ description: 'The custom domain users reach; it is moved to the live service on every switch.' }),
  baseUrl: HttpUrl.default('https://api.render.com/v1').meta({ description: 'Render API base URL. Default https://api.render.com/v1.' }),
  timeout: Duration.default(10_000).meta({ description: 'Deadline of one API request. Default 10s.' }),
  retries: z.int().min(0).max(10).default(3).meta({ description: 'Tries after the first one fails (network error, 5xx, 429). Default 3.' }),
  verifyTimeout: Duration.default(60_000).meta({
    description: "How long Render may take to verify the domain's DNS on the new service; 0s: do not wait. Default 1m.",
  }),
});

export type RenderTrafficConfig = z.output<typeof RenderTrafficSchema>;

const VERIFY_INTERVAL_MS = 2_000;

/** `render`: moves a custom domain between the blue and the green Render service (one switch at a time: traffic control's lock). */
export const renderTraffic: PluginDefinition<RenderTrafficConfig, TrafficAdapter> = {
  type: 'render',
  schema: RenderTrafficSchema,
  create(config, deps) {
    const log = deps.logger.child({ component: 'traffic', adapter: 'render' });
    return {
      type: 'render',
      switchTo: (request, signal) => moveDomain(config, deps, log, new RenderApi(config, deps, signal), request, signal),
      current: (signal) => domainHolder(config, new RenderApi(config, deps, signal)),
    };
  },
};

/**
 * The environment whose service holds the custom domain: where Render routes it. A switch that
 * failed after the move (the domain attached but not verified in time, the agent stopped while it
 * waited) is recorded where the domain went, not as no switch (regression: the domain was on green
 * while greenlight guarded blue). Undefined when Render cannot be read or no single service has it.
 */
async function domainHolder(config: RenderTrafficConfig, api: RenderApi): Promise<string | undefined> {
  const holders: string[] = [];
  try {
    for (const [env, serviceId] of Object.entries(config.services)) {
      if ((await api.listDomains(serviceId, `list custom domains of ${env}`)).some((d) => d.name === config.domain)) holders.push(env);
    }
  } catch {
    return undefined;
  }
  return holders.length === 1 ? holders[0] : undefined;
}

async function moveDomain(
  config: RenderTrafficConfig,
  deps: PluginDeps,
  log: PluginDeps['logger'],
  api: RenderApi,
  request: SwitchRequest,
  signal: AbortSignal,
): Promise<SwitchOutcome> {
  const fromId = config.services[request.from];
  const toId = config.services[request.to];
  const known = Object.keys(config.services).join(', ');
  if (toId === undefined) throw new TrafficError(`render traffic has no service id for ${quote(request.to)}: add it under traffic.services (known: ${known})`);
  if (fromId === toId)
    throw new TrafficError(`render traffic: ${request.from} and ${request.to} have the same service id; give each environment its own service`);
  const domain = config.domain;
  let state = 'nothing was changed';
  try {
    const onTarget = (await api.listDomains(toId, `list custom domains of ${request.to}`)).some((d) => d.name === domain);
    // The www/root companion Render added with the domain redirects to it; it moves along, and goes first.
    const onSource =
      fromId === undefined
        ? []
        : (await api.listDomains(fromId, `list custom domains of ${request.from}`)).filter((d) => d.name === domain || d.redirectForName === domain);
    onSource.sort((a, b) => Number(a.name === domain) - Number(b.name === domain));
    for (const found of onSource) {
      await api.removeDomain(fromId!, found.name, `remove ${found.name} from ${request.from}`);
      state = `${found.name} was already removed from ${request.from}: add it back in the Render Dashboard`;
    }
    if (!onTarget) await addDomain(api, toId, domain, request, fromId !== undefined && onSource.some((d) => d.name === domain) ? fromId : undefined);
    state = `${domain} is attached to ${request.to}`;
    log.info({ domain, from: request.from, to: request.to }, `Render custom domain ${domain} attached to ${request.to}`);

    const status = await awaitVerified(config, deps, log, api, toId, request.to, signal);
    const moved = onSource.length > 0 ? `moved from ${request.from} to ${request.to}` : onTarget ? `already on ${request.to}` : `added to ${request.to}`;
    return {
      detail: `Render custom domain ${domain} ${moved} (service ${toId}), ${status === 'verified' ? 'verified' : `verification ${status}`}`,
      data: { domain, service: toId, previousService: fromId ?? null, verificationStatus: status },
    };
  } catch (error) {
    if (error instanceof RenderError) throw new TrafficError(`${error.message}; ${state}`, { cause: error });
    throw error;
  }
}

/** Attaches the domain to the new service; when that fails, puts it back on `previousId` (if it was there) and throws TrafficError. */
async function addDomain(api: RenderApi, serviceId: string, domain: string, request: SwitchRequest, previousId: string | undefined): Promise<void> {
  try {
    await api.addDomain(serviceId, domain, `add ${domain} to ${request.to}`);
  } catch (error) {
    if (!(error instanceof RenderError)) throw error;
    // A retried POST whose first try got through fails as a duplicate: look before giving up.
    const landed = await api.listDomains(serviceId, `list custom domains of ${request.to}`).then(
      (list) => list.some((d) => d.name === domain),
      () => false,
    );
    if (landed) return;
    const putBack = previousId === undefined ? '' : await reattach(api, previousId, domain, request.from);
    throw new TrafficError(`${error.message}; ${domain} was not moved to ${request.to}${putBack}`, { cause: error });
  }
}

/** Best effort after a failed add: the domain goes back where it was, so users keep being served. */
async function reattach(api: RenderApi, serviceId: string, domain: string, env: string): Promise<string> {
  try {
    await api.addDomain(serviceId, domain, `put ${domain} back on ${env}`);
    return `; it was put back on ${env}`;
  } catch (error) {
    // A retried POST whose first try got through fails as a duplicate: look before raising the alarm.
    const back = await api.listDomains(serviceId, `list custom domains of ${env}`).then(
      (list) => list.some((d) => d.name === domain),
      () => false,
    );
    if (back) return `; it was put back on ${env}`;
    return `; putting it back on ${env} failed too (${(error as Error).message}): ${domain} is on no service, add it in the Render Dashboard now`;
  }
}

/** Asks Render to check DNS for the domain on its new service and waits until it is verified; returns the last status. */
async function awaitVerified(
  config: RenderTrafficConfig,
  deps: PluginDeps,
  log: PluginDeps['logger'],
  api: RenderApi,
  serviceId: string,
  env: string,
  signal: AbortSignal,
): Promise<string> {
  // Render also checks on its own schedule: a refused trigger only makes the wait longer.
  await api.verifyDomain(serviceId, config.domain, `verify ${config.domain} on ${env}`).catch((error: unknown) => {
    if (!(error instanceof RenderError)) throw error;
    log.warn({ domain: config.domain, env }, error.message);
  });
  const deadline = deps.now() + config.verifyTimeout;
  const maxPolls = Math.ceil(config.verifyTimeout / VERIFY_INTERVAL_MS) + 1;
  let status = 'unknown';
  for (let poll = 1; poll <= maxPolls; poll++) {
    status = (await api.readDomain(serviceId, config.domain, `read ${config.domain} on ${env}`))?.verificationStatus ?? 'unknown';
    if (status === 'verified' || config.verifyTimeout === 0) return status;
    if (deps.now() >= deadline) break;
    await deps.sleep(VERIFY_INTERVAL_MS, signal);
    if (signal.aborted) throw new TrafficError(`${config.domain} is attached to ${env} but waiting for its verification was cancelled (status ${status})`);
  }
  throw new TrafficError(
    `${config.domain} is attached to ${env} but Render has not verified it within ${formatDuration(config.verifyTimeout)} (status ${status}); check the domain's DNS records in the Render Dashboard`,
  );
}
