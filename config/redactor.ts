/**
 * Secrets and their redaction. A config holds secrets (tokens, keys, webhook URLs, URL
 * credentials, header values from variables) and greenlight sends some of them to the targets it
 * probes and the services it calls. Anything may come back — a target that echoes the
 * Authorization header it got, an error page quoting the request URL — so every text that enters
 * greenlight from outside passes through one Redactor built from the config, and what it finds of
 * any secret, in any of the forms it travels in, becomes `[redacted]`.
 *
 * Which values are secrets (`collectSecrets`):
 * - the value of any key named like a secret (`adminToken`, `apiKey`, `routingKey`, `password`, a
 *   command's `API_TOKEN` variable …), anywhere in the config, plugin blocks included;
 * - in a `headers` map, the value of a header named like a credential (`authorization`,
 *   `x-api-key`, `cookie` …): the whole value, the credential after its scheme (`Bearer X` → X)
 *   and, for Basic, the decoded `user:password` and the password;
 * - the password of any URL (`https://user:password@host`), decoded, with `user:password`;
 * - the URL of an alert receiver, the traffic webhook or a CDN purge webhook (its path and query
 *   carry the token);
 * - whatever a `${VAR}` put into a header, a request body, a key named like a secret or the
 *   query of a path or URL (parseConfig reports those values: `interpolated`).
 * Values shorter than MIN_SECRET_LENGTH are left alone: they would match everywhere, and a
 * credential that short protects nothing.
 *
 * The forms looked for, for each secret: as is, URL-encoded (%XX either case, + for spaces),
 * JSON-escaped (once and twice, `\/` and `\u0026` style too), HTML-escaped, and inside base64 at
 * any alignment (a Basic header of `user:secret`, a token base64-encoded in a cookie).
 * Redaction runs before any truncation, so no prefix of a secret survives a cut either.
 */

/** Shorter values are not redacted: see the file comment. */
export const MIN_SECRET_LENGTH = 6;

/** What replaces a secret. */
export const REDACTED = '[redacted]';

/** Keys whose value is a secret, wherever they are. */
const SECRET_KEY =
  /token|secret|passw(or)?d|passphrase|api[-_]?key|routing[-_]?key|private[-_]?key|access[-_]?key|credential|authorization|cookie|signature|session[-_]?id/i;

/** Header names that carry credentials. */
const SECRET_HEADER = /auth|token|secret|key|cookie|signature|session|passw(or)?d|credential/i;

/** Blocks whose `url` is itself a secret (a webhook URL is its own credential). */
const WEBHOOK_BLOCKS = new Set(['alerts', 'traffic']);

/** Public service addresses that are defaults, not secrets. */
const PUBLIC_URLS = new Set(['https://events.pagerduty.com/v2/enqueue']);

/** Whether a key of a config block (or a query parameter) names a secret. */
export function isSecretKey(name: string): boolean {
  return SECRET_KEY.test(name);
}

/** Whether a request header name carries a credential. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/**
 * Whether the value of the config key `key`, in the block or map `parent`, is a secret: a key
 * named like one, or a credential header of a `headers` map. Whatever lies below such a key is
 * part of the secret too (`adminToken: <token>: x` reads as a mapping whose key is the token).
 */
export function holdsSecret(key: string, parent: unknown): boolean {
  return parent === 'headers' ? isSecretHeader(key) : isSecretKey(key);
}

/**
 * Every secret value of a validated config (see the file comment), plain: the Redactor derives
 * the encoded forms. `interpolated` are the values parseConfig substituted into secret places.
 */
export function collectSecrets(config: unknown, interpolated: Iterable<string> = []): string[] {
  const found = new Set<string>();
  const walk = (value: unknown, path: readonly (string | number)[]): void => {
    // A number or boolean where a secret belongs is one too (YAML read an unquoted token of
    // digits as a number): the config is refused for it, and the refusal must not quote it.
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') value = String(value);
    if (typeof value === 'string') {
      const key = path.at(-1);
      const parent = path.at(-2);
      if (typeof key === 'string' && holdsSecret(key, parent)) for (const part of credentialParts(value)) found.add(part);
      // A webhook's URL is its credential even when it is not a valid URL (no scheme, a bad port):
      // the config is refused for it, and the refusal must not quote it either.
      const webhook = key === 'url' && (WEBHOOK_BLOCKS.has(String(path[0])) || path.at(-2) === 'purge') && !PUBLIC_URLS.has(value);
      if (webhook) for (const part of secretsOfUrl(value)) found.add(part);
      else if (value.includes('://')) for (const part of credentialsOfUrl(value)) found.add(part);
      return;
    }
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, [...path, index]));
    else if (value !== null && typeof value === 'object') for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
  };
  walk(config, []);
  for (const value of interpolated) for (const part of credentialParts(value)) found.add(part);
  return [...found].filter((secret) => secret.length >= MIN_SECRET_LENGTH);
}

/** The shortest path segment, or path and query, of a webhook URL taken for a token (Slack's are 24 characters). */
const URL_TOKEN_LENGTH = 16;

