/**
 * AlphaStack's feature flags, one boolean set per environment, with the rules that keep them
 * safe: locked flags never move, a request changes all it names or nothing, and every change
 * and every refused attempt on a locked flag leaves an audit entry and an event. No timers and
 * no IO: the agent persists through the `persist` hook (the values, and only the audit entries
 * that are new: the trail is appended to, never rewritten) and `restore()`, and mirrors values
 * into metrics through `onChange`.
 */
import { ConfigError, GreenlightError } from '../../config/errors.js';
import { formatKeyPath } from '../../config/load-config.js';
import type { EventInput, FlagChange } from '../events/events.js';

export type { FlagChange };

/** What the dashboard understands. Locked flags keep their default forever. */
export interface FlagDefinition {
  name: string;
  default: boolean;
  locked: boolean;
  description: string;
}

/** The seed's flags, in the order people read them. */
export const FLAG_DEFINITIONS: readonly FlagDefinition[] = [
  { name: 'ALPHASTACK_PROTECTION', default: true, locked: true, description: 'Keeps the AlphaStack discovery engine running.' },
  { name: 'READ_ONLY_MODE', default: false, locked: false, description: 'The dashboard refuses writes (orders, portfolio edits).' },
  { name: 'CIRCUIT_BREAKER', default: false, locked: false, description: 'Stop calling failing upstream services.' },
  { name: 'ALPHASTACK_V3_ENABLED', default: true, locked: false, description: 'Serve the V3 dashboard.' },
  { name: 'V3_PERFORMANCE_MODE', default: true, locked: false, description: 'V3 performance optimisations.' },
  { name: 'V3_REAL_TIME_UPDATES', default: true, locked: false, description: 'V3 live price and discovery updates.' },
  { name: 'V3_API_CACHING', default: true, locked: false, description: 'V3 API response caching.' },
  { name: 'FORCE_V2_FALLBACK', default: false, locked: false, description: 'Serve the V2 dashboard instead of V3.' },
  { name: 'ALPHASTACK_V3_DISABLED', default: false, locked: false, description: 'Kill switch for V3, for clients that read the negative flag.' },
];

const DEFINITIONS = new Map(FLAG_DEFINITIONS.map((definition) => [definition.name, definition]));

/** Names of the flags no request may change. */
export const LOCKED_FLAGS: readonly string[] = FLAG_DEFINITIONS.filter((definition) => definition.locked).map((definition) => definition.name);

/** Problems a refusal lists; the rest are counted. */
const PROBLEMS_LISTED = 5;

export type PresetName = 'emergency-rollback';
export const PRESET_NAMES: readonly PresetName[] = ['emergency-rollback'];

export type FlagValues = Readonly<Record<string, boolean>>;

/** One line of the audit trail: a flag that changed, or an attempt on a locked flag that was refused. */
export interface FlagAuditEntry {
  time: string;
  actor: string;
  reason: string;
  env: string;
  flag: string;
  old: boolean;
  /** The value asked for; a non-boolean attempt is kept as short JSON text (at most 60 characters). */
  new: boolean | string;
  outcome: 'changed' | 'rejected';
}

/** Who asks, and why: both end up in the audit trail and the event. */
export interface FlagRequest {
  actor: string;
  reason: string;
  /** Judge the request as usual (a locked flag is still refused and audited) but change nothing: the agent runs with --dry-run. */
  dryRun?: boolean;
}

/** The values and versions: what is saved whole on every change (small, whatever the trail's length). */
export interface FlagState {
  values: Record<string, Record<string, boolean>>;
  versions: Record<string, number>;
}

/** Everything the store holds, as plain JSON: the state and the audit trail. */
export interface FlagSnapshot extends FlagState {
  audit: FlagAuditEntry[];
}

/**
 * A refused flag request. `status` is the HTTP answer: 400 for an unknown flag, environment or
 * preset, a non-boolean value or a missing reason; 409 for a locked flag.
 */
