/**
 * Silences (CONTRACT.md, "Alert lifecycle"), as Alertmanager has them: label matchers, a start and
 * an end, who made it and why. A silence is pending before its start, active until its end, then
 * expired; expiring one through the API ends it now. While active it mutes the notifications of
 * every alert whose labels all its matchers match — never an action: a silenced rule still rolls
 * back and sets flags.
 *
 * Invariants:
 * - Every silence names its author and a comment, and selects something in particular: at least
 *   one matcher needs a value (a silence of `env!=x` alone would mute everything).
 * - Silences are never deleted by a person, only expired: who made and who ended one stays visible
 *   for SILENCE_RETENTION_MS after its end (then it is pruned).
 */
import { randomUUID } from 'node:crypto';
import { codeOfStatus, GreenlightError } from '../../config/errors.js';
import { compileMatchers, formatMatcher, matcherProblem, matchesEmpty, type LabelMatcher, type LabelTest } from '../../config/matchers.js';

/** Expired silences are kept this long after their end, for the record (Alertmanager keeps 5 days). */
export const SILENCE_RETENTION_MS = 7 * 86_400_000;
/** Silences not yet expired, at most: each one is matched against every alert notified. */
export const MAX_SILENCES = 1_000;

export type SilenceState = 'pending' | 'active' | 'expired';

/**
 * Rule names of no config: a silence that matches the first (it holds a NUL), or every one of the
 * plain ones, selects no rule in particular (`rule=~".+"`, `rule=~"[a-z-]+"`, `rule=~"[^x]+"`).
 * One that names rules (`rule=~"live-.*"`) matches none of them.
 */
const ANY_RULE = 'greenlight\u0000any-rule';
const OTHER_RULES = ['another-rule', 'x'];

/** A silence as stored. */
export interface Silence {
  id: string;
  matchers: LabelMatcher[];
  /** ISO-8601 */
  startsAt: string;
  /** ISO-8601 */
  endsAt: string;
  createdBy: string;
  comment: string;
  /** ISO-8601: when it was created, and when last changed (expired). */
  createdAt: string;
  updatedAt: string;
  /** Who expired it before its end, when someone did (`alice (api:admin)`). */
  expiredBy?: string;
}

/** A silence as the API shows it: with its state now (Alertmanager's `status.state`). */
export type SilenceView = Silence & { status: { state: SilenceState } };

/** A silence request, already shaped by the route's schema. */
export interface SilenceInput {
  matchers: LabelMatcher[];
  startsAt?: string | undefined;
  endsAt: string;
  createdBy: string;
  comment: string;
}

/** A request that cannot be honoured: the HTTP status and a message that says what to change. */
export class SilenceError extends GreenlightError {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(codeOfStatus(status), message);
  }
}

export function silenceState(silence: Pick<Silence, 'startsAt' | 'endsAt'>, now: number): SilenceState {
  if (now < Date.parse(silence.startsAt)) return 'pending';
  if (now >= Date.parse(silence.endsAt)) return 'expired';
  return 'active';
}

/** `rule="live-universe-failing", env="blue"` */
export function describeMatchers(matchers: readonly LabelMatcher[]): string {
  return matchers.map(formatMatcher).join(', ');
}

/** The silences, what they mute now, and when the next one starts or ends. */
export class SilenceBook {
  readonly #now: () => number;
  readonly #save: (silence: Silence) => void;
  readonly #remove: (id: string) => void;
  readonly #silences = new Map<string, { silence: Silence; test: LabelTest }>();

  constructor(options: { now: () => number; save: (silence: Silence) => void; remove: (id: string) => void }) {
    this.#now = options.now;
    this.#save = options.save;
    this.#remove = options.remove;
  }

  /** Take the stored silences back in place of those held (at start, or a cluster takeover); one whose matchers no longer compile is dropped. */
  restore(silences: readonly Silence[]): void {
    this.#silences.clear();
    for (const silence of silences) {
      if (silence.matchers.some((matcher) => matcherProblem(matcher) !== undefined)) continue;
      this.#silences.set(silence.id, { silence, test: compileMatchers(silence.matchers) });
    }
  }

