import { Pool } from 'undici';

/** One request of a client loop: when it was sent and answered, and what came back. */
export interface ClientRequest {
  at: number;
  doneAt: number;
  status: number | null;
  body: string;
  error: string | null;
}

/**
 * Clients in front of a traffic switch: `clients` sequential keep-alive loops GETting `path`
 * every 20 ms until stopped. Like a browser, each re-sends an idempotent GET once when the
 * server closed an idle keep-alive connection as the request went out — nginx's old workers
 * close theirs on a reload, and that race is HTTP/1.1's, not the switch's. `resent` counts them.
 */
export function startClientLoad(url: string, path: string, clients = 8): { requests: ClientRequest[]; resent: () => number; stop: () => Promise<void> } {
  const pool = new Pool(url, { connections: clients, keepAliveTimeout: 30_000 });
  const requests: ClientRequest[] = [];
  let resent = 0;
  let running = true;
  let stopped: Promise<void> | undefined;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      const at = performance.now();
      for (let attempt = 1; ; attempt++) {
        try {
          const response = await pool.request({ path, method: 'GET' });
          const body = await response.body.text();
          requests.push({ at, doneAt: performance.now(), status: response.statusCode, body, error: null });
          break;
        } catch (error) {
          if (attempt === 1 && /other side closed|ECONNRESET|EPIPE|socket/i.test(`${(error as Error).message} ${(error as { code?: string }).code ?? ''}`)) {
            resent++;
            continue;
          }
          requests.push({ at, doneAt: performance.now(), status: null, body: '', error: (error as Error).message });
          break;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  return {
    requests,
    resent: () => resent,
    stop: () => {
      running = false;
      stopped ??= Promise.all(loops).then(() => pool.close());
      return stopped;
    },
  };
}
