/**
 * Trend reports (issue 16), as one component of the agent: the rollup writer every scheduled
 * probe result goes through, the rollups' retention, the report route and the scheduled
 * deliveries. The agent starts it once the state store is open, hands it each probe result
 * (`record`), and closes it before the store:
 *
 *   probe result → record → RollupWriter (a minute in memory) → rollups.db (a batch a minute,
 *   hours compacted) → readReportInput (rollups + journal, in slices) → buildReport → JSON,
 *   Markdown or HTML, over GET /api/v1/report, `greenlight report` and scheduled posts.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { ProbeResult } from '../../probes/probe-result.js';
import type { SloStatus } from '../../probes/slo-window.js';
import type { AlertReceiver } from '../alerts/alert-receiver.js';
import type { EventInput } from '../events/events.js';
import type { Store } from '../events/store.js';
import type { Route } from '../http/http-server.js';
import { buildReport, type Report } from './report-builder.js';
import { receiversSwitchedOff, scheduleName } from './report-config.js';
import { ReportDelivery, type ReportScheduleSpec } from './report-delivery.js';
import { ReportAbandoned, readReportInput } from './report-reader.js';
import { reportRoutes } from './report-routes.js';
import { RollupRetention } from './rollup-retention.js';
import { RollupStore } from './rollup-store.js';
import { type RollupSeries, RollupWriter } from './rollup-writer.js';

/** What the component reads of the agent (Agent satisfies it). */
export interface ReportsHost {
  readonly config: Config;
  readonly activeEnvironment: string;
  readonly bus: { publish(event: EventInput): unknown };
  readonly alerts: { receiver(name: string): AlertReceiver | undefined };
  /** The listener's address once started: the reports' links when alerts.externalUrl is unset. */
  readonly address: { host: string; port: number } | undefined;
  state(withSeries: boolean): { slo: readonly SloStatus[] };
}

export interface ReportsOptions {
  /** The state store: the journal a report reads its events from. */
  store: Store;
  /** Runs one slice of reading in its turn of the event loop (the API server's TurnQueue); undefined once stopping. */
  slice: <T>(work: () => T) => Promise<T | undefined>;
  now: () => number;
  logger: Logger;
  /** Whether scheduled reports are posted from here (a cluster's leader); default always. */
  acting?: () => boolean;
}

export class Reports {
  readonly #host: ReportsHost;
  readonly #options: ReportsOptions;
  readonly #rollups: RollupStore;
  readonly #writer: RollupWriter;
  #retention: RollupRetention;
  readonly #delivery: ReportDelivery;

  /** Opens `<dataDir>/rollups.db` (throws StoreError saying what to fix). */
  constructor(host: ReportsHost, options: ReportsOptions) {
    this.#host = host;
    this.#options = options;
    const config = host.config;
    const logger = options.logger;
    this.#rollups = RollupStore.open(config.dataDir, (message) => logger.warn(message));
    this.#writer = new RollupWriter({ store: this.#rollups, now: options.now, logger });
    this.#retention = this.#createRetention(config);
    this.#delivery = new ReportDelivery({
      build: async (sinceMs, timezone) => {
        const report = await this.report(sinceMs, timezone);
        if (!report) throw new ReportAbandoned();
        return report;
      },
      receiver: (name) => host.alerts.receiver(name),
      switchedOff: (name) => receiversSwitchedOff(host.config).get(name)?.variables,
      link: (since) => {
        const base = host.config.alerts.externalUrl ?? (host.address ? `http://${formatHost(host.address)}` : undefined);
        return base ? `${base.replace(/\/$/, '')}/api/v1/report?since=${since}&format=html` : undefined;
      },
      publish: (event) => host.bus.publish(event),
      logger,
      ...(options.acting ? { acting: options.acting } : {}),
    });
  }

  start(): void {
    this.#writer.start();
    this.#retention.start();
    this.#delivery.schedule(schedules(this.#host.config));
  }

  /** A probe result: scheduled ones count; confirmation re-probes do not, as for the windows. */
  record(series: RollupSeries, result: ProbeResult): void {
    if (result.confirmation) return;
    this.#writer.record(series, result.ok, result.durationMs);
  }

  /** The report of `sinceMs` up to now (dates in `timezone`, default the config's); undefined once stopping. */
  async report(sinceMs: number, timezone?: string): Promise<Report | undefined> {
    const config = this.#host.config;
    // Every probe so far: the minute in progress too (its row adds up with the rest of it later).
    this.#writer.flush({ all: true });
    const activeEnvironment = this.#host.activeEnvironment;
    const { slo } = this.#host.state(false);
    try {
      const input = await readReportInput(
        { rollups: this.#rollups, journal: this.#options.store, slice: this.#options.slice },
        {
          now: this.#options.now(),
          sinceMs,
          timezone: timezone ?? config.timezone,
          environments: Object.keys(config.environments),
          activeEnvironment,
          slo,
          quietMs: Math.max(...config.windows),
        },
      );
      return buildReport(input);
    } catch (error) {
      if (error instanceof ReportAbandoned) return undefined;
      throw error;
    }
  }

  routes(): Route[] {
    return reportRoutes(this);
  }

  /** Post a schedule's report now (tests, and an operator's wish one day). */
  deliver(name: string): Promise<void> {
    const spec = schedules(this.#host.config).find((s) => s.name === name);
    if (!spec) return Promise.reject(new Error(`no report schedule named ${name}`));
    return this.#delivery.deliver(spec);
  }

  /** A reload: the retention bounds and the schedules of the new config. */
  reload(config: Config): void {
    this.#retention.close();
    this.#retention = this.#createRetention(config);
    this.#retention.start();
    this.#delivery.schedule(schedules(config));
  }

  async close(): Promise<void> {
    await this.#delivery.close();
    this.#retention.close();
    this.#writer.close();
    this.#rollups.close();
  }

  #createRetention(config: Config): RollupRetention {
    return new RollupRetention({ store: this.#rollups, ...config.rollups.retention, now: this.#options.now, logger: this.#options.logger });
  }
}

function schedules(config: Config): ReportScheduleSpec[] {
  return config.reports.map((schedule, index) => ({
    name: scheduleName(config, index),
    cron: schedule.cron,
    timezone: schedule.timezone ?? config.timezone,
    sinceMs: schedule.since,
    receivers: schedule.receivers,
  }));
}

function formatHost(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
