/**
 * The deployment kits in examples/ — docker-compose, the Kubernetes sidecar, the systemd unit,
 * the GitHub Actions workflows — checked as far as this machine allows (no Docker engine, no
 * cluster): they parse, have the structure their tools require, refer only to files that exist
 * and to services they define, use only the command line of CONTRACT.md, and greenlight's own
 * config in them validates. `systemd-analyze verify` and `kubeconform` run where installed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../agent/reload/agent-config.js';
import { tempDir } from '../helpers/tools.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const EXAMPLES = join(ROOT, 'examples');

type Obj = Record<string, any>; // parsed YAML, checked field by field
/** Merge keys (`<<: *anchor`) on: Compose applies them. */
const load = (path: string): Obj => parse(readFileSync(join(EXAMPLES, path), 'utf8'), { merge: true }) as Obj;

/** The command line of CONTRACT.md: each command's subcommands and options. */
const CLI: Record<string, { subcommands?: string[]; options: string[] }> = {
  run: { options: ['--config', '--dry-run'] },
  check: { options: ['--env', '--config', '--json'] },
  validate: { options: [] },
  schema: { options: [] },
  tail: { options: ['--url', '--since', '--type', '--json'] },
  rollback: { options: ['--reason', '--url'] },
  // --env, --reason and --json are flags' own documented options (README, Commands).
  flags: { subcommands: ['list', 'set', 'emergency-rollback'], options: ['--url', '--env', '--reason', '--json'] },
  promote: { options: ['--to', '--url', '--emergency', '--reason'] },
  demo: { options: [] },
};

/** The environment variables of CONTRACT.md's default config, plus what the Docker image and systemd set. */
const CONTRACT_VARIABLES = new Set([
  'GREENLIGHT_LISTEN',
  'GREENLIGHT_DATA_DIR',
  'BLUE_URL',
  'GREEN_URL',
  'GREENLIGHT_ACTIVE',
  'GREENLIGHT_PROBE_INTERVAL',
  'ADMIN_TOKEN',
  'ROLLBACK_TOKEN',
  'TRAFFIC_WEBHOOK_URL',
  'SLACK_WEBHOOK_URL',
  'DISCORD_WEBHOOK_URL',
  'PAGERDUTY_ROUTING_KEY',
  'PAGERDUTY_URL',
  'ALERT_WEBHOOK_URL',
  'RENDER_API_KEY',
  'RENDER_BLUE_SERVICE_ID',
  'RENDER_GREEN_SERVICE_ID',
  'GREENLIGHT_DATABASE_URL',
  'GREENLIGHT_NODE_NAME',
  'GREENLIGHT_ADVERTISE_URL',
]);

/** Problems with a greenlight invocation (`args` after the program), judged against CONTRACT.md. */
function cliProblems(args: string[]): string[] {
  const [command, ...rest] = args;
  const spec = command === undefined ? undefined : CLI[command];
  if (!spec) return [`unknown command ${JSON.stringify(command)} in greenlight ${args.join(' ')}`];
  const problems: string[] = [];
  if (spec.subcommands && !spec.subcommands.includes(rest[0] ?? ''))
    problems.push(`greenlight ${command} needs one of ${spec.subcommands.join('|')}, not ${rest[0]}`);
  for (const option of rest.filter((arg) => arg.startsWith('--'))) {
    if (!spec.options.includes(option.split('=')[0]!)) problems.push(`greenlight ${command}: ${option} is not one of its options (${spec.options.join(', ')})`);
  }
  return problems;
}

