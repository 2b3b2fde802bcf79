/**
 * The one HTTP listener: /metrics, /healthz, /readyz and the JSON API. Plain node:http; every
 * route answers JSON (or the exposition format) and an unknown route a 404 naming the routes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Agent } from './agent.js';

export interface HttpServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

const ROUTES = ['GET /metrics', 'GET /healthz', 'GET /readyz', 'GET /api/v1/state'];

export async function startHttpServer(options: { listen: { host: string; port: number }; agent: Agent; logger: Logger }): Promise<HttpServer> {
  const { agent, logger } = options;
  const routes: Record<string, Handler> = {
    '/metrics': async (req, res) => {
      const openMetrics = (req.headers.accept ?? '').includes('application/openmetrics-text');
      const { contentType, body } = await agent.metrics.render(openMetrics);
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
    },
    '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    '/readyz': (_req, res) => {
      const ready = agent.ready;
      sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'starting', checks: { config: 'loaded', firstProbeRound: ready ? 'done' : 'pending' } });
    },
    '/api/v1/state': (_req, res) => sendJson(res, 200, agent.state()),
  };

  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const handler = routes[path];
    if (!handler) {
      sendJson(res, 404, { error: `no route ${req.method} ${path}; routes: ${ROUTES.join(', ')}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: `${path} answers GET only, not ${req.method}` });
      return;
    }
    Promise.resolve(handler(req, res)).catch((error: unknown) => {
      logger.error({ err: error, path }, 'request handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the agent log' });
      else res.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new Error(`cannot listen on ${options.listen.host}:${options.listen.port}: the port is already in use; stop the other process or set GREENLIGHT_LISTEN`, { cause: error })
          : new Error(`cannot listen on ${options.listen.host}:${options.listen.port}: ${error.message}`, { cause: error }),
      );
    };
    server.once('error', onError);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const info = server.address() as AddressInfo;
  logger.info({ host: info.address, port: info.port }, `listening on ${info.address}:${info.port}`);

  return {
    address: { host: info.address, port: info.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Scrapers keep connections alive; do not wait for them to go away by themselves.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1_000).unref();
      }),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(text);
}
