import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PluginDeps } from '../../../agent/plugins/plugin.js';
import { RenderTrafficSchema, renderTraffic } from '../../../agent/traffic/render-traffic.js';
import { TrafficError, type SwitchRequest } from '../../../agent/traffic/traffic-adapter.js';
import { Redactor } from '../../../config/redactor.js';

const API_KEY = 'rnd_Gr33nl1ghtTestKey0123456789';
const BLUE = 'srv-blue0000000000000001';
const GREEN = 'srv-green000000000000002';
const DOMAIN = 'app.alphastack.example';

interface CustomDomain {
  id: string;
  name: string;
  domainType: 'apex' | 'subdomain';
  publicSuffix: string;
  redirectForName: string;
  verificationStatus: 'verified' | 'unverified';
  createdAt: string;
  server: { id: string; name: string };
}

/**
 * A local stand-in for the part of Render's REST API the adapter uses, with its documented paths,
 * shapes and statuses (api-docs.render.com): Bearer auth, list items as `{cursor, customDomain}`,
 * 201 with a list on add, 204 on delete, 202 on verify, a root domain's www companion.
 */
class FakeRender {
  readonly calls: string[] = [];
  domains = new Map<string, CustomDomain[]>();
  /** `METHOD path` → answers to give before handling it normally (a status, with headers). */
  inject = new Map<string, { status: number; headers?: Record<string, string>; body?: unknown }[]>();
  /** GETs of a single domain that still report `unverified` after a verify call. */
  verifyAfterReads = 1;
  private reads = 0;
  private nextId = 1;

  reset(): void {
    this.calls.length = 0;
    this.domains = new Map([
      [BLUE, []],
      [GREEN, []],
    ]);
    this.inject.clear();
    this.verifyAfterReads = 1;
    this.reads = 0;
  }

  attach(serviceId: string, name: string, verificationStatus: CustomDomain['verificationStatus'] = 'verified'): CustomDomain[] {
    const apex = name.split('.').length === 2;
    const make = (domainName: string, redirectForName: string): CustomDomain => ({
      id: `cdm-${String(this.nextId++).padStart(20, '0')}`,
      name: domainName,
      domainType: domainName.split('.').length === 2 ? 'apex' : 'subdomain',
      publicSuffix: 'example',
      redirectForName,
      verificationStatus,
      createdAt: '2025-03-03T14:30:00.000Z',
      server: { id: serviceId, name: serviceId === BLUE ? 'alphastack-blue' : 'alphastack-green' },
    });
    const added = [make(name, '')];
    if (apex) added.push(make(`www.${name}`, name));
    this.domains.get(serviceId)!.push(...added);
    return added;
  }

  where(name: string): string[] {
    return [...this.domains].filter(([, list]) => list.some((d) => d.name === name)).map(([id]) => id);
  }

  handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    const url = new URL(req.url!, 'http://render.test');
    const key = `${req.method} ${url.pathname}`;
    this.calls.push(key);
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'ratelimit-limit': '30',
        'ratelimit-remaining': '29',
        'ratelimit-reset': '45',
        ...headers,
      });
      res.end(payload === undefined ? undefined : JSON.stringify(payload));
    };
    if (req.headers.authorization !== `Bearer ${API_KEY}`)
      return send(401, { id: 'unauthorized', message: 'Authorization information is missing or invalid.' });
    const injected = this.inject.get(key)?.shift();
    if (injected) return send(injected.status, injected.body ?? { id: 'injected', message: `injected ${injected.status}` }, injected.headers);

    const match = /^\/v1\/services\/([^/]+)\/custom-domains(?:\/([^/]+))?(\/verify)?$/.exec(url.pathname);
    const list = match ? this.domains.get(match[1]!) : undefined;
    if (!match || !list) return send(404, { id: 'not_found', message: 'Not Found' });
    const [, serviceId, idOrName, verify] = match as unknown as [string, string, string | undefined, string | undefined];
    const name = idOrName === undefined ? undefined : decodeURIComponent(idOrName);
    const found = list.find((d) => d.id === name || d.name === name);

    if (name === undefined && req.method === 'GET') {
      // Cursor pages, as Render's lists are: `limit` (at most 100) items after the one `cursor` names.
      const names = url.searchParams.getAll('name');
      const limit = Math.min(100, Number(url.searchParams.get('limit') ?? 20));
      const after = url.searchParams.get('cursor');
      let items = list.filter((d) => names.length === 0 || names.includes(d.name));
      if (after !== null) items = items.slice(items.findIndex((d) => d.id === after) + 1);
      return send(
        200,
        items.slice(0, limit).map((customDomain) => ({ cursor: customDomain.id, customDomain })),
      );
    }
    if (name === undefined && req.method === 'POST') {
      const requested = (JSON.parse(body) as { name?: string }).name;
      if (!requested) return send(400, { id: 'bad_request', message: 'name is required' });
      if (this.where(requested).length > 0) return send(409, { id: 'conflict', message: `${requested} is already in use` });
      return send(201, this.attach(serviceId, requested, 'unverified'));
    }
    if (!found) return send(404, { id: 'not_found', message: 'custom domain not found' });
    if (verify && req.method === 'POST') {
      this.reads = 0;
      return send(202);
    }
    if (req.method === 'GET') {
      if (found.verificationStatus === 'unverified' && ++this.reads > this.verifyAfterReads) found.verificationStatus = 'verified';
      return send(200, found);
    }
    if (req.method === 'DELETE') {
      list.splice(list.indexOf(found), 1);
      return send(204);
    }
    return send(405, { id: 'method_not_allowed', message: 'Method Not Allowed' });
  }
}

