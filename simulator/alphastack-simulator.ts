/**
 * A simulator of one AlphaStack V3 environment (blue or green): the four app endpoints greenlight
 * probes, plus a `/__faults` API to make the environment slow, flaky, hung or unhealthy on demand.
 * Used by tests, benchmarks and `greenlight demo`, so the request path is kept cheap: bodies are
 * rendered at most once per second (or when faults change) and served from cached Buffers.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** Faults the simulator can inject. App endpoints are affected; `/__faults` never is. */
export interface SimulatorFaults {
  /** Delay in ms (timer, not blocking) before answering every app request. */
  latencyMs: number;
  /** 0..1: this fraction of app requests answers 500 `{"error":"simulated failure"}`. */
  errorRatio: number;
  /** App requests never answer: the socket stays open and nothing is written. */
  hang: boolean;
  /** 0..100, reported as `/api/health` `memory.percent`. */
  memoryPercent: number;
  /** 0..100, reported as `/api/health` `cpu.percent`. */
  cpuPercent: number;
  /** `/api/alphastack/universe` answers an empty universe. */
  emptyUniverse: boolean;
  /** App endpoints answer 200 application/json with a truncated body such as `{"status":"heal`. */
  invalidJson: boolean;
  /** `/api/health` `status` field. */
  status: 'healthy' | 'degraded' | 'unhealthy';
  /** `/api/health` `database.connected`. */
  databaseConnected: boolean;
}

/** Options for {@link startSimulator}. */
export interface SimulatorOptions {
  /** Environment name reported by `/api/health` (default `alphastack`). */
  name?: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Initial faults, validated like {@link Simulator.setFaults}. */
  faults?: Partial<SimulatorFaults>;
  /** Source of randomness for `errorRatio`, [0, 1) like Math.random (the default). */
  random?: () => number;
  /** Serve HTTPS with this certificate (chain) and key, both PEM; default plain HTTP. */
  tls?: SimulatorTls;
}

/** A certificate (PEM, the leaf first, then any intermediates) and its private key (PEM). */
export interface SimulatorTls {
  cert: string | Buffer;
  key: string | Buffer;
}

/** A running simulator. */
export interface Simulator {
  readonly name: string;
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8081` (`https://` when serving TLS). */
  readonly url: string;
  readonly port: number;
  /** A copy of the current faults. */
  faults(): SimulatorFaults;
  /** Validates and merges `patch`; throws a RangeError naming the bad field and changes nothing. */
  setFaults(patch: Partial<SimulatorFaults>): SimulatorFaults;
  /** Restores {@link DEFAULT_FAULTS}. */
  resetFaults(): SimulatorFaults;
  /** App requests received (every path except `/__faults`, including hung and 404 ones). */
  requestCount(): number;
  /** Serve another certificate from the next TLS handshake on (a renewal); throws on a plain-HTTP simulator. */
  setCertificate(tls: SimulatorTls): void;
  /** Stops listening and destroys every open socket, hung ones included. Idempotent. */
  close(): Promise<void>;
}

/** The faults of a healthy environment. */
export const DEFAULT_FAULTS: Readonly<SimulatorFaults> = Object.freeze({
  latencyMs: 0,
  errorRatio: 0,
  hang: false,
  memoryPercent: 41.5,
  cpuPercent: 12.0,
  emptyUniverse: false,
  invalidJson: false,
  status: 'healthy',
  databaseConnected: true,
});

/** Version reported by `/api/health`. */
const APP_VERSION = '3.2.1';
const TOTAL_MEMORY_MB = 8192;
const MAX_LATENCY_MS = 600_000;
const MAX_FAULT_BODY_BYTES = 64 * 1024;
/** Length of the invalidJson prefix; `{"status":"heal` for the health body. */
const TRUNCATED_LENGTH = 15;
const STATUSES: readonly SimulatorFaults['status'][] = ['healthy', 'degraded', 'unhealthy'];
const FAULT_KEYS = Object.keys(DEFAULT_FAULTS) as (keyof SimulatorFaults)[];

type AppRoute = 'health' | 'universe' | 'discoveries' | 'positions';

