/**
 * What every alert receiver shares: the common keys of its config block (name, severities,
 * timeout, retries), the retry policy they make, and one delivery path through sendWithRetry
 * that turns a failure into AlertError without ever showing a secret.
 */
import { z } from 'zod';
import { Duration, Name, Severity } from '../../config/schema.js';
import { OutboundError, retryPolicyOf, sendWithRetry, type OutboundRequest } from '../plugins/outbound.js';
import type { PluginDeps } from '../plugins/plugin.js';
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

/** `slack receiver "desk"`: how messages and logs name a receiver, never by its URL. */
export function receiverLabel(type: string, name: string): string {
  return `${type} receiver ${JSON.stringify(name)}`;
}

/**
 * Sends one notice's request and reports how it went: the attempts and HTTP status when
 * delivered, AlertError (with attempts) when rejected, given up on or cancelled.
 */
export async function deliverNotice(
  deps: Pick<PluginDeps, 'dispatcher' | 'sleep' | 'logger' | 'redactor'>,
  options: Pick<ReceiverOptions, 'timeout' | 'retries'>,
  request: OutboundRequest,
  signal: AbortSignal,
): Promise<{ attempts: number; status: number }> {
  try {
    // A long Retry-After goes back to the dispatcher, which holds the whole receiver until then.
    const response = await sendWithRetry(deps, { ...request, handBackLongWaits: true }, retryPolicyOf(options), signal);
    return { attempts: response.attempts, status: response.status };
  } catch (error) {
    if (error instanceof OutboundError) throw new AlertError(error.message, error.attempts, { cause: error });
    throw error;
  }
}

/** Deliver the parts of a text message one after another, in order; stops at the first that fails (AlertError). */
export async function deliverParts<T>(
  parts: readonly T[],
  deliver: (part: T) => Promise<{ attempts: number; status: number }>,
): Promise<{ attempts: number; status?: number; parts: number }> {
  let attempts = 0;
  let status: number | undefined;
  for (const part of parts) {
    const result = await deliver(part);
    attempts += result.attempts;
    status = result.status;
  }
  return { attempts, ...(status !== undefined ? { status } : {}), parts: parts.length };
}
