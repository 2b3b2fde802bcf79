import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, buildConnector, getGlobalDispatcher } from '../../probes/undici-core.js';

// The agent loads these from undici's lib (probes/undici-core.ts): an upgrade that moves or
// replaces one must fail here. test/agent/loaded-modules.test.ts checks, in a fresh process, that
// the index stays unloaded and that a dispatcher still has the request API.
describe("undici's dispatcher, loaded without its index", () => {
  it('is the Agent the index exports', () => {
    expect(Agent).toBe(undici.Agent);
  });

  it('is the buildConnector the index exports', () => {
    expect(buildConnector).toBe(undici.buildConnector);
  });

  it('is the global dispatcher the index uses', () => {
    expect(getGlobalDispatcher).toBe(undici.getGlobalDispatcher);
  });

  it('gives dispatchers the request API the index gives them', async () => {
    const dispatcher = new Agent();
    for (const method of ['request', 'stream', 'pipeline', 'connect', 'upgrade'] as const) {
      expect(dispatcher[method]).toBe(undici.Dispatcher.prototype[method]);
    }
    await dispatcher.close();
  });
});