const APP_ROUTES: ReadonlyMap<string, AppRoute> = new Map([
  ['/api/health', 'health'],
  ['/api/alphastack/universe', 'universe'],
  ['/api/discoveries', 'discoveries'],
  ['/api/portfolio/positions', 'positions'],
]);

interface Ticker {
  symbol: string;
  name: string;
  sector: string;
  price: number;
  changePercent: number;
  volume: number;
  score: number;
}

const UNIVERSE: readonly Ticker[] = [
  { symbol: 'NVDA', name: 'NVIDIA Corp.', sector: 'Technology', price: 121.44, changePercent: 3.12, volume: 312_480_000, score: 94.2 },
  { symbol: 'AAPL', name: 'Apple Inc.', sector: 'Technology', price: 228.02, changePercent: 0.84, volume: 48_210_000, score: 88.7 },
  { symbol: 'MSFT', name: 'Microsoft Corp.', sector: 'Technology', price: 417.13, changePercent: 0.41, volume: 19_870_000, score: 87.9 },
  { symbol: 'AMD', name: 'Advanced Micro Devices', sector: 'Technology', price: 158.36, changePercent: 2.27, volume: 41_050_000, score: 85.1 },
  { symbol: 'META', name: 'Meta Platforms Inc.', sector: 'Communication Services', price: 563.33, changePercent: 1.06, volume: 11_340_000, score: 84.6 },
  { symbol: 'AMZN', name: 'Amazon.com Inc.', sector: 'Consumer Discretionary', price: 186.51, changePercent: -0.32, volume: 37_920_000, score: 82.3 },
  { symbol: 'GOOGL', name: 'Alphabet Inc.', sector: 'Communication Services', price: 163.24, changePercent: 0.58, volume: 22_610_000, score: 81.8 },
  { symbol: 'AVGO', name: 'Broadcom Inc.', sector: 'Technology', price: 172.9, changePercent: 1.74, volume: 24_300_000, score: 80.4 },
  { symbol: 'TSLA', name: 'Tesla Inc.', sector: 'Consumer Discretionary', price: 249.83, changePercent: -1.91, volume: 86_770_000, score: 78.9 },
  { symbol: 'PLTR', name: 'Palantir Technologies', sector: 'Technology', price: 41.62, changePercent: 4.35, volume: 63_150_000, score: 77.5 },
  { symbol: 'JPM', name: 'JPMorgan Chase & Co.', sector: 'Financials', price: 221.49, changePercent: 0.22, volume: 8_940_000, score: 74.8 },
  { symbol: 'LLY', name: 'Eli Lilly and Co.', sector: 'Health Care', price: 902.1, changePercent: -0.67, volume: 3_120_000, score: 73.6 },
  { symbol: 'V', name: 'Visa Inc.', sector: 'Financials', price: 283.17, changePercent: 0.35, volume: 5_480_000, score: 71.2 },
  { symbol: 'XOM', name: 'Exxon Mobil Corp.', sector: 'Energy', price: 118.74, changePercent: -0.48, volume: 14_260_000, score: 69.9 },
  { symbol: 'UNH', name: 'UnitedHealth Group', sector: 'Health Care', price: 587.6, changePercent: 0.12, volume: 2_910_000, score: 68.4 },
  { symbol: 'COST', name: 'Costco Wholesale Corp.', sector: 'Consumer Staples', price: 889.45, changePercent: 0.29, volume: 1_760_000, score: 67.1 },
  { symbol: 'NFLX', name: 'Netflix Inc.', sector: 'Communication Services', price: 707.35, changePercent: 1.48, volume: 2_640_000, score: 66.5 },
  { symbol: 'CRWD', name: 'CrowdStrike Holdings', sector: 'Technology', price: 289.92, changePercent: 2.63, volume: 4_380_000, score: 65.8 },
  { symbol: 'CAT', name: 'Caterpillar Inc.', sector: 'Industrials', price: 389.21, changePercent: -0.15, volume: 2_270_000, score: 63.4 },
  { symbol: 'NEE', name: 'NextEra Energy Inc.', sector: 'Utilities', price: 83.56, changePercent: 0.73, volume: 9_810_000, score: 61.9 },
];

