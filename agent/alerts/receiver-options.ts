/**
 * What every alert receiver shares: the common keys of its config block (name, severities,
 * timeout, retries), the retry policy they make, and one delivery path through sendWithRetry
 * that turns a failure into AlertError without ever showing a secret.
 */
import { z } from 'zod';
import { Duration, Name, Severity } from '../../config/schema.js';
import { DEFAULT_RETRY, OutboundError, sendWithRetry, type OutboundRequest, type RetryPolicy } from '../outbound.js';
import type { PluginDeps } from '../plugin.js';
import { AlertError } from './alert-receiver.js';

/** A severity a receiver can take: warning or critical. */
export type ReceiverSeverity = z.output<typeof Severity>;

/** The keys of every receiver block, with `type` fixed to `type` and its default severities. */
export function receiverOptions<T extends string>(type: T, severities: readonly ReceiverSeverity[]) {
  return {
    type: z.literal(type),
    name: Name.default(type).meta({ description: `Names the receiver in events, metrics and logs. Default: ${type}.` }),
    severities: z
      .array(Severity)
      .min(1, { error: 'needs at least one severity: warning, critical or both' })
      .default(() => [...severities])
      .meta({ description: `Alert severities this receiver gets. Default: ${severities.join(', ')}.` }),
    timeout: Duration.default(5_000).meta({ description: 'Deadline of one delivery attempt. Default 5s.' }),
    retries: z.int().min(0).default(3).meta({ description: 'Tries after the first one fails (network error, 5xx, 429). Default 3.' }),
  };
}

/** The common keys after validation. */
export interface ReceiverOptions {
  name: string;
  severities: ReceiverSeverity[];
  timeout: number;
  retries: number;
}

/** The retry policy of a receiver block: `retries` more tries after the first, each within `timeout`. */
export function retryPolicyOf(options: Pick<ReceiverOptions, 'timeout' | 'retries'>): RetryPolicy {
  return { ...DEFAULT_RETRY, attempts: options.retries + 1, timeoutMs: options.timeout };
}

/** `slack receiver "desk"`: how messages and logs name a receiver, never by its URL. */
export function receiverLabel(type: string, name: string): string {
  return `${type} receiver ${JSON.stringify(name)}`;
}

/**
 * The parts of a webhook URL to hide: the URL itself, its path and query, and every long path
 * segment or query value, because a token may come back on its own (`Cannot POST /…/TOKEN`,
 * URL-decoded) or cut by a length limit.
 */
export function secretsOfUrl(url: string): string[] {
  const parsed = new URL(url);
  const parts = [url, parsed.href, `${parsed.pathname}${parsed.search}`];
  for (const segment of parsed.pathname.split('/')) {
    if (segment.length >= 16) parts.push(segment, safeDecode(segment));
  }
  for (const value of parsed.searchParams.values()) if (value.length >= 8) parts.push(value, encodeURIComponent(value));
  return [...new Set(parts)].filter((part) => part !== '' && part !== '/').sort((a, b) => b.length - a.length);
}

/**
 * Sends one notice's request and reports how it went: the attempts and HTTP status when
 * delivered, AlertError (with attempts) when rejected, given up on or cancelled.
 */
export async function deliverNotice(
  deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger'>,
  options: Pick<ReceiverOptions, 'timeout' | 'retries'>,
  request: OutboundRequest,
  signal: AbortSignal,
): Promise<{ attempts: number; status: number }> {
  try {
    const response = await sendWithRetry(deps, request, retryPolicyOf(options), signal);
    return { attempts: response.attempts, status: response.status };
  } catch (error) {
    if (error instanceof OutboundError) throw new AlertError(error.message, error.attempts, { cause: error });
    throw error;
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
