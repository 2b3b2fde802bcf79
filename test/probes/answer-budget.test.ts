/**
 * The answer budget: a target that sends without end what undici's parser reads without a
 * callback (a chunk extension, blank lines) made the agent parse at the network's speed until
 * the probe's deadline — half a core per such series, and every other series' latency up tenfold.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../config/load-config.js';
import { Redactor } from '../../config/redactor.js';
import { ANSWER_OVERHEAD_BYTES, AnswerBudget, answerLimit } from '../../probes/answer-budget.js';
import { ProbeCompiler, runProbe, type ProbeTarget } from '../../probes/http-probe.js';
import { Agent, buildConnector } from '../../probes/undici-core.js';

const NOW = 1_760_000_000_000;
const now = () => NOW;
const KiB = 1_024;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A raw TCP server: `answer` gets each request's path and the socket, and writes what it likes. */
async function rawServer(answer: (path: string, socket: Socket) => void): Promise<{ url: string; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (data: Buffer) => {
      head += data.toString('latin1');
      for (let end = head.indexOf('\r\n\r\n'); end >= 0; end = head.indexOf('\r\n\r\n')) {
        const path = head.slice(0, head.indexOf('\r\n')).split(' ')[1]!;
        head = head.slice(end + 4);
        answer(path, socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, connections: () => connections };
}

/** Write `piece` again and again, as fast as the socket takes it, until it closes. */
function pump(socket: Socket, piece: Buffer): void {
  const more = () => {
    while (!socket.destroyed && socket.write(piece));
  };
  socket.on('drain', more);
  more();
}

function setup(
  url: string,
  probeYaml: string,
  options: { keepAliveTimeout?: number } = {},
): { target: (path: string) => ProbeTarget; budget: AnswerBudget; dispatcher: InstanceType<typeof Agent> } {
  const config = parseConfig(
    `environments:\n  blue:\n    url: "${url}"\n  green:\n    url: "http://127.0.0.1:9"\nprobes:\n  - name: health\n    path: /\n${probeYaml}`,
    {},
  );
  const budget = new AnswerBudget(answerLimit(config));
  const dispatcher = new Agent({ ...options, connections: 1, connect: budget.wrap(buildConnector({})) });
  cleanups.push(() => dispatcher.destroy());
  const compiler = new ProbeCompiler(config, Redactor.of(config));
  return { target: (path) => ({ ...compiler.target(config.probes[0]!, 'blue'), path }), budget, dispatcher };
}

const PROBE = '    timeout: 10s\n    maxBodyBytes: 64KiB\n    expect:\n      json:\n        - path: $.status\n          equals: healthy\n';

describe('the answer budget', () => {
  it('is the largest maxBodyBytes of the config plus the overhead of an answer', () => {
    const config = parseConfig(
      'environments: { blue: { url: "http://127.0.0.1:1" }, green: { url: "http://127.0.0.1:2" } }\nprobeDefaults: { maxBodyBytes: 256KiB }\nprobes:\n  - { name: a, path: /a }\n  - { name: b, path: /b, maxBodyBytes: 4MiB }\n',
      {},
    );
    expect(answerLimit(config)).toBe(4 * 1_048_576 + ANSWER_OVERHEAD_BYTES);
  });

  it.each([
    { what: 'a chunk extension without end', head: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;', piece: 'a' },
    { what: 'blank lines without end before the status line', head: '', piece: '\r\n' },
  ])(
    '$what: body_too_large once the connection read past the budget, not a timeout (regression: parsed at the network speed until the deadline)',
    async ({ head, piece }) => {
      const server = await rawServer((_path, socket) => {
        socket.write(head);
        pump(socket, Buffer.from(piece.repeat(16 * KiB)));
      });
      const { target, budget, dispatcher } = setup(server.url, PROBE);
      const result = await runProbe(target('/'), dispatcher, now);
      expect({ ok: result.ok, reason: result.reason }).toEqual({ ok: false, reason: 'body_too_large' });
      const said = result.error ?? result.checks.at(-1)!.text;
      expect(said).toBe(
        `the answer passed ${budget.limit} bytes without ending (status lines, headers, interim 1xx answers, chunk framing and body together): greenlight stops reading a target that sends without end`,
      );
    },
  );

  it('blank lines without end after a complete answer: the idle connection is dropped once past the budget, not kept parsing', async () => {
    let closed = false;
    const server = await rawServer((_path, socket) => {
      socket.on('close', () => (closed = true));
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{"status":"healthy"}');
      pump(socket, Buffer.from('\r\n'.repeat(16 * KiB)));
    });
    const { target, dispatcher } = setup(server.url, PROBE, { keepAliveTimeout: 600_000 });
    expect((await runProbe(target('/'), dispatcher, now)).ok).toBe(true);
    await vi.waitFor(() => expect(closed).toBe(true), { timeout: 20_000 });
  });

  it('a bad status still says status when the answer then runs past the budget', async () => {
    const server = await rawServer((_path, socket) => {
      socket.write('HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n1;');
      pump(socket, Buffer.from('a'.repeat(16 * KiB)));
    });
    const { target, dispatcher } = setup(server.url, PROBE);
    const result = await runProbe(target('/'), dispatcher, now);
    expect({ ok: result.ok, reason: result.reason, status: result.status }).toEqual({ ok: false, reason: 'status', status: 503 });
    expect(result.checks.at(-1)!.text).toMatch(/^the answer passed \d+ bytes without ending/);
  });

  it('honest answers at the body limit, in small chunks with extensions, after interim answers, pass one after another on one connection', async () => {
    const body = JSON.stringify({ status: 'healthy', padding: 'x'.repeat(64 * KiB - 40) });
    expect(body.length).toBeLessThanOrEqual(64 * KiB);
    let framed =
      'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
    for (let i = 0; i < body.length; i += 8) framed += `8;name=${'v'.repeat(32)}\r\n${body.slice(i, i + 8).padEnd(8, ' ')}\r\n`;
    framed += '0\r\n\r\n';
    const server = await rawServer((_path, socket) => void socket.write(framed));
    const { target, budget, dispatcher } = setup(server.url, PROBE);
    // Together more than the budget: each answer is counted on its own.
    const answers = Math.ceil((2 * budget.limit) / framed.length);
    for (let i = 0; i < answers; i++) {
      const result = await runProbe(target('/'), dispatcher, now);
      expect({ ok: result.ok, reason: result.reason, error: result.error }).toEqual({ ok: true, reason: undefined, error: undefined });
    }
    expect(server.connections()).toBe(1);
  });

  it('a new limit applies to the connections already open (a reload that lowers maxBodyBytes)', async () => {
    const body = JSON.stringify({ status: 'healthy', padding: 'x'.repeat(2 * KiB) });
    const server = await rawServer((_path, socket) => void socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`));
    const { target, budget, dispatcher } = setup(server.url, PROBE);
    expect((await runProbe(target('/'), dispatcher, now)).ok).toBe(true);
    budget.setLimit(KiB);
    const result = await runProbe(target('/'), dispatcher, now);
    expect({ ok: result.ok, reason: result.reason }).toEqual({ ok: false, reason: 'body_too_large' });
    expect(server.connections()).toBe(1);
  });
});
