import { z } from 'zod';
import { secretsOfUrl } from '../../config/redactor.js';
import { Duration, HttpUrl } from '../../config/schema.js';
import { OutboundError, retryPolicyOf, sendWithRetry } from '../plugins/outbound.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { CdnError, type CdnPurger } from './cdn-purger.js';

export const WebhookCdnSchema = z.strictObject({
  type: z.literal('webhook'),
  url: HttpUrl.meta({ description: 'Receives a POST {event: "purge", from, to, incident, reason, time} after each switch; any 2xx means purged. A secret.' }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Extra request headers (an Authorization token from ${VAR}).' }),
  timeout: Duration.default(10_000).meta({ description: 'Deadline of one attempt. Default 10s.' }),
  retries: z.int().min(0).max(10).default(3).meta({ description: 'Tries after the first fails (network error, 5xx, 429). Default 3.' }),
});

export type WebhookCdnConfig = z.output<typeof WebhookCdnSchema>;

/** How messages name it: the URL is a secret. */
const LABEL = 'CDN purge webhook';

/** `webhook`: asks your own endpoint to purge any other CDN (Fastly, CloudFront, Akamai behind your automation); a 2xx means done. */
export const webhookCdn: PluginDefinition<WebhookCdnConfig, CdnPurger> = {
  type: 'webhook',
  schema: WebhookCdnSchema,
  create(config, deps) {
    deps.redactor.add(secretsOfUrl(config.url));
    const policy = retryPolicyOf(config);
    return {
      type: 'webhook',
      async purge(request, signal) {
        const body = { event: 'purge', ...request, time: new Date(deps.now()).toISOString() };
        let response;
        try {
          response = await sendWithRetry(
            deps,
            { label: LABEL, url: config.url, method: 'POST', headers: config.headers, json: body, statusOnly: true },
            policy,
            signal,
          );
        } catch (error) {
          if (error instanceof OutboundError) throw new CdnError(`${error.message}; the cache was not purged`, { cause: error });
          throw error;
        }
        return {
          detail: `${LABEL} accepted the purge: HTTP ${response.status} after ${response.attempts} ${response.attempts === 1 ? 'attempt' : 'attempts'}`,
          data: { status: response.status, attempts: response.attempts },
        };
      },
    };
  },
};
