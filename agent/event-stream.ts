/**
 * GET /api/v1/stream (WebSocket): live events, one JSON object per message. With `since`, the
 * journal's events after that id are replayed first and then the live ones follow, with no gap
 * and no duplicate: the client is subscribed before the replay is read, live events arriving
 * meanwhile are held, and only those after the last replayed id are sent on. Filters: `type`
 * (a type or prefix), `env`, `severity`, `probe`. The stream only serializes and filters.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EventListener, GreenlightEvent } from './events.js';
import { authorize, requestUrl, type Tokens } from './http-server.js';

/**
 * A client more than this far behind (bytes queued in its socket) is cut off: it never slows the
 * agent or the others. What a client can hold in the agent's memory is this plus one event.
 */
export const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;
/** Events read from the journal at a time for a replay; sending pauses whenever the client is half a bound behind. */
const REPLAY_PAGE = 500;
/** A replaying client that reads nothing for this long is cut off like a slow consumer. */
const REPLAY_STALL_MS = 30_000;
/** Close code for a consumer that stopped reading (4000-4999 are the application's). */
export const CLOSE_TOO_SLOW = 4008;

export interface StreamFilter {
  since: number | undefined;
  type: string | undefined;
  env: string | undefined;
  severity: string | undefined;
  probe: string | undefined;
}

export function matches(event: GreenlightEvent, filter: StreamFilter): boolean {
  if (filter.type !== undefined && event.type !== filter.type && !event.type.startsWith(`${filter.type}.`)) return false;
  if (filter.env !== undefined && event.env !== filter.env) return false;
  if (filter.severity !== undefined && event.severity !== filter.severity) return false;
  if (filter.probe !== undefined && event.probe !== filter.probe) return false;
  return true;
}

