/**
 * What HTTPS targets' certificates say: the earliest expiry in the chain they serve, and whether
 * that chain verifies for the host name against the trusted CAs.
 *
 * The observer is the probe dispatcher's `connect` function (undici's custom connector): every
 * TLS connection the pool opens goes through it, so each handshake's chain is read where it
 * happens, at no extra cost. A handshake that fails verification (expired, wrong host name,
 * unknown CA) still has a chain worth reporting: the observer then opens one more connection that
 * does not verify, reads the chain and why it does not verify, and only then hands the original
 * error back, so the probe fails with reason `tls` and its result carries the expiry. Pooled
 * connections live long, so facts older than `recheckMs` are refreshed by such a connection in the
 * background (a renewed certificate shows within that time).
 *
 * Trust: by default Node's (Mozilla's roots and NODE_EXTRA_CA_CERTS). A host given its own CA list
 * (environments.<env>.tls.ca) verifies against that list instead; the agent builds it as the
 * default roots plus the environment's bundle.
 */
import { isIP } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import type * as Undici from 'undici';
import { buildConnector } from './undici-core.js';

/** What one TLS handshake showed of a target's certificate chain. */
export interface TlsFacts {
  /** The earliest notAfter of the chain (clock ms): the first moment some certificate of it expires. */
  expiresAt: number;
  /** The subject (CN) of the certificate that expires first. */
  expiring: string;
  /** The leaf certificate's subject and issuer (CN). */
  subject: string;
  issuer: string;
  /** Certificates in the chain as Node reports it: what the server sent, completed with the trusted root when there is one. */
  chainLength: number;
  /** Whether the chain verifies, for this host name, against the trusted CAs. */
  valid: boolean;
  /** Why it does not verify: CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, DEPTH_ZERO_SELF_SIGNED_CERT… */
  error?: string;
  /** Clock time of the handshake. */
  checkedAt: number;
}

/** The TLS facts on a probe result: the handshake's, plus the days left as of the probe. */
export interface ProbeTls extends TlsFacts {
  /** (expiresAt − the probe's start) in days; negative once expired. */
  daysLeft: number;
}

export const DAY_MS = 86_400_000;

/** `host:port` (port 443 when the URL has none): how facts and trust are keyed. */
export function tlsHostKey(hostname: string, port: string | number | undefined): string {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  return `${host.toLowerCase()}:${port === undefined || port === '' ? 443 : Number(port)}`;
}

/** The key of an https origin, undefined for plain http. */
export function tlsHostOf(origin: string): string | undefined {
  const url = new URL(origin);
  return url.protocol === 'https:' ? tlsHostKey(url.hostname, url.port) : undefined;
}

/** Read the facts of a connected TLS socket; undefined when it shows no certificate. */
export function readChain(socket: TLSSocket, checkedAt: number): TlsFacts | undefined {
  // An empty object when the peer sent no certificate.
  const leaf = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  if (!leaf || typeof leaf.valid_to !== 'string') return undefined;
  let expiresAt = Number.POSITIVE_INFINITY;
  let expiring = '';
  let chainLength = 0;
  const seen = new Set<DetailedPeerCertificate>();
  for (let cert: DetailedPeerCertificate | undefined = leaf; cert && typeof cert.valid_to === 'string' && !seen.has(cert); cert = cert.issuerCertificate) {
    seen.add(cert);
    chainLength++;
    const notAfter = Date.parse(cert.valid_to);
    if (Number.isFinite(notAfter) && notAfter < expiresAt) {
      expiresAt = notAfter;
      expiring = commonName(cert.subject);
    }
  }
  if (!Number.isFinite(expiresAt)) return undefined;
  const error = socket.authorizationError as unknown;
  return {
    expiresAt,
    expiring,
    subject: commonName(leaf.subject),
    issuer: commonName(leaf.issuer),
    chainLength,
    valid: socket.authorized,
    ...(socket.authorized ? {} : { error: typeof error === 'string' ? error : ((error as Error | null)?.message ?? 'not verified') }),
    checkedAt,
  };
}

function commonName(name: DetailedPeerCertificate['subject'] | undefined): string {
  if (!name) return '';
  const cn = name.CN as string | string[] | undefined;
  if (cn !== undefined) return Array.isArray(cn) ? cn.join(', ') : cn;
  return Object.entries(name)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(', ');
}

