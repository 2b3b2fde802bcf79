import { z } from 'zod';
import { Duration, HttpUrl } from '../../config/schema.js';
import { OutboundError, parseJson, retryPolicyOf, sendWithRetry } from '../plugins/outbound.js';
import type { PluginDefinition } from '../plugins/plugin.js';
import { CdnError, type CdnPurger } from './cdn-purger.js';

/** Cloudflare takes at most this many URLs or prefixes in one purge request. */
const MAX_PER_REQUEST = 100;

const PurgeList = (what: string, example: string) =>
  z
    .array(z.string().min(1))
    .min(1, { error: `is empty: list at least one ${what}, or leave it out to purge everything` })
    .max(MAX_PER_REQUEST, { error: `lists more than ${MAX_PER_REQUEST} ${what}s: Cloudflare takes at most ${MAX_PER_REQUEST} per purge request` })
    .optional()
    .meta({ description: `Purge only these ${what}s (${example}), at most ${MAX_PER_REQUEST}.` });

export const CloudflareCdnSchema = z
  .strictObject({
    type: z.literal('cloudflare'),
    zoneId: z
      .string()
      .regex(/^[0-9a-f]{32}$/, { error: 'is not a Cloudflare zone id: 32 hexadecimal characters, from the zone overview page' })
      .meta({ description: "The zone's id (32 hex characters): ${CLOUDFLARE_ZONE_ID}." }),
    apiToken: z
      .string()
      .min(1)
      .meta({ description: 'An API token with the Zone → Cache Purge permission: ${CLOUDFLARE_API_TOKEN}. Never shown in logs, events or errors.' }),
    files: PurgeList('URL', 'https://dashboard.desk.example/api/alphastack/universe'),
    prefixes: PurgeList('prefix', 'dashboard.desk.example/api, host and path without a scheme'),
    baseUrl: HttpUrl.default('https://api.cloudflare.com/client/v4').meta({ description: "Cloudflare's API. Default https://api.cloudflare.com/client/v4." }),
    timeout: Duration.default(10_000).meta({ description: 'Deadline of one request. Default 10s.' }),
    retries: z.int().min(0).max(10).default(3).meta({ description: 'Tries after the first fails (network error, 5xx, 429 after Retry-After). Default 3.' }),
  })
  .refine((c) => c.files === undefined || c.prefixes === undefined, {
    error: 'lists both files and prefixes: a purge request takes one kind; use two cdn steps',
    path: ['prefixes'],
  })
  .refine((c) => c.prefixes?.every((prefix) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(prefix)) ?? true, {
    error: 'has a prefix with a scheme: Cloudflare prefixes are host and path only (dashboard.desk.example/api)',
    path: ['prefixes'],
  });

export type CloudflareCdnConfig = z.output<typeof CloudflareCdnSchema>;

interface CloudflareAnswer {
  success?: unknown;
  errors?: { code?: unknown; message?: unknown }[];
  result?: { id?: unknown } | null;
}

/**
 * `cloudflare`: Cloudflare's purge-cache API (`POST /zones/{zone_id}/purge_cache`, Bearer token):
 * everything, or the listed URLs (`files`) or prefixes. Only `"success": true` counts; the
 * answer's `errors` are quoted (redacted) when it is not.
 */
export const cloudflareCdn: PluginDefinition<CloudflareCdnConfig, CdnPurger> = {
  type: 'cloudflare',
  schema: CloudflareCdnSchema as unknown as z.ZodType<CloudflareCdnConfig>,
  create(config, deps) {
    deps.redactor.add([config.apiToken]);
    const policy = retryPolicyOf(config);
    const label = `cloudflare purge of zone ${config.zoneId}`;
    const what = config.files
      ? `${config.files.length} ${config.files.length === 1 ? 'URL' : 'URLs'}`
      : config.prefixes
        ? `${config.prefixes.length} ${config.prefixes.length === 1 ? 'prefix' : 'prefixes'}`
        : 'everything';
    const body = config.files ? { files: config.files } : config.prefixes ? { prefixes: config.prefixes } : { purge_everything: true };
    return {
      type: 'cloudflare',
      async purge(_request, signal) {
        const request = {
          label,
          url: `${config.baseUrl}/zones/${config.zoneId}/purge_cache`,
          method: 'POST' as const,
          headers: { authorization: `Bearer ${config.apiToken}` },
          json: body,
        };
        let response;
        try {
          response = await sendWithRetry(deps, request, policy, signal);
        } catch (error) {
          if (error instanceof OutboundError)
            throw new CdnError(
              `${error.message}; the cache still holds the old environment's answers (check the token's Cache Purge permission and the zone id)`,
              {
                cause: error,
              },
            );
          throw error;
        }
        const answer = parseJson(response.body) as CloudflareAnswer | undefined;
        if (answer?.success !== true) {
          const errors = (answer?.errors ?? []).map((e) => `${String(e.code ?? '?')}: ${String(e.message ?? '')}`).join('; ');
          throw new CdnError(
            `${label}: HTTP ${response.status} without "success": true (${deps.redactor.excerpt(errors || response.body || 'empty answer', 300)}); the cache was not purged`,
          );
        }
        const id = typeof answer.result?.id === 'string' ? answer.result.id : null;
        return {
          detail: `cloudflare purged ${what} in zone ${config.zoneId}${id ? ` (purge ${id})` : ''} after ${response.attempts} ${response.attempts === 1 ? 'attempt' : 'attempts'}`,
          data: { status: response.status, attempts: response.attempts, purgeId: id, purged: what },
        };
      },
    };
  },
};
