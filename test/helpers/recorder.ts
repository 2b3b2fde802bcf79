import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  path: string;
  /** The body parsed as JSON, or its text when it is not JSON. */
  body: unknown;
  /** The body as it came (JSON parsed keeps only the last of a key named twice). */
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * A local HTTP server that records every request and answers what `respond` says (default 200).
 * Stands in for the traffic webhook and alert receivers.
 */
export async function startRecorder(
  respond: (path: string) => number | 'hang' = () => 200,
): Promise<{ url: string; requests: Recorded[]; setResponder: (r: typeof respond) => void; close: () => Promise<void> }> {
  const requests: Recorded[] = [];
  let responder = respond;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text
      }
      requests.push({ path: req.url ?? '/', body, text, headers: req.headers });
      const status = responder(req.url ?? '/');
      if (status === 'hang') return;
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setResponder: (r) => (responder = r),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