export class EventStream {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4_096 });
  readonly #subscribe: (listener: EventListener) => () => void;
  readonly #history: (since: number, limit: number) => GreenlightEvent[];
  readonly #streamToken: () => string | undefined;
  readonly #logger: Logger;
  readonly #heartbeat: NodeJS.Timeout;
  /** The last event serialized and its UTF-8 bytes: every client is sent one event before the next is published. */
  #encoded: { event: GreenlightEvent; bytes: Buffer } | undefined;

  /**
   * `subscribe` delivers events once they are journaled (never before: a client must never hold an
   * event the history lacks), `history` reads the journal after an id.
   */
  constructor(options: { subscribe: (listener: EventListener) => () => void; history: (since: number, limit: number) => GreenlightEvent[]; streamToken: () => string | undefined; logger: Logger }) {
    this.#subscribe = options.subscribe;
    this.#history = options.history;
    this.#streamToken = options.streamToken;
    this.#logger = options.logger;
    this.#heartbeat = setInterval(() => {
      for (const client of this.#wss.clients) {
        // A client being closed (cut off as too slow) has ws's own closing timeout; terminating it
        // here would drop the close frame, with its code and resume id, still queued for it.
        if (client.readyState !== client.OPEN) continue;
        const alive = client as WebSocket & { isAlive?: boolean };
        if (alive.isAlive === false) {
          client.terminate();
          continue;
        }
        alive.isAlive = false;
        client.ping();
      }
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  /** Take WebSocket upgrades of /api/v1/stream on `server`; other upgrades are refused. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = requestUrl(req);
      const refuse = (status: number, message: string) => {
        socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 400 ? 'Bad Request' : 'Unauthorized'}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify({ error: message })}`);
      };
      if (!url) return refuse(400, 'the request target is not a valid path; use /api/v1/stream');
      if (url.pathname !== '/api/v1/stream') return refuse(404, `no WebSocket endpoint ${url.pathname}; use /api/v1/stream`);
      const filter = parseFilter(url.searchParams);
      if (typeof filter === 'string') return refuse(400, filter);
      const token = this.#streamToken();
      if (token !== undefined) {
        const header = req.headers.authorization ?? (url.searchParams.get('token') ? `Bearer ${url.searchParams.get('token')}` : undefined);
        const decision = authorize(header, 'admin', { admin: token } satisfies Tokens);
        if ('status' in decision) return refuse(401, `the stream needs its token: ${decision.error}`);
      }
      this.#wss.handleUpgrade(req, socket, head, (client) => this.#serve(client, filter));
    });
  }

  get clients(): number {
    return this.#wss.clients.size;
  }

  /** The most bytes any one client has queued in the agent right now (its socket's buffer and ws's). */
  get maxQueuedBytes(): number {
    let max = 0;
    for (const client of this.#wss.clients) max = Math.max(max, client.bufferedAmount);
    return max;
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const client of this.#wss.clients) client.close(1001, 'greenlight stopping');
    this.#wss.close();
  }

  /** Serialize an event once for all the clients it goes to, not once per client. */
  #encode(event: GreenlightEvent): Buffer {
    if (this.#encoded?.event !== event) this.#encoded = { event, bytes: Buffer.from(JSON.stringify(event)) };
    return this.#encoded.bytes;
  }

  #serve(client: WebSocket, filter: StreamFilter): void {
    (client as WebSocket & { isAlive?: boolean }).isAlive = true;
    client.on('pong', () => ((client as WebSocket & { isAlive?: boolean }).isAlive = true));
    client.on('error', () => client.terminate());
    let lastSent = 0;
    let held: GreenlightEvent[] | undefined = filter.since === undefined ? undefined : [];
    const send = (event: GreenlightEvent) => {
      if (event.id <= lastSent || !matches(event, filter)) return;
      if (client.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.#logger.warn({ lastSent }, 'stream client too slow: disconnected');
        client.close(CLOSE_TOO_SLOW, `too slow: reconnect with since=${lastSent}`);
        return;
      }
      client.send(this.#encode(event), { binary: false });
      lastSent = event.id;
    };
    const unsubscribe = this.#subscribe((event) => {
      if (client.readyState !== client.OPEN) return;
      if (held) held.push(event);
      else send(event);
    });
    client.on('close', unsubscribe);
    if (held) {
      // Replay a page at a time, each once the client has taken the last (a long history must not
      // trip the slow-consumer bound of a client that reads), then what arrived meanwhile: ids
      // order everything, so nothing is sent twice.
      void (async () => {
        for (let from = filter.since!; client.readyState === client.OPEN; ) {
          const page = this.#history(from, REPLAY_PAGE);
          for (const event of page) {
            if (client.bufferedAmount > MAX_BUFFERED_BYTES / 2 && !(await drained(client))) {
              this.#logger.warn({ lastSent }, 'stream client stopped reading during its replay: disconnected');
              client.close(CLOSE_TOO_SLOW, `too slow: reconnect with since=${lastSent}`);
              return;
            }
            send(event);
          }
          if (page.length < REPLAY_PAGE) break;
          from = page.at(-1)!.id;
        }
        const pending = held!;
        held = undefined;
        for (const event of pending) send(event);
      })();
    }
  }
}

/** Resolves true once the client's queue is below half the bound, false if it stays above for REPLAY_STALL_MS. */
async function drained(client: WebSocket): Promise<boolean> {
  const until = Date.now() + REPLAY_STALL_MS;
  while (client.bufferedAmount > MAX_BUFFERED_BYTES / 2) {
    if (Date.now() > until || client.readyState !== client.OPEN) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

function parseFilter(params: URLSearchParams): StreamFilter | string {
  const since = params.get('since');
  if (since !== null && !/^\d{1,15}$/.test(since)) return `since must be a whole number, not ${JSON.stringify(since)}`;
  const severity = params.get('severity') ?? undefined;
  if (severity !== undefined && !['info', 'warning', 'critical'].includes(severity)) return `severity must be info, warning or critical, not ${JSON.stringify(severity)}`;
  return { since: since === null ? undefined : Number(since), type: params.get('type') ?? undefined, env: params.get('env') ?? undefined, severity, probe: params.get('probe') ?? undefined };
}