/**
 * The parts of a webhook URL to hide: the URL itself, its path and query, every long path
 * segment or query value (a token may come back on its own, `Cannot POST /…/TOKEN`, or cut by a
 * length limit), and its credentials. A path and query shorter than a token (`/alerts`) is no
 * secret of its own: hidden, it was cut out of every text that named a path ending so
 * (`GET /api/v1[redacted]`); the whole URL still is.
 */
export function secretsOfUrl(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url];
  }
  const pathAndQuery = `${parsed.pathname}${parsed.search}`;
  const parts = [url, parsed.href, ...(pathAndQuery.length >= URL_TOKEN_LENGTH ? [pathAndQuery] : []), ...credentialsOfUrl(url)];
  for (const segment of parsed.pathname.split('/')) {
    if (segment.length >= URL_TOKEN_LENGTH) parts.push(segment, safeDecode(segment));
  }
  for (const value of parsed.searchParams.values()) if (value.length >= 8) parts.push(value);
  return [...new Set(parts)].filter((part) => part !== '' && part !== '/');
}

/**
 * A URL's password (raw and decoded), `user:password` (also as the Basic header's base64), and the
 * values of query parameters named like secrets; of a text that is no valid URL
 * (`http://user:pw@host:99999`), the password and `user:password` found by their place. A user
 * name without a password is the credential itself (`https://<token>@host`, as GitHub and GitLab
 * tokens are given), so it is one too — except in a database URL (ROLE_SCHEMES), where it is the
 * role the server knows, and the password comes from `?password=`, PGPASSWORD or ~/.pgpass.
 */
function credentialsOfUrl(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#@]*)@/i.exec(url)?.[1];
    const colon = userinfo?.indexOf(':') ?? -1;
    if (userinfo === undefined) return [];
    if (colon < 0) return ROLE_SCHEMES.test(url) ? [] : [userinfo, safeDecode(userinfo)];
    const password = userinfo.slice(colon + 1);
    return [password, safeDecode(password), userinfo, safeDecode(userinfo)];
  }
  const parts: string[] = [];
  if (parsed.password || (parsed.username && !ROLE_SCHEMES.test(url))) {
    const user = safeDecode(parsed.username);
    const password = safeDecode(parsed.password);
    parts.push(`${user}:${password}`, Buffer.from(`${user}:${password}`).toString('base64'));
    if (parsed.password) parts.push(parsed.password, password);
    else parts.push(parsed.username, user);
  }
  for (const [name, value] of parsed.searchParams) if (isSecretKey(name)) parts.push(value);
  return parts;
}

/**
 * Schemes whose user name is a role, never a credential: hidden, `postgres://greenlight@db/gl` made
 * "greenlight" a secret, and every log line and event that named the agent said `[redacted]`.
 */
const ROLE_SCHEMES = /^postgres(?:ql)?:/i;

/** A credential value and what it is made of: `Bearer X` → X; `Basic B64` → B64, `user:password`, password. */
function credentialParts(value: string): string[] {
  const parts = [value];
  const match = /^([A-Za-z][\w-]*)\s+(\S.*)$/.exec(value.trim());
  if (match) {
    const [, scheme, credential] = match as unknown as [string, string, string];
    parts.push(credential);
    if (scheme.toLowerCase() === 'basic' && /^[A-Za-z0-9+/]+=*$/.test(credential)) {
      const decoded = Buffer.from(credential, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0 && /^[\x20-\x7e]+$/.test(decoded)) parts.push(decoded, decoded.slice(colon + 1));
    }
  }
  return parts;
}

/**
 * Replaces every known secret, in every form it travels in, with `[redacted]`. One instance per
 * agent: the logger, the probes, the outbound clients, the HTTP API and the event bus share it,
 * and a reload adds the new config's secrets (`add`) while the retired ones stay hidden.
 */
export class Redactor {
  readonly #secrets = new Set<string>();
  #pattern: RegExp | undefined;
  /** Length of the longest form looked for: how far past a cut a secret may reach. */
  #longest = 0;

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** A redactor built from a parsed config's secrets. */
  static of(config: { readonly secrets: readonly string[] }): Redactor {
    return new Redactor(config.secrets);
  }

  /** How many secrets it hides (not their forms). */
  get size(): number {
    return this.#secrets.size;
  }

