/**
 * Routes alert notices to receivers without ever making the caller wait: a rule firing, a
 * rollback or the probe loop hands a notice over and goes on, while each receiver delivers it
 * on its own (retrying, timing out) in parallel. Firing notices are sent again every repeat
 * interval until their resolution arrives; each delivery's outcome goes to `onDelivery`.
 */
import type { Logger } from 'pino';
import type { EventBus } from '../events/events.js';
import { OutboundError } from '../plugins/outbound.js';
import type { AgentMetrics } from '../telemetry/metrics.js';
import { AlertError, type AlertNotice, type AlertReceiver } from './alert-receiver.js';

/** How one delivery of one notice to one receiver went. */
export interface AlertDelivery {
  receiver: AlertReceiver;
  notice: AlertNotice;
  ok: boolean;
  /** HTTP tries made, the first included (0 when none was made). */
  attempts: number;
  /** The last HTTP status received, when there was one. */
  httpStatus?: number;
  /** Why it failed, as the receiver put it (greenlight's receivers keep URLs and keys out of it). */
  error?: string;
}

/** What the dispatcher needs: its receivers, the repeat interval, a clock, a logger and where outcomes go. */
export interface AlertDispatcherOptions {
  receivers: readonly AlertReceiver[];
  /** How often a firing notice is sent again while it fires. */
  repeatIntervalMs: number;
  now: () => number;
  logger: Logger;
  onDelivery: (delivery: AlertDelivery) => void;
  /** Whether this agent acts (a cluster's leader): a deposed one repeats nothing. Default: always. */
  acting?: () => boolean;
}

interface FiringEntry {
  notice: AlertNotice;
  /** Everyone who was sent this key while firing: they all get its resolution. */
  receivers: Set<AlertReceiver>;
  /** Repeats it; undefined when its repeat interval is 0 (sent once per incident). */
  timer: NodeJS.Timeout | undefined;
}

/** Fans notices out to receivers by severity, repeats firing ones, and reports every delivery. */
export class AlertDispatcher {
  #receivers: readonly AlertReceiver[];
  #repeatIntervalMs: number;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #onDelivery: (delivery: AlertDelivery) => void;
  readonly #firing = new Map<string, FiringEntry>();
  /** Per receiver and key, the last delivery: the next one for that pair waits for it, so a resolve never overtakes its trigger. */
  readonly #lanes = new Map<AlertReceiver, Map<string, Promise<void>>>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #shutdown = new AbortController();
  readonly #acting: () => boolean;

  constructor(options: AlertDispatcherOptions) {
    this.#acting = options.acting ?? (() => true);
    this.#receivers = options.receivers;
    this.#repeatIntervalMs = options.repeatIntervalMs;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#onDelivery = options.onDelivery;
  }

  /** A reload's receivers and repeat interval; deliveries in flight finish on the old ones. */
  reconfigure(options: Pick<AlertDispatcherOptions, 'receivers' | 'repeatIntervalMs'>): void {
    this.#receivers = options.receivers;
    this.#repeatIntervalMs = options.repeatIntervalMs;
  }

