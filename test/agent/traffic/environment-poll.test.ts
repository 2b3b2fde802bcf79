import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, type PluginDeps } from '../../../agent/plugins/plugin.js';
import { pollEnvironment } from '../../../agent/traffic/environment-poll.js';
import { parseJsonPath } from '../../../config/json-path.js';
import { Redactor } from '../../../config/redactor.js';

const dispatcher = new Agent();
const deps: PluginDeps = { logger: pino({ level: 'silent' }), dispatcher, now: Date.now, sleep, redactor: new Redactor() };
let server: Server;
let url: string;
let answered = 0;

beforeAll(async () => {
  // Names blue twice, then stops answering: the polls after that wait until the deadline cuts them.
  server = createServer((_req, res) => {
    if (answered++ < 2) res.setHeader('content-type', 'application/json').end('{"environment":"blue"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/health`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await dispatcher.close();
});

describe('pollEnvironment', () => {
  it('reports the last answer, not a poll the deadline cut short (regression: "no answer within 52ms" hid "$.environment is "blue"")', async () => {
    const result = await pollEnvironment(
      {
        label: 'verify',
        url,
        path: { text: '$.environment', segments: parseJsonPath('$.environment')! },
        env: 'green',
        streak: 3,
        intervalMs: 20,
        deadline: Date.now() + 800,
      },
      deps,
      new AbortController().signal,
    );
    expect(answered).toBeGreaterThan(2);
    expect(result).toMatchObject({ ok: false, cancelled: false, seen: '$.environment is "blue"' });
  });
});
