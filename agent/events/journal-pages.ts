/**
 * The journal as its readers (stream replays, GET /api/v1/events) read it: in pages of at most
 * PAGE_EVENTS events, each event serialized once (by the store, straight from its columns) and
 * framed once as the WebSocket text message it is sent as, and the recent pages kept for every
 * reader. Twenty clients replaying the same history share one read per page, and write the same
 * bytes: a run of a page's messages is one write of one buffer to each client (a socket's queue
 * holds a reference to it, not a copy), instead of two writes and their bookkeeping per message.
 *
 * A page starts at a multiple of PAGE_EVENTS: the page of position p holds the PAGE_EVENTS
 * events after p - p % PAGE_EVENTS, so readers at nearby positions land on the same page. A full
 * page never changes (ids only grow) and is cached; a short one is the journal's end for now and
 * is read afresh each time. Each read is one indexed query of PAGE_EVENTS rows at most, whatever
 * the journal's size or gaps.
 */
import { EVENT_TYPES, type EventJson, type GreenlightEvent } from './events.js';
import type { TurnQueue } from '../http/turn-queue.js';

/** Events per page: a page is the unit of work a reader does per slice of the TurnQueue. */
export const PAGE_EVENTS = 64;
/**
 * Full pages kept: 16 × 64 events of ~450 bytes, about 0.5 MB. Replays advance a page per turn
 * each, in turn, so readers that started together stay within a page or two of one another; a
 * small cache is enough to share, and lets a page die young instead of lingering for a full GC.
 */
const CACHED_PAGES = 16;

/**
 * A journaled event serialized once: `frame` is the WebSocket text message carrying it (RFC 6455:
 * FIN, opcode 1, the length, unmasked as a server sends it), `bytes` its JSON in UTF-8; both are
 * views of the page's one buffer, where the frames of consecutive events follow one another.
 */
export interface EncodedEvent extends Omit<EventJson, 'json'> {
  readonly frame: Buffer;
  readonly bytes: Buffer;
}

export interface Page {
  /** The events after the position asked for, oldest first. */
  events: readonly EncodedEvent[];
  /** Nothing is journaled after the last of them (yet). */
  end: boolean;
}

export class JournalPages {
  readonly #read: (since: number, limit: number) => EventJson[];
  readonly #cacheable: () => boolean;
  /** Full pages by their start, least recently used first. */
  readonly #cache = new Map<number, readonly EncodedEvent[]>();
  #reads = 0;

  /**
   * `read(since, limit)`: journaled events after `since`, oldest first, at most `limit`, as JSON.
   * `cacheable()`: whether what was just read may be kept (not while the journal fails: a page
   * read then may lack events the disk holds but could not give back).
   */
  constructor(options: { read: (since: number, limit: number) => EventJson[]; cacheable?: () => boolean }) {
    this.#read = options.read;
    this.#cacheable = options.cacheable ?? (() => true);
  }

  /** Pages read from the journal so far (cache misses). */
  get reads(): number {
    return this.#reads;
  }

