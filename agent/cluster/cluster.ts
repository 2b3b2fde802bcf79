/**
 * Several agents on one PostgreSQL (agent/cluster/pg-store.ts): who leads, what is shared, and
 * the one event history.
 *
 * - Election: every `renewEvery` each agent runs one election round (renew its own lease or take
 *   an expired one, judged by the database's clock). A new term (epoch) makes this agent take
 *   over (`host.takeOver`: the shared state, the firing incidents and the actions in flight, as
 *   after a restart) before it acts.
 * - A leader that cannot renew stops acting at `sent + lease - margin` by its own monotonic
 *   clock, where `sent` is when it sent its last successful renewal: the database set the expiry
 *   at least `lease` after that, so it stops before any other agent can take over. Its term does
 *   not end there: a renewal that comes back late but went through (the same epoch) lets it act
 *   again as the same leader, without a takeover of its own work; only a new epoch, or another
 *   holder, ends the term. Every action's start record and every switch is also fenced in the
 *   database (the lease row, the epoch), and the epoch travels to the traffic layer as the
 *   fencing token.
 * - Writes: the shared state, the flags and the outcomes of actions go to PostgreSQL in order, in
 *   the background: the probe → decision path never waits on the database. While it is
 *   unavailable they are held (events up to MAX_HELD_EVENTS) and written when it answers again.
 * - The history: this agent's events get their ids from the database's sequence and come back,
 *   with every other agent's, through LISTEN/NOTIFY (and a poll, in case a notification is lost)
 *   into the local mirror the stream and GET /api/v1/events read.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type pg from 'pg';
import { z } from 'zod';
import type { EventBus, GreenlightEvent } from '../events/events.js';
import type { FlagAuditEntry, FlagState } from '../flags/flag-store.js';
import { StoreError, type ActionRecord } from '../events/store.js';
import { redactUrl } from '../http/state-view.js';
import {
  describePgError,
  EVENTS_CHANNEL,
  PgStore,
  STATE_CHANNEL,
  clusterDatabaseProblem,
  type LeaseView,
  type MemberRow,
  type Refusal,
  type Term,
} from './pg-store.js';

/** Events held in memory while the database cannot take them; the oldest go beyond this. */
const MAX_HELD_EVENTS = 100_000;
/** How often a failed write, or the LISTEN connection, is tried again. */
const RETRY_MS = 1_000;
/** How often the history is read even without a notification. */
const POLL_MS = 1_000;
/**
 * How many leases an agent whose takeover failed waits before it tries to lead again. What fails
 * one agent's takeover (a shared row it cannot read) fails every agent's: without a pause they
 * took the lease in turn every round, each term two events in the shared history and a new epoch.
 */
const TAKEOVER_HOLD_OFF_LEASES = 5;
/** The newest events a fresh mirror is filled with at start. */
const MIRROR_BACKFILL = 100_000;

export interface ClusterSettings {
  databaseUrl: string;
  nodeName: string | undefined;
  advertiseUrl: string | undefined;
  leaseMs: number;
  renewMs: number;
}

/** What the cluster asks of the agent. */
export interface ClusterHost {
  readonly bus: Pick<EventBus, 'publish'>;
  /** A new term of this agent: pick up the shared state; call `beginActing` once it may act. */
  takeOver(term: Term): Promise<void>;
  /** The database answers again while this agent leads: run what it could not start meanwhile. */
  resumeActions(): Promise<void>;
  /** Another agent changed a piece of shared state (`*`: anything, after a reconnect). */
  sharedChanged(key: string): void;
  /** Events of the history, in id order, for the mirror. */
  ingest(events: GreenlightEvent[]): void;
  /** Leadership or membership changed (metrics). */
  changed(): void;
}

/** The answer of GET /api/v1/cluster. */
export interface ClusterView {
  self: string;
  leader: string | null;
  epoch: number;
  members: { name: string; url: string; role: 'leader' | 'follower'; lastSeen: string }[];
}

