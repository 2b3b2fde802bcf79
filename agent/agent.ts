/**
 * The daemon. The data path reads straight through this file:
 *
 *   schedule (ProbeScheduler) → probe (runProbe) → result → window (ProbeSeries)
 *     → metrics → probe.up / probe.down events → (logs; later journal, stream, rules)
 *
 * Components are started in dependency order and closed in reverse.
 */
import { Agent as UndiciAgent } from 'undici';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { compileProbeTarget, probeEnvironments, runProbe, type ProbeTarget } from '../probes/http-probe.js';
import { describeFailure, type ProbeResult } from '../probes/probe-result.js';
import { ProbeSeries, type SeriesSnapshot } from '../probes/probe-series.js';
import { EventBus, type GreenlightEvent } from './events.js';
import { AgentMetrics } from './metrics.js';
import { ProbeScheduler } from './probe-scheduler.js';
import { coreRoutes } from './core-routes.js';
import { startHttpServer, type HttpServer } from './http-server.js';
import { VERSION } from './version.js';

export interface AgentOptions {
  config: Config;
  /** The root logger; the agent and its components log through children of it. */
  logger: Logger;
  dryRun?: boolean;
  /** Clock for windows and events; tests inject one. */
  now?: () => number;
  /** Include process_* metrics (default true). */
  processMetrics?: boolean;
}

interface SeriesEntry {
  series: ProbeSeries;
  target: ProbeTarget;
  /** When the series went down, for probe.up's downForMs. */
  downSince: number | undefined;
}

export interface AgentState {
  version: string;
  startedAt: string;
  ready: boolean;
  dryRun: boolean;
  activeEnvironment: string;
  environments: Record<string, { url: string; active: boolean; up: boolean | undefined }>;
  series: SeriesSnapshot[];
}

export class Agent {
  readonly config: Config;
  readonly bus: EventBus;
  readonly metrics: AgentMetrics;
  readonly #logger: Logger;
  readonly #rootLogger: Logger;
  readonly #now: () => number;
  readonly #dryRun: boolean;
  readonly #dispatcher: UndiciAgent;
  readonly #scheduler: ProbeScheduler;
  readonly #series: SeriesEntry[] = [];
  /** Ends in-flight probes at shutdown. */
  readonly #shutdown = new AbortController();
  #server: HttpServer | undefined;
  #activeEnvironment: string;
  #startedAt = 0;
  #pendingFirstResults: Set<SeriesEntry>;