  /**
   * Validate and store a new silence. Throws SilenceError naming what is wrong. `ruleAlerts`: the
   * labels of every rule's alert on every environment; a silence that matches them all whatever
   * the rule's name (`rule=~".+"`, `rule!=""`) mutes every page the rules can send, the critical
   * rollback pages among them, and is refused.
   */
  create(input: SilenceInput, ruleAlerts: readonly Readonly<Record<string, string>>[] = []): Silence {
    const now = this.#now();
    const problems = input.matchers.map((matcher, index) => {
      const problem = matcherProblem(matcher);
      return problem === undefined ? undefined : `matchers[${index}]: ${problem}`;
    });
    const first = problems.find((problem) => problem !== undefined);
    if (first) throw new SilenceError(400, first);
    if (input.matchers.every(matchesEmpty)) {
      throw new SilenceError(
        400,
        'every matcher also matches an alert without its label, so this silence would mute every alert: add one that needs a value, such as rule="live-universe-failing" or env="green"',
      );
    }
    // Every rule's page (its critical alert; every alert where no rule is critical) on every
    // environment, and as much one of a rule of any other name: it selects no rule at all
    // (`rule=~".+"`, `env!=""`, `severity="critical"`).
    const test = compileMatchers(input.matchers);
    const pages = ruleAlerts.filter((labels) => labels.severity === 'critical');
    const guarded = pages.length > 0 ? pages : ruleAlerts;
    const anyRule = (labels: Readonly<Record<string, string>>, names: readonly string[]) =>
      names.every((name) => test({ ...labels, rule: name, alertname: name }));
    if (guarded.length > 0 && guarded.every((labels) => test(labels) && (anyRule(labels, [ANY_RULE]) || anyRule(labels, OTHER_RULES)))) {
      throw new SilenceError(
        400,
        `this silence matches the ${pages.length > 0 ? 'critical alerts' : 'alerts'} of every rule on every environment (${guarded.length}), the rollback pages among them, so it would mute them all: narrow it to a rule or an environment, such as rule="live-universe-failing" or env="green"`,
      );
    }
    const startsAt = input.startsAt === undefined ? now : Date.parse(input.startsAt);
    const endsAt = Date.parse(input.endsAt);
    if (!(endsAt > now)) throw new SilenceError(400, `endsAt (${input.endsAt}) is already past: a silence must end in the future`);
    if (!(endsAt > startsAt)) throw new SilenceError(400, `endsAt (${input.endsAt}) must be later than startsAt (${new Date(startsAt).toISOString()})`);
    const open = [...this.#silences.values()].filter(({ silence }) => silenceState(silence, now) !== 'expired').length;
    if (open >= MAX_SILENCES)
      throw new SilenceError(
        409,
        `there are already ${MAX_SILENCES} silences pending or active: expire some (greenlight silence list; greenlight silence expire ID) before adding more`,
      );
    const stamp = new Date(now).toISOString();
    const silence: Silence = {
      id: randomUUID(),
      matchers: input.matchers.map((matcher) => ({ ...matcher })),
      startsAt: new Date(startsAt).toISOString(),
      endsAt: new Date(endsAt).toISOString(),
      createdBy: input.createdBy,
      comment: input.comment,
      createdAt: stamp,
      updatedAt: stamp,
    };
    this.#silences.set(silence.id, { silence, test: compileMatchers(silence.matchers) });
    this.#save(silence);
    return silence;
  }

  /** End a silence now. `already`: it had ended before (nothing changed). Throws SilenceError 404 for an unknown id. */
  expire(id: string, by: string): { silence: Silence; already: boolean } {
    const entry = this.#silences.get(id);
    if (!entry) throw new SilenceError(404, `no silence ${JSON.stringify(id.slice(0, 100))}; greenlight silence list shows them`);
    const now = this.#now();
    const state = silenceState(entry.silence, now);
    if (state === 'expired') return { silence: entry.silence, already: true };
    const stamp = new Date(now).toISOString();
    // A pending silence never starts: it begins and ends now, as in Alertmanager.
    const silence: Silence = { ...entry.silence, ...(state === 'pending' ? { startsAt: stamp } : {}), endsAt: stamp, updatedAt: stamp, expiredBy: by };
    entry.silence = silence;
    this.#save(silence);
    return { silence, already: false };
  }

  get(id: string): Silence | undefined {
    return this.#silences.get(id)?.silence;
  }

  /** Every silence with its state, the newest first. */
  list(): SilenceView[] {
    const now = this.#now();
    return [...this.#silences.values()]
      .map(({ silence }) => ({ ...silence, status: { state: silenceState(silence, now) } }))
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** The ids of the active silences that mute an alert with these labels. */
  mutedBy(labels: Readonly<Record<string, string>>): string[] {
    const now = this.#now();
    const ids: string[] = [];
    for (const { silence, test } of this.#silences.values()) if (silenceState(silence, now) === 'active' && test(labels)) ids.push(silence.id);
    return ids;
  }

  /** How many silences are in each state now. */
  counts(): Record<SilenceState, number> {
    const now = this.#now();
    const counts: Record<SilenceState, number> = { pending: 0, active: 0, expired: 0 };
    for (const { silence } of this.#silences.values()) counts[silenceState(silence, now)]++;
    return counts;
  }

  /** The next instant a silence starts or ends after `now`, if any. */
  nextChange(): number | undefined {
    const now = this.#now();
    let next: number | undefined;
    for (const { silence } of this.#silences.values()) {
      for (const at of [Date.parse(silence.startsAt), Date.parse(silence.endsAt)]) if (at > now && (next === undefined || at < next)) next = at;
    }
    return next;
  }

  /** Silences that ended in (after, now], in order: those whose end has just passed. */
  endedSince(after: number): Silence[] {
    const now = this.#now();
    return [...this.#silences.values()]
      .map(({ silence }) => silence)
      .filter((silence) => silence.expiredBy === undefined && Date.parse(silence.endsAt) > after && Date.parse(silence.endsAt) <= now)
      .sort((a, b) => a.endsAt.localeCompare(b.endsAt));
  }

  /** Whether a silence reached its start in (after, now]: what it mutes changed (it was pending). */
  startedSince(after: number): boolean {
    const now = this.#now();
    for (const { silence } of this.#silences.values()) {
      const at = Date.parse(silence.startsAt);
      if (at > after && at <= now && Date.parse(silence.endsAt) > at) return true;
    }
    return false;
  }

  /** Drop silences that ended more than SILENCE_RETENTION_MS ago; how many. */
  prune(): number {
    const cutoff = this.#now() - SILENCE_RETENTION_MS;
    let pruned = 0;
    for (const [id, { silence }] of this.#silences) {
      if (Date.parse(silence.endsAt) >= cutoff) continue;
      this.#silences.delete(id);
      this.#remove(id);
      pruned++;
    }
    return pruned;
  }
}
