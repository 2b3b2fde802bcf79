/**
 * The shared store of a cluster: PostgreSQL through node-postgres (`pg`), one pool per agent.
 * It holds what every agent of the cluster must agree on: the leader lease, the members, the
 * live environment, the flags and their audit, the firing incidents, the action journal (with
 * the switches each leader started), the alert lifecycle's records and the one event history.
 *
 * Invariants:
 * - The database's clock judges the lease (`now()`), never an agent's. A term is the lease held
 *   without a gap by one agent; every new term increments `epoch`.
 * - Writes that act for the cluster (an action's start record, a switch, the shared state) run in
 *   a transaction that first takes the lease row FOR SHARE and checks that the caller holds it,
 *   with its epoch, unexpired: a takeover (which updates the row) waits for that transaction, and
 *   a deposed leader's write is refused.
 * - Event ids come from one sequence, taken under a transaction-level advisory lock, so they are
 *   committed in id order: a reader that has seen id N has seen every id below it.
 * - Migrations are versioned and run in one transaction under a transaction-level advisory lock:
 *   two agents starting at once on an empty database apply each one exactly once.
 * - No agent holds a lock the others need while it cannot run: every lock here is taken inside a
 *   transaction, and the server ends a session left idle inside one for `lockHoldMs` (a process
 *   stopped or cut off mid-transaction), which rolls it back. Otherwise a leader paused holding
 *   the lease row would keep every other agent from taking its lapsed lease.
 * - Nothing here logs a pg error object itself: pg-pool attaches the client to it, and the
 *   client's parameters hold the password.
 */
import { createRequire } from 'node:module';
import type pg from 'pg';
import type { GreenlightEvent } from '../events/events.js';
import type { FlagAuditEntry, FlagState } from '../flags/flag-store.js';
import { StoreError, type ActionRecord, type StoredActionContext } from '../events/store.js';

/** Advisory lock keys (any 64-bit numbers that other users of the database are unlikely to pick). */
const MIGRATION_LOCK = 0x67726e6c_01;
const EVENT_ID_LOCK = 0x67726e6c_02;

/** NOTIFY channels: new events (no payload), and a shared state key changed (payload: `{"key","node"}`). */
export const EVENTS_CHANNEL = 'greenlight_events';
export const STATE_CHANNEL = 'greenlight_state';

/** The schema, one entry per version; an applied version is never edited, only followed by a new one. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE greenlight_lease (
     id int PRIMARY KEY CHECK (id = 1),
     holder text,
     url text,
     epoch bigint NOT NULL DEFAULT 0,
     expires_at timestamptz NOT NULL DEFAULT '-infinity'
   );
   INSERT INTO greenlight_lease (id) VALUES (1);
   CREATE TABLE greenlight_members (
     name text PRIMARY KEY,
     url text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     last_seen timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE greenlight_state (
     key text PRIMARY KEY,
     value text NOT NULL,
     node text NOT NULL,
     epoch bigint NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE greenlight_events (
     id bigserial PRIMARY KEY,
     time text NOT NULL,
     type text NOT NULL,
     severity text NOT NULL,
     env text,
     probe text,
     rule text,
     message text NOT NULL,
     data text NOT NULL,
     node text NOT NULL
   );
   CREATE TABLE greenlight_flag_audit (
     id bigserial PRIMARY KEY,
     time text NOT NULL,
     actor text NOT NULL,
     reason text NOT NULL,
     env text NOT NULL,
     flag text NOT NULL,
     old boolean NOT NULL,
     new text NOT NULL,
     outcome text NOT NULL
   );
   CREATE TABLE greenlight_actions (
     incident text NOT NULL,
     action text NOT NULL,
     type text NOT NULL,
     state text NOT NULL,
     context text NOT NULL,
     started_at bigint NOT NULL,
     finished_at bigint,
     detail text,
     node text NOT NULL,
     epoch bigint NOT NULL,
     PRIMARY KEY (incident, action)
   );
   CREATE TABLE greenlight_switches (
     id bigserial PRIMARY KEY,
     incident text NOT NULL,
     from_env text NOT NULL,
     to_env text NOT NULL,
     node text NOT NULL,
     epoch bigint NOT NULL,
     at timestamptz NOT NULL DEFAULT now(),
     confirmed_at timestamptz
   );
   CREATE INDEX greenlight_switches_incident ON greenlight_switches (incident)`,
  // The alert lifecycle's records (agent/alerts/lifecycle-store.ts): silences, maintenance windows,
  // incidents with their escalation, the alerts of open incidents with what each receiver was told.
  `CREATE TABLE greenlight_alert_lifecycle (
     kind text NOT NULL,
     id text NOT NULL,
     record text NOT NULL,
     node text NOT NULL,
     epoch bigint NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (kind, id)
   )`,
];

/** The lease as the database sees it now. */
export interface LeaseView {
  holder: string | null;
  url: string | null;
  epoch: number;
  /** Held and unexpired by the database's clock. */
  valid: boolean;
}

