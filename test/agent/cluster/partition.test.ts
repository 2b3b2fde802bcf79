/**
 * One agent cut from the database while it leads (a TCP proxy the test controls sits between it
 * and PostgreSQL): it stops acting before its lease can lapse, another agent takes over and
 * switches once; when the link comes back the cut-off agent follows and its held events land.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../../helpers/agent-harness.js';
import { startCluster, type ClusterWorld } from '../../helpers/cluster.js';
import { usePostgres } from '../../helpers/postgres.js';

const postgres = usePostgres();
let world: ClusterWorld | undefined;
let proxy: Proxy | undefined;

afterEach(async () => {
  await world?.close();
  await proxy?.close();
  world = undefined;
  proxy = undefined;
});

interface Proxy {
  /** The database URL through the proxy. */
  url: string;
  /** Drop every connection and refuse new ones until `restore()`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

async function startProxy(databaseUrl: string): Promise<Proxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    cut: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore: () => {
      open = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('an agent cut from the database', () => {
  it('stops acting while it leads; another takes over and switches exactly once; it follows when the link is back', async () => {
    const databaseUrl = await postgres.server.database();
    proxy = await startProxy(databaseUrl);
    // `a` reaches the database through the proxy and starts first, so it leads.
    world = await startCluster(databaseUrl, []);
    const w = world;
    await w.start('a', proxy.url);
    await waitUntil(async () => (await w.view('a')).leader === 'a', 'a to lead');
    await Promise.all([w.start('b'), w.start('c')]);
    const before = (await w.view('a')).epoch;
    proxy.cut();
    w.blue.setFaults({ emptyUniverse: true });
    await waitUntil(() => w.target.accepted().length > 0, 'a switch by another agent');
    let leader = '';
    await waitUntil(async () => {
      leader = (await w.view('b')).leader ?? '';
      return leader === 'b' || leader === 'c';
    }, 'b to see b or c lead');
    await waitUntil(
      async () => (await (await fetch(`${w.agents.get('a')!.base}/metrics`)).text()).includes('greenlight_cluster_is_leader 0'),
      'a to stop acting',
    );
    proxy.restore();
    await waitUntil(
      async () => (await w.history(leader)).some((e) => e.type === 'cluster.leader_lost' && (e.data as { node?: string }).node === 'a'),
      'a to step down, in the history once its held events land',
    );
    await waitUntil(
      async () => (await w.agents.get('a')!.get<{ activeEnvironment: string }>('/api/v1/state')).activeEnvironment === 'green',
      'a to follow the switch',
    );
    const epoch = (await w.view(leader)).epoch;
    expect(epoch).toBeGreaterThan(before);
    expect(w.target.switches).toEqual([expect.objectContaining({ accepted: true, token: epoch, to: 'green' })]);
  });
});
