import { OFREPProvider } from '@openfeature/ofrep-provider';
import { ErrorCode, OpenFeature } from '@openfeature/server-sdk';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { flagRoutes } from '../../../agent/flags/flag-routes.js';
import { FlagStore } from '../../../agent/flags/flag-store.js';
import { startHttpServer, type HttpServer } from '../../../agent/http/http-server.js';

// OpenFeature's API object is a process-wide singleton: this file is its only user (vitest runs
// each file in its own fork), and it is closed and cleared at the end.
let store: FlagStore;
let active = 'blue';
let server: HttpServer;

beforeAll(async () => {
  store = new FlagStore({ environments: ['blue', 'green'], readOnlyOnEmergency: false, now: Date.now, publish: () => undefined });
  server = await startHttpServer({
    listen: { host: '127.0.0.1', port: 0 },
    routes: flagRoutes(store, { activeEnvironment: () => active }),
    tokens: () => ({}),
    logger: pino({ level: 'silent' }),
  });
  await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: `http://127.0.0.1:${server.address.port}` }));
});

// Each test starts from the same flags and live environment, whatever order they run in.
beforeEach(() => {
  active = 'blue';
  store.set(['blue', 'green'], { READ_ONLY_MODE: false }, { actor: 'test', reason: 'reset between tests' });
});

afterAll(async () => {
  await OpenFeature.close();
  await OpenFeature.clearProviders();
  await server.close();
});

describe('the stock OpenFeature OFREP provider against the agent', () => {
  it('reads ALPHASTACK_PROTECTION as true', async () => {
    const client = OpenFeature.getClient();
    expect(await client.getBooleanValue('ALPHASTACK_PROTECTION', false)).toBe(true);
    const details = await client.getBooleanDetails('ALPHASTACK_PROTECTION', false);
    expect(details).toMatchObject({ value: true, reason: 'STATIC', variant: 'on', flagMetadata: { environment: 'blue', live: true, locked: true } });
    expect(details.errorCode).toBeUndefined();
  });

  it('sees a change made through the store, and the environment the context names', async () => {
    const client = OpenFeature.getClient();
    expect(await client.getBooleanValue('READ_ONLY_MODE', true)).toBe(false);
    store.set(['blue'], { READ_ONLY_MODE: true }, { actor: 'test', reason: 'test' });
    expect(await client.getBooleanValue('READ_ONLY_MODE', false)).toBe(true);
    expect(await client.getBooleanValue('READ_ONLY_MODE', true, { environment: 'green' })).toBe(false);
    active = 'green';
    expect(await client.getBooleanValue('READ_ONLY_MODE', true)).toBe(false);
  });

  it('returns the default with FLAG_NOT_FOUND for a missing flag', async () => {
    const details = await OpenFeature.getClient().getBooleanDetails('NO_SUCH_FLAG', true);
    expect(details).toMatchObject({ value: true, reason: 'ERROR', errorCode: ErrorCode.FLAG_NOT_FOUND });
  });

  it('returns the default with INVALID_CONTEXT for an unknown environment', async () => {
    const details = await OpenFeature.getClient().getBooleanDetails('ALPHASTACK_PROTECTION', false, { environment: 'purple' });
    expect(details).toMatchObject({ value: false, errorCode: ErrorCode.INVALID_CONTEXT });
  });

  it('returns the default with TYPE_MISMATCH when asked for a string', async () => {
    const details = await OpenFeature.getClient().getStringDetails('ALPHASTACK_PROTECTION', 'fallback');
    expect(details).toMatchObject({ value: 'fallback', errorCode: ErrorCode.TYPE_MISMATCH });
  });
});