/** Errors that mean "the handshake happened but the chain was refused": their chain is still worth reading. */
function isVerificationError(error: unknown): boolean {
  for (
    let current = error as { code?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    current = current.cause as typeof current, depth++
  ) {
    const code = typeof current.code === 'string' ? current.code : '';
    if (/^(CERT_|ERR_TLS_CERT|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|UNABLE_TO_(GET|VERIFY|DECRYPT)|INVALID_CA|HOSTNAME_MISMATCH)/.test(code)) return true;
  }
  return false;
}

interface Endpoint {
  hostname: string;
  port: number;
  servername: string | undefined;
}

export interface TlsObserverOptions {
  now: () => number;
  /** Per host key, the CAs to verify against instead of Node's defaults. */
  trust?: ReadonlyMap<string, readonly string[]>;
  /** Facts older than this are refreshed in the background (default 1 h). */
  recheckMs?: number;
  /** Deadline of a connection the observer opens itself (default 10 s). */
  timeoutMs?: number;
}

export class TlsObserver {
  readonly #now: () => number;
  readonly #recheckMs: number;
  readonly #timeoutMs: number;
  #trust: ReadonlyMap<string, readonly string[]>;
  readonly #connectors = new Map<string, Undici.buildConnector.connector>();
  readonly #facts = new Map<string, TlsFacts>();
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #inspecting = new Map<string, Promise<void>>();
  readonly #sockets = new Set<TLSSocket>();
  #closed = false;

  constructor(options: TlsObserverOptions) {
    this.#now = options.now;
    this.#recheckMs = options.recheckMs ?? 3_600_000;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#trust = options.trust ?? new Map();
  }

  /** The CAs per host key (a reload); connections already open keep what they verified with. */
  setTrust(trust: ReadonlyMap<string, readonly string[]>): void {
    this.#trust = trust;
    this.#connectors.clear();
  }

  /** undici's `connect` option: give it to the dispatcher that probes the environments. */
  readonly connect: Undici.buildConnector.connector = (options, callback) => {
    const key = tlsHostKey(options.hostname, options.port);
    const https = options.protocol === 'https:';
    if (https)
      this.#endpoints.set(key, { hostname: stripBrackets(options.hostname), port: Number(options.port || 443), servername: options.servername || undefined });
    this.#connectorFor(key)(options, (error, socket) => {
      if (!https) return error ? callback(error, null) : callback(null, socket!);
      if (!error) {
        const facts = readChain(socket as TLSSocket, this.#now());
        if (facts) this.#facts.set(key, facts);
        return callback(null, socket!);
      }
      if (!isVerificationError(error)) return callback(error, null);
      // The chain was refused, but its expiry is exactly what an operator needs to see.
      void this.#inspect(key).finally(() => callback(error, null));
    });
  };

  /**
   * The latest facts about `host` (a {@link tlsHostKey}); undefined before its first handshake.
   * Facts older than the recheck interval start a refresh in the background.
   */
  facts(host: string): TlsFacts | undefined {
    const facts = this.#facts.get(host);
    if (facts && this.#now() - facts.checkedAt >= this.#recheckMs) void this.#inspect(host);
    return facts;
  }

  /**
   * One handshake of greenlight's own with an https origin, through the same connector (and
   * trust) as the probes: the chain's facts — of a refused chain too, read as for a probe — and
   * the connection's error, if any. Nothing is sent over the connection; it is closed at once.
   */
  handshake(origin: string): Promise<{ facts: TlsFacts | undefined; error: string | undefined }> {
    const url = new URL(origin);
    const key = tlsHostKey(url.hostname, url.port);
    const before = this.#facts.get(key);
    return new Promise((resolve) => {
      this.connect({ hostname: url.hostname, host: url.host, protocol: 'https:', port: url.port || '443' }, (error, socket) => {
        socket?.destroy();
        const facts = this.#facts.get(key);
        resolve({ facts: facts === before ? undefined : facts, error: error ? describeError(error) : undefined });
      });
    });
  }

  /** Connections the observer opened itself, for tests and close. */
  get inspecting(): number {
    return this.#inspecting.size;
  }

  /** End the observer's own connections; the dispatcher closes its own. */
  close(): void {
    this.#closed = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #connectorFor(key: string): Undici.buildConnector.connector {
    let connector = this.#connectors.get(key);
    if (!connector) {
      const ca = this.#trust.get(key);
      // No TLS session resumption: a resumed session may not show the peer's certificate.
      connector = buildConnector({ maxCachedSessions: 0, timeout: this.#timeoutMs, ...(ca ? { ca: [...ca] } : {}) });
      this.#connectors.set(key, connector);
    }
    return connector;
  }

  /** One connection that reads the chain without refusing it (single flight per host). */
  #inspect(key: string): Promise<void> {
    const endpoint = this.#endpoints.get(key);
    if (!endpoint || this.#closed) return Promise.resolve();
    let running = this.#inspecting.get(key);
    if (running) return running;
    running = new Promise<void>((resolve) => {
      const ca = this.#trust.get(key);
      const servername = endpoint.servername ?? (isIP(endpoint.hostname) ? undefined : endpoint.hostname);
      const socket = tlsConnect({
        host: endpoint.hostname,
        port: endpoint.port,
        ...(servername ? { servername } : {}),
        ...(ca ? { ca: [...ca] } : {}),
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
      });
      this.#sockets.add(socket);
      const done = () => {
        clearTimeout(timer);
        this.#sockets.delete(socket);
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(done, this.#timeoutMs);
      timer.unref();
      socket.once('secureConnect', () => {
        const facts = readChain(socket, this.#now());
        if (facts) this.#facts.set(key, facts);
        done();
      });
      socket.once('error', done);
      socket.once('close', done);
    }).finally(() => this.#inspecting.delete(key));
    this.#inspecting.set(key, running);
    return running;
  }
}

function describeError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}

function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
}

/** The facts as a probe result carries them: with the days left as of `at`. */
export function probeTls(facts: TlsFacts, at: number): ProbeTls {
  return { ...facts, daysLeft: Math.round(((facts.expiresAt - at) / DAY_MS) * 1_000) / 1_000 };
}