const DISCOVERIES = [
  { symbol: 'PLTR', signal: 'momentum', confidence: 0.82, priceAtDetection: 40.88, targetPrice: 46.5, horizonDays: 10, detectedMinutesAgo: 4 },
  { symbol: 'NVDA', signal: 'volume_breakout', confidence: 0.77, priceAtDetection: 119.6, targetPrice: 131.0, horizonDays: 5, detectedMinutesAgo: 12 },
  { symbol: 'CRWD', signal: 'momentum', confidence: 0.71, priceAtDetection: 284.1, targetPrice: 305.0, horizonDays: 14, detectedMinutesAgo: 27 },
  { symbol: 'TSLA', signal: 'mean_reversion', confidence: 0.64, priceAtDetection: 251.9, targetPrice: 268.0, horizonDays: 7, detectedMinutesAgo: 41 },
] as const;

const POSITIONS = [
  { symbol: 'AAPL', quantity: 150, avgPrice: 189.34 },
  { symbol: 'NVDA', quantity: 400, avgPrice: 98.12 },
  { symbol: 'MSFT', quantity: 60, avgPrice: 402.55 },
  { symbol: 'JPM', quantity: 80, avgPrice: 204.1 },
  { symbol: 'XOM', quantity: 120, avgPrice: 121.9 },
] as const;

const PRICE_BY_SYMBOL: ReadonlyMap<string, number> = new Map(UNIVERSE.map((t) => [t.symbol, t.price]));

const NOT_FOUND_BODY = Buffer.from('{"error":"not found"}');
const FAILURE_BODY = Buffer.from('{"error":"simulated failure"}');
const METHOD_NOT_ALLOWED_BODY = Buffer.from('{"error":"method not allowed"}');

const round2 = (n: number): number => Math.round(n * 100) / 100;

/**
 * Validates a fault patch (from code or a `/__faults` body). Returns only the keys present with a
 * defined value; throws a RangeError naming the first bad field.
 */
function validateFaultPatch(input: unknown): Partial<SimulatorFaults> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new RangeError('faults must be a JSON object such as {"latencyMs":200}');
  }
  const patch: Partial<Record<keyof SimulatorFaults, unknown>> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!(FAULT_KEYS as string[]).includes(key)) {
      throw new RangeError(`unknown fault "${key}" (known: ${FAULT_KEYS.join(', ')})`);
    }
    if (value === undefined) continue;
    const field = key as keyof SimulatorFaults;
    const shown = JSON.stringify(value) ?? String(value);
    switch (field) {
      case 'latencyMs':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LATENCY_MS) {
          throw new RangeError(`latencyMs must be a number of milliseconds between 0 and ${MAX_LATENCY_MS} (got ${shown})`);
        }
        break;
      case 'errorRatio':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
          throw new RangeError(`errorRatio must be a number between 0 and 1 (got ${shown})`);
        }
        break;
      case 'memoryPercent':
      case 'cpuPercent':
        if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
          throw new RangeError(`${field} must be a number between 0 and 100 (got ${shown})`);
        }
        break;
      case 'status':
        if (typeof value !== 'string' || !(STATUSES as string[]).includes(value)) {
          throw new RangeError(`status must be one of ${STATUSES.join(', ')} (got ${shown})`);
        }
        break;
      case 'hang':
      case 'emptyUniverse':
      case 'invalidJson':
      case 'databaseConnected':
        if (typeof value !== 'boolean') {
          throw new RangeError(`${field} must be a boolean (got ${shown})`);
        }
        break;
    }
    patch[field] = value;
  }
  return patch as Partial<SimulatorFaults>;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function send(res: ServerResponse, status: number, body: Buffer, extraHeaders?: Record<string, string>): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(body);
}