export class FlagError extends GreenlightError {
  readonly status: 400 | 409;
  readonly details: Record<string, unknown>;

  constructor(status: 400 | 409, message: string, details: Record<string, unknown> = {}) {
    super(status === 409 ? 'GL_ERR_FLAG_LOCKED' : 'GL_ERR_FLAG_INVALID', message);
    this.status = status;
    this.details = details;
  }
}

export interface FlagStoreOptions {
  environments: readonly string[];
  /** Per environment, values that replace the defaults (config `flags.initial`). */
  initial?: Readonly<Record<string, Readonly<Record<string, boolean>>>>;
  /** Whether the emergency-rollback preset also turns READ_ONLY_MODE on (config `flags.readOnlyOnEmergency`). */
  readOnlyOnEmergency: boolean;
  now: () => number;
  publish: (input: EventInput) => unknown;
  /** Called for every value at construction and after every change, so a gauge can follow the store. */
  onChange?: (env: string, flag: string, value: boolean) => void;
  /** Audit entries kept, oldest dropped first (default 1,000). */
  auditLimit?: number;
  /**
   * Called once per request that changed flags or was refused on a locked one, with the state
   * after it and the audit entries it added, before the event is published: the agent saves the
   * state and appends the entries to the database.
   */
  persist?: (state: FlagState, audit: readonly FlagAuditEntry[]) => void;
}

const DEFAULT_AUDIT_LIMIT = 1_000;

export class FlagStore {
  readonly environments: readonly string[];
  readonly #values = new Map<string, Map<string, boolean>>();
  readonly #versions = new Map<string, number>();
  /** The values the config starts with (the defaults and `flags.initial`), per environment. */
  readonly #initial = new Map<string, FlagValues>();
  readonly #audit: FlagAuditEntry[] = [];
  readonly #auditLimit: number;
  readonly #readOnlyOnEmergency: boolean;
  readonly #now: () => number;
  readonly #publish: (input: EventInput) => unknown;
  readonly #onChange: (env: string, flag: string, value: boolean) => void;
  readonly #persist: (state: FlagState, audit: readonly FlagAuditEntry[]) => void;
  /** Entries recorded by the request in progress, handed to `persist` when it ends. */
  #unsaved: FlagAuditEntry[] = [];

