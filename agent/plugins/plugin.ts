/**
 * The one shape of every pluggable part: traffic adapters, alert receivers and actions.
 * A plugin is a file exporting `{ type, schema, create }`, listed in agent/plugins/registry.ts. Its zod
 * schema validates its config block (strict, with `type: z.literal(...)`), so a typo in a
 * receiver is reported with key path and line like any other config error; `create` builds
 * the working object from the validated block and the injected dependencies.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Redactor } from '../../config/redactor.js';

/** What a plugin may use. Nothing else: no globals, no process.env. */
export interface PluginDeps {
  logger: Logger;
  /** HTTP client pool for outbound calls (webhooks, APIs); tests point it at local fakes. */
  dispatcher: Dispatcher;
  now: () => number;
  /** Waits `ms` (backoff, polling) unless the signal aborts first; tests may speed it up. */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * The agent's redactor: hides the config's secrets in everything that comes back from outside
   * (answers, error pages, program output). A plugin that holds a secret of its own adds it here
   * when created, so it is hidden everywhere, not only in the plugin's own messages.
   */
  redactor: Redactor;
}

export interface PluginDefinition<Config extends { type: string }, Instance> {
  type: Config['type'];
  schema: z.ZodType<Config>;
  create(config: Config, deps: PluginDeps): Instance;
}

/** Sleep for `ms`, resolving early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
