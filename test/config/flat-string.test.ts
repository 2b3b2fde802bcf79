/**
 * flatString: a string kept for a series' life is one flat string, not a tree of the parts it was
 * made of (issue 18). Whether a string is flat shows only inside V8: each case runs in a fresh
 * process with the built code and prints the kind of each string with %DebugPrint, with no garbage
 * collection between (a string flat only once a collection short-cuts it is not flat: stop 44's CI
 * run did not short-cut it), or, where the string is private to its owner (the metrics' labels),
 * looks for its whole text among a heap snapshot's strings: a tree is a node of its own there, its
 * text only in its parts.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { flatString } from '../../config/flat-string.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/** Run `script` (an ES module that may call `kind(name, string)`) and return each name's string kind. */
function stringKinds(script: string): Record<string, 'cons' | 'flat'> {
  const run = spawnSync(
    process.execPath,
    [
      '--allow-natives-syntax',
      '--input-type=module',
      '-e',
      `
      const strings = [];
      const kind = (name, string) => strings.push([name, string]);
      ${script}
      // %DebugPrint writes through C's buffered stdout, not the stream console.log uses: the
      // names go to stderr, the prints come out in their order on stdout.
      for (const [, string] of strings) %DebugPrint(string);
      process.stderr.write('NAMES' + JSON.stringify(strings.map(([name]) => name)));
      `,
    ],
    { cwd: DIST, encoding: 'utf8' },
  );
  expect(run.status, run.stderr).toBe(0);
  const names = JSON.parse(run.stderr.slice(run.stderr.indexOf('NAMES') + 5)) as string[];
  // Each print shows the string's map, whose first ` - type:` line names its representation.
  const types = [...run.stdout.matchAll(/^ - type: (\w+)/gm)].map((match) => match[1]!);
  expect(types).toHaveLength(names.length);
  const kinds: Record<string, 'cons' | 'flat'> = {};
  names.forEach((name, i) => (kinds[name] = types[i]!.startsWith('CONS_') ? 'cons' : 'flat'));
  return kinds;
}

describe('flatString', () => {
  it('returns the text it is given', () => {
    const made = `status ${200 + Number('1')} in [${'200-299'}]`;
    expect(flatString(made)).toBe('status 201 in [200-299]');
    expect(flatString('')).toBe('');
  });

  it('leaves a made string flat, where the same string made without it stays a tree of its parts', () => {
    const kinds = stringKinds(`
      const { flatString } = await import('${DIST}config/flat-string.js');
      const part = String(Math.floor(Math.random() * 10));
      kind('made', \`probe="health-\${part}",env="blue-\${part}"\`);
      kind('flattened', flatString(\`probe="health-\${part}",env="blue-\${part}"\`));
    `);
    expect(kinds).toEqual({ made: 'cons', flattened: 'flat' });
  });

  it("keeps a series' metric labels flat (seen in a heap snapshot: a tree's whole text is no string node)", () => {
    const run = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        '--input-type=module',
        '-e',
        `
        import { getHeapSnapshot } from 'node:v8';
        const { ProbeSeries } = await import('${DIST}probes/probe-series.js');
        const { AgentMetrics } = await import('${DIST}agent/telemetry/metrics.js');
        const metrics = new AgentMetrics({ now: Date.now, processMetrics: false });
        const probe = 'universe-' + String(Math.floor(Math.random() * 1000) + 1000);
        metrics.addSeries(new ProbeSeries(probe, 'blue', [60000], new Map(), Date.now()), [60000]);
        gc({ type: 'minor' });
        gc();
        let text = '';
        for await (const chunk of getHeapSnapshot()) text += chunk;
        const snapshot = JSON.parse(text);
        const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta;
        const kinds = [];
        for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
          const name = snapshot.strings[snapshot.nodes[i + fields.indexOf('name')]];
          if (name.startsWith('probe="' + probe)) kinds.push(types[snapshot.nodes[i + fields.indexOf('type')]] + ' ' + name.replace(probe, 'P'));
        }
        process.stdout.write(JSON.stringify(kinds.sort()));
        `,
      ],
      { cwd: DIST, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(['string probe="P",env="blue"', 'string probe="P",env="blue",window="1m"']);
  });

  it("keeps a series' key, its target's origin and path, and its checks' texts flat", () => {
    const kinds = stringKinds(`
      const { parseConfig } = await import('${DIST}config/load-config.js');
      const { Redactor } = await import('${DIST}config/redactor.js');
      const { ProbeScheduler } = await import('${DIST}agent/pipeline/probe-scheduler.js');
      const { SeriesRegistry, seriesSpecs } = await import('${DIST}agent/pipeline/series-registry.js');
      const { AgentMetrics } = await import('${DIST}agent/telemetry/metrics.js');
      const config = parseConfig([
        'environments:',
        '  blue: { url: "http://127.0.0.1:9/base" }',
        '  green: { url: "http://127.0.0.1:9/base" }',
        'probes:',
        '  - name: universe-endpoint',
        '    path: /api/universe',
        '    expect: { status: [200, 201], maxLatency: 500ms, json: [{ path: $.status, equals: healthy }], headers: [{ name: x-served-by, matches: "^blue-[0-9]+$" }] }',
      ].join('\\n'), {});
      const registry = new SeriesRegistry({
        scheduler: new ProbeScheduler({ now: () => Date.now(), onError: () => undefined }),
        metrics: new AgentMetrics({ now: Date.now, processMetrics: false }),
        redactor: Redactor.of(config),
        now: Date.now,
        runner: { run: () => Promise.resolve(undefined), skipped: () => undefined },
      });
      registry.add(config, seriesSpecs(config));
      const { key, target } = registry.entries[0];
      kind('key', key);
      kind('origin', target.origin);
      kind('path', target.path);
      kind('status check', target.checkStatus(201).text);
      kind('latency check', target.checkLatency(123.4).text);
      kind('body check', target.json.checks[0].check('healthy').text);
      kind('header check', target.headerChecks[0]({ 'x-served-by': 'blue-7' }).text);
    `);
    expect(kinds).toEqual({
      key: 'flat',
      origin: 'flat',
      path: 'flat',
      'status check': 'flat',
      'latency check': 'flat',
      'body check': 'flat',
      'header check': 'flat',
    });
  });
});