const fake = new FakeRender();
let server: Server;
let baseUrl: string;
const dispatcher = new Agent();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => fake.handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await dispatcher.close();
  await new Promise((resolve) => server.close(resolve));
});

/** A clock that only moves when the adapter sleeps, so waits are recorded, not spent. */
let clock = 0;
let sleeps: number[] = [];
const deps: PluginDeps = {
  logger: pino({ level: 'silent' }),
  redactor: new Redactor(),
  dispatcher,
  now: () => clock,
  sleep: async (ms) => {
    sleeps.push(ms);
    clock += ms;
  },
};

beforeEach(() => {
  fake.reset();
  clock = Date.parse('2025-03-03T14:30:00Z');
  sleeps = [];
});

const toGreen: SwitchRequest = {
  from: 'blue',
  to: 'green',
  reason: 'rule live-latency-critical: mean latency 6.2s > 5s',
  rule: 'live-latency-critical',
  incident: 'inc-7',
  fencingToken: 1,
};

function adapter(block: Record<string, unknown> = {}) {
  const config = RenderTrafficSchema.parse({ type: 'render', apiKey: API_KEY, services: { blue: BLUE, green: GREEN }, domain: DOMAIN, baseUrl, ...block });
  return renderTraffic.create(config, deps);
}

async function failure(promise: Promise<unknown>): Promise<TrafficError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(TrafficError);
  expect((error as Error).message).not.toContain(API_KEY);
  return error as TrafficError;
}