  constructor(options: AgentOptions) {
    const { config, logger } = options;
    this.config = config;
    this.#logger = logger.child({ component: 'agent' });
    this.#rootLogger = logger;
    this.#now = options.now ?? Date.now;
    this.#dryRun = options.dryRun ?? false;
    this.#activeEnvironment = config.activeEnvironment;
    this.bus = new EventBus({
      now: this.#now,
      onListenerError: (error, event) => this.#logger.error({ err: error, event: event.type }, 'an event subscriber failed'),
    });
    this.bus.subscribe((event) => logEvent(this.#logger, event));
    // One keep-alive pool for every probe: connection reuse is most of a probe's cost saving.
    this.#dispatcher = new UndiciAgent({ keepAliveTimeout: 30_000, connections: 8, pipelining: 1 });
    this.#scheduler = new ProbeScheduler({
      onError: (job, error) => this.#logger.error({ err: error, job: job.key }, 'bug: a probe run threw instead of returning a result'),
    });
    this.metrics = new AgentMetrics({ series: () => this.#series.map((entry) => entry.series), now: this.#now, processMetrics: options.processMetrics ?? true });

    const windows = config.windows;
    for (const probe of config.probes) {
      const lines = new Map(Object.entries(probe.extract).map(([name, extraction]) => [name, extraction.lines]));
      for (const env of probeEnvironments(config, probe)) {
        const entry: SeriesEntry = { series: new ProbeSeries(probe.name, env, windows, lines, this.#now()), target: compileProbeTarget(config, probe, env), downSince: undefined };
        this.#series.push(entry);
        this.metrics.addSeries(entry.series, windows);
        this.#scheduler.add({
          key: `${probe.name}@${env}`,
          schedule: probe.cron !== undefined ? { cron: probe.cron, timezone: probe.timezone ?? config.timezone } : { every: probe.every ?? config.probeDefaults.every, jitter: config.probeDefaults.jitter },
          run: () => this.#probe(entry),
          onSkipped: () => this.#skipped(entry),
        });
      }
    }
    // Readiness waits for the first round of the interval probes; a cron probe may not run for hours.
    this.#pendingFirstResults = new Set(this.#series.filter((entry) => config.probes.find((p) => p.name === entry.series.probe)?.cron === undefined));
  }

  get activeEnvironment(): string {
    return this.#activeEnvironment;
  }

  /** Config loaded and the first round of probes done. */
  get ready(): boolean {
    return this.#pendingFirstResults.size === 0;
  }

  /** The HTTP listener's address, once started. */
  get address(): { host: string; port: number } | undefined {
    return this.#server?.address;
  }

  async start(): Promise<void> {
    this.#startedAt = this.#now();
    this.metrics.setActiveEnvironment(this.#activeEnvironment, Object.keys(this.config.environments));
    this.#server = await startHttpServer({
      listen: this.config.listen,
      routes: [...coreRoutes(this)],
      tokens: () => ({ admin: this.config.api.adminToken, rollback: this.config.api.rollbackToken }),
      logger: this.#rootLogger.child({ component: 'http' }),
    });
    this.#scheduler.start();
    this.bus.publish({
      type: 'agent.started',
      severity: 'info',
      message: `greenlight ${VERSION} watching ${Object.keys(this.config.environments).join(' and ')} (${this.#activeEnvironment} live) with ${this.config.probes.length} probes on http://${formatHost(this.#server.address)}`,
      data: { version: VERSION, pid: process.pid, activeEnvironment: this.#activeEnvironment, probes: this.config.probes.length, series: this.#series.length, dryRun: this.#dryRun },
    });
  }

  /** Stop schedules, end probes in flight, close the listener and the connection pool. */
  async close(signal: string | null = null): Promise<void> {
    this.bus.publish({
      type: 'agent.stopping',
      severity: 'info',
      message: `greenlight stopping${signal ? ` on ${signal}` : ''}`,
      data: { signal, uptimeSeconds: Math.round((this.#now() - this.#startedAt) / 1_000) },
    });
    this.#shutdown.abort();
    await this.#scheduler.close();
    await this.#server?.close();
    await this.#dispatcher.destroy();
  }

  state(): AgentState {
    const now = this.#now();
    const environments: AgentState['environments'] = {};
    for (const [name, env] of Object.entries(this.config.environments)) {
      const mine = this.#series.filter((entry) => entry.series.env === name);
      const known = mine.filter((entry) => entry.series.up !== undefined);
      environments[name] = {
        url: redactUrl(env.url),
        active: name === this.#activeEnvironment,
        up: known.length === 0 ? undefined : known.every((entry) => entry.series.up),
      };
    }
    return {
      version: VERSION,
      startedAt: new Date(this.#startedAt).toISOString(),
      ready: this.ready,
      dryRun: this.#dryRun,
      activeEnvironment: this.#activeEnvironment,
      environments,
      series: this.#series.map((entry) => entry.series.snapshot(now)),
    };
  }

  async #probe(entry: SeriesEntry): Promise<void> {
    const result = await runProbe(entry.target, this.#dispatcher, this.#now, this.#shutdown.signal);
    if (this.#shutdown.signal.aborted) return; // a probe cut short by shutdown says nothing about the target
    this.#record(entry, result);
  }

  #record(entry: SeriesEntry, result: ProbeResult): void {
    const { series } = entry;
    const change = series.record(result);
    this.metrics.recordResult(series, result);
    this.#pendingFirstResults.delete(entry);
    if (!change) return;
    const active = series.env === this.#activeEnvironment;
    if (!change.up) {
      entry.downSince = result.startedAt;
      this.bus.publish({
        type: 'probe.down',
        severity: active ? 'warning' : 'info',
        env: series.env,
        probe: series.probe,
        message: `${series.probe} on ${series.env}${active ? ' (live)' : ''} is failing: ${describeFailure(result)}`,
        data: { reason: result.reason!, detail: describeFailure(result), status: result.status ?? null, durationMs: round(result.durationMs), consecutiveFailures: series.consecutiveFailures, active },
      });
    } else if (change.wasUp === false) {
      const downForMs = entry.downSince === undefined ? null : result.startedAt - entry.downSince;
      entry.downSince = undefined;
      this.bus.publish({
        type: 'probe.up',
        severity: 'info',
        env: series.env,
        probe: series.probe,
        message: `${series.probe} on ${series.env} recovered${downForMs === null ? '' : ` after ${Math.round(downForMs / 1_000)}s`}`,
        data: { status: result.status ?? null, durationMs: round(result.durationMs), downForMs, active },
      });
    }
  }

  #skipped(entry: SeriesEntry): void {
    entry.series.recordSkipped();
    this.metrics.recordSkipped(entry.series);
    this.#logger.debug({ probe: entry.series.probe, env: entry.series.env }, 'probe tick skipped: the previous probe is still in flight');
  }
}

function logEvent(logger: Logger, event: GreenlightEvent): void {
  const level = event.severity === 'critical' ? 'error' : event.severity === 'warning' ? 'warn' : 'info';
  logger[level]({ event: event.type, id: event.id, env: event.env ?? undefined, probe: event.probe ?? undefined, rule: event.rule ?? undefined }, event.message);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function formatHost(address: { host: string; port: number }): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** URLs may carry credentials (https://user:secret@host); never show them. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.username || url.password) {
      url.username = 'redacted';
      url.password = '';
    }
    url.search = url.search ? '?redacted' : '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return '[unparseable url]';
  }
}
