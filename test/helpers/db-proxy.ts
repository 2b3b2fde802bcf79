/**
 * A TCP proxy in front of PostgreSQL that the test controls: it can hold each of the database's
 * answers `delayMs` before the agent gets it (order kept: a slow database, or a slow network to
 * it), and cut every connection and refuse new ones (a partition) until `restore()`.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface DbProxy {
  /** The database URL through the proxy. */
  url: string;
  /** How long each answer of the database is held before the agent gets it (order kept). */
  delayMs: number;
  /** Drop every connection and refuse new ones until `restore()`. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startDbProxy(databaseUrl: string): Promise<DbProxy> {
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
    client.pipe(upstream);
    // Never before an earlier chunk: a shorter delay set later must not reorder the stream.
    let last = 0;
    upstream.on('data', (chunk: Buffer) => {
      last = Math.max(last, Date.now() + proxy.delayMs);
      if (last <= Date.now()) client.write(chunk);
      else setTimeout(() => client.write(chunk), last - Date.now());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((server.address() as { port: number }).port);
  const proxy: DbProxy = {
    url: url.toString(),
    delayMs: 0,
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
  return proxy;
}