  /**
   * Hands `notice` to every receiver that takes its severity (a resolution: to those that got
   * it firing) and returns at once; delivery happens in the background. A firing notice for a
   * key already firing replaces it, is sent again and restarts the repeat clock.
   */
  notify(notice: AlertNotice): void {
    if (this.#shutdown.signal.aborted) {
      this.#logger.warn(
        { key: notice.key, rule: notice.rule, status: notice.status },
        `alert ${notice.rule} (${notice.status}) dropped: the alert dispatcher is closed`,
      );
      return;
    }
    if (notice.status === 'firing') this.#fire(notice);
    else this.#resolve(notice);
  }

  /** The notices firing now, in the order they first fired. */
  firing(): AlertNotice[] {
    return [...this.#firing.values()].map((entry) => entry.notice);
  }

  /** Resolves once no delivery is in flight. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops repeating, cancels deliveries in flight (each reported as failed) and waits for them to end. */
  async close(): Promise<void> {
    for (const entry of this.#firing.values()) clearInterval(entry.timer);
    this.#shutdown.abort();
    await this.idle();
  }

  #fire(notice: AlertNotice): void {
    const receivers = this.#route(notice);
    const previous = this.#firing.get(notice.key);
    if (previous) clearInterval(previous.timer);
    // A repeat interval of 0 means never again: one notification per incident.
    const repeatMs = notice.repeatIntervalMs ?? this.#repeatIntervalMs;
    const entry: FiringEntry = {
      notice,
      receivers: new Set([...(previous?.receivers ?? []), ...receivers]),
      timer: repeatMs > 0 ? setInterval(() => this.#repeat(notice.key), repeatMs) : undefined,
    };
    entry.timer?.unref();
    this.#firing.set(notice.key, entry);
    for (const receiver of receivers) this.#deliver(receiver, notice, false);
  }

  #resolve(notice: AlertNotice): void {
    const entry = this.#firing.get(notice.key);
    if (entry) {
      clearInterval(entry.timer);
      this.#firing.delete(notice.key);
    }
    // Unknown keys (firing before a restart) still reach whoever takes their severity.
    const receivers = entry ? [...entry.receivers] : this.#route(notice);
    const resolved = notice.endsAt === undefined ? { ...notice, endsAt: new Date(this.#now()).toISOString() } : notice;
    for (const receiver of receivers) this.#deliver(receiver, resolved, false);
  }

  #repeat(key: string): void {
    const entry = this.#firing.get(key);
    if (!entry || this.#shutdown.signal.aborted || !this.#acting()) return;
    for (const receiver of entry.receivers) this.#deliver(receiver, entry.notice, true);
  }

  #route(notice: AlertNotice): AlertReceiver[] {
    const receivers = this.#receivers.filter((receiver) => receiver.severities.includes(notice.severity));
    if (receivers.length === 0)
      this.#logger.debug({ key: notice.key, severity: notice.severity }, `no receiver takes ${notice.severity} alerts; ${notice.rule} not sent`);
    return receivers;
  }

  /** Queues one delivery behind the previous one of the same receiver and key; a repeat is skipped while one is still under way. */
  #deliver(receiver: AlertReceiver, notice: AlertNotice, isRepeat: boolean): void {
    let lanes = this.#lanes.get(receiver);
    if (!lanes) this.#lanes.set(receiver, (lanes = new Map()));
    const previous = lanes.get(notice.key);
    if (isRepeat && previous) {
      this.#logger.debug(
        { receiver: receiver.name, key: notice.key },
        `repeat of ${notice.rule} to ${receiver.name} skipped: the previous delivery is still under way`,
      );
      return;
    }
    const run = this.#run(receiver, notice, previous);
    lanes.set(notice.key, run);
    this.#inFlight.add(run);
    void run.finally(() => {
      this.#inFlight.delete(run);
      if (lanes.get(notice.key) === run) lanes.delete(notice.key);
    });
  }

  async #run(receiver: AlertReceiver, notice: AlertNotice, previous: Promise<void> | undefined): Promise<void> {
    // Awaiting (even undefined) defers the send past notify(): a receiver's synchronous work never delays the caller.
    await previous;
    let delivery: AlertDelivery;
    try {
      const result = await receiver.send(notice, this.#shutdown.signal);
      delivery = { receiver, notice, ok: true, attempts: result.attempts, ...(result.status === undefined ? {} : { httpStatus: result.status }) };
    } catch (error) {
      delivery = { receiver, notice, ok: false, ...failureOf(error) };
    }
    try {
      this.#onDelivery(delivery);
    } catch (error) {
      this.#logger.error({ err: error, receiver: receiver.name, key: notice.key }, 'alert delivery listener failed');
    }
  }
}

function failureOf(error: unknown): { attempts: number; httpStatus?: number; error: string } {
  const cause = error instanceof Error ? error.cause : undefined;
  const status = error instanceof OutboundError ? error.status : cause instanceof OutboundError ? cause.status : undefined;
  const attempts = error instanceof AlertError || error instanceof OutboundError ? error.attempts : 0;
  const message = error instanceof Error ? error.message : String(error);
  return { attempts, error: message, ...(status === undefined ? {} : { httpStatus: status }) };
}

/**
 * What a delivery becomes for everyone else: an `alert.sent` or `alert.failed` event and the
 * greenlight_alerts_total count (the dispatcher's `onDelivery`).
 */
export function publishDelivery(bus: Pick<EventBus, 'publish'>, metrics: Pick<AgentMetrics, 'countAlert'>): (delivery: AlertDelivery) => void {
  return (delivery) => {
    const { receiver, notice } = delivery;
    const data = { receiver: receiver.name, receiverType: receiver.type, status: notice.status, key: notice.key, attempts: delivery.attempts };
    const scope = { env: notice.env, rule: notice.rule };
    metrics.countAlert(receiver.name, notice.status, delivery.ok ? 'sent' : 'failed');
    if (delivery.ok) {
      bus.publish({
        type: 'alert.sent',
        severity: 'info',
        ...scope,
        message: `${notice.status} alert "${notice.summary}" delivered to ${receiver.type} receiver ${receiver.name}`,
        data: { ...data, httpStatus: delivery.httpStatus ?? null },
      });
    } else {
      bus.publish({
        type: 'alert.failed',
        severity: 'warning',
        ...scope,
        message: `${receiver.type} receiver ${receiver.name} did not take the alert: ${delivery.error}`,
        data: { ...data, error: delivery.error ?? 'unknown' },
      });
    }
  };
}
