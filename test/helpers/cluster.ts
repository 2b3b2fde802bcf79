/**
 * Several agents as child processes (the built CLI) sharing one PostgreSQL database, a pair of
 * simulators, and a fake traffic webhook that records each switch with its fencing token and, as
 * a fenced traffic layer should, refuses a token lower than the highest it has taken (409).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GreenlightEvent } from '../../agent/events/events.js';
import type { ClusterView } from '../../agent/cluster/cluster.js';
import { startSimulator, type Simulator } from '../../simulator/alphastack-simulator.js';
import { waitUntil } from './agent-harness.js';
import { startAgentProcess, stopProcess, type AgentProcess } from './cli.js';
import { tempDir, writeTempFile } from './tools.js';

export const CLUSTER_ADMIN = 'admin-token-cluster-tests-01';

export interface FencedSwitch {
  token: number;
  to: string;
  incident: string;
  accepted: boolean;
  at: number;
}

/** A traffic webhook that takes a switch only with a fencing token at least the highest it has seen. */
export interface FencedTarget {
  url: string;
  switches: FencedSwitch[];
  /** The switches it took. */
  accepted(): FencedSwitch[];
  /** Answer each request this long after it arrived (a slow traffic layer); 0: at once. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startFencedTarget(): Promise<FencedTarget> {
  const switches: FencedSwitch[] = [];
  let highest = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { to?: string; incident?: string };
      const token = Number(req.headers['greenlight-fencing-token']);
      const accepted = Number.isSafeInteger(token) && token >= highest;
      if (accepted) highest = token;
      switches.push({ token, to: body.to ?? '', incident: body.incident ?? '', accepted, at: Date.now() });
      const answer = () => res.writeHead(accepted ? 200 : 409, { 'content-type': 'application/json' }).end(accepted ? '{}' : '{"error":"stale fencing token"}');
      if (target.delayMs > 0) setTimeout(answer, target.delayMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const target: FencedTarget = {
    url: `http://127.0.0.1:${port}`,
    switches,
    accepted: () => switches.filter((s) => s.accepted),
    delayMs: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return target;
}

export interface ClusterWorld {
  blue: Simulator;
  green: Simulator;
  target: FencedTarget;
  agents: Map<string, AgentProcess>;
  databaseUrl: string;
  /** Start agent `name` (again, after a kill), on the world's database or on `via` (a proxy to it). */
  /** Start agent `name` (again), through `via` instead of the database's own address, with `env` added. */
  start(name: string, via?: string, env?: Record<string, string>): Promise<AgentProcess>;
  /** GET /api/v1/cluster of one agent. */
  view(name: string): Promise<ClusterView>;
  /** The agent that leads, once every running agent agrees on one. */
  leader(): Promise<string>;
  /** The shared history, read through one agent. */
  history(name: string): Promise<GreenlightEvent[]>;
  close(): Promise<void>;
}

/** A rule that rolls back when the universe probe of the live environment fails three times running. */
function config(world: { blue: Simulator; green: Simulator; target: FencedTarget }, dataDir: string, extra: string, page: boolean): string {
  return `listen: 127.0.0.1:0
dataDir: ${dataDir}
cluster:
  databaseUrl: \${GREENLIGHT_DATABASE_URL}
  nodeName: \${GREENLIGHT_NODE_NAME}
environments: { blue: { url: ${world.blue.url} }, green: { url: ${world.green.url} } }
activeEnvironment: \${GREENLIGHT_ACTIVE:-blue}
probeDefaults: { every: 100ms, timeout: 1s, jitter: 0 }
api: { adminToken: ${CLUSTER_ADMIN} }
${/^traffic:/m.test(extra) ? '' : `traffic: { type: webhook, url: ${world.target.url}/traffic, timeout: 5s, retries: 0 }\n`}actions:
  rollback: { type: rollback }${page ? '\n  page: { type: alert }' : ''}
rules:
  - name: universe-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: universe }, operator: greaterThanInclusive, value: 3 } ] }
    actions: [rollback${page ? ', page' : ''}]
${extra.replaceAll('{{target}}', world.target.url)}
probes:
  - { name: universe, path: /api/alphastack/universe, expect: { json: [ { path: $.universe, nonEmpty: true } ] } }
`;
}

/**
 * `extra`: top-level config keys (`{{target}}` in it: the fenced target's address; a `traffic:`
 * line replaces the default one); `page`: the rule also pages (an `alert` action, for an `alerts:` block in `extra`).
 */
export async function startCluster(databaseUrl: string, names: readonly string[], extra = '', page = false): Promise<ClusterWorld> {
  const [blue, green] = await Promise.all([startSimulator({ name: 'blue' }), startSimulator({ name: 'green' })]);
  const target = await startFencedTarget();
  const agents = new Map<string, AgentProcess>();
  const files = new Map<string, string>();
  const world: ClusterWorld = {
    blue,
    green,
    target,
    agents,
    databaseUrl,
    start: async (name, via, env = {}) => {
      const file = files.get(name) ?? writeTempFile(`${name}.yaml`, config({ blue, green, target }, tempDir(`greenlight-${name}-`), extra, page));
      files.set(name, file);
      const agent = await startAgentProcess(file, { GREENLIGHT_DATABASE_URL: via ?? databaseUrl, GREENLIGHT_NODE_NAME: name, ...env });
      agents.set(name, agent);
      return agent;
    },
    view: async (name) => agents.get(name)!.get<ClusterView>('/api/v1/cluster'),
    leader: async () => {
      let leader: string | null = null;
      await waitUntil(async () => {
        const running = [...agents.entries()].filter(([, agent]) => agent.child.exitCode === null && agent.child.signalCode === null);
        const views = await Promise.all(running.map(([name]) => world.view(name).catch(() => undefined)));
        leader = views[0]?.leader ?? null;
        return leader !== null && views.every((view) => view?.leader === leader);
      }, 'every running agent to agree on one leader');
      return leader!;
    },
    history: async (name) => {
      const all: GreenlightEvent[] = [];
      for (let since = 0; ;) {
        const page = await agents.get(name)!.get<{ events: GreenlightEvent[]; next: number }>(`/api/v1/events?since=${since}&limit=1000`);
        all.push(...page.events);
        if (page.events.length < 1000) return all;
        since = page.next;
      }
    },
    close: async () => {
      await Promise.all(
        [...agents.values()].map(async (agent) => {
          if (agent.child.signalCode === 'SIGSTOP' || agent.child.signalCode === null) agent.child.kill('SIGCONT');
          await stopProcess(agent.child, 'SIGKILL');
        }),
      );
      await Promise.all([blue.close(), green.close(), target.close()]);
    },
  };
  await Promise.all(names.map((name) => world.start(name)));
  return world;
}
