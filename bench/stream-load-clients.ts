/**
 * The stream-load bench's clients, forked by bench/stream-load.ts so that their CPU and memory are
 * not the agent's nor the bench's: readers (real `ws` clients that replay the journal and count
 * what they get) and stalled sockets (raw TCP connections that send a WebSocket upgrade, check the
 * answer is 101, and then never read again).
 *
 * IPC requests ({ id, cmd }) and replies ({ id, ok, result | error }):
 *   connect { url, readers, stalled, since }  open them all; replies once each has its answer
 *   report                                    { received, bytes, minReceived, upgraded, refused, closes }
 *   close                                     close every socket
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { answerParent } from './child-ipc.js';

type Command = { cmd: 'connect'; url: string; readers: number; stalled: number; since: number } | { cmd: 'report' } | { cmd: 'close' };

let readers: WebSocket[] = [];
let stalled: Socket[] = [];
let received: number[] = [];
let bytes = 0;
let upgraded = 0;
let refused: Record<string, number> = {};
let closes: Record<string, number> = {};

function closeAll(): void {
  for (const socket of readers) socket.terminate();
  for (const socket of stalled) socket.destroy();
  readers = [];
  stalled = [];
}

function openReader(url: string, index: number): Promise<void> {
  const socket = new WebSocket(url);
  readers.push(socket);
  socket.on('message', (data: Buffer) => {
    received[index]!++;
    bytes += data.length;
  });
  socket.on('close', (code) => (closes[code] = (closes[code] ?? 0) + 1));
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    socket.once('open', () => resolve());
    socket.once('unexpected-response', (_req, res) => {
      refused[String(res.statusCode)] = (refused[String(res.statusCode)] ?? 0) + 1;
      resolve();
    });
    socket.once('error', () => resolve());
  });
}

/** A raw upgrade: read only the answer's first chunk (the 101 and whatever came with it), then never again. */
function openStalled(url: URL): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: url.hostname, port: Number(url.port) });
    stalled.push(socket);
    socket.once('connect', () => {
      const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('base64');
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.once('data', (chunk: Buffer) => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1', 0, 16))?.[1] ?? 'none';
      if (status === '101') upgraded++;
      else refused[status] = (refused[status] ?? 0) + 1;
      socket.pause();
      resolve();
    });
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
}

async function connect(command: Extract<Command, { cmd: 'connect' }>): Promise<unknown> {
  closeAll();
  received = new Array<number>(command.readers).fill(0);
  bytes = 0;
  upgraded = 0;
  refused = {};
  closes = {};
  const url = new URL(`${command.url}?since=${command.since}`);
  // The stalled sockets first: they are what holds memory in the agent while the readers replay.
  for (let i = 0; i < command.stalled; i += 50) await Promise.all(Array.from({ length: Math.min(50, command.stalled - i) }, () => openStalled(url)));
  await Promise.all(Array.from({ length: command.readers }, (_, index) => openReader(url.toString(), index)));
  return report();
}

function report() {
  return { received: received.reduce((a, b) => a + b, 0), bytes, minReceived: received.length ? Math.min(...received) : 0, upgraded, refused, closes };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      return connect(command);
    case 'report':
      return report();
    case 'close':
      closeAll();
      return {};
  }
}

answerParent<Command>(handle, { onGone: closeAll, exitAfterMs: 500 });