export interface MemberRow {
  name: string;
  url: string;
  lastSeen: string;
}

/** What a new leader (and a starting agent) reads of the shared state. */
export interface SharedSnapshot {
  state: Map<string, unknown>;
  audit: FlagAuditEntry[];
  /** Every action record kept (started, or finished within the week): what was done to which incident. */
  actions: ActionRecord[];
  /** The alert lifecycle's records by kind (silences, maintenance_windows, alert_incidents, active_alerts). */
  lifecycle: Map<string, unknown[]>;
}

/** Why a fenced write was refused; undefined when it went through. */
export type Refusal = string | undefined;

/** The caller's term: its node name and the epoch it believes it leads. */
export interface Term {
  node: string;
  epoch: number;
}

/** How long the client waits for any answer (the server's statement_timeout is a second less). */
const QUERY_TIMEOUT_MS = 5_000;

/**
 * A JSON text of a shared row. One that is not JSON (edited by hand, damaged) is a StoreError that
 * names the row and the statement that removes it: a pg error it is not, and taken for one it read
 * as "the database is unavailable", with nothing to say which row to mend.
 */
function parseRow<T>(text: string, row: string, remove: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new StoreError(
      `the cluster database's ${row} is not JSON (${(error as Error).message}): restore it from a backup, or remove that one row to start it afresh: ${remove}`,
      { cause: error },
    );
  }
}

/** A text as an SQL string literal, for the statements parseRow suggests. */
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

const LEASE_HELD = 'SELECT 1 FROM greenlight_lease WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > now() FOR SHARE';

/**
 * node-postgres, loaded when an agent joins a cluster: an agent alone never needs it (it and
 * pino-pretty, loaded at start, kept 310 K characters of source for good; issue 18).
 */
const loadPg = (): typeof pg => createRequire(import.meta.url)('pg') as typeof pg;

export class PgStore {
  readonly #pool: pg.Pool;
  readonly url: string;

  private constructor(pool: pg.Pool, url: string) {
    this.#pool = pool;
    this.url = url;
  }

  /**
   * A pool on `url` (no connection yet). `onError` hears errors of idle connections (a database
   * restart drops them): without a listener they would end the process. `lockHoldMs`: how long
   * the server lets a session sit idle inside a transaction before it ends it, releasing its locks.
   */
  static create(url: string, options: { application: string; onError: (message: string) => void; lockHoldMs: number }): PgStore {
    const pool = new (loadPg().Pool)({
      connectionString: url,
      max: 6,
      application_name: options.application.slice(0, 63),
      connectionTimeoutMillis: 2_000,
      // A hung query must not hold a lease renewal or an action's fence for long.
      query_timeout: QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      // Each new connection's session settings, by SET rather than as startup parameters, which
      // PgBouncer refuses ("unsupported startup parameter"). The server gives up on a statement
      // a second before the client does, so one the client has given up on does not run on.
      verify: (client, done) => {
        client
          .query(
            `SET statement_timeout = ${QUERY_TIMEOUT_MS - 1_000}; SET idle_in_transaction_session_timeout = ${Math.max(1, Math.round(options.lockHoldMs))}`,
          )
          .then(
            () => done(),
            (error: Error) => done(error),
          );
      },
    });
    pool.on('error', (error) => options.onError(describePgError(error)));
    // A connection the server drops while checked out (a restart mid-transaction) emits 'error'
    // on its client, which pg-pool only listens to while the client is idle: without this the
    // process would end on an unhandled 'error'. The query under way rejects on its own.
    pool.on('connect', (client) => client.on('error', (error) => options.onError(describePgError(error))));
    return new PgStore(pool, url);
  }