/** Starts one simulated AlphaStack environment; resolves once it is listening. */
export function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const name = options.name ?? 'alphastack';
  const host = options.host ?? '127.0.0.1';
  const requestedPort = options.port ?? 0;
  const random = options.random ?? Math.random;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65_535) {
    return Promise.reject(new RangeError(`port must be an integer between 0 and 65535 (got ${requestedPort})`));
  }
  let faults: SimulatorFaults;
  try {
    faults = { ...DEFAULT_FAULTS, ...validateFaultPatch(options.faults ?? {}) };
  } catch (error) {
    return Promise.reject(error);
  }

  const startedAt = Date.now();
  /** Bumped on every fault change so cached bodies are re-rendered. */
  let faultsVersion = 0;
  let requests = 0;
  let closing: Promise<void> | undefined;
  const sockets = new Set<Socket>();
  const pendingDelays = new Set<NodeJS.Timeout>();
  const cache = new Map<AppRoute, { second: number; version: number; body: Buffer }>();

  const render = (route: AppRoute, second: number): unknown => {
    const nowIso = new Date(second * 1000).toISOString();
    switch (route) {
      case 'health':
        return {
          status: faults.status,
          environment: name,
          version: APP_VERSION,
          uptimeSeconds: Math.max(0, second - Math.floor(startedAt / 1000)),
          database: { connected: faults.databaseConnected, latencyMs: faults.databaseConnected ? 3 : null },
          memory: {
            percent: faults.memoryPercent,
            usedMb: Math.round((TOTAL_MEMORY_MB * faults.memoryPercent) / 100),
            totalMb: TOTAL_MEMORY_MB,
          },
          cpu: { percent: faults.cpuPercent },
          timestamp: nowIso,
        };
      case 'universe': {
        const universe = faults.emptyUniverse ? [] : UNIVERSE.map((ticker, i) => ({ rank: i + 1, ...ticker }));
        return { universe, generatedAt: nowIso, count: universe.length };
      }
      case 'discoveries':
        return {
          discoveries: DISCOVERIES.map(({ detectedMinutesAgo, ...d }) => ({
            ...d,
            detectedAt: new Date(second * 1000 - detectedMinutesAgo * 60_000).toISOString(),
          })),
          generatedAt: nowIso,
        };
      case 'positions': {
        const positions = POSITIONS.map((p) => {
          const currentPrice = PRICE_BY_SYMBOL.get(p.symbol) ?? p.avgPrice;
          return {
            ...p,
            currentPrice,
            marketValue: round2(p.quantity * currentPrice),
            unrealizedPnl: round2(p.quantity * (currentPrice - p.avgPrice)),
          };
        });
        return {
          positions,
          totalMarketValue: round2(positions.reduce((sum, p) => sum + p.marketValue, 0)),
          asOf: nowIso,
        };
      }
    }
  };

  const bodyFor = (route: AppRoute): Buffer => {
    const second = Math.floor(Date.now() / 1000);
    const hit = cache.get(route);
    if (hit && hit.second === second && hit.version === faultsVersion) return hit.body;
    const body = Buffer.from(JSON.stringify(render(route, second)));
    cache.set(route, { second, version: faultsVersion, body });
    return body;
  };

  const answerApp = (res: ServerResponse, route: AppRoute | undefined): void => {
    if (route === undefined) {
      send(res, 404, NOT_FOUND_BODY);
      return;
    }
    if (faults.errorRatio > 0 && random() < faults.errorRatio) {
      send(res, 500, FAILURE_BODY);
      return;
    }
    const body = bodyFor(route);
    send(res, 200, faults.invalidJson ? body.subarray(0, Math.min(TRUNCATED_LENGTH, body.length - 1)) : body);
  };

  const handleApp = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    requests++;
    if (faults.hang) return;
    const route = APP_ROUTES.get(path);
    if (route !== undefined && req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, METHOD_NOT_ALLOWED_BODY, { allow: 'GET, HEAD' });
      return;
    }
    if (faults.latencyMs <= 0) {
      answerApp(res, route);
      return;
    }
    const timer = setTimeout(() => {
      pendingDelays.delete(timer);
      answerApp(res, route);
    }, faults.latencyMs);
    pendingDelays.add(timer);
    res.once('close', () => {
      clearTimeout(timer);
      pendingDelays.delete(timer);
    });
  };

  const setFaults = (patch: Partial<SimulatorFaults>): SimulatorFaults => {
    faults = { ...faults, ...validateFaultPatch(patch) };
    faultsVersion++;
    return { ...faults };
  };

  const resetFaults = (): SimulatorFaults => {
    faults = { ...DEFAULT_FAULTS };
    faultsVersion++;
    return { ...faults };
  };

  const sendJson = (res: ServerResponse, status: number, value: unknown): void => {
    send(res, status, Buffer.from(JSON.stringify(value)));
  };

  const handleFaults = (req: IncomingMessage, res: ServerResponse): void => {
    switch (req.method) {
      case 'GET':
        sendJson(res, 200, faults);
        return;
      case 'DELETE':
        sendJson(res, 200, resetFaults());
        return;
      case 'POST':
        break;
      default:
        send(res, 405, METHOD_NOT_ALLOWED_BODY, { allow: 'GET, POST, DELETE' });
        return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rejected = false;
    req.on('data', (chunk: Buffer) => {
      if (rejected) return;
      size += chunk.length;
      if (size > MAX_FAULT_BODY_BYTES) {
        rejected = true;
        // Stop reading an oversized body: answer, then drop the connection rather than drain it.
        res.once('finish', () => req.socket.destroy());
        send(res, 413, Buffer.from(JSON.stringify({ error: `fault body exceeds ${MAX_FAULT_BODY_BYTES} bytes` })), {
          connection: 'close',
        });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (rejected) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        sendJson(res, 400, { error: 'fault body is not valid JSON (expected an object such as {"latencyMs":200})' });
        return;
      }
      try {
        sendJson(res, 200, setFaults(parsed as Partial<SimulatorFaults>));
      } catch (error) {
        sendJson(res, 400, { error: error instanceof Error ? error.message : String(error) });
      }
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    if (path === '/__faults') handleFaults(req, res);
    else handleApp(req, res, path);
  };
  const secure = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handle) : undefined;
  const server = secure ?? createServer(handle);

  // For https the raw TCP socket: destroying it ends the TLS connection too.
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const timer of pendingDelays) clearTimeout(timer);
      pendingDelays.clear();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    });
    return closing;
  };

  return new Promise<Simulator>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      const where = `port ${requestedPort} on ${host}`;
      const message =
        error.code === 'EADDRINUSE'
          ? `${where} is already in use (another simulator or AlphaStack instance may be running there; choose another port, or 0 for a random free one)`
          : error.code === 'EACCES'
            ? `permission denied listening on ${where} (ports below 1024 need privileges)`
            : `could not listen on ${where}: ${error.message}`;
      reject(Object.assign(new Error(message, { cause: error }), { code: error.code }));
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : requestedPort;
      resolve({
        name,
        url: `${secure ? 'https' : 'http'}://${hostForUrl(host)}:${port}`,
        port,
        faults: () => ({ ...faults }),
        setFaults,
        resetFaults,
        requestCount: () => requests,
        setCertificate: (tls) => {
          if (!secure) throw new Error('this simulator serves plain HTTP: start it with tls to set a certificate');
          secure.setSecureContext({ cert: tls.cert, key: tls.key });
        },
        close,
      });
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(requestedPort, host);
  });
}

const USAGE = 'usage: alphastack-simulator [--name blue] [--port 8081] [--host 127.0.0.1] [--tls-cert cert.pem --tls-key key.pem]';

/** Script entry point; returns the process exit code once the simulator has been stopped. */
async function main(argv: string[]): Promise<number> {
  let values: { name?: string; port?: string; host?: string; 'tls-cert'?: string; 'tls-key'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        name: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!/^\d+$/.test(values.port ?? '0') || port > 65_535) {
    process.stderr.write(`--port must be an integer between 0 and 65535 (got "${values.port}")\n${USAGE}\n`);
    return 2;
  }

  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) {
    process.stderr.write(`--tls-cert and --tls-key go together\n${USAGE}\n`);
    return 2;
  }

  let simulator: Simulator;
  try {
    const tls = values['tls-cert'] && values['tls-key'] ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) } : undefined;
    simulator = await startSimulator({ name: values.name ?? 'alphastack', port, host: values.host ?? '127.0.0.1', ...(tls ? { tls } : {}) });
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  process.stdout.write(`alphastack simulator "${simulator.name}" listening on ${simulator.url} (faults: POST /__faults)\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await simulator.close();
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
