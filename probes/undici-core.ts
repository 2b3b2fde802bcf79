/**
 * undici's dispatcher without the rest of undici. `import 'undici'` runs its index, which loads
 * fetch, WebSocket, EventSource, the HTTP cache stores, the mock agents and every interceptor with
 * the dispatcher: 1.2 M characters of source, and about 3 MB of heap and 1 MB outside it that stay
 * for the agent's whole life, for parts it never uses (issue 18, RSS at 1,000 series). What the
 * agent uses is loaded from undici's own lib instead, and dispatchers get the request API as the
 * index gives it to them. test/probes/undici-core.test.ts checks that each of these is what the
 * index exports, so an undici upgrade that moves one fails there, not in the agent.
 *
 * Types still come from 'undici' (`import type`, erased at build).
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

// What undici's index does: request(), stream(), pipeline(), connect() and upgrade() on every
// dispatcher (outbound plugins, the load test and rollback validation call `dispatcher.request`).
// The same functions the index would assign, so loading both is harmless.
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher;
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

/** undici's `Agent`. */
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;

/** undici's `buildConnector`. */
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;

/** undici's `getGlobalDispatcher`: the dispatcher its top-level `request()` uses. */
export const { getGlobalDispatcher } = require('undici/lib/global.js') as { getGlobalDispatcher: typeof Undici.getGlobalDispatcher };
