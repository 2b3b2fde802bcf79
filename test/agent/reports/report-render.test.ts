import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { slackMrkdwn, splitMessage } from '../../../agent/alerts/text-message.js';
import { buildReport, type Report } from '../../../agent/reports/report-builder.js';
import { readReportInput } from '../../../agent/reports/report-reader.js';
import { REPORT_PAGE_CSP, REPORT_PAGE_STYLE, renderHtml } from '../../../agent/reports/render-html.js';
import { renderMarkdown } from '../../../agent/reports/render-markdown.js';
import { RollupStore } from '../../../agent/reports/rollup-store.js';
import { Store } from '../../../agent/events/store.js';
import { writeSyntheticHistory } from '../../helpers/synthetic-history.js';

const DAY = 86_400_000;
let report: Report;

beforeAll(async () => {
  const history = writeSyntheticHistory({ end: Date.UTC(2026, 10, 30, 13) });
  const store = Store.openReadOnly(history.dataDir);
  const rollups = RollupStore.openReadOnly(history.dataDir);
  const input = await readReportInput(
    { rollups, journal: store, slice: (work) => Promise.resolve(work()) },
    {
      now: history.end,
      sinceMs: 30 * DAY,
      timezone: history.timezone,
      environments: ['blue', 'green'],
      activeEnvironment: history.live,
      slo: [{ name: 'availability', objective: 0.995, periodMs: 30 * DAY, budgetRemaining: 0.62 }],
    },
  );
  report = buildReport(input);
  rollups?.close();
  store.close();
});

describe('the Markdown report', () => {
  it('leads with the figures a channel reads, then the daily table and the lists', () => {
    const md = renderMarkdown(report, { link: 'https://greenlight.desk/api/v1/report?since=30d&format=html' });
    const lines = md.split('\n');
    expect(lines[0]).toBe('## greenlight report: the last 30d');
    expect(lines[1]).toMatch(/^Sat 2026-10-31 09:00 → Mon 2026-11-30 08:00 America\/New_York · live: \*\*(blue|green)\*\*$/);
    expect(md).toContain('- **Deployments:** 9 promotions: 5 succeeded, 2 failed, 2 rolled back: **56 % success** (1 unfinished)');
    expect(md).toContain('- **Rollbacks:** 5; median time to detect 4m 01s, to switch 500ms');
    expect(md).toContain('- **Incidents:** 5 (3 critical, 2 warning), 1 open; median time to resolve 6m 28s');
    expect(md).toContain('- **SLO availability** (99.5 % over 30d): 62 % of the error budget left');
    // One table line per environment and day, figures as in the JSON.
    for (const [env, figures] of Object.entries(report.environments)) {
      for (const day of figures.days) expect(md).toMatch(new RegExp(`^${env} +\\w{3} ${day.date} +${day.probes.toLocaleString('en-US')} `, 'm'));
    }
    expect(md).toMatch(/by `live-universe-failing`: detected in 2\.4s, switched in 350ms/);
    expect(md).toContain('by an operator: `manual rollback by api:rollback: checkout errors after 3.2.1`');
    expect(md).toContain('failed at load: `load failed: p95 latency 2.41s >= 2.00s`');
    expect(md).toMatch(/🟠 .* `slo-slow-burn#1` on \w+: still firing/);
    expect(md.trimEnd().split('\n').at(-1)).toBe('Full report with charts: https://greenlight.desk/api/v1/report?since=30d&format=html');
    // Code blocks are balanced.
    expect(md.split('\n').filter((line) => line.startsWith('```')).length % 2).toBe(0);
  });

  it('puts free text in inline code on one line, so it can neither format nor mention', () => {
    const hostile = {
      ...report,
      rollbacks: [{ ...report.rollbacks.find((r) => r.trigger === 'manual')!, reason: 'line one\n## heading <!channel> @here `tick` **bold**' }],
    };
    const md = renderMarkdown(hostile);
    expect(md).toContain("by an operator: `line one ## heading <!channel> @here 'tick' **bold**`");
    expect(slackMrkdwn(md)).toContain('&lt;!channel&gt;');
  });
});

describe('chat forms of the Markdown', () => {
  it('slack: headings and bold become mrkdwn, code blocks stay as they are, & < > are escaped', () => {
    expect(slackMrkdwn('## Title\n- **Deployments:** 9 <ok> & [link](https://x.example/a?b=1)\n```\na **b** <c>\n```')).toBe(
      '*Title*\n- *Deployments:* 9 &lt;ok&gt; &amp; <https://x.example/a?b=1|link>\n```\na **b** &lt;c&gt;\n```',
    );
  });

  it('cuts a long message at line ends under the limit, closing and reopening a code block across a cut', () => {
    const md = renderMarkdown(report);
    const parts = splitMessage(md, 2_000);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(2_000);
      expect(part.split('\n').filter((line) => line.startsWith('```')).length % 2).toBe(0);
    }
    // Nothing lost, nothing but fences added.
    const strip = (text: string) => text.split('\n').filter((line) => line !== '```' && line.trim() !== '');
    expect(strip(parts.join('\n'))).toEqual(strip(md));
    expect(splitMessage('short', 2_000)).toEqual(['short']);
  });
});

describe('the HTML report', () => {
  it('is one self-contained page: no script, nothing fetched, one stylesheet the CSP allows by hash', () => {
    const html = renderHtml(report);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|src=|url\(|@import| on[a-z]+=| style="/i);
    expect(html.match(/<style>/g)).toHaveLength(1);
    const hash = createHash('sha256').update(REPORT_PAGE_STYLE).digest('base64');
    expect(html).toContain(`<style>${REPORT_PAGE_STYLE}</style>`);
    expect(REPORT_PAGE_CSP).toBe(`default-src 'none'; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`);
    expect(REPORT_PAGE_CSP).not.toContain('unsafe');
  });

  it('draws the daily latency and errors per environment, deployments per week and the rollback timeline', () => {
    const html = renderHtml(report);
    for (const env of ['blue', 'green']) {
      expect(html).toContain(`id="latency-${env}"`);
      expect(html).toContain(`id="errors-${env}"`);
    }
    expect(html).toContain('id="deployments"');
    expect(html).toContain('id="timeline"');
    expect(html.match(/class="mark s-rollback"/g)).toHaveLength(report.rollbacks.length);
    expect(html.match(/class="span s-(critical|warning)"/g)).toHaveLength(report.incidents.length);
  });

  it('escapes every text it shows', () => {
    const hostile = { ...report, rollbacks: [{ ...report.rollbacks[0]!, trigger: 'manual' as const, rule: null, reason: '<script>alert(1)</script>' }] };
    const html = renderHtml(hostile);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });
});
