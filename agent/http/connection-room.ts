/**
 * Room for the API's connections: at most `limit` open at once, so that a client that opens
 * connections and never uses them cannot take the file descriptors the probes need.
 *
 * When the room is full, a new connection takes the place of an idle one instead of being turned
 * away: first of one that has not sent a whole request since it connected (oldest first: a flood's
 * half-open sockets, a slow sender's headers), then of one whose request body is still on its way
 * (oldest first: a slow sender's body, which no timeout but the request's 30 s ends), then of the
 * kept-alive one idle longest. Turning newcomers away let a flood of idle connections lock every
 * operator out until the flood's sockets timed out (found from outside: 1,000 idle connections
 * kept the API shut for ~40 s). A connection with a request in flight, or a stream (a WebSocket),
 * is never closed for room; when every open one is such, the newcomer is.
 *
 * A connection counts as not having sent its request, or its body, only once it has had `graceMs`
 * (1 s) to send it: connections accepted together reach the server before any of them is read,
 * and taking the oldest of those first closed all but the last of an operator's parallel requests
 * (found from outside: with 1,000 kept-alive connections idle, 2 of every 3 connections a client
 * opened at once were reset, and not one idle connection made room). Until then they are left
 * alone, as those in use are.
 */
import type { Socket } from 'node:net';

/** What became of a connection closed for room. */
export interface RoomClosure {
  /**
   * `evicted`: an idle one closed for a newcomer; `refused`: the newcomer itself, every open one
   * being in use or just opened; `pipelined`: one that asked more than MAX_IN_FLIGHT at once.
   */
  why: 'evicted' | 'refused' | 'pipelined';
  /** The address of the connection closed. */
  from: string | undefined;
}

/** How long a new connection has to send its request (and a request its body) before it may make room. */
export const GRACE_MS = 1_000;

/**
 * The most requests one connection may have in flight at once. HTTP/1.1 lets a client send
 * requests without reading the answers (pipelining), and the server parses a whole read of them
 * before it pauses: each answer waits in memory until the client reads (found from outside: 50
 * connections each sending 1,400 requests for the status page's script in one 63 KB write, never
 * read, took the agent from 160 to 470 MB and stalled its loop for 3.4 s). No browser or tool of
 * ours pipelines; a connection past this is closed, its requests unanswered.
 */
export const MAX_IN_FLIGHT = 16;

/** Requests a connection has in flight; STREAM once it was upgraded (it is never idle again). */
const STREAM = -1;

export class ConnectionRoom {
  readonly #limit: number;
  readonly #onClosed: (closure: RoomClosure) => void;
  readonly #graceMs: number;
  /** Every open connection: its requests in flight, or STREAM. */
  readonly #open = new Map<Socket, number>();
  /** Open connections with no whole request yet, oldest first: since when (performance.now()). */
  readonly #fresh = new Map<Socket, number>();
  /** Open connections whose request's body the server is waiting for, the longest waited first: since when. */
  readonly #sending = new Map<Socket, number>();
  /** Open connections between requests, idle longest first. */
  readonly #idle = new Set<Socket>();

  constructor(limit: number, onClosed: (closure: RoomClosure) => void, graceMs = GRACE_MS) {
    this.#limit = limit;
    this.#onClosed = onClosed;
    this.#graceMs = graceMs;
  }

  get size(): number {
    return this.#open.size;
  }

  /** A connection was accepted: make room for it, or close it. */
  admit(socket: Socket): void {
    if (this.#open.size >= this.#limit) {
      const before = performance.now() - this.#graceMs;
      const idle = waitedSince(this.#fresh, before) ?? waitedSince(this.#sending, before) ?? first(this.#idle);
      if (idle === undefined) {
        this.#onClosed({ why: 'refused', from: socket.remoteAddress });
        socket.destroy();
        return;
      }
      this.#forget(idle);
      this.#onClosed({ why: 'evicted', from: idle.remoteAddress });
      idle.destroy();
    }
    this.#open.set(socket, 0);
    this.#fresh.set(socket, performance.now());
    socket.once('close', () => this.#forget(socket));
  }

  /**
   * A whole request arrived on `socket` (its answer is under way until `ended`). False when it is
   * not to be answered: the connection is closed already, or it has just been closed for asking
   * more than MAX_IN_FLIGHT at once without reading the answers.
   */
  started(socket: Socket): boolean {
    const inFlight = this.#open.get(socket);
    if (inFlight === undefined || inFlight === STREAM) return false;
    if (inFlight >= MAX_IN_FLIGHT) {
      this.#forget(socket);
      this.#onClosed({ why: 'pipelined', from: socket.remoteAddress });
      socket.destroy();
      return false;
    }
    this.#open.set(socket, inFlight + 1);
    this.#fresh.delete(socket);
    this.#idle.delete(socket);
    return true;
  }

  /**
   * The server waits for the body of the request on `socket` (until `received`): it is not whole
   * yet, so the connection may make room as one that never sent a request may (found from
   * outside: 1,000 POSTs to the open OFREP route, each sending its body a byte a second, held
   * every connection as "in use" and kept operators out for as long as they kept sending).
   */
  receiving(socket: Socket): void {
    if (this.#open.has(socket) && this.#open.get(socket) !== STREAM) this.#sending.set(socket, performance.now());
  }

  /** The body `receiving` waited for arrived (or was given up). */
  received(socket: Socket): void {
    this.#sending.delete(socket);
  }

  /** A request's answer on `socket` was sent or given up. */
  ended(socket: Socket): void {
    this.#sending.delete(socket);
    const inFlight = this.#open.get(socket);
    if (inFlight === undefined || inFlight <= 0) return;
    this.#open.set(socket, inFlight - 1);
    if (inFlight === 1 && !socket.destroyed) this.#idle.add(socket);
  }

  /** `socket` became a stream (a WebSocket): in use for as long as it stays open. */
  upgraded(socket: Socket): void {
    if (!this.#open.has(socket)) return;
    this.#open.set(socket, STREAM);
    this.#fresh.delete(socket);
    this.#sending.delete(socket);
    this.#idle.delete(socket);
  }

  #forget(socket: Socket): void {
    if (!this.#open.delete(socket)) return;
    this.#fresh.delete(socket);
    this.#sending.delete(socket);
    this.#idle.delete(socket);
  }
}

/** The first (longest waiting) of `waiting` when it has waited since `before` or longer. */
function waitedSince<T>(waiting: Map<T, number>, before: number): T | undefined {
  for (const [item, since] of waiting) return since <= before ? item : undefined;
  return undefined;
}

function first<T>(set: Set<T>): T | undefined {
  for (const item of set) return item;
  return undefined;
}
