import { z } from 'zod';
import { Duration, HttpUrl } from '../../config/schema.js';
import { secretsOfUrl } from '../../config/redactor.js';
import { OutboundError, retryPolicyOf, sendWithRetry } from '../plugins/outbound.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { TrafficError, type TrafficAdapter } from './traffic-adapter.js';

export const WebhookTrafficSchema = z.strictObject({
  type: z.literal('webhook'),
  url: HttpUrl.meta({
    description:
      'Receives a POST {from, to, reason, rule, incident, time} per switch, with the header Greenlight-Fencing-Token (the leader epoch); any 2xx means switched. A secret: take it from ${TRAFFIC_WEBHOOK_URL}.',
  }),
  headers: z.record(z.string(), z.string()).default({}).meta({ description: 'Extra request headers (an Authorization token from ${VAR}).' }),
  timeout: Duration.default(5_000).meta({ description: 'Deadline of one attempt. Default 5s.' }),
  retries: z.int().min(0).max(10).default(3).meta({ description: 'Tries after the first one fails (network error, 5xx, 429). Default 3.' }),
});

export type WebhookTrafficConfig = z.output<typeof WebhookTrafficSchema>;

/** Carries the leader's epoch: the target may refuse a switch with a lower token than one it has taken. */
export const FENCING_HEADER = 'Greenlight-Fencing-Token';

/** How messages and logs name the target: the URL itself is a secret. */
const LABEL = 'traffic webhook';

/** `webhook`: asks your own endpoint (a deploy controller, a load balancer's automation) to switch; a 2xx answer means done. */
export const webhookTraffic: PluginDefinition<WebhookTrafficConfig, TrafficAdapter> = {
  type: 'webhook',
  schema: WebhookTrafficSchema,
  create(config, deps) {
    const credentials = Object.entries(config.headers)
      .filter(([name]) => /auth|token|key|secret|signature/i.test(name))
      .flatMap(([, value]) => [value, value.replace(/^\S+\s+/, '')])
      .filter((value) => value.length >= 8);
    deps.redactor.add([...secretsOfUrl(config.url), ...credentials]);
    const policy = retryPolicyOf(config);
    return {
      type: 'webhook',
      async switchTo(request, signal) {
        const body = {
          from: request.from,
          to: request.to,
          reason: request.reason,
          rule: request.rule,
          incident: request.incident,
          time: new Date(deps.now()).toISOString(),
        };
        let response;
        try {
          const headers = { ...config.headers, [FENCING_HEADER]: String(request.fencingToken) };
          response = await sendWithRetry(deps, { label: LABEL, url: config.url, method: 'POST', headers, json: body, statusOnly: true }, policy, signal);
        } catch (error) {
          if (error instanceof OutboundError) {
            // Cut off by a stop after the request may have gone out: nobody knows what the receiver did.
            // Cut off before the first one went out, it did nothing.
            // So did one that got no answer at all (a receiver that acts, then answers late).
            const notSent = error.attempts === 0;
            const fate =
              (signal.aborted && error.status === undefined && !notSent) || error.unanswered
                ? `whether traffic moved to ${request.to} is unknown`
                : `traffic was not switched to ${request.to}`;
            throw new TrafficError(`${error.message}; ${fate}`, { cause: error, notSent });
          }
          throw error;
        }
        const attempts = `${response.attempts} ${response.attempts === 1 ? 'attempt' : 'attempts'}`;
        return {
          detail: `${LABEL} accepted the switch to ${request.to}: HTTP ${response.status} after ${attempts}`,
          data: { status: response.status, attempts: response.attempts },
        };
      },
    };
  },
};
