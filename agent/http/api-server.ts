/**
 * The agent's one listener as it runs: the routes on the HTTP server, the WebSocket stream on
 * its upgrades, and the journal pages both read history from. Tokens, the allowed hosts and
 * origins and the stream's limits are read from the config at each request, so a reload applies
 * them at once. Bulk reading (replays, history pages, scrapes) takes turns of the event loop.
 */
import type { Logger } from 'pino';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import { EventStream } from '../events/event-stream.js';
import type { Journal } from '../events/journal.js';
import { JournalPages, readHistory, type EncodedEvent, type HistoryQuery } from '../events/journal-pages.js';
import { startHttpServer, type HttpServer, type Route } from './http-server.js';
import { TurnQueue } from './turn-queue.js';

export class ApiServer {
  readonly #server: HttpServer;
  readonly #stream: EventStream;
  readonly #pages: JournalPages;
  readonly #turns: TurnQueue;

  private constructor(server: HttpServer, stream: EventStream, pages: JournalPages, turns: TurnQueue) {
    this.#server = server;
    this.#stream = stream;
    this.#pages = pages;
    this.#turns = turns;
  }

  /** Listen on `config().listen` with `routes`, and stream `journal` on /api/v1/stream. */
  static async start(options: { config: () => Config; routes: readonly Route[]; journal: Journal; redactor: Redactor; logger: Logger }): Promise<ApiServer> {
    const { config, journal, logger } = options;
    const api = () => config().api;
    const tokens = () => ({ admin: api().adminToken, rollback: api().rollbackToken, stream: api().streamToken });
    const turns = new TurnQueue();
    const server = await startHttpServer({
      listen: config().listen,
      routes: options.routes,
      tokens,
      allowedHosts: () => api().allowedHosts,
      turns,
      redactor: options.redactor,
      logger: logger.child({ component: 'http' }),
    });
    const pages = new JournalPages({ read: (since, limit) => journal.eventsJson({ since, limit }), cacheable: () => !journal.failing });
    const policy = () => ({
      tokens: tokens(),
      maxClients: api().stream.maxClients,
      maxClientsPerAddress: api().stream.maxClientsPerAddress,
      allowedOrigins: api().allowedOrigins,
      environments: Object.keys(config().environments),
    });
    const stream = new EventStream({
      subscribe: (listener) => journal.subscribe(listener),
      pages,
      turns,
      policy,
      logger: logger.child({ component: 'stream' }),
    });
    server.onUpgrade((req, socket, head, url, refuse) => stream.upgrade(req, socket, head, url, refuse));
    return new ApiServer(server, stream, pages, turns);
  }

  get address(): { host: string; port: number } {
    return this.#server.address;
  }

  /** `http://host:port`, IPv6 hosts in brackets. */
  get url(): string {
    const { host, port } = this.#server.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** GET /api/v1/events: journaled events that match the query, serialized, read a page per turn of the event loop. */
  history(query: HistoryQuery): Promise<{ events: EncodedEvent[]; next: number } | undefined> {
    return readHistory(this.#pages, this.#turns, query);
  }

  /** One slice of other bulk reading (a report's rollups and events) in its turn; undefined once the server closes. */
  turn<T>(work: () => T): Promise<T | undefined> {
    return this.#turns.run(work);
  }

  /** Stop taking turns, close the stream's clients, then the listener. */
  async close(): Promise<void> {
    this.#turns.close();
    this.#stream.close();
    await this.#server.close();
  }
}
