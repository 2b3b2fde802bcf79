/**
 * GET /api/v1/stream (WebSocket): live events, one JSON object per message. With `since`, the
 * journal's events after that id are replayed first and then the live ones follow, with no gap
 * and no duplicate. Filters: `type` (a type or prefix), `env`, `severity`, `probe`. The stream
 * only serializes and filters.
 *
 * No client can slow the agent or hold much of its memory:
 * - A replay reads the journal a page at a time (JournalPages: each event serialized once for
 *   every reader), one page per slice of the TurnQueue (one slice per turn of the event loop for
 *   all replays and history reads together, a quarter of the time at most), and only while the
 *   client keeps up: once REPLAY_QUEUE_BYTES are queued for it, the replay waits for its socket
 *   to drain, and a client that does not drain within REPLAY_STALL_MS is closed with 4008.
 * - Live events arriving during a replay are not held for the client: every event is in the
 *   journal before any listener sees it, so the replay reads them there, and the client goes live
 *   in the same synchronous step in which a read finds the journal's end.
 * - Live, a client more than MAX_BUFFERED_BYTES behind is closed with 4008.
 * - At most api.stream.maxClients clients (503 at the upgrade), and api.stream.maxClientsPerAddress
 *   from one remote address (429).
 *
 * Upgrades come through the HTTP server's Host check (DNS rebinding); here a browser's `Origin`
 * must be the agent's own or listed in api.allowedOrigins (403), since a WebSocket, unlike a
 * fetch, is not held to the same-origin policy.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EventListener, GreenlightEvent } from './events.js';
import { originOf, parseHost } from '../../config/schema.js';
import { AGENT_HEADER, authorize, queryProblem, type Tokens, type UpgradeRefusal } from '../http/http-server.js';
import { VERSION } from '../package.js';
import { EVENT_FILTER_PARAMS, matches, parseEventFilter, textFrame, type EncodedEvent, type EventFilter, type JournalPages } from './journal-pages.js';
import type { TurnQueue } from '../http/turn-queue.js';
import { spacedWarning } from '../telemetry/logger.js';

/**
 * A live client more than this far behind (bytes queued for it in the agent, after what the
 * kernel's socket buffers hold) is cut off: it never slows the agent or the others. What a client
 * can hold in the agent's memory is this plus one event.
 */
export const MAX_BUFFERED_BYTES = 256 * 1024;
/** A replay writes to a client only while less than this is queued for it: what it holds during a replay, plus one event. */
export const REPLAY_QUEUE_BYTES = 64 * 1024;
/** How often the stream pings each client (greenlight tail takes 2.5 of these without a frame as a dead connection). */
export const HEARTBEAT_MS = 15_000;
/** A replaying client that reads nothing for this long is cut off like a slow consumer. */
const REPLAY_STALL_MS = 30_000;
/**
 * The query parameters the stream reads: GET /api/v1/events's filters, and the token a client
 * that cannot send a header passes. Any other (`enviroment=green`) or one given twice is a 400
 * naming it: the stream would otherwise send every event, or filter by the first value alone.
 */
const STREAM_QUERY = [...EVENT_FILTER_PARAMS, 'token'];
/** Close code for a consumer that stopped reading (4000-4999 are the application's). */
export const CLOSE_TOO_SLOW = 4008;
/** Refusals are logged at most this often, with how many there were. */
const REFUSAL_LOG_MS = 60_000;
/** A client closed with 4008 has this long to read what it was sent and the close frame; then its connection is dropped. */
const CLOSE_GRACE_MS = 10_000;
/**
 * The one error every connection the stream drops is destroyed with. Destroying a socket that
 * has writes queued fails each of them with the stream's error, or, without one, with a new
 * Error apiece, stack trace and all: 500 stalled clients with a few hundred queued messages each
 * held the event loop for a second.
 */
const DROPPED = new Error('stream client dropped');

