import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/reload/agent-config.js';
import { ConfigError, formatConfigIssue } from '../../config/errors.js';
import { tempDir } from '../helpers/tools.js';

const MAIN = `environments:
  blue: { url: http://127.0.0.1:8081 }
  green: { url: http://127.0.0.1:8082 }
actions:
  page: { type: alert }
rules:
  - { name: main-rule, severity: warning, when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.5 } ] } }
ruleFiles: [rules/*.yaml]
probes:
  - { name: health, path: /api/health }
`;

function setup(files: Record<string, string>): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'rules'));
  writeFileSync(join(dir, 'greenlight.yaml'), MAIN);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'rules', name), text);
  return join(dir, 'greenlight.yaml');
}

async function issuesOf(path: string): Promise<string[]> {
  const error = await loadAgentConfig(path, {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).issues.map(formatConfigIssue);
}

describe('ruleFiles', () => {
  it('adds the rules of every matching file, in file name order, after the config’s own', async () => {
    const path = setup({
      'b.yaml':
        'rules:\n  - { name: from-b, severity: critical, when: { all: [ { fact: consecutiveFailures, operator: greaterThan, value: 3 } ] }, actions: [page] }\n',
      'a.yaml': 'rules:\n  - { name: from-a, severity: warning, for: 30s, when: { all: [ { fact: probeUp, operator: equal, value: false } ] } }\n',
      'notes.txt': 'not a rule file',
    });
    const config = await loadAgentConfig(path, {});
    expect(config.rules.map((rule) => rule.name)).toEqual(['main-rule', 'from-a', 'from-b']);
    expect(config.rules[1]!.for).toBe(30_000);
  });

  it('reports a problem in a rule file with that file, the key path inside it and its line', async () => {
    const path = setup({
      'a.yaml':
        'rules:\n  - name: ok-rule\n    severity: warning\n    when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] }\n  - name: bad-rule\n    severity: fatal\n    when: { all: [ { fact: errorRate, operator: greaterThan, value: 0.1 } ] }\n',
    });
    const issues = await issuesOf(path);
    expect(issues).toContain('rules/a.yaml: rules[1].severity: string "fatal" is not one of warning, critical (line 6)');
  });

  it('checks the facts of a rule file’s rules against the catalog, naming the file', async () => {
    const path = setup({
      'a.yaml': 'rules:\n  - name: bad-fact\n    severity: warning\n    when: { all: [ { fact: errorRate, operator: greaterThan, value: 0.1 } ] }\n',
    });
    const issues = await issuesOf(path);
    expect(issues.join('\n')).toMatch(/^rules\/a\.yaml: rules\[0\]\.when\.all\[0\]\.fact: "errorRate" is not a fact; .* \(line 4\)$/m);
  });

  it('refuses other keys in a rule file, and a pattern that matches nothing', async () => {
    expect(await issuesOf(setup({ 'a.yaml': 'rules: []\nprobes: []\n' }))).toEqual([
      'rules/a.yaml: probes: unknown key; a rule file holds only rules: [...] (line 2)',
    ]);
    const dir = tempDir();
    writeFileSync(join(dir, 'greenlight.yaml'), MAIN);
    const issues = await issuesOf(join(dir, 'greenlight.yaml'));
    expect(issues[0]).toMatch(/^ruleFiles\[0\]: "rules\/\*\.yaml" matches no file/);
  });

  it('reports a YAML syntax error of the config itself first, not the rule files it would name', async () => {
    const dir = tempDir();
    // A duplicate key is a syntax error here; the pattern matches no file either.
    writeFileSync(join(dir, 'greenlight.yaml'), MAIN.replace('probes:\n', 'probes:\n  - { name: health, path: /a }\nprobes:\n'));
    const issues = await issuesOf(join(dir, 'greenlight.yaml'));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^probes: YAML syntax: .*[Uu]nique/);
  });

  it('refuses a rule name used twice across files', async () => {
    const rule = (name: string) =>
      `rules:\n  - { name: ${name}, severity: warning, when: { all: [ { fact: errorRatio, operator: greaterThan, value: 0.1 } ] } }\n`;
    const issues = await issuesOf(setup({ 'a.yaml': rule('twice'), 'b.yaml': rule('twice') }));
    expect(issues.join('\n')).toContain('rules/b.yaml: rules[0].name: "twice" is already the name of rules[1]; rule names must be unique');
  });
});
