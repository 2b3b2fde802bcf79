import * as undici from 'undici';
import { describe, expect, it } from 'vitest';
import { Agent, buildConnector, getGlobalDispatcher } from '../../probes/undici-core.js';

// The agent loads these from undici's lib (probes/undici-core.ts): an upgrade that moves or
// replaces one must fail here. test/agent/loaded-modules.test.ts checks, in a fresh process, that
// the index stays unloaded and that a dispatcher still has the request API (here the index, which
// this file imports, would have given it one whatever undici-core.ts does).
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
});
