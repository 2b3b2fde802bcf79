/**
 * greenlight's events: the shape of CONTRACT.md ("Events"), as a discriminated union on `type`,
 * published on an in-process bus. Logs, metrics, and later the journal and the WebSocket stream
 * are subscribers; publishers never know who listens.
 */

export type Severity = 'info' | 'warning' | 'critical';

interface EventBase<T extends string, D> {
  id: number;
  time: string;
  type: T;
  severity: Severity;
  env: string | null;
  probe: string | null;
  rule: string | null;
  message: string;
  data: D;
}

export type AgentStartedEvent = EventBase<'agent.started', { version: string; pid: number; activeEnvironment: string; probes: number; series: number; dryRun: boolean }>;
export type AgentStoppingEvent = EventBase<'agent.stopping', { signal: string | null; uptimeSeconds: number }>;
export type ProbeDownEvent = EventBase<'probe.down', { reason: string; detail: string; status: number | null; durationMs: number; consecutiveFailures: number; active: boolean }>;
export type ProbeUpEvent = EventBase<'probe.up', { status: number | null; durationMs: number; downForMs: number | null; active: boolean }>;

export type GreenlightEvent = AgentStartedEvent | AgentStoppingEvent | ProbeDownEvent | ProbeUpEvent;
export type EventType = GreenlightEvent['type'];

/** What a publisher supplies; the bus adds id and time. */
export type EventInput<E extends GreenlightEvent = GreenlightEvent> = E extends GreenlightEvent
  ? Omit<E, 'id' | 'time' | 'env' | 'probe' | 'rule'> & Partial<Pick<E, 'env' | 'probe' | 'rule'>>
  : never;

export type EventListener = (event: GreenlightEvent) => void;

/**
 * Assigns ids and times and delivers each event synchronously to every subscriber, in
 * subscription order. A throwing subscriber is reported and never stops delivery to the rest.
 */
export class EventBus {
  readonly #listeners = new Set<EventListener>();
  readonly #now: () => number;
  readonly #onListenerError: (error: unknown, event: GreenlightEvent) => void;
  #lastId: number;

  constructor(options: { now: () => number; lastId?: number; onListenerError: (error: unknown, event: GreenlightEvent) => void }) {
    this.#now = options.now;
    this.#lastId = options.lastId ?? 0;
    this.#onListenerError = options.onListenerError;
  }

  get lastId(): number {
    return this.#lastId;
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish<E extends GreenlightEvent>(input: EventInput<E>): E {
    const event = {
      id: ++this.#lastId,
      time: new Date(this.#now()).toISOString(),
      type: input.type,
      severity: input.severity,
      env: input.env ?? null,
      probe: input.probe ?? null,
      rule: input.rule ?? null,
      message: input.message,
      data: input.data,
    } as E;
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error, event);
      }
    }
    return event;
  }
}