  /** Throws ConfigError when `initial` names an unknown environment or flag, or unlocks a locked flag. */
  constructor(options: FlagStoreOptions) {
    this.environments = [...options.environments];
    this.#auditLimit = options.auditLimit ?? DEFAULT_AUDIT_LIMIT;
    this.#readOnlyOnEmergency = options.readOnlyOnEmergency;
    this.#now = options.now;
    this.#publish = options.publish;
    this.#onChange = options.onChange ?? (() => undefined);
    this.#persist = options.persist ?? (() => undefined);

    const initial = options.initial ?? {};
    const issues = checkInitialFlags(initial, this.environments);
    if (issues.length > 0) throw new ConfigError(issues.map((issue) => ({ path: formatKeyPath(issue.path), message: issue.message })));
    for (const env of this.environments) {
      const values = new Map(FLAG_DEFINITIONS.map((definition) => [definition.name, definition.default]));
      for (const [flag, value] of Object.entries(initial[env] ?? {})) values.set(flag, value);
      this.#values.set(env, values);
      this.#initial.set(env, Object.fromEntries(values));
      this.#versions.set(env, 0);
    }
    for (const [env, values] of this.#values) for (const [flag, value] of values) this.#onChange(env, flag, value);
  }

  /** The flags of one environment. */
  get(env: string): FlagValues {
    return Object.fromEntries(this.#env(env));
  }

  /** The flags of every environment. */
  all(): Record<string, FlagValues> {
    return Object.fromEntries(this.environments.map((env) => [env, this.get(env)]));
  }

  /** Whether `flag` is one the store knows. */
  has(flag: string): boolean {
    return DEFINITIONS.has(flag);
  }

  /**
   * Set flags in each of `envs`, all or nothing. Returns what changed (empty when every value
   * was already in place). Throws FlagError: 409 when the request would move a locked flag (after
   * publishing `flag.rejected` and auditing it), else 400 naming every unknown flag and every
   * non-boolean value. Asking a locked flag for the value it already has is a no-op, so a client
   * that writes back the whole set it read is not refused.
   */
  set(envNames: readonly string[], changes: Readonly<Record<string, unknown>>, request: FlagRequest): FlagChange[] {
    // Locked flags first: an attempt to unlock one is audited and paged on however malformed
    // the rest of the request is (no reason, an unknown environment, a prototype key around it).
    this.refuseLocked(envNames, lockedAttempts(changes), request);
    const envs = this.#checkRequest(envNames, request);
    const entries = Object.entries(changes);
    if (entries.length === 0) throw new FlagError(400, 'the request names no flags to set');

    const problems: string[] = [];
    for (const [flag, value] of entries) {
      if (!DEFINITIONS.has(flag))
        problems.push(`${shortText(flag)} is not a flag (known: ${FLAG_DEFINITIONS.map((definition) => definition.name).join(', ')})`);
      else if (typeof value !== 'boolean') problems.push(`${flag} must be true or false, not ${preview(value)}`);
    }
    if (problems.length > 0) {
      // A body may name thousands of keys: the answer lists the first few.
      const shown = problems.slice(0, PROBLEMS_LISTED);
      const more = problems.length > shown.length ? `; and ${problems.length - shown.length} more` : '';
      throw new FlagError(400, `${shown.join('; ')}${more}; nothing was changed`, { problems: shown });
    }

    return this.#apply(envs, entries as [string, boolean][], request, 'info', undefined);
  }

  /**
   * Refuse a request that attempts locked flags (`attempts`, from lockedAttempts): each flag gets
   * an audit entry per environment and a `flag.rejected` event, then FlagError 409. The request
   * may be malformed in every other way: unknown environments stand for all of them, an empty
   * reason is recorded as such. Does nothing when `attempts` is empty.
   */
  refuseLocked(envNames: readonly unknown[], attempts: readonly (readonly [string, unknown])[], request: FlagRequest): void {
    if (attempts.length === 0) return;
    const known = [...new Set(envNames.filter((env): env is string => typeof env === 'string' && this.#values.has(env)))];
    const envs = known.length > 0 ? known : [...this.environments];
    const reason = request.reason.trim() === '' ? '(no reason given)' : request.reason;
    const time = new Date(this.#now()).toISOString();
    for (const [flag, value] of attempts) {
      const asked = typeof value === 'boolean' ? value : preview(value);
      for (const env of envs) this.#record({ time, actor: request.actor, reason, env, flag, old: this.#env(env).get(flag)!, new: asked, outcome: 'rejected' });
    }
    this.#save();
    for (const [flag, value] of attempts) this.#reject(envs, flag, value, { actor: request.actor, reason });
    const flags = attempts.map(([flag]) => flag);
    throw new FlagError(409, `${flags.map(lockedWhy).join('; ')}; nothing was changed`, { locked: flags });
  }

  /**
   * Apply a named set of values. `emergency-rollback`: FORCE_V2_FALLBACK and ALPHASTACK_V3_DISABLED
   * on, the V3 features off, READ_ONLY_MODE on with `readOnlyOnEmergency` (never off); CIRCUIT_BREAKER
   * and locked flags untouched. Returns what changed; a second application changes nothing and publishes nothing.
   */
  applyPreset(name: PresetName, envNames: readonly string[], request: FlagRequest): FlagChange[] {
    if (!PRESET_NAMES.includes(name)) throw new FlagError(400, `${preview(name)} is not a preset: use ${PRESET_NAMES.join(', ')}`);
    const envs = this.#checkRequest(envNames, request);
    return this.#apply(envs, Object.entries(this.#preset(name)), request, 'warning', name);
  }

  /** The values a preset sets, for display and dry runs. */
  presetValues(name: PresetName): FlagValues {
    return this.#preset(name);
  }

  /** The latest `limit` audit entries (all kept when omitted), oldest first. */
  audit(limit?: number): FlagAuditEntry[] {
    const start = limit === undefined ? 0 : Math.max(0, this.#audit.length - limit);
    return this.#audit.slice(start).map((entry) => ({ ...entry }));
  }

  /** Bumped on every request that changes an environment: per environment, or the sum of all. */
  version(env?: string): number {
    if (env !== undefined) {
      this.#env(env);
      return this.#versions.get(env)!;
    }
    let sum = 0;
    for (const version of this.#versions.values()) sum += version;
    return sum;
  }

  /** How many audit entries are kept: the bound of the saved trail too. */
  get auditLimit(): number {
    return this.#auditLimit;
  }

  /** The values and versions, as plain JSON: what `persist` saves on every change. */
  state(): FlagState {
    return {
      values: Object.fromEntries(this.environments.map((env) => [env, { ...this.get(env) }])),
      versions: Object.fromEntries(this.#versions),
    };
  }

  /** The values the config starts with (the defaults and `flags.initial`): what a cluster whose database holds no flags has. */
  initialValues(): Record<string, FlagValues> {
    return Object.fromEntries(this.#initial);
  }

  /** Everything the store holds, as plain JSON. */
  snapshot(): FlagSnapshot {
    return { ...this.state(), audit: this.audit() };
  }

  /**
   * Take back what `snapshot()` wrote, without events: the state was already announced when it
   * changed. Environments and flags the store no longer knows are dropped, and locked flags keep
   * their locked value whatever the snapshot says. Calls onChange for every value that moves. An
   * environment whose values move without a version in the snapshot gets the next version, so that
   * a client holding the last one (OFREP's ETag) does not keep the values it had.
   */
  restore(snapshot: FlagSnapshot): void {
    for (const env of this.environments) {
      const saved = snapshot.values[env];
      if (saved === undefined) continue;
      const values = this.#values.get(env)!;
      let moved = false;
      for (const [flag, value] of Object.entries(saved)) {
        const definition = DEFINITIONS.get(flag);
        if (definition === undefined || definition.locked || typeof value !== 'boolean' || values.get(flag) === value) continue;
        values.set(flag, value);
        moved = true;
        this.#onChange(env, flag, value);
      }
      const version = snapshot.versions[env];
      if (typeof version === 'number' && Number.isSafeInteger(version) && version >= 0) this.#versions.set(env, version);
      else if (moved) this.#versions.set(env, this.#versions.get(env)! + 1);
    }
    this.#audit.splice(0, this.#audit.length, ...snapshot.audit.slice(-this.#auditLimit).map((entry) => ({ ...entry })));
  }

  #preset(name: PresetName): Record<string, boolean> {
    switch (name) {
      case 'emergency-rollback':
        return {
          FORCE_V2_FALLBACK: true,
          ALPHASTACK_V3_DISABLED: true,
          ALPHASTACK_V3_ENABLED: false,
          V3_PERFORMANCE_MODE: false,
          V3_REAL_TIME_UPDATES: false,
          V3_API_CACHING: false,
          // Only ever towards safety: without readOnlyOnEmergency an operator's READ_ONLY_MODE stays as it is.
          ...(this.#readOnlyOnEmergency ? { READ_ONLY_MODE: true } : {}),
        };
    }
  }

  #env(env: string): Map<string, boolean> {
    const values = this.#values.get(env);
    if (values === undefined) throw new FlagError(400, `${preview(env)} is not an environment: use ${this.environments.join(', ')}`);
    return values;
  }

  /** The distinct environments of a valid request. */
  #checkRequest(envs: readonly string[], request: FlagRequest): string[] {
    if (envs.length === 0) throw new FlagError(400, `name at least one environment: ${this.environments.join(', ')}`);
    for (const env of envs) this.#env(env);
    if (request.reason.trim() === '') throw new FlagError(400, 'give a reason: it goes into the audit trail');
    return [...new Set(envs)];
  }

  #apply(
    envs: readonly string[],
    entries: readonly [string, boolean][],
    request: FlagRequest,
    severity: 'info' | 'warning',
    preset: PresetName | undefined,
  ): FlagChange[] {
    const changes: FlagChange[] = [];
    for (const env of envs) {
      const values = this.#values.get(env)!;
      for (const [flag, value] of entries) {
        const old = values.get(flag)!;
        if (old !== value) changes.push({ flag, env, old, new: value });
      }
    }
    if (changes.length === 0 || request.dryRun) return changes;

    const time = new Date(this.#now()).toISOString();
    for (const change of changes) {
      this.#values.get(change.env)!.set(change.flag, change.new);
      this.#record({
        time,
        actor: request.actor,
        reason: request.reason,
        env: change.env,
        flag: change.flag,
        old: change.old,
        new: change.new,
        outcome: 'changed',
      });
    }
    const changedEnvs = [...new Set(changes.map((change) => change.env))];
    for (const env of changedEnvs) this.#versions.set(env, this.#versions.get(env)! + 1);
    this.#save();
    for (const change of changes) this.#onChange(change.env, change.flag, change.new);

    const summary = changes.map((change) => `${change.flag} ${change.new ? 'on' : 'off'}`);
    const where = changedEnvs.join(' and ');
    this.#publish({
      type: 'flag.changed',
      severity,
      env: changedEnvs.length === 1 ? changedEnvs[0] : null,
      message: `${preset ? `${preset} preset applied to ${where}` : `flags changed on ${where}`} by ${request.actor}: ${[...new Set(summary)].join(', ')} (${request.reason})`,
      data: { actor: request.actor, reason: request.reason, changes },
    });
    return changes;
  }

  /** The `flag.rejected` event of one locked flag (its audit entries are already recorded). */
  #reject(envs: readonly string[], flag: string, attempted: unknown, request: FlagRequest): void {
    const asked = typeof attempted === 'boolean' ? attempted : preview(attempted);
    const why = lockedWhy(flag);
    this.#publish({
      type: 'flag.rejected',
      severity: 'warning',
      env: envs.length === 1 ? envs[0] : null,
      message: `refused ${request.actor}'s attempt to set locked ${flag} to ${preview(attempted)} on ${envs.join(' and ')} (${request.reason})`,
      data: { actor: request.actor, reason: request.reason, flag, env: envs.length === 1 ? envs[0]! : null, attempted: asked, why },
    });
  }

  #record(entry: FlagAuditEntry): void {
    this.#audit.push(entry);
    this.#unsaved.push(entry);
    if (this.#audit.length > this.#auditLimit) this.#audit.splice(0, this.#audit.length - this.#auditLimit);
  }

  /** Hand the state and the request's new audit entries to `persist`. */
  #save(): void {
    const entries = this.#unsaved;
    this.#unsaved = [];
    this.#persist(this.state(), entries);
  }
}

