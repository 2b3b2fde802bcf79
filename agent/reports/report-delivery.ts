/**
 * Scheduled reports (`reports: [{cron, since, receivers}]`): at each tick of a schedule's cron
 * expression (node-cron, in its time zone), the report of the period up to now is built and its
 * Markdown summary posted to each named receiver, which adapts it to its app (slack: mrkdwn,
 * discord: messages of 2,000 characters, webhook: one JSON body with the report). Each delivery is
 * a `report.sent` or `report.failed` event. A receiver that is off (its variable unset) is skipped
 * with a log line; a tick that finds the schedule's previous delivery still going is skipped.
 */
import { createTask, type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { formatDuration } from '../../config/units.js';
import type { AlertReceiver } from '../alerts/alert-receiver.js';
import type { EventInput } from '../events/events.js';
import type { Report } from './report-builder.js';
import { renderMarkdown } from './render-markdown.js';
import { LocalClock } from './report-time.js';

export interface ReportScheduleSpec {
  name: string;
  cron: string;
  timezone: string;
  sinceMs: number;
  receivers: readonly string[];
}

export interface ReportDeliveryOptions {
  /** Build the report of the `sinceMs` up to now, dates in `timezone`. */
  build: (sinceMs: number, timezone: string) => Promise<Report>;
  receiver: (name: string) => AlertReceiver | undefined;
  /** Why a receiver is missing: it is off because these variables are unset. */
  switchedOff: (name: string) => string | undefined;
  /** The full (HTML) report's address for a period, for the message's last line. */
  link: (since: string) => string | undefined;
  publish: (event: EventInput) => void;
  logger: Logger;
  /** Whether this agent posts scheduled reports now (a cluster's leader; default always): a follower's cron ticks post nothing. */
  acting?: () => boolean;
}

export class ReportDelivery {
  readonly #options: ReportDeliveryOptions;
  #tasks = new Map<string, ScheduledTask>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #shutdown = new AbortController();

  constructor(options: ReportDeliveryOptions) {
    this.#options = options;
  }

  /** Schedule `specs`, replacing any schedules from before (a reload). */
  schedule(specs: readonly ReportScheduleSpec[]): void {
    this.#stopTasks();
    for (const spec of specs) {
      const task = createTask(
        spec.cron,
        () => {
          if (this.#options.acting?.() ?? true) void this.deliver(spec);
        },
        { timezone: spec.timezone, name: `report:${spec.name}` },
      );
      void task.start();
      this.#tasks.set(spec.name, task);
      for (const receiver of spec.receivers) {
        const off = this.#options.receiver(receiver) === undefined ? this.#options.switchedOff(receiver) : undefined;
        if (off)
          this.#options.logger.warn(
            { schedule: spec.name, receiver },
            `report ${spec.name}: receiver ${receiver} is off because ${off} not set; the report is not posted there`,
          );
      }
      const next = this.nextRun(spec.name);
      this.#options.logger.info(
        {
          schedule: spec.name,
          cron: spec.cron,
          timezone: spec.timezone,
          receivers: spec.receivers,
          next: next === undefined ? null : new Date(next).toISOString(),
        },
        `report ${spec.name}: the last ${formatDuration(spec.sinceMs)} posted at "${spec.cron}" (${spec.timezone}) to ${spec.receivers.join(', ')}${next === undefined ? '' : `; next ${new LocalClock(spec.timezone).stamp(next)} ${spec.timezone}`}`,
      );
    }
  }

  /** When a schedule next posts (ms), undefined for none. */
  nextRun(name: string): number | undefined {
    return this.#tasks.get(name)?.getNextRun()?.getTime();
  }

  /** Build and post one schedule's report now; resolves when every receiver has been tried. */
  deliver(spec: ReportScheduleSpec): Promise<void> {
    const running = this.#running.get(spec.name);
    if (running) {
      this.#options.logger.warn({ schedule: spec.name }, `report ${spec.name}: the previous delivery is still going; skipping this tick`);
      return running;
    }
    const delivery = this.#deliver(spec).finally(() => this.#running.delete(spec.name));
    this.#running.set(spec.name, delivery);
    return delivery;
  }

  async close(): Promise<void> {
    this.#stopTasks();
    this.#shutdown.abort();
    await Promise.allSettled([...this.#running.values()]);
  }

  async #deliver(spec: ReportScheduleSpec): Promise<void> {
    const { logger, publish } = this.#options;
    const since = formatDuration(spec.sinceMs);
    let report: Report;
    try {
      report = await this.#options.build(spec.sinceMs, spec.timezone);
    } catch (error) {
      if (this.#shutdown.signal.aborted) return;
      logger.error({ err: error, schedule: spec.name }, `report ${spec.name}: could not build the report: ${(error as Error).message}`);
      for (const receiver of spec.receivers) {
        publish({
          type: 'report.failed',
          severity: 'warning',
          message: `report ${spec.name} not sent to ${receiver}: the report could not be built: ${(error as Error).message}`,
          data: {
            schedule: spec.name,
            receiver,
            receiverType: this.#options.receiver(receiver)?.type ?? 'unknown',
            since,
            attempts: 0,
            error: (error as Error).message,
          },
        });
      }
      return;
    }
    const markdown = renderMarkdown(report, { link: this.#options.link(since) });
    const title = `greenlight report: the last ${since}`;
    await Promise.all(
      spec.receivers.map(async (name) => {
        const receiver = this.#options.receiver(name);
        if (!receiver) {
          logger.info({ schedule: spec.name, receiver: name }, `report ${spec.name}: receiver ${name} is off; not posted there`);
          return;
        }
        const data = { schedule: spec.name, receiver: name, receiverType: receiver.type, since };
        if (!receiver.post) {
          publish({
            type: 'report.failed',
            severity: 'warning',
            message: `report ${spec.name} not sent: ${receiver.type} receiver ${name} takes alerts only`,
            data: { ...data, attempts: 0, error: `${receiver.type} receivers take alerts only` },
          });
          return;
        }
        try {
          const result = await receiver.post({ title, markdown, data: report }, this.#shutdown.signal);
          publish({
            type: 'report.sent',
            severity: 'info',
            message: `report ${spec.name} (the last ${since}) posted to ${receiver.type} receiver ${name}${result.parts > 1 ? ` in ${result.parts} messages` : ''}`,
            data: { ...data, attempts: result.attempts, parts: result.parts, httpStatus: result.status ?? null },
          });
        } catch (error) {
          const attempts = (error as { attempts?: number }).attempts ?? 0;
          publish({
            type: 'report.failed',
            severity: 'warning',
            message: `report ${spec.name} not delivered to ${receiver.type} receiver ${name}: ${(error as Error).message}`,
            data: { ...data, attempts, error: (error as Error).message },
          });
        }
      }),
    );
  }

  #stopTasks(): void {
    for (const task of this.#tasks.values()) void task.destroy();
    this.#tasks.clear();
  }
}