/** What the stream's access decisions read, at each upgrade (a reload applies to the next client). */
export interface StreamPolicy {
  tokens: Tokens;
  maxClients: number;
  maxClientsPerAddress: number;
  /** Origins (`https://host:port`) besides the agent's own whose pages may open the stream. */
  allowedOrigins: readonly string[];
  /** The environments of the config in force: `env=` names one of them or is refused. */
  environments: readonly string[];
}

interface Client {
  readonly socket: WebSocket;
  /** The connection under the WebSocket: its 'drain' says the client has read what was queued. */
  readonly raw: Duplex;
  readonly filter: EventFilter;
  readonly address: string;
  /** The last journal id handled: sent, or filtered out. A client cut off resumes after it. */
  position: number;
  /** The last id sent: nothing at or below it is sent again. */
  lastSent: number;
  /** Past the replay (or never had one): live events are sent as they come. */
  live: boolean;
  alive: boolean;
  /** The Authorization it opened with (or its ?token= as one): checked again when a reload changes the tokens. */
  readonly credential: string | undefined;
}

export class EventStream {
  /** No permessage-deflate: replays and live events are written as ready-made frames (#sendPage, #sendLive). */
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4_096, clientTracking: false, perMessageDeflate: false });
  readonly #subscribe: (listener: EventListener) => () => void;
  readonly #pages: JournalPages;
  readonly #turns: TurnQueue;
  readonly #policy: () => StreamPolicy;
  readonly #logger: Logger;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #clients = new Map<WebSocket, Client>();
  readonly #perAddress = new Map<string, number>();
  /** The last event framed as its message: every client is sent one event before the next is delivered. */
  #encoded: { event: GreenlightEvent; frame: Buffer } | undefined;
  /** The spaced warning for refused clients, naming the latest refusal. */
  readonly #refused: (refusal: { status: number; error: string }) => void;

  /**
   * `subscribe` delivers events once they are journaled (never before: a client must never hold an
   * event the history lacks); `pages` reads the journal; `turns` paces replays against everything
   * else the agent does.
   */
  constructor(options: {
    subscribe: (listener: EventListener) => () => void;
    pages: JournalPages;
    turns: TurnQueue;
    policy: () => StreamPolicy;
    logger: Logger;
  }) {
    this.#subscribe = options.subscribe;
    this.#pages = options.pages;
    this.#turns = options.turns;
    this.#policy = options.policy;
    this.#logger = options.logger;
    // The 101 says it is an agent's, as every other answer of the listener does (refusals too:
    // refuseUpgrade): `greenlight tail` takes no stream from anything else.
    this.#wss.on('headers', (headers) => headers.push(`${AGENT_HEADER}: ${VERSION}`));
    // A flood of refused clients must not flood the log: the first, then a count at most once a minute.
    this.#refused = spacedWarning(this.#logger, REFUSAL_LOG_MS, (count, { status, error }: { status: number; error: string }) => ({
      fields: { status, refused: count },
      message: `stream client refused (${status}): ${error}${count > 1 ? ` (${count} refusals since the last such line)` : ''}`,
    }));
    this.#heartbeat = setInterval(() => {
      for (const client of this.#clients.values()) {
        // A client being closed (cut off as too slow) has its grace to read its close frame, with
        // the code and resume id, queued behind its backlog; the cut-off drops it after that.
        if (client.socket.readyState !== client.socket.OPEN) continue;
        if (!client.alive) {
          drop(client);
          continue;
        }
        client.alive = false;
        client.socket.ping();
      }
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    // Subscribed before any client: a reload that retired a client's token closes it before the
    // client is sent the reload's own event (a leaked token is revoked by rotating it).
    options.subscribe((event) => {
      if (event.type === 'config.reloaded') this.#recheckTokens();
    });
  }

  /** Close every client whose token the config in force no longer takes. */
  #recheckTokens(): void {
    const { tokens } = this.#policy();
    for (const client of this.#clients.values()) {
      if (client.socket.readyState !== client.socket.OPEN || !('status' in authorize(client.credential, 'history', tokens))) continue;
      client.socket.close(1008, 'the token this stream opened with is no longer accepted (a reload changed the tokens): reconnect with a current one');
    }
  }

  /** Take a WebSocket upgrade that passed the HTTP server's Host check (HttpServer.onUpgrade). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, refuse: UpgradeRefusal): void {
    if (url.pathname !== '/api/v1/stream') return refuse(404, `no WebSocket endpoint ${url.pathname}; use /api/v1/stream`);
    const policy = this.#policy();
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host) && !policy.allowedOrigins.includes(originOf(origin) ?? '')) {
      return this.#refuse(
        refuse,
        403,
        `a page from ${JSON.stringify(origin.slice(0, 200))} may not open the stream: only the agent's own pages and the origins in api.allowedOrigins may`,
      );
    }
    // Judged as GET /api/v1/events judges its request: the token, then the query's names, then the filter.
    const token = url.searchParams.get('token');
    const credential = req.headers.authorization ?? (token ? `Bearer ${token}` : undefined);
    const decision = authorize(credential, 'history', policy.tokens);
    if ('status' in decision) return refuse(401, `the stream needs a token: ${decision.error}`);
    const problem = queryProblem(STREAM_QUERY, url);
    if (problem) return refuse(400, problem);
    const filter = parseEventFilter(url.searchParams, policy.environments);
    if (typeof filter === 'string') return refuse(400, filter);
    const address = remoteAddress(req);
    if (this.#clients.size >= policy.maxClients) {
      return this.#refuse(refuse, 503, `the stream has its ${policy.maxClients} clients (api.stream.maxClients): try again later, or read GET /api/v1/events`, {
        'retry-after': '10',
      });
    }
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (fromAddress >= policy.maxClientsPerAddress) {
      return this.#refuse(
        refuse,
        429,
        `${address} already has ${fromAddress} stream clients (api.stream.maxClientsPerAddress): close one, or raise the limit when many people share this address (a proxy)`,
        { 'retry-after': '10' },
      );
    }
    this.#wss.handleUpgrade(req, socket, head, (client) => this.#serve(client, socket, filter, address, credential));
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** The most bytes any one client has queued in the agent right now (its socket's buffer and ws's). */
  get maxQueuedBytes(): number {
    let max = 0;
    for (const client of this.#clients.keys()) max = Math.max(max, client.bufferedAmount);
    return max;
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const client of this.#clients.keys()) client.close(1001, 'greenlight stopping');
    this.#wss.close();
  }

  #refuse(refuse: UpgradeRefusal, status: number, error: string, headers: Record<string, string> = {}): void {
    refuse(status, error, headers);
    this.#refused({ status, error });
  }

  /** Serialize and frame an event once for all the clients it goes to, not once per client. */
  #encode(event: GreenlightEvent): Buffer {
    if (this.#encoded?.event !== event) this.#encoded = { event, frame: textFrame(JSON.stringify(event)) };
    return this.#encoded.frame;
  }

  #serve(socket: WebSocket, raw: Duplex, filter: EventFilter, address: string, credential: string | undefined): void {
    const client: Client = {
      socket,
      raw,
      filter,
      address,
      position: filter.since ?? 0,
      // What the client says it has: nothing at or below it goes out, even when the journal has not
      // reached it yet (a cluster agent whose mirror lags the one the client came from), as
      // GET /api/v1/events?since= answers nothing there either.
      lastSent: filter.since ?? 0,
      live: filter.since === undefined,
      alive: true,
      credential,
    };
    this.#clients.set(socket, client);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.on('pong', () => (client.alive = true));
    socket.on('error', () => drop(client));
    const unsubscribe = this.#subscribe((event) => {
      if (client.live && socket.readyState === socket.OPEN) this.#sendLive(client, event);
    });
    socket.on('close', () => {
      unsubscribe();
      this.#clients.delete(socket);
      const left = (this.#perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.#perAddress.set(address, left);
      else this.#perAddress.delete(address);
    });
    if (!client.live) {
      this.#replay(client).catch((error: unknown) => {
        this.#logger.error({ err: error }, 'bug: a stream replay failed; the client is disconnected');
        drop(client);
      });
    }
  }

  #sendLive(client: Client, event: GreenlightEvent): void {
    if (event.id <= client.lastSent) return;
    if (matches(event, client.filter)) {
      if (client.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.#cutOff(client, 'stream client too slow: disconnected');
        return;
      }
      // The ready-made frame, written as a replay writes its pages (#sendPage says why that is
      // safe under ws): ws would frame the same bytes again for each of the clients.
      client.raw.write(this.#encode(event));
      client.lastSent = event.id;
    }
    client.position = event.id;
  }

  #cutOff(client: Client, why: string): void {
    const resume = Math.max(client.lastSent, client.position);
    this.#logger.warn({ lastSent: client.lastSent, resume, address: client.address }, why);
    client.socket.close(CLOSE_TOO_SLOW, `too slow: reconnect with since=${resume}`);
    setTimeout(() => drop(client), CLOSE_GRACE_MS).unref();
  }

  /** The journal after `since`, a page per slice of the turn queue while the client keeps up, then live. */
  async #replay(client: Client): Promise<void> {
    const { socket } = client;
    for (;;) {
      if (socket.readyState !== socket.OPEN) return;
      if (socket.bufferedAmount >= REPLAY_QUEUE_BYTES && !(await this.#drained(client))) {
        if (socket.readyState === socket.OPEN) this.#cutOff(client, 'stream client stopped reading during its replay: disconnected');
        return;
      }
      const done = await this.#turns.run(() => {
        if (socket.readyState !== socket.OPEN) return true;
        const page = this.#pages.after(client.position);
        // Nothing can be journaled between this read and the end of the slice: the client goes
        // live exactly at the journal's end, and every later event reaches it through the listener.
        if (this.#sendPage(client, page.events) && page.end) client.live = true;
        return client.live;
      });
      if (done !== false) return;
    }
  }

  /**
   * Send a page's matching events until the client's queue reaches REPLAY_QUEUE_BYTES; true when
   * the page is done. Consecutive messages go out as one write of the page's framed bytes, under
   * ws: ws writes every frame of its own (live events, pings, the close) whole and in order on the
   * same socket, and this connection has no extension (no compression) that would change frames.
   */
  #sendPage(client: Client, events: readonly EncodedEvent[]): boolean {
    let run: { from: EncodedEvent; to: EncodedEvent } | undefined;
    let queued = client.socket.bufferedAmount;
    const flush = () => {
      if (!run) return;
      const { from, to } = run;
      client.raw.write(Buffer.from(from.frame.buffer, from.frame.byteOffset, to.frame.byteOffset + to.frame.length - from.frame.byteOffset));
      run = undefined;
    };
    for (const event of events) {
      if (queued >= REPLAY_QUEUE_BYTES) {
        flush();
        return false;
      }
      client.position = event.id;
      if (event.id <= client.lastSent || !matches(event, client.filter)) {
        flush();
        continue;
      }
      if (run) run.to = event;
      else run = { from: event, to: event };
      queued += event.frame.length;
      client.lastSent = event.id;
    }
    flush();
    return true;
  }

  /** Resolves true once the client's socket has drained, false if it closes or stays full for REPLAY_STALL_MS. */
  #drained(client: Client): Promise<boolean> {
    const { raw } = client;
    return new Promise((resolve) => {
      const done = (drained: boolean) => {
        clearTimeout(timer);
        raw.off('drain', onDrain);
        raw.off('close', onClose);
        resolve(drained);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), REPLAY_STALL_MS);
      raw.on('drain', onDrain);
      raw.on('close', onClose);
    });
  }
}

function drop(client: Client): void {
  if (!client.raw.destroyed) client.raw.destroy(DROPPED);
}

/** Whether `origin` is the page's own agent: the same host and port as the request's Host. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const target = parseHost(host);
  if (!target || (url.protocol !== 'http:' && url.protocol !== 'https:')) return false;
  const defaultPort = url.protocol === 'https:' ? '443' : '80';
  return url.hostname.replace(/\.$/, '') === target.name && (url.port || defaultPort) === (target.port || defaultPort);
}

/** The peer's address, IPv4-mapped IPv6 written as IPv4: what the per-address limit counts. */
function remoteAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