/**
 * Problems with config `flags.initial` (unknown environments and flags, non-booleans, a locked
 * flag set off its value), each at its key path: the shape of parseConfig's `validate` hook, so
 * `greenlight validate` reports them with their lines.
 */
export function checkInitialFlags(
  initial: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  environments: readonly string[],
): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  for (const [env, values] of Object.entries(initial)) {
    if (!environments.includes(env)) {
      issues.push({ path: ['flags', 'initial', env], message: `${preview(env)} is not one of the environments (${environments.join(', ')})` });
      continue;
    }
    for (const [flag, value] of Object.entries(values)) {
      const path = ['flags', 'initial', env, flag];
      const definition = DEFINITIONS.get(flag);
      if (definition === undefined) issues.push({ path, message: `unknown flag; use one of ${FLAG_DEFINITIONS.map((d) => d.name).join(', ')}` });
      else if (typeof value !== 'boolean') issues.push({ path, message: `must be true or false, not ${preview(value)}` });
      else if (definition.locked && value !== definition.default) issues.push({ path, message: `is locked to ${definition.default}; remove it` });
    }
  }
  return issues;
}

function lockedWhy(flag: string): string {
  const description = DEFINITIONS.get(flag)!.description.replace(/\.$/, '');
  return `${flag} is locked and can never be changed (${description.charAt(0).toLowerCase()}${description.slice(1)})`;
}

