/**
 * A local fake of Cloudflare's purge-cache API as documented
 * (https://developers.cloudflare.com/api/resources/cache/methods/purge/): POST
 * /client/v4/zones/{zone_id}/purge_cache with `Authorization: Bearer <token>` and one of
 * {"purge_everything": true}, {"files": [...]}, {"prefixes": [...]}, {"hosts": [...]}, {"tags": [...]};
 * the answer is {"success", "errors": [{code, message}], "messages", "result": {"id"}}.
 * It records every request as it came, and answers what the script says next (default success).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PurgeCall {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** The body as sent (text), and parsed. */
  text: string;
  body: unknown;
}

/** What to answer: success, success after a delay, a documented failure (HTTP status and Cloudflare error; `success: false` with HTTP 200 too), or no answer at all. */
export type PurgeAnswer = 'ok' | 'hang' | { delayMs: number } | { status: number; code: number; message: string };

export interface FakeCloudflare {
  /** The `baseUrl` to configure: `http://127.0.0.1:<port>/client/v4`. */
  baseUrl: string;
  calls: PurgeCall[];
  /** Answers for the next requests, in order; after them, success. */
  script(...answers: PurgeAnswer[]): void;
  close(): Promise<void>;
}

const PATH = /^\/client\/v4\/zones\/([0-9a-f]{32})\/purge_cache$/;
const KINDS = ['purge_everything', 'files', 'prefixes', 'hosts', 'tags'];

export async function startFakeCloudflare(token: string): Promise<FakeCloudflare> {
  const calls: PurgeCall[] = [];
  let answers: PurgeAnswer[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      calls.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization, contentType: req.headers['content-type'], text, body });
      const send = (status: number, success: boolean, errors: { code: number; message: string }[], result: unknown = null) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ success, errors, messages: [], result }));
      const zone = PATH.exec(req.url ?? '')?.[1];
      if (req.method !== 'POST' || zone === undefined) return send(404, false, [{ code: 7003, message: 'Could not route to the requested path' }]);
      if (req.headers.authorization !== `Bearer ${token}`) return send(403, false, [{ code: 10000, message: 'Authentication error' }]);
      const keys = body !== null && typeof body === 'object' ? Object.keys(body) : [];
      if (keys.length !== 1 || !KINDS.includes(keys[0]!))
        return send(400, false, [{ code: 1012, message: 'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"' }]);
      const answer = answers.shift() ?? 'ok';
      if (answer === 'hang') return;
      if (answer === 'ok') return send(200, true, [], { id: zone });
      if ('delayMs' in answer) return void setTimeout(() => send(200, true, [], { id: zone }), answer.delayMs);
      return send(answer.status, false, [{ code: answer.code, message: answer.message }]);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/client/v4`,
    calls,
    script: (...next) => void (answers = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
