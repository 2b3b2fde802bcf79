/**
 * `GET /api/v1/report?since=7d&format=json|md|html` (no token, like /api/v1/state): the trend
 * report of the period up to now. JSON for scripts, Markdown for a chat or a ticket, HTML for a
 * person (the status page links to it), served with a CSP that allows its own inline stylesheet
 * and nothing else. A bad `since` or `format`, another parameter, or one given twice is a 400
 * naming it.
 */
import { HttpError, type Route, type RouteResponse } from '../http/http-server.js';
import type { Report } from './report-builder.js';
import { REPORT_PAGE_CSP, renderHtml } from './render-html.js';
import { renderMarkdown } from './render-markdown.js';
import { DEFAULT_SINCE, parseSince } from './report-time.js';

export const REPORT_FORMATS = ['json', 'md', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Reports read at once; one more waits for none of them and is answered 503 (each holds a period's events). */
const MAX_CONCURRENT = 4;

export interface ReportProvider {
  /** The report of `sinceMs` up to now; undefined when the agent is stopping. */
  report(sinceMs: number): Promise<Report | undefined>;
}

/** `format` as given, or a message naming what is wrong. */
export function parseFormat(text: string): { format: ReportFormat } | { error: string } {
  return (REPORT_FORMATS as readonly string[]).includes(text)
    ? { format: text as ReportFormat }
    : { error: `format must be ${REPORT_FORMATS.join(', ')}, not ${JSON.stringify(text.slice(0, 40))}` };
}

export function reportRoutes(provider: ReportProvider): Route[] {
  let building = 0;
  return [
    {
      method: 'GET',
      path: '/api/v1/report',
      auth: 'none',
      query: ['since', 'format'],
      handle: async ({ query }): Promise<RouteResponse> => {
        const since = parseSince(query.get('since') ?? DEFAULT_SINCE);
        if ('error' in since) throw new HttpError(400, since.error);
        const format = parseFormat(query.get('format') ?? 'json');
        if ('error' in format) throw new HttpError(400, format.error);
        if (building >= MAX_CONCURRENT) throw new HttpError(503, `${building} reports are being built; try again in a few seconds`);
        building++;
        let report: Report | undefined;
        try {
          report = await provider.report(since.ms);
        } finally {
          building--;
        }
        if (!report) throw new HttpError(503, 'greenlight is stopping');
        if (format.format === 'md') return { status: 200, text: renderMarkdown(report), headers: { 'content-type': 'text/markdown; charset=utf-8' } };
        if (format.format === 'html') {
          return {
            status: 200,
            text: renderHtml(report, { links: true }),
            headers: {
              'content-type': 'text/html; charset=utf-8',
              'content-security-policy': REPORT_PAGE_CSP,
              'x-content-type-options': 'nosniff',
              'referrer-policy': 'no-referrer',
              'x-frame-options': 'DENY',
            },
          };
        }
        return { status: 200, body: report };
      },
    },
  ];
}
