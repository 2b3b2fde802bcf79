/**
 * Local stand-ins for Slack, Discord, PagerDuty and an Alertmanager-webhook consumer: real HTTP
 * servers on 127.0.0.1 port 0 that check each service's documented body, answer like it, and
 * record what they got. A script of faults (status codes, Retry-After, hanging) can precede the
 * normal answers.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { afterEach, beforeEach } from 'vitest';
import { Agent } from 'undici';
import type { AlertNotice } from '../../../agent/alerts/alert-receiver.js';
import type { PluginDeps } from '../../../agent/plugins/plugin.js';
import { Redactor } from '../../../config/redactor.js';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
}

/** One scripted answer: a status with headers and body, or no answer at all. */
export type Fault = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** How a service answers a well-formed request, or the 4xx it gives a malformed one. */
export type Service = (request: ReceivedRequest) => { status: number; headers?: Record<string, string>; body?: string };

export interface FakeServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** Every request that arrived, answered or not. */
  received: ReceivedRequest[];
  /** Requests still waiting for an answer ('hang' faults). */
  hanging(): number;
  /** Answers to give, in order, before the service answers normally. */
  script(...faults: Fault[]): void;
  /** Resolves when `count` requests have arrived. */
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a fake of `service`. */
export async function startFakeServer(service: Service): Promise<FakeServer> {
  const received: ReceivedRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const waiters: { count: number; resolve: () => void }[] = [];
  let hanging = 0;

  const server = createServer((req, res) => void handle(req, res).catch((error: Error) => res.destroy(error)));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: the service will say so
    }
    const request: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
    received.push(request);
    for (const waiter of waiters.filter((w) => received.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
    const fault = faults.shift();
    if (fault === 'hang') {
      hanging++;
      res.on('close', () => hanging--);
      return;
    }
    const answer = fault ?? service(request);
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  }
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };

  return {
    origin: `http://127.0.0.1:${port}`,
    received,
    hanging: () => hanging,
    script: (...more) => void faults.push(...more),
    waitFor: (count) => (received.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const json = (status: number, value: unknown) => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
const text = (status: number, value: string) => ({ status, headers: { 'content-type': 'text/plain' }, body: value });

/** Slack incoming webhook: `{text}` or `{text, blocks}`; 200 `ok`, 400 `invalid_payload`/`invalid_blocks`. */
export const slackService: Service = ({ method, headers, body }) => {
  if (method !== 'POST' || !String(headers['content-type']).startsWith('application/json')) return text(400, 'invalid_payload');
  if (typeof body !== 'object' || body === null || typeof body.text !== 'string') return text(400, 'no_text');
  if (body.blocks !== undefined) {
    if (!Array.isArray(body.blocks) || body.blocks.length > 50) return text(400, 'invalid_blocks');
    for (const block of body.blocks) {
      if (block.type === 'header' && (block.text?.type !== 'plain_text' || block.text.text.length > 150)) return text(400, 'invalid_blocks');
      if (block.type === 'section' && block.text && block.text.text.length > 3_000) return text(400, 'invalid_blocks');
      if (block.type === 'section' && block.fields && (block.fields.length > 10 || block.fields.some((field: { text: string }) => field.text.length > 2_000)))
        return text(400, 'invalid_blocks');
    }
  }
  return text(200, 'ok');
};

/** Discord execute-webhook: `content` and/or `embeds` (≤ 10, limits per field); 204, or 400 with a JSON error. */
export const discordService: Service = ({ method, body }) => {
  const invalid = json(400, { code: 50035, message: 'Invalid Form Body' });
  if (method !== 'POST' || typeof body !== 'object' || body === null) return invalid;
  if (body.content === undefined && !Array.isArray(body.embeds)) return json(400, { code: 50006, message: 'Cannot send an empty message' });
  if (typeof body.content === 'string' && body.content.length > 2_000) return invalid;
  for (const embed of body.embeds ?? []) {
    if ((embed.title ?? '').length > 256 || (embed.description ?? '').length > 4_096) return invalid;
    if (embed.color !== undefined && (!Number.isInteger(embed.color) || embed.color < 0 || embed.color > 0xffffff)) return invalid;
    if (
      (embed.fields ?? []).length > 25 ||
      (embed.fields ?? []).some((f: { name: string; value: string }) => f.name.length > 256 || f.value.length > 1_024 || f.value === '')
    )
      return invalid;
    if (embed.timestamp !== undefined && Number.isNaN(Date.parse(embed.timestamp))) return invalid;
    const fieldText = (embed.fields ?? []).reduce((sum: number, f: { name: string; value: string }) => sum + f.name.length + f.value.length, 0);
    if ((embed.title ?? '').length + (embed.description ?? '').length + fieldText + (embed.footer?.text ?? '').length > 6_000) return invalid;
  }
  return { status: 204 };
};

/** PagerDuty Events API v2: 202 `{status, message, dedup_key}`, or 400 `invalid event` naming what is wrong. */
export const pagerDutyService: Service = ({ method, body }) => {
  const errors: string[] = [];
  if (method !== 'POST' || typeof body !== 'object' || body === null)
    return json(400, { status: 'invalid event', message: 'Event object is invalid', errors: ['not JSON'] });
  if (typeof body.routing_key !== 'string' || body.routing_key.length !== 32) errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
  if (!['trigger', 'acknowledge', 'resolve'].includes(body.event_action)) errors.push("'event_action' is invalid");
  if (body.dedup_key !== undefined && (typeof body.dedup_key !== 'string' || body.dedup_key.length > 255)) errors.push("'dedup_key' is invalid");
  if (body.event_action === 'trigger') {
    const payload = body.payload ?? {};
    if (typeof payload.summary !== 'string' || payload.summary === '' || payload.summary.length > 1_024) errors.push("'payload.summary' is invalid");
    if (typeof payload.source !== 'string' || payload.source === '') errors.push("'payload.source' is missing");
    if (!['critical', 'error', 'warning', 'info'].includes(payload.severity)) errors.push("'payload.severity' is invalid");
  } else if (typeof body.dedup_key !== 'string') {
    errors.push("'dedup_key' is required");
  }
  if (errors.length > 0) return json(400, { status: 'invalid event', message: 'Event object is invalid', errors });
  return json(202, { status: 'success', message: 'Event processed', dedup_key: body.dedup_key ?? 'generated-key' });
};

/** An Alertmanager-webhook consumer: checks the version 4 shape, answers 200. */
export const alertmanagerService: Service = ({ method, body }) => {
  const bad = text(400, 'not an alertmanager v4 payload');
  if (method !== 'POST' || typeof body !== 'object' || body === null || body.version !== '4') return bad;
  for (const key of ['groupKey', 'status', 'receiver', 'externalURL']) if (typeof body[key] !== 'string') return bad;
  if (typeof body.truncatedAlerts !== 'number' || !Array.isArray(body.alerts) || body.alerts.length === 0) return bad;
  for (const alert of body.alerts) {
    if (!['firing', 'resolved'].includes(alert.status) || typeof alert.fingerprint !== 'string') return bad;
    if (Number.isNaN(Date.parse(alert.startsAt)) || Number.isNaN(Date.parse(alert.endsAt))) return bad;
    if (Object.values({ ...alert.labels, ...alert.annotations }).some((value) => typeof value !== 'string')) return bad;
  }
  return text(200, '');
};

/** What tests observe of one run: logged lines and the waits sendWithRetry asked for. */
export interface TestDeps extends PluginDeps {
  logLines: string[];
  sleeps: number[];
}

/** Deps with a real undici Agent, a capturing logger and a sleep that records and returns at once. */
export function testDeps(now = () => Date.parse('2025-03-14T03:00:00Z')): TestDeps {
  const logLines: string[] = [];
  const sleeps: number[] = [];
  const logger: Logger = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });
  return {
    logger,
    dispatcher: new Agent({ keepAliveTimeout: 10, connections: 4 }),
    now,
    sleep: async (ms) => void sleeps.push(ms),
    redactor: new Redactor(),
    logLines,
    sleeps,
  };
}