  /** Apply the migrations not applied yet, in one transaction under an advisory lock; returns the schema version. */
  async migrate(): Promise<number> {
    return this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS greenlight_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const applied = new Set((await client.query<{ version: number }>('SELECT version FROM greenlight_schema')).rows.map((row) => row.version));
      for (const [index, sql] of MIGRATIONS.entries()) {
        const version = index + 1;
        if (applied.has(version)) continue;
        await client.query(sql);
        await client.query('INSERT INTO greenlight_schema (version) VALUES ($1)', [version]);
      }
      return Math.max(0, ...applied, MIGRATIONS.length);
    });
  }

  /** A dedicated connection (not from the pool) for LISTEN. */
  listener(): pg.Client {
    return new (loadPg().Client)({ connectionString: this.url, connectionTimeoutMillis: 2_000 });
  }

  /**
   * One election round for `node`: renew its own unexpired lease, or take one that expired (or
   * was released); a new term increments the epoch. Also marks `node` as seen. Returns the lease
   * as it is after the round. With `take` false it only marks `node` as seen and reads the lease.
   */
  async elect(node: string, url: string, leaseMs: number, take = true): Promise<LeaseView> {
    await this.#pool.query(
      `INSERT INTO greenlight_members (name, url) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET url = excluded.url, last_seen = now()`,
      [node, url],
    );
    if (!take) return this.lease();
    const taken = await this.#pool.query<{ epoch: string }>(
      `UPDATE greenlight_lease AS l
          SET holder = $1, url = $2, expires_at = now() + $3::float8 * interval '1 millisecond',
              epoch = CASE WHEN l.holder = $1 AND l.expires_at > now() THEN l.epoch ELSE l.epoch + 1 END
        WHERE id = 1 AND ((l.holder = $1 AND l.expires_at > now()) OR l.expires_at <= now() OR l.holder IS NULL)
        RETURNING epoch`,
      [node, url, leaseMs],
    );
    if (taken.rows.length === 1) return { holder: node, url, epoch: Number(taken.rows[0]!.epoch), valid: true };
    return this.lease();
  }

  /** The lease as it is now. */
  async lease(): Promise<LeaseView> {
    const { rows } = await this.#pool.query<{ holder: string | null; url: string | null; epoch: string; valid: boolean }>(
      'SELECT holder, url, epoch, expires_at > now() AS valid FROM greenlight_lease WHERE id = 1',
    );
    const row = rows[0]!;
    return { holder: row.holder, url: row.url, epoch: Number(row.epoch), valid: row.valid };
  }

  /** Give the lease up at once (a clean stop): the next agent to try takes it with a new epoch. */
  async release(term: Term): Promise<void> {
    await this.#pool.query("UPDATE greenlight_lease SET holder = NULL, expires_at = '-infinity' WHERE id = 1 AND holder = $1 AND epoch = $2", [
      term.node,
      term.epoch,
    ]);
  }

  /** Remove `node` from the members (a clean stop). */
  async leave(node: string): Promise<void> {
    await this.#pool.query('DELETE FROM greenlight_members WHERE name = $1', [node]);
  }

  /** Members seen within `withinMs` by the database's clock, by name. */
  async members(withinMs: number): Promise<MemberRow[]> {
    const { rows } = await this.#pool.query<{ name: string; url: string; last_seen: Date }>(
      "SELECT name, url, last_seen FROM greenlight_members WHERE last_seen > now() - $1::float8 * interval '1 millisecond' ORDER BY name",
      [withinMs],
    );
    return rows.map((row) => ({ name: row.name, url: row.url, lastSeen: row.last_seen.toISOString() }));
  }

  /**
   * Write an action's start record for the cluster, if `term` still leads and the action has not
   * been started for this incident by anyone (a retry of an owed action may follow a finished
   * record that did not succeed).
   */
  async claimAction(term: Term, record: ActionRecord, retry: boolean): Promise<Refusal> {
    return this.#fenced(term, async (client) => {
      const { rows } = await client.query<{ state: string; node: string }>(
        'SELECT state, node FROM greenlight_actions WHERE incident = $1 AND action = $2 FOR UPDATE',
        [record.incident, record.action],
      );
      const existing = rows[0];
      if (existing && (!retry || existing.state === 'started' || existing.state === 'succeeded'))
        return `${record.action} was already ${existing.state} for ${record.incident} by ${existing.node}`;
      await client.query(
        `INSERT INTO greenlight_actions (incident, action, type, state, context, started_at, node, epoch) VALUES ($1, $2, $3, 'started', $4, $5, $6, $7)
         ON CONFLICT (incident, action) DO UPDATE SET state = 'started', started_at = excluded.started_at, finished_at = NULL, detail = NULL, node = excluded.node, epoch = excluded.epoch`,
        [record.incident, record.action, record.type, JSON.stringify(record.context), record.startedAt, term.node, term.epoch],
      );
      return undefined;
    });
  }

  /**
   * An action's outcome. Not fenced when the action acted on the world (a switch, a command): what
   * happened is recorded whoever leads now. Fenced by `term` when its effect was the leader's own
   * state (Action.effect `state`: a notice handed to its alert lifecycle, its flags), which the
   * cluster holds only as far as the leader's fenced writes reached it: refused once the lease is
   * gone, the record stays "started" and the next leader settles the action again.
   */
  async finishAction(record: ActionRecord, term?: Term): Promise<Refusal> {
    const finish = (client: pg.Pool | pg.PoolClient) =>
      client.query('UPDATE greenlight_actions SET state = $3, finished_at = $4, detail = $5 WHERE incident = $1 AND action = $2', [
        record.incident,
        record.action,
        record.state,
        record.finishedAt ?? null,
        record.detail ?? null,
      ]);
    if (term === undefined) await finish(this.#pool);
    else {
      const refusal = await this.#fenced(term, async (client) => void (await finish(client)));
      if (refusal !== undefined) return refusal;
    }
    if (record.finishedAt !== undefined)
      await this.#pool.query("DELETE FROM greenlight_actions WHERE state != 'started' AND finished_at < $1", [record.finishedAt - 7 * 24 * 3_600_000]);
    return undefined;
  }

  /**
   * The last check before a switch reaches the traffic adapter: `term` leads, `from` is still live
   * in the shared state, and (unless an operator asks: `manual`) no switch of an earlier term is
   * unconfirmed (its leader died between the adapter and the record: where traffic goes is
   * unknown, and a rule does not switch on a guess; an operator's switch settles it). Records the
   * switch as sent.
   */
  async claimSwitch(term: Term, switchTo: { from: string; to: string; incident: string; manual: boolean }): Promise<Refusal> {
    return this.#fenced(term, async (client) => {
      const { rows } = await client.query<{ value: string }>("SELECT value FROM greenlight_state WHERE key = 'activeEnvironment' FOR UPDATE");
      const live = rows[0] === undefined ? undefined : (JSON.parse(rows[0].value) as string);
      if (live !== undefined && live !== switchTo.from) return `${switchTo.from} is no longer live in the cluster (${live} is): another leader switched first`;
      if (!switchTo.manual) {
        const unconfirmed = await client.query<{ node: string; epoch: string; from_env: string; to_env: string }>(
          'SELECT node, epoch, from_env, to_env FROM greenlight_switches WHERE confirmed_at IS NULL AND epoch < $1 ORDER BY id DESC LIMIT 1',
          [term.epoch],
        );
        const row = unconfirmed.rows[0];
        if (row)
          return `the switch ${row.from_env} → ${row.to_env} sent by ${row.node} (epoch ${row.epoch}) was never confirmed: the traffic layer may have moved; check it, then greenlight rollback`;
      } else {
        // An operator (or a promotion) decides with what they see: earlier unknowns are settled.
        await client.query('UPDATE greenlight_switches SET confirmed_at = now() WHERE confirmed_at IS NULL AND epoch < $1', [term.epoch]);
      }
      await client.query('INSERT INTO greenlight_switches (incident, from_env, to_env, node, epoch) VALUES ($1, $2, $3, $4, $5)', [
        switchTo.incident,
        switchTo.from,
        switchTo.to,
        term.node,
        term.epoch,
      ]);
      return undefined;
    });
  }

  /** Whether a switch was ever sent to the traffic adapter for `incident` (after the fence). */
  async switchSent(incident: string): Promise<boolean> {
    const { rows } = await this.#pool.query('SELECT 1 FROM greenlight_switches WHERE incident = $1 LIMIT 1', [incident]);
    return rows.length > 0;
  }

  /** The adapter refused or failed a switch claimed by `term`: it did not happen. */
  async abandonSwitch(term: Term, incident: string): Promise<void> {
    await this.#pool.query('DELETE FROM greenlight_switches WHERE incident = $1 AND epoch = $2 AND confirmed_at IS NULL', [incident, term.epoch]);
  }

  /**
   * Record the live environment after a switch that went through. Not fenced by the lease (the
   * switch was, and it happened), but never over a switch of a later term.
   */
  async completeSwitch(term: Term, live: string, rolledBackFrom?: Record<string, number>): Promise<void> {
    await this.#pool.query('UPDATE greenlight_switches SET confirmed_at = now() WHERE epoch = $1 AND to_env = $2 AND confirmed_at IS NULL', [term.epoch, live]);
    // A rollback's times go in the same statement: a leader killed right after must not lose them.
    const state = [{ key: 'activeEnvironment', value: JSON.stringify(live) }];
    if (rolledBackFrom) state.push({ key: 'rolledBackFrom', value: JSON.stringify(rolledBackFrom) });
    await this.#pool.query(
      `WITH w AS (
         INSERT INTO greenlight_state (key, value, node, epoch)
         SELECT v.key, v.value, $2, $3 FROM jsonb_to_recordset($1::jsonb) AS v(key text, value text)
          WHERE NOT EXISTS (SELECT 1 FROM greenlight_switches WHERE epoch > $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, node = excluded.node, epoch = excluded.epoch, updated_at = now()
         RETURNING key)
       SELECT pg_notify('${STATE_CHANNEL}', json_build_object('key', w.key, 'node', $2::text)::text) FROM w`,
      [JSON.stringify(state), term.node, term.epoch],
    );
  }

  /** Write a piece of shared state, if `term` still leads; tells the other agents. */
  async setState(term: Term, key: string, value: unknown): Promise<Refusal> {
    return this.#fenced(term, async (client) => {
      await client.query(
        `INSERT INTO greenlight_state (key, value, node, epoch) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, node = excluded.node, epoch = excluded.epoch, updated_at = now()`,
        [key, JSON.stringify(value), term.node, term.epoch],
      );
      await client.query('SELECT pg_notify($1, $2)', [STATE_CHANNEL, JSON.stringify({ key, node: term.node })]);
      return undefined;
    });
  }

  /** Save the flag values and append their audit entries, keeping the newest `keep`, if `term` still leads. */
  async saveFlags(term: Term, state: FlagState, audit: readonly FlagAuditEntry[], keep: number): Promise<Refusal> {
    return this.#fenced(term, async (client) => {
      await client.query(
        `INSERT INTO greenlight_state (key, value, node, epoch) VALUES ('flags', $1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, node = excluded.node, epoch = excluded.epoch, updated_at = now()`,
        [JSON.stringify(state), term.node, term.epoch],
      );
      for (const e of audit)
        await client.query('INSERT INTO greenlight_flag_audit (time, actor, reason, env, flag, old, new, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
          e.time,
          e.actor,
          e.reason,
          e.env,
          e.flag,
          e.old,
          JSON.stringify(e.new),
          e.outcome,
        ]);
      if (audit.length > 0) await client.query('DELETE FROM greenlight_flag_audit WHERE id <= (SELECT MAX(id) FROM greenlight_flag_audit) - $1', [keep]);
      await client.query('SELECT pg_notify($1, $2)', [STATE_CHANNEL, JSON.stringify({ key: 'flags', node: term.node })]);
      return undefined;
    });
  }

  /** Write (`record`) or remove (undefined) one record of the alert lifecycle, if `term` still leads. */
  async saveLifecycleRecord(term: Term, kind: string, id: string, record: unknown): Promise<Refusal> {
    return this.#fenced(term, async (client) => {
      if (record === undefined) await client.query('DELETE FROM greenlight_alert_lifecycle WHERE kind = $1 AND id = $2', [kind, id]);
      else
        await client.query(
          `INSERT INTO greenlight_alert_lifecycle (kind, id, record, node, epoch) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (kind, id) DO UPDATE SET record = excluded.record, node = excluded.node, epoch = excluded.epoch, updated_at = now()`,
          [kind, id, JSON.stringify(record), term.node, term.epoch],
        );
      return undefined;
    });
  }

  /** One piece of shared state. */
  async getState<T>(key: string): Promise<T | undefined> {
    const { rows } = await this.#pool.query<{ value: string }>('SELECT value FROM greenlight_state WHERE key = $1', [key]);
    return rows[0] === undefined ? undefined : stateValue<T>(key, rows[0].value);
  }

  /** The newest `limit` flag audit entries, oldest first. */
  async flagAudit(limit: number): Promise<FlagAuditEntry[]> {
    const { rows } = await this.#pool.query<{
      id: string;
      time: string;
      actor: string;
      reason: string;
      env: string;
      flag: string;
      old: boolean;
      new: string;
      outcome: FlagAuditEntry['outcome'];
    }>('SELECT * FROM (SELECT * FROM greenlight_flag_audit ORDER BY id DESC LIMIT $1) AS newest ORDER BY id', [limit]);
    return rows.map(({ id, ...row }) => ({
      ...row,
      new: parseRow<boolean | string>(row.new, `flag audit entry ${id}`, `DELETE FROM greenlight_flag_audit WHERE id = ${id}`),
    }));
  }

  /** Everything a new leader (or a starting agent) picks up: the shared state, the flag audit, the action journal, the alert lifecycle's records. */
  async snapshot(auditLimit: number): Promise<SharedSnapshot> {
    const state = new Map<string, unknown>();
    for (const row of (await this.#pool.query<{ key: string; value: string }>('SELECT key, value FROM greenlight_state')).rows)
      state.set(row.key, stateValue(row.key, row.value));
    const actions = (
      await this.#pool.query<{
        incident: string;
        action: string;
        type: string;
        state: ActionRecord['state'];
        context: string;
        started_at: string;
        finished_at: string | null;
        detail: string | null;
      }>('SELECT * FROM greenlight_actions ORDER BY started_at')
    ).rows.map((row) => ({
      incident: row.incident,
      action: row.action,
      type: row.type,
      state: row.state,
      context: parseRow<StoredActionContext>(
        row.context,
        `action record ${row.action} of ${row.incident}`,
        `DELETE FROM greenlight_actions WHERE incident = ${literal(row.incident)} AND action = ${literal(row.action)}`,
      ),
      startedAt: Number(row.started_at),
      ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
      ...(row.detail === null ? {} : { detail: row.detail }),
    }));
    const lifecycle = new Map<string, unknown[]>();
    const records = await this.#pool.query<{ kind: string; id: string; record: string }>(
      'SELECT kind, id, record FROM greenlight_alert_lifecycle ORDER BY kind, id',
    );
    for (const row of records.rows) {
      const kind = lifecycle.get(row.kind) ?? [];
      kind.push(
        parseRow(
          row.record,
          `${row.kind} record ${row.id}`,
          `DELETE FROM greenlight_alert_lifecycle WHERE kind = ${literal(row.kind)} AND id = ${literal(row.id)}`,
        ),
      );
      lifecycle.set(row.kind, kind);
    }
    return { state, audit: await this.flagAudit(auditLimit), actions, lifecycle };
  }

  /**
   * Append events to the one history: each gets the next id of the sequence, in the order given,
   * and the other agents hear of them. Ids are taken and committed under one lock, so they become
   * visible in order.
   */
  async appendEvents(node: string, events: readonly GreenlightEvent[]): Promise<void> {
    if (events.length === 0) return;
    const rows = events.map((e) => ({
      time: e.time,
      type: e.type,
      severity: e.severity,
      env: e.env,
      probe: e.probe,
      rule: e.rule,
      message: e.message,
      data: JSON.stringify(e.data),
    }));
    await this.#transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [EVENT_ID_LOCK]);
      await client.query(
        `INSERT INTO greenlight_events (time, type, severity, env, probe, rule, message, data, node)
         SELECT e->>'time', e->>'type', e->>'severity', e->>'env', e->>'probe', e->>'rule', e->>'message', e->>'data', $2
           FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`,
        [JSON.stringify(rows), node],
      );
      await client.query(`NOTIFY ${EVENTS_CHANNEL}`);
    });
  }

  /**
   * Events of the history after `since`, oldest first; each one's `data` says which agent published
   * it (`node`). A row whose data is not a JSON object (edited by hand, written by something else)
   * keeps its place in the history with `data.unreadable` saying why, and `unreadable` hears of it:
   * were it an error, the one row would stop every agent's history for good.
   */
  async eventsAfter(since: number, limit: number, unreadable: (id: number, why: string) => void = () => undefined): Promise<GreenlightEvent[]> {
    const { rows } = await this.#pool.query<{
      id: string;
      time: string;
      type: string;
      severity: string;
      env: string | null;
      probe: string | null;
      rule: string | null;
      message: string;
      data: string;
      node: string;
    }>('SELECT * FROM greenlight_events WHERE id > $1 ORDER BY id LIMIT $2', [since, limit]);
    return rows.map((row) => {
      let data: unknown;
      let why: string | undefined;
      try {
        data = JSON.parse(row.data);
        if (data === null || typeof data !== 'object' || Array.isArray(data)) why = 'its data is JSON but not an object';
      } catch (error) {
        why = `its data is not JSON (${(error as Error).message})`;
      }
      if (why !== undefined) unreadable(Number(row.id), why);
      return {
        id: Number(row.id),
        time: row.time,
        type: row.type,
        severity: row.severity,
        env: row.env,
        probe: row.probe,
        rule: row.rule,
        message: row.message,
        data: why === undefined ? { ...(data as Record<string, unknown>), node: row.node } : { node: row.node, unreadable: why },
      } as GreenlightEvent;
    });
  }

  /** The highest event id of the history (0 for none). */
  async lastEventId(): Promise<number> {
    const { rows } = await this.#pool.query<{ id: string | null }>('SELECT MAX(id) AS id FROM greenlight_events');
    return Number(rows[0]?.id ?? 0);
  }

  /** Delete the events older than `before` (ISO time), at most `limit`; returns how many. */
  async pruneEvents(before: string, limit: number): Promise<number> {
    const { rowCount } = await this.#pool.query(
      'DELETE FROM greenlight_events WHERE id IN (SELECT id FROM greenlight_events WHERE time < $1 ORDER BY id LIMIT $2)',
      [before, limit],
    );
    return rowCount ?? 0;
  }

  /** Run `write` in a transaction that first checks, holding the lease row, that `term` still leads; a refusal rolls it back. */
  async #fenced(term: Term, write: (client: pg.PoolClient) => Promise<Refusal>): Promise<Refusal> {
    return this.#transaction(
      async (client) => {
        const held = await client.query(LEASE_HELD, [term.node, term.epoch]);
        return held.rows.length === 0 ? `fenced: ${term.node} no longer holds the lease of epoch ${term.epoch}` : await write(client);
      },
      (refusal) => refusal === undefined,
    );
  }

  /**
   * Run `work` in a transaction on one pooled connection; commit unless `commit` says no. After a
   * failure the connection is closed, not pooled again: a query the client timed out may still be
   * running on it, or the server may have ended the session.
   */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>, commit: (result: T) => boolean = () => true): Promise<T> {
    const client = await this.#pool.connect();
    let failure: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query(commit(result) ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      client.release(failure);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** A value of greenlight_state. */
function stateValue<T>(key: string, value: string): T {
  return parseRow<T>(value, `shared ${key} (greenlight_state)`, `DELETE FROM greenlight_state WHERE key = ${literal(key)}`);
}

/** A pg error as a log line may show it: the message and SQLSTATE, never the client attached to it. */
export function describePgError(error: unknown): string {
  const e = error as { message?: string; code?: string };
  const message = e?.message ?? String(error);
  return e?.code ? `${message} (${e.code})` : message;
}

/** What to check, by the error code of a database that cannot be used (a system error or a SQLSTATE). */
const UNUSABLE_HINTS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing listens there: is PostgreSQL running, and are the host and port right?',
  ENOTFOUND: 'the host name does not resolve: check the host in the URL',
  EAI_AGAIN: 'the host name does not resolve (DNS did not answer): check the host in the URL and the DNS',
  ETIMEDOUT: 'no answer: check the network path (a firewall, a security group) to the host and port',
  EHOSTUNREACH: 'the host cannot be reached: check the network path to it',
  '28P01': 'the server refused the password: check the password in the URL (or PGPASSWORD, ~/.pgpass)',
  '28000': 'the server refuses this role from this host (pg_hba.conf), or the role does not exist',
  '3D000': 'the database does not exist: create it (CREATE DATABASE); greenlight creates its own tables in it',
  '42501': "the role may not create greenlight's tables: grant it CREATE on the database (or its schema)",
  '53300': 'the server takes no more connections: raise max_connections or use a pooler in session mode',
};

/**
 * Why the cluster's database cannot be used, as the agent that cannot start says it: which
 * database (its host, port, name and role; never the password), what failed, and what to check.
 */
export function clusterDatabaseProblem(url: string, error: unknown): string {
  let where = 'cluster.databaseUrl';
  try {
    const parsed = new URL(url);
    const host = parsed.searchParams.get('host') ?? (parsed.hostname || 'localhost');
    where = `${host}:${parsed.port || 5432}${parsed.pathname.length > 1 ? parsed.pathname : ''}${parsed.username ? ` as ${decodeURIComponent(parsed.username)}` : ''}`;
  } catch {
    // parseConfig took the URL as node-postgres reads it: the address is left out, not guessed.
  }
  const e = error as { message?: unknown; code?: unknown };
  const hint =
    (typeof e?.code === 'string' ? UNUSABLE_HINTS[e.code] : undefined) ??
    (/ssl/i.test(String(e?.message))
      ? 'the server and the URL disagree on TLS: check sslmode in the URL'
      : /timeout/i.test(String(e?.message))
        ? 'no answer in time: check the network path to the host and port, and that the server is not overloaded'
        : 'check that PostgreSQL runs there and that the URL names it');
  return `cannot use the cluster's PostgreSQL at ${where} (cluster.databaseUrl, GREENLIGHT_DATABASE_URL): ${describePgError(error)}. ${hint[0]!.toUpperCase()}${hint.slice(1)}`;
}