  /** At most PAGE_EVENTS events after `position`, serialized. */
  after(position: number): Page {
    const start = position - (position % PAGE_EVENTS);
    let page = this.#cache.get(start);
    if (page) {
      this.#cache.delete(start);
      this.#cache.set(start, page);
    } else {
      this.#reads++;
      page = encodePage(this.#read(start, PAGE_EVENTS));
      if (page.length === PAGE_EVENTS && this.#cacheable()) {
        this.#cache.set(start, page);
        if (this.#cache.size > CACHED_PAGES) this.#cache.delete(this.#cache.keys().next().value!);
      }
    }
    const first = page.findIndex((event) => event.id > position);
    // A full page always ends past `position` (PAGE_EVENTS distinct ids above its start), so a
    // reader that takes every event of each page it is given always gets further.
    return { events: first < 0 ? [] : page.slice(first), end: page.length < PAGE_EVENTS };
  }
}

/**
 * The page's messages in one buffer, each event's frame and JSON views of it: one allocation
 * outside the JS heap per page, not one per event (a long replay goes through thousands of pages,
 * and what is outside the heap is only freed once V8 collects what points to it).
 */
function encodePage(events: EventJson[]): EncodedEvent[] {
  const lengths = events.map((event) => Buffer.byteLength(event.json));
  const page = Buffer.allocUnsafe(lengths.reduce((sum, length) => sum + frameHeaderLength(length) + length, 0));
  let offset = 0;
  return events.map((event, i) => {
    const length = lengths[i]!;
    const start = offset;
    offset = writeFrameHeader(page, offset, length);
    const payload = offset;
    offset += page.write(event.json, offset, 'utf8');
    return {
      id: event.id,
      type: event.type,
      severity: event.severity,
      env: event.env,
      probe: event.probe,
      frame: page.subarray(start, offset),
      bytes: page.subarray(payload, offset),
    };
  });
}

/** One event's JSON as the WebSocket text message it is sent as: the live stream's counterpart of a page. */
export function textFrame(json: string): Buffer {
  const length = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(frameHeaderLength(length) + length);
  frame.write(json, writeFrameHeader(frame, 0, length), 'utf8');
  return frame;
}

function frameHeaderLength(payload: number): number {
  return payload < 126 ? 2 : payload < 65_536 ? 4 : 10;
}

/** A final, unmasked text frame's header for `payload` bytes at `offset`; returns where the payload goes. */
function writeFrameHeader(buffer: Buffer, offset: number, payload: number): number {
  buffer[offset] = 0x81;
  if (payload < 126) {
    buffer[offset + 1] = payload;
    return offset + 2;
  }
  if (payload < 65_536) {
    buffer[offset + 1] = 126;
    buffer.writeUInt16BE(payload, offset + 2);
    return offset + 4;
  }
  buffer[offset + 1] = 127;
  buffer.writeBigUInt64BE(BigInt(payload), offset + 2);
  return offset + 10;
}

/**
 * Why `filter` cannot name event types (a type, `rule.firing`, or a prefix, `probe`), for an
 * answer of 400; undefined when it can. GET /api/v1/events and the stream judge it alike.
 */
export function typeFilterProblem(filter: string): string | undefined {
  const prefix = typePrefix(filter);
  if (EVENT_TYPES.some((type) => isOfType(type, prefix))) return undefined;
  const prefixes = [...new Set(EVENT_TYPES.map((type) => type.split('.')[0]!))].join(', ');
  return `type ${JSON.stringify(filter)} is not an event type or prefix such as probe, rule.firing (prefixes: ${prefixes})`;
}

/** A type filter as the journal matches it: `promote.*`, as the contract names a family of types, is the prefix `promote`. */
function typePrefix(filter: string): string {
  return filter.replace(/\.\*$/, '');
}

/** The largest event id a client can name: ids are JavaScript numbers, exact up to 2^53 − 1. */
export const MAX_EVENT_ID = Number.MAX_SAFE_INTEGER;

/**
 * An event id as a client writes it (`since=42`, `--since 42`), or why it is none, for an answer
 * of 400 or a usage error: `name` is the parameter as the client wrote it. GET /api/v1/events,
 * the stream and `greenlight tail` judge it alike.
 */
export function parseEventId(text: string, name: string): number | string {
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  // Past MAX_EVENT_ID a number is rounded (9007199254740993 reads as …992): refused, never a nearby id.
  if (id <= MAX_EVENT_ID) return id;
  return `${name} must be a whole number from 0 to ${MAX_EVENT_ID} (an event id), not ${JSON.stringify(text)}`;
}

/** Whether an event's type is `filter` or starts with `filter.` (`probe` matches probe.down). */
export function isOfType(type: string, filter: string | undefined): boolean {
  return filter === undefined || type === filter || type.startsWith(`${filter}.`);
}

/** Which events a reader wants (GET /api/v1/events, the stream): those after `since` of which each given field holds. */
export interface EventFilter {
  since: number | undefined;
  type: string | undefined;
  env: string | undefined;
  severity: string | undefined;
  probe: string | undefined;
}

type Filterable = Pick<GreenlightEvent, 'type' | 'env' | 'severity' | 'probe'> | EncodedEvent;

/** Whether `event` is of the kind `filter` asks for (its `since` is the reader's to apply). */
export function matches(event: Filterable, filter: EventFilter): boolean {
  if (!isOfType(event.type, filter.type)) return false;
  if (filter.env !== undefined && event.env !== filter.env) return false;
  if (filter.severity !== undefined && event.severity !== filter.severity) return false;
  if (filter.probe !== undefined && event.probe !== filter.probe) return false;
  return true;
}

/** The query parameters parseEventFilter reads: GET /api/v1/events and the stream take these, and their own (`limit`, `token`). */
export const EVENT_FILTER_PARAMS = ['since', 'type', 'env', 'severity', 'probe'] as const;

/**
 * A request's filter (`since`, `type`, `env`, `severity`, `probe`), or why it is refused (400): a
 * filter that can match nothing is a mistake, not a quiet answer. GET /api/v1/events and the stream
 * take the same ones, judged alike: an `env=` the events endpoint ignored gave every environment's
 * events to a reader who believed it had asked for one.
 */
export function parseEventFilter(params: URLSearchParams, environments: readonly string[]): EventFilter | string {
  const sinceText = params.get('since');
  const since = sinceText === null ? undefined : parseEventId(sinceText, 'since');
  if (typeof since === 'string') return since;
  const text = params.get('type');
  const type = text === null ? undefined : typePrefix(text);
  const typeProblem = type === undefined ? undefined : typeFilterProblem(type);
  if (typeProblem) return typeProblem;
  const env = params.get('env') ?? undefined;
  if (env !== undefined && !environments.includes(env)) return `env must be one of ${environments.join(', ')}, not ${JSON.stringify(env)}`;
  const severity = params.get('severity') ?? undefined;
  if (severity !== undefined && !['info', 'warning', 'critical'].includes(severity))
    return `severity must be info, warning or critical, not ${JSON.stringify(severity)}`;
  const probe = params.get('probe') ?? undefined;
  // A name that may be a probe no longer in the config (its history stays) is taken; an empty one matches nothing.
  if (probe === '') return 'probe must name a probe, not ""';
  return { since, type, env, severity, probe };
}

/** What GET /api/v1/events asks the journal for. */
export interface HistoryQuery {
  limit: number;
  filter: EventFilter;
}

/**
 * GET /api/v1/events: at most `limit` events after `filter.since` (0 when not given) that match
 * `filter`, oldest first, read a page per slice of `turns`. `next` is where to go on from: the
 * last event returned, or, when the journal's end came first, the last event looked at (none that
 * matches lies between). Undefined once the turns are closed (the agent is stopping).
 */
export async function readHistory(pages: JournalPages, turns: TurnQueue, query: HistoryQuery): Promise<{ events: EncodedEvent[]; next: number } | undefined> {
  const events: EncodedEvent[] = [];
  let position = query.filter.since ?? 0;
  for (;;) {
    const done = await turns.run(() => {
      const page = pages.after(position);
      for (const event of page.events) {
        position = event.id;
        if (!matches(event, query.filter)) continue;
        events.push(event);
        if (events.length === query.limit) return true;
      }
      return page.end;
    });
    if (done === undefined) return undefined;
    if (done) return { events, next: position };
  }
}
