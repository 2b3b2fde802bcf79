/**
 * `greenlight report [--since 7d] [--format md|json|html] [--url U | --config F]`: the trend
 * report of the period up to now — daily performance per environment, deployments per week,
 * rollbacks with their times to detect and to switch, incidents, top failing probes, SLO budgets.
 *
 * With `--config` it reads the state and rollup databases of that config's dataDir directly,
 * read-only (no agent needs to run; one that runs is not disturbed). Otherwise it asks a running
 * agent (`--url`, default http://127.0.0.1:9464) for the JSON and renders it here. Exit 0 printed,
 * 1 the agent or the databases could not be read, 2 a usage mistake or a bad config.
 */
import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import { SloBook, sloDefinitions, sloStatus } from '../../../probes/slo-window.js';
import { sloWindows } from '../../../rules/rule-evaluator.js';
import { loadAgentConfig } from '../../reload/agent-config.js';
import type { CommandIo } from '../cli.js';
import { buildReport, type Report } from '../../reports/report-builder.js';
import { readReportInput } from '../../reports/report-reader.js';
import { parseFormat, type ReportFormat } from '../../reports/report-routes.js';
import { renderHtml } from '../../reports/render-html.js';
import { renderMarkdown } from '../../reports/render-markdown.js';
import { DEFAULT_SINCE, parseSince } from '../../reports/report-time.js';
import { RollupStore } from '../../reports/rollup-store.js';
import { Store } from '../../events/store.js';
import { ApiError, createApiClient } from './api-client.js';

const Ms = z.number().nullable();
const Day = z.looseObject({
  date: z.string(),
  probes: z.number(),
  failures: z.number(),
  errorRatio: z.number(),
  p50Ms: z.number(),
  p95Ms: z.number(),
  p99Ms: z.number(),
  meanMs: z.number(),
});
const Deployments = z.looseObject({
  total: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  rolledBack: z.number(),
  unfinished: z.number(),
  successRate: z.number().nullable(),
  weeks: z.array(
    z.looseObject({
      week: z.string(),
      from: z.string(),
      total: z.number(),
      succeeded: z.number(),
      failed: z.number(),
      rolledBack: z.number(),
      successRate: z.number().nullable(),
    }),
  ),
  promotions: z.array(
    z.looseObject({
      id: z.string(),
      from: z.string(),
      to: z.string(),
      kind: z.string(),
      emergency: z.boolean(),
      startedAt: z.string(),
      endedAt: z.string().nullable(),
      outcome: z.enum(['succeeded', 'failed', 'rolledBack', 'unfinished']),
      step: z.string().nullable(),
      reason: z.string().nullable(),
      week: z.string(),
    }),
  ),
});

/**
 * GET /api/v1/report as the renderers read it (agent/reports/report-builder.ts Report). What it
 * lets through is assigned to a Report in reportCommand, so the compiler keeps the two in step.
 */
const ReportAnswer = z.looseObject({
  generatedAt: z.string(),
  period: z.looseObject({ since: z.string(), from: z.string(), to: z.string(), timezone: z.string() }),
  activeEnvironment: z.string().nullable(),
  environments: z.record(
    z.string(),
    z.looseObject({ probes: z.number(), failures: z.number(), errorRatio: Ms, p50Ms: Ms, p95Ms: Ms, meanMs: Ms, days: z.array(Day) }),
  ),
  deployments: Deployments,
  rollbacks: z.array(
    z.looseObject({
      at: z.string(),
      from: z.string(),
      to: z.string(),
      rule: z.string().nullable(),
      incident: z.string().nullable(),
      trigger: z.enum(['rule', 'manual', 'promotion']),
      detectMs: Ms,
      switchMs: Ms,
      promotion: z.string().nullable(),
      reason: z.string(),
    }),
  ),
  incidents: z.array(
    z.looseObject({
      id: z.string(),
      rule: z.string(),
      env: z.string().nullable(),
      severity: z.string(),
      state: z.enum(['firing', 'resolved']),
      startedAt: z.string(),
      resolvedAt: z.string().nullable(),
      durationMs: Ms,
      detectMs: Ms,
      rolledBack: z.boolean(),
    }),
  ),
  topFailingProbes: z.array(z.looseObject({ probe: z.string(), env: z.string(), probes: z.number(), failures: z.number(), errorRatio: z.number() })),
  slo: z.array(z.looseObject({ name: z.string(), objective: z.number(), periodMs: z.number(), budgetRemaining: z.number().nullable() })),
  summary: z.looseObject({
    probes: z.number(),
    failures: z.number(),
    errorRatio: z.number().nullable(),
    rollbacks: z.looseObject({ count: z.number(), medianDetectMs: Ms, medianSwitchMs: Ms }),
    incidents: z.looseObject({ total: z.number(), critical: z.number(), warning: z.number(), open: z.number(), medianResolveMs: Ms }),
  }),
  coverage: z.looseObject({ rollupsFrom: z.string().nullable(), eventsFrom: z.string().nullable() }),
});

export interface ReportCommandOptions {
  since: string | undefined;
  format: string | undefined;
  url: string | undefined;
  configPath: string | undefined;
}

export async function reportCommand(options: ReportCommandOptions, io: CommandIo): Promise<number> {
  const since = parseSince(options.since ?? DEFAULT_SINCE);
  if ('error' in since) throw new UsageError(`--${since.error}`);
  const format = parseFormat(options.format ?? 'md');
  if ('error' in format) throw new UsageError(`--${format.error}`);
  if (options.url !== undefined && options.configPath !== undefined)
    throw new UsageError('give --url (ask a running agent) or --config (read its databases), not both');

  let report: Report;
  if (options.configPath !== undefined) {
    report = await reportFromStore(options.configPath, since.ms, io);
  } else {
    const client = createApiClient({ url: options.url, env: io.env, timeoutMs: 60_000 });
    try {
      report = await client.call('GET', `/api/v1/report?since=${encodeURIComponent(options.since ?? DEFAULT_SINCE)}`, { answer: ReportAnswer });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      io.err(`❌ ${error.message}`);
      return 1;
    }
  }
  io.out(render(report, format.format));
  return 0;
}

function render(report: Report, format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(report, null, 2);
  if (format === 'html') return renderHtml(report).trimEnd();
  return renderMarkdown(report).trimEnd();
}

/** The report straight from the config's data directory, read-only. */
async function reportFromStore(configPath: string, sinceMs: number, io: CommandIo): Promise<Report> {
  const config = await loadAgentConfig(configPath, io.env);
  const store = Store.openReadOnly(config.dataDir);
  const rollups = RollupStore.openReadOnly(config.dataDir);
  try {
    const now = Date.now();
    const environments = Object.keys(config.environments);
    // The SLO counts as the agent last saved them (every minute and at stop).
    const slo = new SloBook(sloDefinitions(config), environments, sloWindows(config));
    slo.restore(store.get('slo'), now);
    const live = store.get<string>('activeEnvironment');
    const input = await readReportInput(
      { rollups, journal: store, slice: (work) => Promise.resolve(work()) },
      {
        now,
        sinceMs,
        timezone: config.timezone,
        environments,
        activeEnvironment: live !== undefined && environments.includes(live) ? live : config.activeEnvironment,
        slo: sloStatus(slo, environments, now),
        quietMs: Math.max(...config.windows),
      },
    );
    return buildReport(input);
  } finally {
    rollups?.close();
    store.close();
  }
}