  /** Hide these too. */
  add(secrets: Iterable<string>): void {
    const before = this.#secrets.size;
    for (const secret of secrets) if (secret.length >= MIN_SECRET_LENGTH) this.#secrets.add(secret);
    if (this.#secrets.size === before) return;
    const sources = new Set<string>();
    for (const secret of this.#secrets) {
      for (const source of patternsOf(secret)) sources.add(source);
      // The longest form: twice JSON-escaped or percent-encoded (3x), or base64 (4/3x).
      this.#longest = Math.max(this.#longest, 6 * secret.length + 8);
    }
    // Longest first: a secret that contains another is replaced whole.
    this.#pattern = new RegExp([...sources].sort((a, b) => b.length - a.length).join('|'), 'g');
  }

  /**
   * `text` with every secret replaced. JSON may spell any character of a secret as an escape
   * (`\u0053ECRET`, `a\/b`): a text with escapes left after the known forms are replaced is read
   * again with them decoded, and where that finds a secret, the decoded text is what is shown
   * (its control characters escaped again).
   */
  text(text: string): string {
    if (this.#pattern === undefined || text.length < MIN_SECRET_LENGTH) return text;
    this.#pattern.lastIndex = 0;
    const replaced = this.#pattern.test(text) ? text.replace(this.#pattern, REDACTED) : text;
    if (!replaced.includes('\\')) return replaced;
    // Twice at most: JSON quoted in JSON (an error body that quotes the answer) escapes twice.
    let decoded = replaced;
    for (let round = 0; round < 2 && decoded.includes('\\'); round++)
      decoded = decoded.replace(JSON_ESCAPE, (escape: string, hex: string | undefined) =>
        hex === undefined ? escape[1]! : String.fromCharCode(parseInt(hex, 16)),
      );
    if (decoded === replaced) return replaced;
    this.#pattern.lastIndex = 0;
    if (!this.#pattern.test(decoded)) return replaced;
    return decoded.replace(this.#pattern, REDACTED).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }

  /**
   * `text` redacted and cut to at most `max` characters (`...` marks a cut). Redaction comes
   * first, on enough of the text that no secret can straddle the cut: a secret cut in half would
   * not be recognised, and its first half would be shown.
   */
  excerpt(text: string, max: number): string {
    let window = max + this.#longest + 1;
    let redacted = this.text(text.slice(0, window));
    // "[redacted]" may be shorter than what it replaced: read on until the cut is far enough away.
    while (window < text.length && redacted.length <= max + this.#longest) {
      window *= 2;
      redacted = this.text(text.slice(0, window));
    }
    return redacted.length > max ? `${redacted.slice(0, max - 3)}...` : redacted;
  }

  /**
   * A copy of `value` with every string redacted, keys included; what is not a string, array or
   * plain object is kept as is, and so is what is nested deeper than `maxDepth` (the recursion
   * stays shallow): the values passed here are events and request bodies, and no route takes a
   * text from that deep, nor shows more of a value than its first levels (flag-store `preview`).
   */
  value<T>(value: T, maxDepth = 64): T {
    if (this.#pattern === undefined) return value;
    return this.#walk(value, maxDepth) as T;
  }

  #walk(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.text(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth <= 0) return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      value.forEach((item, index) => {
        const redacted = this.#walk(item, depth - 1);
        if (redacted !== item) (copy ??= [...value])[index] = redacted;
      });
      return copy ?? value;
    }
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;
    let changed = false;
    const entries = Object.entries(value).map(([key, item]) => {
      const redactedKey = this.text(key);
      const redacted = this.#walk(item, depth - 1);
      if (redactedKey !== key || redacted !== item) changed = true;
      return [redactedKey, redacted] as const;
    });
    // fromEntries defines own properties: a `__proto__` key stays a key, never a prototype.
    return changed ? Object.fromEntries(entries) : value;
  }
}

/** The regular-expression sources that find `secret` in any of its forms. */
/** A JSON escape that may stand for a character of a secret: `\uXXXX`, or a backslash before `/`, `"` or `\`. */
const JSON_ESCAPE = /\\u([0-9a-fA-F]{4})|\\[/"\\]/g;

function patternsOf(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const json = JSON.stringify(secret).slice(1, -1);
  const slashes = (text: string) => text.replaceAll('/', '\\/');
  const hex = (text: string) => text.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  for (const text of [secret, json]) for (const form of [text, slashes(text), hex(text), slashes(hex(text))]) forms.add(form);
  forms.add(JSON.stringify(json).slice(1, -1));
  const encoded = encodeURIComponent(secret);
  forms.add(encoded);
  forms.add(encoded.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase()));
  forms.add(encoded.replaceAll('%20', '+'));
  forms.add(encodeURI(secret));
  forms.add(secret.replace(/[&<>"']/g, (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' }[c]};`));
  const sources = [...forms].filter((form) => form.length >= MIN_SECRET_LENGTH).map(escapeRegExp);
  // Inside base64 the secret's bytes may start at any of three alignments; from its first whole
  // group on, each alignment has one encoding. Take the run of base64 characters that follows
  // too: those carry the rest of the secret.
  for (let offset = 0; offset < 3; offset++) {
    const bytes = Buffer.from(secret).subarray(offset);
    const whole = Math.floor(bytes.length / 3) * 3;
    if (whole < MIN_SECRET_LENGTH) continue;
    const encoded64 = bytes.subarray(0, whole).toString('base64');
    sources.push(`${escapeRegExp(encoded64)}[A-Za-z0-9+/]*=*`);
    sources.push(`${escapeRegExp(encoded64.replaceAll('+', '-').replaceAll('/', '_'))}[A-Za-z0-9_-]*=*`);
  }
  return sources;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