/** greenlight invocations in a shell script: the words after `greenlight`, quotes removed. */
function invocationsIn(script: string): string[][] {
  const found: string[][] = [];
  for (const match of script.matchAll(/(?:^|[\s;&|(])greenlight[ \t]+([^\n;&|)]*)/g)) {
    found.push(
      match[1]!
        .trim()
        .split(/\s+/)
        .map((word) => word.replace(/^["']|["']$/g, '')),
    );
  }
  return found;
}

describe('the GitHub Actions workflows', () => {
  const workflows = ['github-actions/blue-green-deploy.yml', 'github-actions/emergency-rollback.yml'];

  it.each(workflows)('%s has the structure GitHub requires and uses only the contract command line', (path) => {
    const workflow = load(path);
    expect(typeof workflow.name).toBe('string');
    expect(workflow.on).toBeTypeOf('object');
    expect(Object.keys(workflow.jobs).length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const [id, job] of Object.entries(workflow.jobs as Record<string, Obj>)) {
      expect(job['runs-on'], id).toBeTypeOf('string');
      expect(Array.isArray(job.steps), id).toBe(true);
      for (const step of job.steps as Obj[]) {
        const kinds = ['uses', 'run'].filter((key) => key in step);
        if (kinds.length !== 1) problems.push(`${id}: a step needs exactly one of uses, run: ${JSON.stringify(step)}`);
        if (step.uses !== undefined && !/^[\w.-]+\/[\w.-]+@v\d+$/.test(step.uses)) problems.push(`${id}: ${step.uses} is not pinned to a major version`);
        if (typeof step.run === 'string') {
          // Inputs reach scripts through env only: `${{ inputs.x }}` pasted into a script is an injection.
          if (/\$\{\{\s*(inputs|github\.event)\./.test(step.run)) problems.push(`${id}: an input is expanded inside a run script: ${step.run}`);
          for (const args of invocationsIn(step.run)) problems.push(...cliProblems(args));
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('the deploy workflow checks the target with greenlight check, then promotes it', () => {
    const workflow = load('github-actions/blue-green-deploy.yml');
    expect(workflow.on.workflow_dispatch.inputs.target.options).toEqual(['green', 'blue']);
    expect(workflow.concurrency['cancel-in-progress']).toBe(false);
    const steps = workflow.jobs.deploy.steps as Obj[];
    const at = (command: string) => steps.findIndex((step) => typeof step.run === 'string' && invocationsIn(step.run).some((args) => args[0] === command));
    expect(at('check')).toBeGreaterThan(-1);
    expect(at('promote')).toBeGreaterThan(at('check'));
    const promote = steps[at('promote')]!;
    expect(invocationsIn(promote.run)[0]).toEqual(['promote', '--to', '$TARGET', '--url', '$GREENLIGHT_URL']);
    expect(promote.env.ADMIN_TOKEN).toMatch(/^\$\{\{ secrets\.\w+ \}\}$/);
    expect(workflow.jobs.deploy.env.TARGET).toContain("'green'");
  });

  it('the emergency rollback runs only on workflow_dispatch, behind a typed confirmation', () => {
    const workflow = load('github-actions/emergency-rollback.yml');
    expect(Object.keys(workflow.on)).toEqual(['workflow_dispatch']);
    const { confirm, reason } = workflow.on.workflow_dispatch.inputs;
    expect(confirm).toMatchObject({ type: 'string', required: true });
    expect(confirm.description).toContain('Type ROLLBACK');
    expect(reason).toMatchObject({ type: 'string', required: true });
    const job = workflow.jobs.rollback;
    expect(job.env.CONFIRM).toBe('${{ inputs.confirm }}');
    const steps = job.steps as Obj[];
    expect(steps[0]!.run).toContain('if [ "$CONFIRM" != "ROLLBACK" ]');
    expect(steps[0]!.run).toContain('exit 1');
    const rollback = steps.find((step) => typeof step.run === 'string' && invocationsIn(step.run).some((args) => args[0] === 'rollback'))!;
    expect(rollback.env.ROLLBACK_TOKEN).toMatch(/^\$\{\{ secrets\.\w+ \}\}$/);
    expect(steps.indexOf(rollback)).toBeGreaterThan(0);
  });
});

describe('docker-compose.yml', () => {
  const compose = load('docker-compose.yml');
  const services = compose.services as Record<string, Obj>;

  it('has the agent, two simulators, Prometheus and Grafana, each with an image or a build', () => {
    expect(Object.keys(services).sort()).toEqual(['blue', 'grafana', 'green', 'greenlight', 'prometheus']);
    for (const [name, service] of Object.entries(services)) {
      expect(service.image ?? service.build, name).toBeDefined();
      if (service.build) {
        const context = join(EXAMPLES, service.build.context);
        expect(existsSync(join(context, service.build.dockerfile ?? 'Dockerfile')), `${name}: Dockerfile`).toBe(true);
      }
      if (typeof service.image === 'string' && !service.build) expect(service.image, name).toMatch(/^[\w./-]+:[\w.-]+$/);
    }
  });

  it('mounts only files that exist, and the volumes it declares', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('.')) expect(existsSync(join(EXAMPLES, source)), `${name}: ${source}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: volume ${source}`).toContain(source);
      }
    }
  });

  it('wires the agent to the simulators, Prometheus to the agent and Grafana to both', () => {
    const agent = services.greenlight!;
    expect(agent.command).toEqual(['run', '--config', 'config/greenlight.yaml']);
    expect(cliProblems(agent.command)).toEqual([]);
    for (const key of Object.keys(agent.environment)) expect(CONTRACT_VARIABLES, key).toContain(key);
    for (const env of ['blue', 'green']) {
      const simulator = services[env]!;
      expect(simulator.entrypoint).toEqual(['node', 'dist/simulator/alphastack-simulator.js']);
      expect(existsSync(join(ROOT, 'simulator', 'alphastack-simulator.ts'))).toBe(true);
      const port = simulator.command[simulator.command.indexOf('--port') + 1];
      expect(agent.environment[`${env.toUpperCase()}_URL`]).toBe(`http://${env}:${port}`);
    }
    // The image listens on 0.0.0.0:9464 (Dockerfile); Prometheus scrapes that.
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain('GREENLIGHT_LISTEN=0.0.0.0:9464');
    const prometheus = load('prometheus/prometheus.yml');
    expect(prometheus.scrape_configs[0].static_configs[0].targets).toEqual(['greenlight:9464']);
    expect(services.prometheus!.volumes).toContain('./prometheus/greenlight-rules.yml:/etc/prometheus/greenlight-rules.yml:ro');
    // Grafana: the dashboard lands where the provider reads, the data source is the prometheus service.
    const provider = load('grafana/provisioning/dashboards/greenlight.yml');
    const dashboardMount = (services.grafana!.volumes as string[]).find((v) => v.startsWith('./grafana/greenlight-dashboard.json:'))!;
    expect(dirname(dashboardMount.split(':')[1]!)).toBe(provider.providers[0].options.path);
    const datasource = load('grafana/provisioning/datasources/prometheus.yml');
    expect(datasource.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
  });
});

describe('the Kubernetes sidecar manifest', () => {
  const documents = parseAllDocuments(readFileSync(join(EXAMPLES, 'kubernetes', 'greenlight-sidecar.yaml'), 'utf8')).map((doc) => doc.toJS() as Obj);
  const byKind = (kind: string) => documents.filter((doc) => doc.kind === kind);

  it('is a list of named Kubernetes objects whose references resolve', () => {
    for (const doc of documents) {
      expect(doc.apiVersion, JSON.stringify(doc).slice(0, 80)).toMatch(/^(v1|apps\/v1)$/);
      expect(doc.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    const [deployment] = byKind('Deployment');
    const pod = deployment!.spec.template;
    expect(pod.metadata.labels).toMatchObject(deployment!.spec.selector.matchLabels);
    for (const service of byKind('Service')) expect(pod.metadata.labels).toMatchObject(service.spec.selector);
    const volumes = new Map((pod.spec.volumes as Obj[]).map((volume) => [volume.name, volume]));
    const configMaps = byKind('ConfigMap').map((doc) => doc.metadata.name);
    for (const volume of volumes.values()) if (volume.configMap) expect(configMaps).toContain(volume.configMap.name);
    for (const container of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])] as Obj[]) {
      expect(container.image, container.name).toMatch(/^[\w./-]+:[\w.-]+$/);
      for (const mount of container.volumeMounts ?? []) expect([...volumes.keys()], `${container.name}: ${mount.name}`).toContain(mount.name);
      const ports = (container.ports ?? []).map((port: Obj) => port.name);
      for (const probe of [container.livenessProbe, container.readinessProbe].filter(Boolean)) {
        const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
        expect(ports, `${container.name}: probe port ${port}`).toContain(port);
      }
    }
  });

  it("matches the Kubernetes API's schemas (kubernetes-models: types, required fields, enums)", () => {
    const models: Record<string, new (data: never) => { validate(): void }> = { Deployment, ConfigMap, Service };
    for (const doc of documents) {
      const Model = models[doc.kind];
      expect(Model, `a model for ${doc.kind}`).toBeDefined();
      expect(() => new Model!(doc as never).validate(), `${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
    // The check has teeth: a wrong type is caught.
    const broken = structuredClone(byKind('Deployment')[0]!);
    broken.spec.replicas = 'one';
    expect(() => new Deployment(broken as never).validate()).toThrow(/replicas must be integer/);
  });

  it('runs greenlight with its health endpoints as probes and a config that validates', () => {
    const pod = byKind('Deployment')[0]!.spec.template.spec;
    const greenlight = (pod.containers as Obj[]).find((c) => c.name === 'greenlight')!;
    expect(cliProblems(greenlight.args)).toEqual([]);
    expect(greenlight.livenessProbe.httpGet.path).toBe('/healthz');
    expect(greenlight.readinessProbe.httpGet.path).toBe('/readyz');
    expect(greenlight.ports[0].containerPort).toBe(9464);
    const env: Record<string, string> = {};
    // Secrets stand in as plausible values: a URL for *_URL, a token otherwise.
    for (const variable of greenlight.env as Obj[])
      env[variable.name] = variable.value ?? (variable.name.endsWith('_URL') ? 'https://hooks.example.invalid/secret' : 'a-secret-from-the-cluster');
    const configMap = byKind('ConfigMap').find((doc) => doc.metadata.name === 'greenlight-config')!;
    const config = parseAgentConfig(configMap.data['greenlight.yaml'], env);
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(config.traffic.type).toBe('nginx');
    const mountedAt = (greenlight.volumeMounts as Obj[]).find((m) => m.name === 'greenlight-config')!.mountPath;
    expect(greenlight.args).toContain(`${mountedAt}/greenlight.yaml`);
    expect((greenlight.volumeMounts as Obj[]).find((m) => m.mountPath === config.dataDir)).toBeDefined();
  });

  const kubeconform = spawnSync('sh', ['-c', 'command -v kubeconform']).status === 0;
  it.skipIf(!kubeconform)(`passes kubeconform -strict${kubeconform ? '' : ' (skipped: kubeconform is not installed)'}`, () => {
    const run = spawnSync('kubeconform', ['-strict', '-summary', join(EXAMPLES, 'kubernetes', 'greenlight-sidecar.yaml')], { encoding: 'utf8' });
    expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
  });
});

describe('the systemd unit', () => {
  it('runs the contract commands, with variables of the contract in its environment file', () => {
    const unit = readFileSync(join(EXAMPLES, 'systemd', 'greenlight.service'), 'utf8');
    for (const line of unit.split('\n').filter((l) => /^ExecStart(Pre)?=/.test(l))) {
      const args = line.split('=').slice(1).join('=').split(/\s+/);
      expect(args.slice(0, 2), line).toEqual(['/usr/bin/node', '/opt/greenlight/bin/greenlight.js']);
      expect(cliProblems(args.slice(2)), line).toEqual([]);
    }
    expect(unit).toContain('RestartPreventExitStatus=2');
    const variables = readFileSync(join(EXAMPLES, 'systemd', 'greenlight.env'), 'utf8')
      .split('\n')
      .map((line) => /^#?([A-Z_]+)=/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined);
    expect(variables.length).toBeGreaterThan(4);
    for (const name of variables) expect(CONTRACT_VARIABLES, name).toContain(name);
  });

  const analyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;
  it.skipIf(!analyze)(`passes systemd-analyze verify${analyze ? '' : ' (skipped: systemd-analyze is not installed)'}`, () => {
    // /opt/greenlight is where the unit expects the package; here it is this checkout.
    const unit = readFileSync(join(EXAMPLES, 'systemd', 'greenlight.service'), 'utf8').replaceAll('/opt/greenlight', ROOT);
    const file = join(tempDir('greenlight-systemd-'), 'greenlight.service');
    writeFileSync(file, unit);
    const run = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
    expect(`${run.stdout}${run.stderr}`.trim()).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('the cluster kits', () => {
  const defaultConfig = readFileSync(join(ROOT, 'config', 'greenlight.yaml'), 'utf8');

  it('Compose: PostgreSQL and two agents with their own names and advertised URLs, on the default config, which validates', () => {
    const compose = load('docker-compose.cluster.yml');
    const agents = Object.entries(compose.services as Record<string, Obj>).filter(([name]) => name.startsWith('greenlight-'));
    expect(agents.map(([name]) => name)).toEqual(['greenlight-1', 'greenlight-2']);
    expect(compose.services.postgres.image).toMatch(/^postgres:/);
    for (const [name, service] of agents) {
      expect(cliProblems(service.command)).toEqual([]);
      expect(service.depends_on).toContain('postgres');
      expect(service.environment).toMatchObject({ GREENLIGHT_NODE_NAME: name, GREENLIGHT_ADVERTISE_URL: `http://${name}:9464` });
      for (const variable of Object.keys(service.environment as Obj)) expect(CONTRACT_VARIABLES, variable).toContain(variable);
      const env = Object.fromEntries(
        Object.entries(service.environment as Record<string, string>).map(([key, value]) => [
          key,
          value.replace(/\$\{[^}]*:-\}/g, '').replace(/\$\{[^}]*\}/g, 'a-secret-value-0123'),
        ]),
      );
      const config = parseAgentConfig(defaultConfig, env);
      expect(config.cluster).toMatchObject({ nodeName: name, advertiseUrl: `http://${name}:9464` });
      expect(config.cluster.databaseUrl).toMatch(/^postgres:\/\/greenlight:.*@postgres:5432\/greenlight$/);
    }
  });

  it('Kubernetes: a two-replica Deployment with a PodDisruptionBudget that keeps one, matching the API schemas', () => {
    const documents = parseAllDocuments(readFileSync(join(EXAMPLES, 'kubernetes', 'greenlight-cluster.yaml'), 'utf8')).map((doc) => doc.toJS() as Obj);
    const models: Record<string, new (data: never) => { validate(): void }> = { Deployment, PodDisruptionBudget, Service };
    for (const doc of documents) expect(() => new models[doc.kind]!(doc as never).validate(), doc.kind).not.toThrow();
    const deployment = documents.find((doc) => doc.kind === 'Deployment')!;
    const pdb = documents.find((doc) => doc.kind === 'PodDisruptionBudget')!;
    expect(deployment.spec.replicas).toBe(2);
    expect(pdb.spec).toMatchObject({ minAvailable: 1, selector: deployment.spec.selector });
    const container = deployment.spec.template.spec.containers[0] as Obj;
    expect(cliProblems(container.args)).toEqual([]);
    const names = (container.env as Obj[]).map((variable) => variable.name as string);
    expect(names).toEqual(expect.arrayContaining(['GREENLIGHT_DATABASE_URL', 'GREENLIGHT_NODE_NAME', 'GREENLIGHT_ADVERTISE_URL']));
    for (const name of names.filter((n) => n !== 'POD_IP')) expect(CONTRACT_VARIABLES, name).toContain(name);
  });
});