/**
 * The locked flags a request body names, with the value asked for each: a locked flag's name used
 * as a key anywhere in it (in `set`, under `__proto__` or `constructor.prototype`, or where it does
 * not belong), with any value but the flag's own. A request that says ALPHASTACK_PROTECTION: false
 * in a shape the API does not take is still an attempt on it, and is refused as one. Each flag
 * once, with the first value found. The walk is iterative: a body nested 30,000 deep is fine.
 */
export function lockedAttempts(body: unknown): [string, unknown][] {
  const found = new Map<string, unknown>();
  const stack: unknown[] = [body];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      const definition = DEFINITIONS.get(key);
      if (definition?.locked && value !== definition.default && !found.has(key)) found.set(key, value);
      if (value !== null && typeof value === 'object') stack.push(value);
    }
  }
  return [...found];
}

/**
 * Short JSON text of any value for messages and the audit trail: at most `max` characters,
 * never the whole of a large body, and it never throws: values nested thousands deep (which
 * JSON.stringify and String cannot print) are shown to a depth of 8, `[…]` beyond.
 */
export function preview(value: unknown, max = 60): string {
  const budget = max + 1;
  let out = '';
  const visit = (item: unknown, depth: number): void => {
    if (out.length > budget) return;
    if (typeof item === 'string') {
      out += JSON.stringify(item.length > budget ? item.slice(0, budget) : item);
      return;
    }
    if (item === null || typeof item !== 'object') {
      out += String(item);
      return;
    }
    const list = Array.isArray(item);
    if (depth >= 8) {
      out += list ? '[…]' : '{…}';
      return;
    }
    out += list ? '[' : '{';
    let first = true;
    for (const [key, child] of Object.entries(item)) {
      if (out.length > budget) break;
      if (!first) out += ',';
      first = false;
      if (!list) out += `${JSON.stringify(key.length > budget ? key.slice(0, budget) : key)}:`;
      visit(child, depth + 1);
    }
    out += list ? ']' : '}';
  };
  visit(value, 0);
  return out.length > max ? `${out.slice(0, max - 3)}...` : out;
}

/** A name from a request, as a message shows it: cut to 60 characters. */
function shortText(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** What resuming the flags reads and writes of the state store. */
export interface FlagPersistence {
  get<T>(key: string): T | undefined;
  flagAudit(limit: number): FlagAuditEntry[];
  saveFlags(state: FlagState, audit: readonly FlagAuditEntry[], keep: number): void;
}

/**
 * Give `flags` back what the store kept: the values (state key `flags`) and the audit trail (its
 * own table). A database from before that table keeps the trail inside the flags state: it is
 * moved over once.
 */
export function resumeFlags(flags: FlagStore, store: FlagPersistence): void {
  const saved = store.get<FlagState & { audit?: FlagAuditEntry[] }>('flags');
  let audit = store.flagAudit(flags.auditLimit);
  if (audit.length === 0 && saved?.audit?.length) {
    audit = saved.audit.slice(-flags.auditLimit);
    store.saveFlags({ values: saved.values, versions: saved.versions }, audit, flags.auditLimit);
  }
  if (saved) flags.restore({ values: saved.values, versions: saved.versions, audit });
}