/** A switch past its fence. */
export interface SwitchFence {
  token: number;
  /** Record the new live environment (and, for a rollback, when traffic left each environment). */
  confirm(rolledBackFrom: Record<string, number> | undefined): Promise<void>;
  abandon(): Promise<void>;
  /** Aborted when the term that claimed the switch ends: a deposed leader sends nothing more. */
  signal: AbortSignal;
}

interface Write {
  key: string | undefined;
  events: number;
  run: () => Promise<void>;
}

/** What PgStore writes on STATE_CHANNEL. */
const StateNotice = z.object({ key: z.string(), node: z.string().optional() });

/**
 * A STATE_CHANNEL payload, `{"key","node"}`; undefined for anything else: the channel is open to
 * every session of the database, not only to agents.
 */
function stateNotice(payload: string | undefined): z.output<typeof StateNotice> | undefined {
  let notice: unknown;
  try {
    notice = JSON.parse(payload ?? '');
  } catch {
    return undefined;
  }
  const parsed = StateNotice.safeParse(notice);
  return parsed.success ? parsed.data : undefined;
}

/** A foreign payload as a log line may quote it: the start of it, as JSON. */
function describePayload(payload: string | undefined): string {
  return payload === undefined || payload === '' ? 'no payload' : JSON.stringify(payload.length > 80 ? `${payload.slice(0, 80)}…` : payload);
}

/** How long before its lease lapses a leader stops acting: a slow renewal round must not outlive the lease. */
function actingMargin(settings: Pick<ClusterSettings, 'leaseMs' | 'renewMs'>): number {
  return Math.max(settings.renewMs, settings.leaseMs / 4);
}

export class Cluster {
  readonly store: PgStore;
  readonly #settings: ClusterSettings;
  readonly #logger: Logger;
  #host: ClusterHost | undefined;
  #node = '';
  #url = '';
  #term: Term | undefined;
  /** Acting as leader (after the takeover) until this monotonic time, unless renewed. */
  #acting = false;
  #deadline = 0;
  /**
   * The term's acting deadline passed before a renewal came back: it does not act (and said so)
   * until a round renews the same epoch in time. The term is kept meanwhile, so that a late
   * renewal is not taken for a new term (a takeover of its own running actions and incidents).
   */
  #lapsed = false;
  /** Fenced writes refused so far, and the last refusal's words (see written()). */
  #refusals = 0;
  #lastRefusal = '';
  #lease: LeaseView = { holder: null, url: null, epoch: 0, valid: false };
  #members: MemberRow[] = [];
  /** When (monotonic) the last election round that went through asked: its answer is as of then. */
  #seenAt = Number.NEGATIVE_INFINITY;
  /** After a failed takeover, this agent does not try to take the lease before this monotonic time. */
  #holdOffUntil = Number.NEGATIVE_INFINITY;
  #tick: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Aborted when this agent stops acting for its term (its deadline, a new term, a resignation); a fresh one when it acts again. */
  #termEnded = new AbortController();
  #closed = false;
  readonly #queue: Write[] = [];
  #heldEvents = 0;
  #droppedEvents = 0;
  #writing = false;
  #writeRetry: NodeJS.Timeout | undefined;
  #down: { since: number; error: string } | undefined;
  #listener: pg.Client | undefined;
  #listenRetry: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #mirrored = 0;
  #pulling: Promise<void> | undefined;
  #pullAgain = false;
  readonly #now: () => number;

  constructor(settings: ClusterSettings, options: { logger: Logger; now: () => number }) {
    this.#settings = settings;
    this.#logger = options.logger;
    this.#now = options.now;
    this.store = PgStore.create(settings.databaseUrl, {
      application: `greenlight ${settings.nodeName ?? hostname()}`,
      onError: (message) => this.#logger.warn(`a pooled PostgreSQL connection failed: ${message}`),
      // A leader acts only while at least the margin is left on its lease: a transaction it
      // leaves idle (paused, cut off) is ended, and its locks released, by the time the lease lapses.
      lockHoldMs: actingMargin(settings),
    });
  }

