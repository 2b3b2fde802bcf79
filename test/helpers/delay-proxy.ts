/**
 * A TCP proxy in front of PostgreSQL that holds each of the database's answers `delayMs` before
 * the agent gets it (order kept): a slow database, or a slow network to it, as the agent sees one.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  /** The database URL through the proxy. */
  url: string;
  /** How long each answer of the database is held before the agent gets it (order kept). */
  delayMs: number;
  close(): Promise<void>;
}

export async function startDelayProxy(databaseUrl: string): Promise<DelayProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
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
      setTimeout(() => client.write(chunk), last - Date.now());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.port = String((server.address() as { port: number }).port);
  const proxy: DelayProxy = {
    url: url.toString(),
    delayMs: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
