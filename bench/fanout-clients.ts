/**
 * The fan-out bench's stream clients, forked by bench/fanout.ts so that their CPU is not the
 * measured server's: N real `ws` clients on 127.0.0.1, each recording the delivery latency of
 * every message that carries `"sentAt":<epoch ms>` (stamped by the publisher at publish time).
 *
 * The clients are the measuring instrument, so they keep their own pauses out of the figures as
 * far as they can: a message is read for its `sentAt` in place (no string of the whole message),
 * and the latencies go into one array sized for the run. A growing JS array, copied at each
 * growth, with a string per message, paused this process for 10-15 ms at the same points of every
 * run (1.5, 2.2 and 3.4 s in at 50,000 messages a second: the array's 1.5x growth steps), and
 * those pauses made most of the p99 of both servers.
 *
 * IPC requests ({ id, cmd }) and replies ({ id, ok, result | error }):
 *   connect { url, clients }  open the clients (closing any before); replies when all are open
 *   reset { expected }        forget what was received so far; room for `expected` messages
 *   report                    { received, perClientMin, latency: { count, p50Ms, p99Ms, maxMs }, closes }
 *   close                     close every client
 */
import { WebSocket } from 'ws';
import { answerParent } from './child-ipc.js';
import { quantile } from './harness.js';

type Command = { cmd: 'connect'; url: string; clients: number } | { cmd: 'reset'; expected: number } | { cmd: 'report' } | { cmd: 'close' };

/** Hi-res epoch milliseconds, comparable across processes on one machine. */
const now = () => performance.timeOrigin + performance.now();
const SENT_AT = Buffer.from('"sentAt":');

/** The `sentAt` a message carries, read from its bytes; undefined without one. */
function sentAt(data: Buffer): number | undefined {
  const at = data.indexOf(SENT_AT);
  if (at < 0) return undefined;
  const start = at + SENT_AT.length;
  let end = start;
  // Digits and the decimal point: the publisher's hi-res epoch milliseconds.
  while (end < data.length && ((data[end]! >= 0x30 && data[end]! <= 0x39) || data[end] === 0x2e)) end++;
  return Number(data.toString('latin1', start, end));
}

let sockets: WebSocket[] = [];
let counts: number[] = [];
let latencies: Float64Array = new Float64Array(0);
let recorded = 0;
let closes: Record<string, number> = {};

function closeAll(): void {
  for (const socket of sockets) socket.terminate();
  sockets = [];
}

async function connect(url: string, clients: number): Promise<{ clients: number }> {
  closeAll();
  counts = new Array<number>(clients).fill(0);
  recorded = 0;
  closes = {};
  sockets = Array.from({ length: clients }, (_, index) => {
    const socket = new WebSocket(url);
    socket.on('message', (data: Buffer) => {
      const sent = sentAt(data);
      if (sent === undefined) return;
      counts[index]!++;
      // More than the parent announced (it should not happen): room for as many again.
      if (recorded === latencies.length) latencies = grown(latencies);
      latencies[recorded++] = now() - sent;
    });
    socket.on('close', (code) => (closes[code] = (closes[code] ?? 0) + 1));
    socket.on('error', () => undefined);
    return socket;
  });
  await Promise.all(sockets.map((socket) => new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)))));
  return { clients };
}

function grown(values: Float64Array): Float64Array {
  const next = new Float64Array(Math.max(1024, values.length * 2));
  next.set(values);
  return next;
}

function report() {
  // Sorted in place: what is recorded is a set, and the next report sorts it again.
  const sorted = latencies.subarray(0, recorded).sort();
  return {
    received: counts.reduce((a, b) => a + b, 0),
    perClientMin: Math.min(...counts),
    latency: { count: sorted.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: sorted[sorted.length - 1] },
    closes,
  };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case 'connect':
      return connect(command.url, command.clients);
    case 'reset':
      counts.fill(0);
      latencies = new Float64Array(command.expected);
      recorded = 0;
      return {};
    case 'report':
      return report();
    case 'close':
      closeAll();
      return {};
  }
}

answerParent<Command>(handle, { onGone: closeAll, exitAfterMs: 500 });