/** A firing notice with everything set; override what a test is about. */
export function firingNotice(overrides: Partial<AlertNotice> = {}): AlertNotice {
  return {
    status: 'firing',
    key: 'error-ratio-critical:blue:1741921200000',
    rule: 'error-ratio-critical',
    severity: 'critical',
    env: 'blue',
    summary: 'error ratio 42% on blue (live) over 5m',
    description: 'Rolled back: traffic switched from blue to green; emergency flags set (ALPHASTACK_PROTECTION on). Check the blue deployment logs.',
    labels: { team: 'desk' },
    figures: {
      facts: [{ fact: 'errorRatio', params: { window: '5m' }, operator: 'greaterThan', value: 0.1, observed: 0.42123, result: true }],
      samples: 60,
      env: 'blue',
    },
    startsAt: '2025-03-14T02:55:00.000Z',
    url: 'http://greenlight.internal:9464/api/v1/state',
    ...overrides,
  };
}

/** The resolution of `notice`. */
export function resolvedNotice(notice: AlertNotice, endsAt = '2025-03-14T03:07:30.000Z'): AlertNotice {
  return { ...notice, status: 'resolved', endsAt, summary: 'error ratio back to 0.5% on green (live)' };
}

/**
 * A fresh fake of `service` and fresh deps for every test of the file, closed after each:
 * `const t = useFakeService(slackService)`, then `t.server`, `t.deps` inside the tests.
 */
export function useFakeService(service: Service): { server: FakeServer; deps: TestDeps } {
  const current = {} as { server: FakeServer; deps: TestDeps };
  beforeEach(async () => {
    current.server = await startFakeServer(service);
    current.deps = testDeps();
  });
  afterEach(async () => {
    await current.deps.dispatcher.destroy();
    await current.server.close();
  });
  return current;
}