describe('render traffic adapter', () => {
  it('moves the custom domain from the blue service to the green one and waits for verification', async () => {
    fake.attach(BLUE, DOMAIN);
    const outcome = await adapter().switchTo(toGreen, new AbortController().signal);
    expect(fake.calls).toEqual([
      `GET /v1/services/${GREEN}/custom-domains`,
      `GET /v1/services/${BLUE}/custom-domains`,
      `DELETE /v1/services/${BLUE}/custom-domains/${DOMAIN}`,
      `POST /v1/services/${GREEN}/custom-domains`,
      `POST /v1/services/${GREEN}/custom-domains/${DOMAIN}/verify`,
      `GET /v1/services/${GREEN}/custom-domains/${DOMAIN}`,
      `GET /v1/services/${GREEN}/custom-domains/${DOMAIN}`,
    ]);
    expect(fake.where(DOMAIN)).toEqual([GREEN]);
    expect(sleeps).toEqual([2_000]);
    expect(outcome).toEqual({
      detail: `Render custom domain ${DOMAIN} moved from blue to green (service ${GREEN}), verified`,
      data: { domain: DOMAIN, service: GREEN, previousService: BLUE, verificationStatus: 'verified' },
    });
  });

  it('waits out several 429s without using up its retries (regression: three short 429s failed the switch, then the put-back met the same limit)', async () => {
    fake.attach(BLUE, DOMAIN);
    const limited = { status: 429, headers: { 'retry-after': '1' }, body: { id: 'rate_limited', message: 'rate limit exceeded' } };
    fake.inject.set(`POST /v1/services/${GREEN}/custom-domains`, [limited, limited, limited]);
    const outcome = await adapter({ retries: 1 }).switchTo(toGreen, new AbortController().signal);
    expect(outcome.detail).toMatch(/moved from blue to green/);
    expect(fake.calls.filter((c) => c === `POST /v1/services/${GREEN}/custom-domains`)).toHaveLength(4);
    expect(sleeps.slice(0, 3)).toEqual([1_000, 1_000, 1_000]);
    expect(fake.where(DOMAIN)).toEqual([GREEN]);
  });

  it('waits as a 429 Retry-After asks, then goes on', async () => {
    fake.attach(BLUE, DOMAIN);
    fake.inject.set(`DELETE /v1/services/${BLUE}/custom-domains/${DOMAIN}`, [
      { status: 429, headers: { 'retry-after': '3', 'ratelimit-remaining': '0' }, body: { id: 'rate_limited', message: 'rate limit exceeded' } },
    ]);
    await adapter().switchTo(toGreen, new AbortController().signal);
    expect(fake.calls.slice(2, 5)).toEqual([
      `DELETE /v1/services/${BLUE}/custom-domains/${DOMAIN}`,
      `DELETE /v1/services/${BLUE}/custom-domains/${DOMAIN}`,
      `POST /v1/services/${GREEN}/custom-domains`,
    ]);
    expect(sleeps[0]).toBe(3_000);
    expect(fake.where(DOMAIN)).toEqual([GREEN]);
  });

  it('stops at a refused API key, changing nothing and never showing the key', async () => {
    fake.attach(BLUE, DOMAIN);
    const error = await failure(adapter({ apiKey: 'rnd_WrongKey000000000000000000' }).switchTo(toGreen, new AbortController().signal));
    expect(fake.calls).toEqual([`GET /v1/services/${GREEN}/custom-domains`]);
    expect(error.message).toMatch(/^Render API \(list custom domains of green\): rejected with HTTP 401: .*unauthorized/);
    expect(error.message).toContain('Render refused the API key: check RENDER_API_KEY');
    expect(error.message).toMatch(/; nothing was changed$/);
    expect(error.message).not.toContain('rnd_WrongKey');
    expect(fake.where(DOMAIN)).toEqual([BLUE]);
  });

  it('keeps the key out of an error page that echoes it', async () => {
    fake.attach(BLUE, DOMAIN);
    fake.inject.set(`GET /v1/services/${GREEN}/custom-domains`, [
      { status: 400, body: { id: 'bad_request', message: `bad header Authorization: Bearer ${API_KEY}` } },
    ]);
    const error = await failure(adapter().switchTo(toGreen, new AbortController().signal));
    expect(error.message).toContain('Bearer [redacted]');
  });

  it('puts the domain back on blue when green will not take it', async () => {
    fake.attach(BLUE, DOMAIN);
    const busy = { status: 503, body: { id: 'unavailable', message: 'try later' } };
    fake.inject.set(`POST /v1/services/${GREEN}/custom-domains`, [busy, busy]);
    const error = await failure(adapter({ retries: 1 }).switchTo(toGreen, new AbortController().signal));
    expect(error.message).toMatch(/^Render API \(add app\.alphastack\.example to green\): gave up after 2 attempts; last: HTTP 503/);
    expect(error.message).toMatch(/app\.alphastack\.example was not moved to green; it was put back on blue$/);
    expect(fake.calls.slice(-2)).toEqual([`GET /v1/services/${GREEN}/custom-domains`, `POST /v1/services/${BLUE}/custom-domains`]);
    expect(fake.where(DOMAIN)).toEqual([BLUE]);
  });

  it('counts a put-back whose first try got through as put back, not "on no service" (regression: a false alarm to add it by hand)', async () => {
    fake.attach(BLUE, DOMAIN);
    const busy = { status: 503, body: { id: 'unavailable', message: 'try later' } };
    fake.inject.set(`POST /v1/services/${GREEN}/custom-domains`, [busy, busy]);
    let first = true;
    const original = fake.handle.bind(fake);
    fake.handle = (req, body, res) => {
      // The put-back reaches Render, but its answer is lost; the retry meets the duplicate (409).
      if (first && req.method === 'POST' && req.url === `/v1/services/${BLUE}/custom-domains`) {
        first = false;
        fake.attach(BLUE, DOMAIN);
        fake.calls.push(`POST ${req.url}`);
        res.writeHead(502).end();
        return;
      }
      original(req, body, res);
    };
    try {
      const error = await failure(adapter({ retries: 1 }).switchTo(toGreen, new AbortController().signal));
      expect(error.message).toMatch(/app\.alphastack\.example was not moved to green; it was put back on blue$/);
      expect(fake.where(DOMAIN)).toEqual([BLUE]);
    } finally {
      fake.handle = original;
    }
  });

  it('counts a retried add whose first try got through as done', async () => {
    fake.attach(BLUE, DOMAIN);
    let first = true;
    const original = fake.handle.bind(fake);
    fake.handle = (req, body, res) => {
      if (first && req.method === 'POST' && req.url === `/v1/services/${GREEN}/custom-domains`) {
        first = false;
        fake.attach(GREEN, DOMAIN, 'unverified');
        fake.calls.push(`POST ${req.url}`);
        res.writeHead(502).end();
        return;
      }
      original(req, body, res);
    };
    try {
      const outcome = await adapter().switchTo(toGreen, new AbortController().signal);
      expect(outcome.detail).toMatch(/moved from blue to green/);
      expect(fake.calls.filter((c) => c === `POST /v1/services/${GREEN}/custom-domains`)).toHaveLength(2);
      expect(fake.where(DOMAIN)).toEqual([GREEN]);
    } finally {
      fake.handle = original;
    }
  });

  it('moves a root domain with the www redirect Render added for it, the redirect first', async () => {
    fake.attach(BLUE, 'alphastack.example');
    await adapter({ domain: 'alphastack.example' }).switchTo(toGreen, new AbortController().signal);
    expect(fake.calls.filter((c) => c.startsWith('DELETE'))).toEqual([
      `DELETE /v1/services/${BLUE}/custom-domains/www.alphastack.example`,
      `DELETE /v1/services/${BLUE}/custom-domains/alphastack.example`,
    ]);
    expect(fake.where('alphastack.example')).toEqual([GREEN]);
    expect(fake.where('www.alphastack.example')).toEqual([GREEN]);
  });

  it('does not add the domain again when it is already on the target (a repeated switch)', async () => {
    fake.attach(GREEN, DOMAIN);
    const outcome = await adapter().switchTo(toGreen, new AbortController().signal);
    expect(fake.calls.some((c) => c === `POST /v1/services/${GREEN}/custom-domains`)).toBe(false);
    expect(outcome.detail).toBe(`Render custom domain ${DOMAIN} already on green (service ${GREEN}), verified`);
  });

  it('says the domain is attached but unverified when Render does not verify it in time', async () => {
    fake.attach(BLUE, DOMAIN);
    fake.verifyAfterReads = Number.POSITIVE_INFINITY;
    const error = await failure(adapter({ verifyTimeout: '10s' }).switchTo(toGreen, new AbortController().signal));
    expect(error.message).toBe(
      `${DOMAIN} is attached to green but Render has not verified it within 10s (status unverified); check the domain's DNS records in the Render Dashboard`,
    );
    expect(sleeps.reduce((a, b) => a + b, 0)).toBe(10_000);
    expect(fake.where(DOMAIN)).toEqual([GREEN]);
    // What traffic control asks after the failure: the domain is on green, so the switch is recorded there
    // (regression: recorded as no switch, and greenlight guarded blue while Render routed to green).
    expect(await adapter().current!(new AbortController().signal)).toBe('green');
  });

  it('says which environment holds the domain: none or both is unknown', async () => {
    const current = () => adapter().current!(new AbortController().signal);
    expect(await current()).toBeUndefined();
    fake.attach(BLUE, DOMAIN);
    expect(await current()).toBe('blue');
    fake.attach(GREEN, DOMAIN);
    expect(await current()).toBeUndefined();
  });

  it('reads every page of a service with more than 100 custom domains (regression: the domain on page 2 was never seen, and the add collided with it)', async () => {
    for (let i = 0; i < 120; i++) fake.attach(BLUE, `tenant-${i}.alphastack.example`);
    fake.attach(BLUE, DOMAIN);
    const outcome = await adapter().switchTo(toGreen, new AbortController().signal);
    expect(outcome.detail).toMatch(/moved from blue to green/);
    expect(fake.where(DOMAIN)).toEqual([GREEN]);
    expect(await adapter().current!(new AbortController().signal)).toBe('green');
  });

  it('reports the status without waiting when verifyTimeout is 0s', async () => {
    fake.attach(BLUE, DOMAIN);
    fake.verifyAfterReads = Number.POSITIVE_INFINITY;
    const outcome = await adapter({ verifyTimeout: '0s' }).switchTo(toGreen, new AbortController().signal);
    expect(outcome.detail).toMatch(/moved from blue to green \(service srv-green0+2\), verification unverified$/);
    expect(sleeps).toEqual([]);
  });

  it('refuses an environment without a service id, calling nothing', async () => {
    const error = await failure(adapter().switchTo({ ...toGreen, to: 'canary' }, new AbortController().signal));
    expect(error.message).toBe('render traffic has no service id for "canary": add it under traffic.services (known: blue, green)');
    expect(fake.calls).toEqual([]);
  });

  it.each([
    [{ domain: 'https://app.example.com' }, 'is not a domain name'],
    [{ apiKey: '' }, 'set RENDER_API_KEY'],
    [{ services: { blue: BLUE } }, 'needs a Render service id per environment'],
    [{ baseUrl: 'api.render.com' }, 'is not an http:// or https:// URL'],
  ])('refuses the config %j', (block, message) => {
    const result = RenderTrafficSchema.safeParse({ type: 'render', apiKey: API_KEY, services: { blue: BLUE, green: GREEN }, domain: DOMAIN, ...block });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(message);
  });

  it('defaults to the public API', () => {
    const config = RenderTrafficSchema.parse({ type: 'render', apiKey: API_KEY, services: { blue: BLUE, green: GREEN }, domain: DOMAIN });
    expect(config).toMatchObject({ baseUrl: 'https://api.render.com/v1', timeout: 10_000, retries: 3, verifyTimeout: 60_000 });
  });
});
