import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { eventJson, type EventJson, type GreenlightEvent } from '../../../agent/events/events.js';
import { JournalPages, PAGE_EVENTS, parseEventFilter, readHistory, textFrame, type EventFilter } from '../../../agent/events/journal-pages.js';
import { TurnQueue } from '../../../agent/http/turn-queue.js';

function event(id: number, type = 'flag.changed', env = 'blue'): GreenlightEvent {
  return {
    id,
    time: new Date(1_700_000_000_000 + id).toISOString(),
    type,
    severity: 'info',
    env,
    probe: null,
    rule: null,
    message: `event ${id}`,
    data: { actor: 'test', reason: 'pages', changes: [] },
  } as GreenlightEvent;
}

/** A journal of `ids`, read as the agent reads it, counting reads. */
function journalOf(ids: number[], type?: (id: number) => string, env?: (id: number) => string) {
  const events = ids.map((id) => event(id, type?.(id), env?.(id)));
  const reads: { since: number; limit: number }[] = [];
  const read = (since: number, limit: number): EventJson[] => {
    reads.push({ since, limit });
    return events
      .filter((e) => e.id > since)
      .slice(0, limit)
      .map(eventJson);
  };
  return { events, reads, pages: new JournalPages({ read }) };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('JournalPages', () => {
  it('serves the events after a position from the page that holds it, each as its JSON', () => {
    const { events, pages } = journalOf(range(1, 200));
    const page = pages.after(70);
    expect(page.events.map((e) => e.id)).toEqual(range(71, 128));
    expect(page.end).toBe(false);
    expect(page.events[0]!.bytes.toString()).toBe(JSON.stringify(events[70]));
    expect(pages.after(128).events.map((e) => e.id)).toEqual(range(129, 192));
    const last = pages.after(192);
    expect(last.events.map((e) => e.id)).toEqual(range(193, 200));
    expect(last.end).toBe(true);
    expect(pages.after(200)).toEqual({ events: [], end: true });
  });

  it('reads each full page once for every reader, and the unfinished last page afresh', () => {
    const { reads, pages } = journalOf(range(1, 3 * PAGE_EVENTS + 10));
    for (let reader = 0; reader < 20; reader++) {
      for (let position = 0, end = false; !end;) {
        const page = pages.after(position);
        position = page.events.at(-1)?.id ?? position;
        end = page.end;
      }
    }
    // Three full pages once, and the short last page once per reader.
    expect(reads.length).toBe(3 + 20);
  });

  it('keeps nothing read while the journal is failing (a page may then lack what the disk could not give back)', () => {
    const events = range(1, 200).map((id) => event(id));
    let reads = 0;
    let failing = true;
    const pages = new JournalPages({
      read: (since, limit) => (
        reads++,
        events
          .filter((e) => e.id > since)
          .slice(0, limit)
          .map(eventJson)
      ),
      cacheable: () => !failing,
    });
    pages.after(0);
    pages.after(0);
    expect(reads).toBe(2);
    failing = false;
    pages.after(0);
    pages.after(0);
    expect(reads).toBe(3);
  });

  it('gets past gaps in the ids (a pruned journal) with one read a page', () => {
    const ids = [...range(5_000, 5_100), ...range(90_000, 90_050)];
    const { reads, pages } = journalOf(ids);
    const seen: number[] = [];
    for (let position = 0, end = false; !end;) {
      const page = pages.after(position);
      seen.push(...page.events.map((e) => e.id));
      position = page.events.at(-1)?.id ?? position;
      end = page.end;
    }
    expect(seen).toEqual(ids);
    expect(reads.length).toBeLessThanOrEqual(Math.ceil(ids.length / PAGE_EVENTS) + 2);
  });
});

/** A filter of the fields given, the rest unset. */
const only = (fields: Partial<EventFilter>): EventFilter => ({
  since: undefined,
  type: undefined,
  env: undefined,
  severity: undefined,
  probe: undefined,
  ...fields,
});

describe('readHistory (GET /api/v1/events)', () => {
  it('returns up to limit events of the type after since, a page per slice, and where to go on from', async () => {
    const { pages } = journalOf(range(1, 1_000), (id) => (id % 100 === 0 ? 'traffic.switched' : 'flag.changed'));
    const turns = new TurnQueue();
    const first = await readHistory(pages, turns, { limit: 3, filter: only({ since: 0, type: 'traffic' }) });
    expect(first!.events.map((e) => e.id)).toEqual([100, 200, 300]);
    expect(first!.next).toBe(300);
    const rest = await readHistory(pages, turns, { limit: 100, filter: only({ since: first!.next, type: 'traffic' }) });
    expect(rest!.events.map((e) => e.id)).toEqual([400, 500, 600, 700, 800, 900, 1_000]);
    // None of the type after 1000 so far: go on from the end.
    const none = await readHistory(pages, turns, { limit: 10, filter: only({ type: 'promote' }) });
    expect(none).toEqual({ events: [], next: 1_000 });
    expect(turns.granted).toBeGreaterThanOrEqual(Math.ceil(1_000 / PAGE_EVENTS));
    turns.close();
    expect(await readHistory(pages, turns, { limit: 10, filter: only({}) })).toBeUndefined();
  });

  it("returns only the environment's events when the filter names one, as the stream does", async () => {
    const { pages } = journalOf(range(1, 300), undefined, (id) => (id % 3 === 0 ? 'green' : 'blue'));
    const green = await readHistory(pages, new TurnQueue(), { limit: 1_000, filter: only({ env: 'green' }) });
    expect(green!.events.map((e) => e.id)).toEqual(range(1, 100).map((i) => 3 * i));
    const blueAfter = await readHistory(pages, new TurnQueue(), { limit: 2, filter: only({ since: 290, env: 'blue' }) });
    expect(blueAfter!.events.map((e) => e.id)).toEqual([292, 293]);
  });
});

describe('parseEventFilter (GET /api/v1/events and the stream)', () => {
  const parse = (query: string) => parseEventFilter(new URLSearchParams(query), ['blue', 'green']);

  it('takes since, type, env, severity and probe', () => {
    expect(parse('since=7&type=probe&env=green&severity=critical&probe=health')).toEqual({
      since: 7,
      type: 'probe',
      env: 'green',
      severity: 'critical',
      probe: 'health',
    });
    expect(parse('')).toEqual(only({}));
  });

  it('reads a type written as the contract names a family, promote.*, as its prefix (regression: a 400)', () => {
    expect(parse('type=promote.*')).toEqual(only({ type: 'promote' }));
    expect(parse('type=rule.*')).toEqual(only({ type: 'rule' }));
    expect(parse('type=nope.*')).toContain('type "nope" is not an event type');
  });

  it.each([
    ['since=-1', 'since must be a whole number'],
    ['type=nope', 'type "nope" is not an event type'],
    ['env=purple', 'env must be one of blue, green, not "purple"'],
    ['severity=high', 'severity must be info, warning or critical, not "high"'],
    ['probe=', 'probe must name a probe, not ""'],
  ])('refuses %s, saying why', (query, problem) => {
    expect(parse(query)).toContain(problem);
  });
});

/** ws's own frame parser, as a client runs it (its typings do not declare it). */
const { Receiver } = createRequire(import.meta.url)('ws') as { Receiver: new (options: { isServer: boolean }) => Writable };

describe('textFrame', () => {
  it.each([
    ['a short message (7-bit length)', '{"id":1}'],
    ['a typical event (16-bit length)', JSON.stringify({ message: 'x'.repeat(300) })],
    ['a large one in multi-byte UTF-8 (64-bit length)', JSON.stringify({ message: 'é'.repeat(40_000) })],
  ])('frames %s as the text message a WebSocket client reads', async (_, json) => {
    const receiver = new Receiver({ isServer: false });
    const message = new Promise<{ text: string; binary: boolean }>((resolve, reject) => {
      receiver.on('message', (data: Buffer, binary: boolean) => resolve({ text: data.toString('utf8'), binary }));
      receiver.on('error', reject);
    });
    receiver.write(textFrame(json));
    expect(await message).toEqual({ text: json, binary: false });
  });
});
