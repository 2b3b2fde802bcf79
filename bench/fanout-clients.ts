/**
 * The fan-out bench's stream clients, forked by bench/fanout.ts so that their CPU is not the
 * measured server's: N real `ws` clients on 127.0.0.1, each recording the delivery latency of
 * every message that carries `"sentAt":<epoch ms>` (stamped by the publisher at publish time).
 *
 * IPC requests ({ id, cmd }) and replies ({ id, ok, result | error }):
 *   connect { url, clients }  open the clients (closing any before); replies when all are open
 *   reset                     forget what was received so far
 *   report                    { received, perClientMin, latency: { count, p50Ms, p99Ms, maxMs }, closes }
 *   close                     close every client
 */
import { WebSocket } from 'ws';
import { answerParent } from './child-ipc.js';
import { quantile } from './harness.js';

type Command = { cmd: 'connect'; url: string; clients: number } | { cmd: 'reset' } | { cmd: 'report' } | { cmd: 'close' };

/** Hi-res epoch milliseconds, comparable across processes on one machine. */
const now = () => performance.timeOrigin + performance.now();
const SENT_AT = /"sentAt":([\d.]+)/;

let sockets: WebSocket[] = [];
let counts: number[] = [];
let latencies: number[] = [];
let closes: Record<string, number> = {};

function closeAll(): void {
  for (const socket of sockets) socket.terminate();
  sockets = [];
}

async function connect(url: string, clients: number): Promise<{ clients: number }> {
  closeAll();
  counts = new Array<number>(clients).fill(0);
  latencies = [];
  closes = {};
  sockets = Array.from({ length: clients }, (_, index) => {
    const socket = new WebSocket(url);
    socket.on('message', (data) => {
      const match = SENT_AT.exec(String(data));
      if (!match) return;
      counts[index]!++;
      latencies.push(now() - Number(match[1]));
    });
    socket.on('close', (code) => (closes[code] = (closes[code] ?? 0) + 1));
    socket.on('error', () => undefined);
    return socket;
  });
  await Promise.all(sockets.map((socket) => new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)))));
  return { clients };
}

function report() {
  const sorted = Float64Array.from(latencies).sort();
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
      latencies = [];
      return {};
    case 'report':
      return report();
    case 'close':
      closeAll();
      return {};
  }
}

answerParent<Command>(handle, { onGone: closeAll, exitAfterMs: 500 });