  get node(): string {
    return this.#node;
  }

  /** The term this agent leads, while it may act. */
  get term(): Term | undefined {
    return this.isLeader() ? this.#term : undefined;
  }

  /** Whether this agent may act now: it took over a term and its lease cannot have expired yet. */
  isLeader(): boolean {
    return this.#acting && !this.#lapsed && this.#term !== undefined && performance.now() < this.#deadline;
  }

  /** The leader's advertised URL, when another agent leads. */
  leaderUrl(): string | undefined {
    return this.#lease.valid && this.#lease.holder !== this.#node ? (this.#lease.url ?? undefined) : undefined;
  }

  get unavailable(): boolean {
    return this.#down !== undefined;
  }

  /**
   * Connect, bring the schema up to date, and read the history into the mirror (`host.ingest`).
   * Throws a StoreError naming the database and what to check when it cannot be used: the agent
   * does not start, and its last words must say the database (a bare `connect ECONNREFUSED
   * 10.0.0.5:5432` reads like any other address of the config).
   */
  async open(host: ClusterHost): Promise<void> {
    this.#host = host;
    try {
      await this.store.migrate();
      this.#mirrored = Math.max(0, (await this.store.lastEventId()) - MIRROR_BACKFILL);
    } catch (error) {
      throw new StoreError(clusterDatabaseProblem(this.#settings.databaseUrl, error), { cause: error });
    }
    await this.#pull();
  }

  /** Start taking part: listen for the others, and run election rounds as `node` reachable at `url`. */
  start(listenUrl: string, port: number): void {
    this.#node = this.#settings.nodeName ?? `${hostname()}:${port}`;
    this.#url = this.#settings.advertiseUrl ?? listenUrl;
    if (this.#settings.advertiseUrl === undefined && /^http:\/\/(0\.0\.0\.0|\[::\])[:/]/.test(listenUrl))
      this.#logger.warn(
        `this agent advertises ${listenUrl}, which the other agents cannot reach: set GREENLIGHT_ADVERTISE_URL (cluster.advertiseUrl) so that a follower can forward actions to it when it leads`,
      );
    void this.#listen();
    this.#poll = setInterval(() => void this.pull(), POLL_MS);
    this.#poll.unref();
    void this.#round();
  }

  /** A takeover has loaded the shared state: act from now on (while the lease holds). */
  beginActing(): void {
    if (this.#term) this.#acting = true;
  }

  /** What GET /api/v1/cluster answers; each member's URL as the API shows URLs (redactUrl: an advertised URL may carry a proxy's credentials). */
  view(): ClusterView {
    // What this agent last saw, unless it has not reached the database for a whole lease.
    const fresh = performance.now() - this.#seenAt < this.#settings.leaseMs;
    const leader = this.#lease.valid && fresh ? this.#lease.holder : null;
    const members = this.#members.map((m) => ({
      name: m.name,
      url: redactUrl(m.url),
      role: m.name === leader ? ('leader' as const) : ('follower' as const),
      lastSeen: m.lastSeen,
    }));
    if (!members.some((m) => m.name === this.#node))
      members.push({
        name: this.#node,
        url: redactUrl(this.#url),
        role: this.isLeader() ? 'leader' : 'follower',
        lastSeen: new Date(this.#now()).toISOString(),
      });
    return { self: this.#node, leader, epoch: this.#lease.epoch, members };
  }

  // ── fenced writes ─────────────────────────────────────────────────────────────

  /** An action's start record, written only if this agent still leads and nobody started it for this incident. */
  async claimAction(record: ActionRecord, retry: boolean): Promise<Refusal> {
    const term = this.term;
    if (!term) return 'this agent is not the leader';
    try {
      return await this.store.claimAction(term, record, retry);
    } catch (error) {
      this.#failed(error);
      return `the cluster store cannot record the action's start (${describePgError(error)}): no action without it`;
    }
  }

  /**
   * The last check before the traffic adapter. When the switch may go: the fencing token (the
   * epoch), `confirm` (record the new live environment; awaited before anyone hears of the
   * switch) and `abandon` (the adapter did not switch).
   */
  async claimSwitch(from: string, to: string, incident: string, manual: boolean): Promise<SwitchFence | { refused: string }> {
    const term = this.term;
    if (!term) return { refused: 'this agent is not the leader' };
    try {
      const refusal = await this.store.claimSwitch(term, { from, to, incident, manual });
      if (refusal !== undefined) return { refused: refusal };
      return {
        token: term.epoch,
        confirm: (rolledBackFrom) => this.store.completeSwitch(term, to, rolledBackFrom).catch((error: unknown) => this.#failed(error)),
        abandon: () => this.store.abandonSwitch(term, incident).catch((error: unknown) => this.#failed(error)),
        signal: this.#termEnded.signal,
      };
    } catch (error) {
      this.#failed(error);
      return { refused: `the cluster store cannot record the switch (${describePgError(error)}): no switch without it` };
    }
  }

  /** Whether a switch for `incident` ever got past its fence (undefined when the store cannot tell). */
  async switchSent(incident: string): Promise<boolean | undefined> {
    try {
      return await this.store.switchSent(incident);
    } catch {
      return undefined;
    }
  }

  // ── background writes ─────────────────────────────────────────────────────────

  /** This agent's events, to be numbered in the history (they reach the mirror from there). */
  appendEvents(events: readonly GreenlightEvent[]): void {
    const batch = [...events];
    this.#heldEvents += batch.length;
    this.#enqueue({ key: undefined, events: batch.length, run: () => this.store.appendEvents(this.#node, batch).then(() => void this.pull()) });
    this.#dropOldEvents();
  }

  /** A piece of state: shared ones (live environment, rollbacks' times, incidents and their numbers) are written while this agent leads; the rest stays local. */
  save(key: string, value: unknown): void {
    if (key === 'activeEnvironment') {
      // The switch was fenced; its result is recorded whoever leads by the time it is written.
      const term = this.#term;
      if (term) this.#enqueue({ key: `state:${key}`, events: 0, run: () => this.store.completeSwitch(term, value as string) });
      return;
    }
    if (key !== 'incidents' && key !== 'incidentNumbers' && key !== 'rolledBackFrom') return;
    const term = this.term;
    if (term) this.#enqueue({ key: `state:${key}`, events: 0, run: () => this.#fenced(`saving ${key}`, this.store.setState(term, key, value)) });
  }

  saveFlags(state: FlagState, audit: readonly FlagAuditEntry[], keep: number): void {
    const term = this.term;
    if (!term) {
      this.#logger.warn('a flag change on an agent that does not lead is not shared: flag changes go through the leader');
      return;
    }
    this.#enqueue({ key: undefined, events: 0, run: () => this.#fenced('saving the flags', this.store.saveFlags(term, state, audit, keep)) });
  }

  /**
   * One record of the alert lifecycle (undefined: removed), written while this agent leads: only
   * the leader notifies, so only its records (what each receiver was told) are the cluster's.
   */
  saveLifecycle(kind: string, id: string, record: unknown): void {
    const term = this.term;
    if (!term) return;
    this.#enqueue({
      key: `lifecycle:${kind}:${id}`,
      events: 0,
      run: () => this.#fenced(`saving ${kind} ${id}`, this.store.saveLifecycleRecord(term, kind, id, record)),
    });
  }

  /**
   * An action's outcome (its start was written by `claimAction`); one whose effect is this agent's
   * own state is written under its lease, or not at all (pg-store.ts `finishAction` says why).
   */
  recordAction(record: ActionRecord): void {
    if (record.state === 'started') return;
    // Only an outcome of the agent's own state is fenced: unfenced, the store never refuses one.
    const term = record.effect === 'state' ? this.#term : undefined;
    if (record.effect === 'state' && !term) {
      this.#logger.warn(`${record.action}'s outcome for ${record.incident} is not shared: this agent does not lead, and the leader settles it`);
      return;
    }
    this.#enqueue({
      key: `action:${record.incident}\u0000${record.action}`,
      events: 0,
      run: () => this.#fenced(`recording ${record.action}'s outcome for ${record.incident}`, this.store.finishAction(record, term)),
    });
  }

  async #fenced(doing: string, write: Promise<Refusal>): Promise<void> {
    const refusal = await write;
    if (refusal === undefined) return;
    this.#logger.warn(`${doing} for the cluster was refused: ${refusal}; reading the shared state again`);
    this.#refusals++;
    this.#lastRefusal = `${doing} was refused: ${refusal}`;
    // What this agent holds (a flag change it made while it led) is not the cluster's: left as it
    // is, a deposed leader would answer flags and OFREP from it until the next change anywhere.
    this.#host?.sharedChanged('*');
  }

  /**
   * What became of the writes queued so far (an operator's change the caller just made): waits
   * until each is written or refused, at most `timeoutMs`. Undefined when they are the cluster's;
   * otherwise why not (refused by the fence, or still held while the database does not answer).
   */
  async written(timeoutMs: number): Promise<string | undefined> {
    const refusals = this.#refusals;
    const reached = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      // Writes run in order: this one runs once every write queued before it has.
      this.#enqueue({ key: undefined, events: 0, run: () => (clearTimeout(timer), resolve(true), Promise.resolve()) });
    });
    if (this.#refusals > refusals) return this.#lastRefusal;
    if (!reached)
      return `the cluster's database has not taken it within ${timeoutMs}ms (it is held, and written when the database answers; should this agent stop first, it is lost)`;
    return undefined;
  }

  #enqueue(write: Write): void {
    if (write.key !== undefined) {
      const index = this.#queue.findIndex((queued, i) => queued.key === write.key && (i > 0 || !this.#writing));
      if (index !== -1) this.#queue.splice(index, 1);
    }
    this.#queue.push(write);
    if (!this.#writing && this.#writeRetry === undefined) void this.#drain();
  }

  #dropOldEvents(): void {
    while (this.#heldEvents > MAX_HELD_EVENTS) {
      const index = this.#queue.findIndex((write, i) => write.events > 0 && (i > 0 || !this.#writing));
      if (index === -1) return;
      const [dropped] = this.#queue.splice(index, 1);
      this.#heldEvents -= dropped!.events;
      this.#droppedEvents += dropped!.events;
    }
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        const write = this.#queue[0]!;
        try {
          await write.run();
        } catch (error) {
          this.#failed(error);
          if (this.#closed) return;
          this.#writeRetry = setTimeout(() => {
            this.#writeRetry = undefined;
            void this.#drain();
          }, RETRY_MS);
          this.#writeRetry.unref();
          return;
        }
        this.#queue.shift();
        this.#heldEvents -= write.events;
      }
      this.#recovered();
    } finally {
      this.#writing = false;
    }
  }

  /** Resolves once everything queued is written (or `timeoutMs` passed). */
  async flushed(timeoutMs: number): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while ((this.#queue.length > 0 || this.#writing) && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    return this.#queue.length === 0;
  }

  // ── the history ───────────────────────────────────────────────────────────────

  /** Read what the history has after the mirror's last event (one read at a time; a call during one asks for another). */
  pull(): Promise<void> {
    if (this.#pulling) {
      this.#pullAgain = true;
      return this.#pulling;
    }
    this.#pulling = this.#pull()
      .catch((error: unknown) => this.#failed(error))
      .finally(() => {
        this.#pulling = undefined;
        if (this.#pullAgain && !this.#closed) {
          this.#pullAgain = false;
          void this.pull();
        }
      });
    return this.#pulling;
  }

  async #pull(): Promise<void> {
    for (;;) {
      const events = await this.store.eventsAfter(this.#mirrored, 1_000, (id, why) =>
        this.#logger.warn(`event ${id} of the cluster's history is not one greenlight wrote: ${why}; it is kept in the history with data.unreadable`),
      );
      if (events.length === 0) return;
      this.#mirrored = events.at(-1)!.id;
      this.#host!.ingest(events);
      if (events.length < 1_000) return;
    }
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = this.store.listener();
    this.#listener = client;
    const again = () => {
      if (this.#listener !== client || this.#closed) return;
      this.#listener = undefined;
      client.end().catch(() => undefined);
      this.#listenRetry = setTimeout(() => void this.#listen(), RETRY_MS);
      this.#listenRetry.unref();
    };
    client.on('error', (error) => {
      this.#logger.warn(`the LISTEN connection to PostgreSQL failed: ${describePgError(error)}; reconnecting`);
      again();
    });
    client.on('end', again);
    client.on('notification', (message) => {
      if (message.channel === EVENTS_CHANNEL) void this.pull();
      else if (message.channel === STATE_CHANNEL) {
        const notice = stateNotice(message.payload);
        if (notice === undefined)
          // Anyone who can reach the database may NOTIFY on the channel; an exception here would end the process.
          this.#logger.warn(
            `a notification on ${STATE_CHANNEL} is not one of greenlight's (${describePayload(message.payload)}): reading the whole shared state again`,
          );
        if (notice?.node !== this.#node) this.#host!.sharedChanged(notice?.key ?? '*');
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}; LISTEN ${STATE_CHANNEL}`);
    } catch (error) {
      this.#failed(error);
      again();
      return;
    }
    // Whatever changed while this agent was not listening.
    void this.pull();
    this.#host!.sharedChanged('*');
  }

  // ── the lease ─────────────────────────────────────────────────────────────────

  async #round(): Promise<void> {
    if (this.#closed) return;
    const { leaseMs, renewMs } = this.#settings;
    const sent = performance.now();
    try {
      const lease = await this.store.elect(this.#node, this.#url, leaseMs, sent >= this.#holdOffUntil);
      this.#lease = lease;
      // As of when the question was sent, not when the answer was read: an answer that waited
      // out a pause of this process (SIGSTOP, a long GC) describes the lease before it.
      this.#seenAt = sent;
      this.#members = await this.store.members(Math.max(3 * leaseMs, 10_000));
      this.#recoveredIfWritten();
      if (lease.holder === this.#node && lease.valid) {
        if (this.#term?.epoch !== lease.epoch) await this.#begin({ node: this.#node, epoch: lease.epoch }, sent);
        else this.#renewed(sent);
      } else if (this.#term) this.#stepDown(`${lease.holder ?? 'another agent'} holds the lease now (epoch ${lease.epoch})`);
      this.#host!.changed();
    } catch (error) {
      this.#failed(error);
      if (this.#term && performance.now() >= this.#deadline) this.#lapse();
    }
    if (this.#closed) return;
    this.#tick = setTimeout(() => void this.#round(), renewMs);
    this.#tick.unref();
  }

  async #begin(term: Term, sent: number): Promise<void> {
    const previous = this.#term;
    if (previous) this.#stepDown(`its lease lapsed and a new term began (epoch ${term.epoch})`);
    this.#term = term;
    this.#termEnded = new AbortController();
    this.#acting = false;
    this.#extend(sent);
    this.#logger.warn({ epoch: term.epoch }, `${term.node} leads the cluster from now on (epoch ${term.epoch}): taking over`);
    this.#host!.bus.publish({
      type: 'cluster.leader_elected',
      severity: 'info',
      message: `${term.node} leads the cluster (epoch ${term.epoch})`,
      data: { node: term.node, epoch: term.epoch, url: this.#url },
    });
    try {
      await this.#host!.takeOver(term);
    } catch (error) {
      const holdOffMs = TAKEOVER_HOLD_OFF_LEASES * this.#settings.leaseMs;
      this.#holdOffUntil = performance.now() + holdOffMs;
      this.#logger.error(
        { err: error },
        `the takeover failed: ${(error as Error).message}; giving the lease up, and not trying to lead again for ${holdOffMs / 1_000}s`,
      );
      this.#stepDown('its takeover failed');
      await this.store.release(term).catch(() => undefined);
      return;
    }
    this.beginActing();
  }

  /**
   * The same term renewed by a round sent at `sent`. After a lapse this agent acts again, as the
   * same leader: the lease never passed to anyone (the epoch would have changed), so its running
   * actions and open incidents are its own and go on as they are. Only what it could not start
   * meanwhile is run now (`resumeActions`, as after the database was unavailable).
   */
  #renewed(sent: number): void {
    this.#extend(sent);
    if (!this.#lapsed) return;
    const term = this.#term!;
    const late = Math.round(performance.now() - sent);
    if (performance.now() >= this.#deadline) {
      // Still fenced: the deadline this renewal sets passed while its answer was on the way.
      this.#logger.warn(
        { epoch: term.epoch, renewalMs: late },
        `${term.node} renewed its lease (epoch ${term.epoch}) but the answer took ${late}ms, past the acting deadline it sets: it still does not act`,
      );
      return;
    }
    this.#lapsed = false;
    this.#termEnded = new AbortController();
    this.#logger.warn(
      { epoch: term.epoch, renewalMs: late },
      `${term.node} leads the cluster again (epoch ${term.epoch}, the same term): its lease renewal came back late, past its acting deadline, but went through; it acts again without a takeover`,
    );
    this.#host!.bus.publish({
      type: 'cluster.leader_elected',
      severity: 'info',
      message: `${term.node} leads the cluster again (epoch ${term.epoch}, the same term): its lease renewal came back late but went through`,
      data: { node: term.node, epoch: term.epoch, url: this.#url },
    });
    this.#host!.changed();
    if (this.isLeader())
      void this.#host!.resumeActions().catch((error: unknown) =>
        this.#logger.error(`could not run the actions held while this agent's lease renewal was late: ${describePgError(error)}`),
      );
  }

  /** The lease was renewed by a round sent at `sent` (monotonic): act until `sent + lease - margin`. */
  #extend(sent: number): void {
    this.#deadline = sent + this.#settings.leaseMs - actingMargin(this.#settings);
    this.#armDeadline();
  }

  /**
   * Step down at the deadline. A timer may fire a few milliseconds before `performance.now()`
   * reaches it (its start is the event loop's cached time): it is then set again, never dropped,
   * or a leader cut from the database would go on saying it leads.
   */
  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = setTimeout(
      () => {
        if (!this.#term) return;
        if (performance.now() >= this.#deadline) this.#lapse();
        else this.#armDeadline();
      },
      Math.max(0, this.#deadline - performance.now()) + 1,
    );
    this.#deadlineTimer.unref();
  }

  /**
   * The acting deadline passed with no renewal back (none sent in time, or its answer still on
   * the way): stop acting, cut off a switch in flight, and keep the term. The lease may still
   * hold in the database; which it was, the next round that gets an answer tells.
   */
  #lapse(): void {
    const term = this.#term;
    if (!term || this.#lapsed) return;
    this.#lapsed = true;
    clearTimeout(this.#deadlineTimer);
    const { leaseMs } = this.#settings;
    const why = `no lease renewal came back within ${leaseMs - actingMargin(this.#settings)}ms of sending the last one that did (its acting deadline, ${actingMargin(this.#settings)}ms before its ${leaseMs}ms lease could lapse)`;
    this.#termEnded.abort(new Error(`${term.node} stopped acting for the cluster (epoch ${term.epoch}): ${why}`));
    this.#logger.warn({ epoch: term.epoch }, `${term.node} stops acting: ${why}; it acts again if a renewal of this term comes back while the lease holds`);
    this.#host!.bus.publish({
      type: 'cluster.leader_lost',
      severity: 'warning',
      message: `${term.node} no longer acts for the cluster (epoch ${term.epoch}): ${why}`,
      data: { node: term.node, epoch: term.epoch, reason: why },
    });
    this.#host!.changed();
  }

  #stepDown(why: string): void {
    const term = this.#term;
    if (!term) return;
    const announced = this.#lapsed;
    this.#term = undefined;
    this.#acting = false;
    this.#lapsed = false;
    clearTimeout(this.#deadlineTimer);
    this.#termEnded.abort(new Error(`${term.node} no longer leads the cluster (epoch ${term.epoch}): ${why}`));
    this.#logger.warn({ epoch: term.epoch }, `${term.node} no longer leads the cluster: ${why}; it stops acting`);
    // It stopped acting at its deadline and said so then (cluster.leader_lost); this is the term's end.
    if (announced) {
      this.#host!.changed();
      return;
    }
    this.#host!.bus.publish({
      type: 'cluster.leader_lost',
      severity: 'warning',
      message: `${term.node} no longer leads the cluster (epoch ${term.epoch}): ${why}`,
      data: { node: term.node, epoch: term.epoch, reason: why },
    });
    this.#host!.changed();
  }

  // ── availability ──────────────────────────────────────────────────────────────

  #failed(error: unknown): void {
    if (this.#down || this.#closed) return;
    const message = describePgError(error);
    this.#down = { since: this.#now(), error: message };
    this.#logger.error(
      `the cluster's PostgreSQL is unavailable: ${message}. This agent goes on probing and serving; it does not act without a lease, and holds its events until the database answers`,
    );
    this.#host?.bus.publish({
      type: 'cluster.store_unavailable',
      severity: 'critical',
      message: `the cluster's PostgreSQL is unavailable (${message}): no agent switches without a lease; events are held and written when it answers again`,
      data: { node: this.#node, error: message },
    });
  }

  #recoveredIfWritten(): void {
    if (this.#down && this.#queue.length === 0) this.#recovered();
    else if (this.#down && !this.#writing && this.#writeRetry === undefined) void this.#drain();
  }

  #recovered(): void {
    const down = this.#down;
    if (!down) return;
    this.#down = undefined;
    const downForMs = this.#now() - down.since;
    const dropped = this.#droppedEvents;
    this.#droppedEvents = 0;
    this.#logger.warn({ downForMs, dropped }, `the cluster's PostgreSQL answers again after ${Math.round(downForMs / 1_000)}s`);
    if (this.isLeader())
      void this.#host
        ?.resumeActions()
        .catch((error: unknown) => this.#logger.error(`could not resume the actions held while the database was unavailable: ${describePgError(error)}`));
    this.#host?.bus.publish({
      type: 'cluster.store_recovered',
      severity: 'info',
      message: `the cluster's PostgreSQL answers again after ${Math.round(downForMs / 1_000)}s${dropped ? `; ${dropped} held events were lost past the memory limit` : ''}`,
      data: { node: this.#node, downForMs, droppedEvents: dropped },
    });
  }

  /** Stop acting and give the lease up at once, so another agent takes over without waiting for it to expire. */
  async resign(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#tick);
    const term = this.#term;
    this.#acting = false;
    this.#lapsed = false;
    this.#term = undefined;
    clearTimeout(this.#deadlineTimer);
    this.#termEnded.abort(new Error('this agent resigned the lease'));
    if (term) await this.store.release(term).catch((error: unknown) => this.#logger.warn(`could not release the lease: ${describePgError(error)}`));
    await this.store.leave(this.#node).catch(() => undefined);
  }

  /** Write what is queued (for a moment at most), then close the connections. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#tick);
    clearInterval(this.#poll);
    clearTimeout(this.#listenRetry);
    if (!this.#down) await this.flushed(2_000);
    clearTimeout(this.#writeRetry);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.#pulling?.catch(() => undefined);
    await this.store.close().catch(() => undefined);
  }
}
