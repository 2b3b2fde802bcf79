/**
 * greenlight's error classes. A stable `code` lets callers branch without parsing messages
 * (the undici model); subclasses name the subsystem. Expected failures such as a probe timing
 * out are values (ProbeResult), not errors: these are for invalid input and for bugs.
 */
/**
 * Every error code greenlight reports, defined once: what it means, the HTTP status of an API
 * answer that carries it (JSON error bodies say `{"error": "…", "code": "GL_ERR_…"}`), and the
 * exit code of a command that ends with it. The README lists them.
 */
export const ERROR_CODES = {
  GL_ERR_CONFIG: { http: 422, exit: 2, meaning: 'the configuration is invalid (every problem is named with its key path and line)' },
  GL_ERR_CONFIG_FILE: { http: 422, exit: 2, meaning: 'the config file cannot be read' },
  GL_ERR_USAGE: { http: 400, exit: 2, meaning: 'a command-line mistake: unknown command or flag, missing value' },
  GL_ERR_BAD_REQUEST: { http: 400, exit: 2, meaning: 'a request body, query or path that is not what the endpoint takes' },
  GL_ERR_UNAUTHORIZED: { http: 401, exit: 1, meaning: 'no token, a wrong one, or the endpoint is off because no token is configured' },
  GL_ERR_FORBIDDEN: {
    http: 403,
    exit: 1,
    meaning: 'the token is valid but its role may not do this (the rollback token on an admin endpoint), or a web page of another origin',
  },
  GL_ERR_NOT_FOUND: { http: 404, exit: 1, meaning: 'no such route, flag, silence, incident or maintenance window' },
  GL_ERR_METHOD: { http: 405, exit: 1, meaning: 'the route exists but answers other methods' },
  GL_ERR_CONFLICT: {
    http: 409,
    exit: 1,
    meaning: 'refused in the current state (a switch or promotion in flight, already live, a resolved incident, too many silences)',
  },
  GL_ERR_TOO_LARGE: { http: 413, exit: 1, meaning: 'the request body is over 64 KiB' },
  GL_ERR_MISDIRECTED: { http: 421, exit: 1, meaning: 'the agent does not answer to that Host name (api.allowedHosts)' },
  GL_ERR_UNPROCESSABLE: { http: 422, exit: 1, meaning: 'well-formed but refused: a promotion gate failed, a reloaded file is invalid' },
  GL_ERR_TOO_MANY: { http: 429, exit: 1, meaning: 'too many stream clients from one address (api.stream.maxClientsPerAddress)' },
  GL_ERR_INTERNAL: { http: 500, exit: 1, meaning: 'a bug: the agent log says more' },
  GL_ERR_UPSTREAM: { http: 502, exit: 1, meaning: 'a service greenlight called failed (a traffic adapter, Render)' },
  GL_ERR_UNAVAILABLE: { http: 503, exit: 1, meaning: 'not ready, or at a limit (api.stream.maxClients): try again' },
  GL_ERR_FLAG_LOCKED: { http: 409, exit: 1, meaning: 'a locked flag (ALPHASTACK_PROTECTION) can never change: the attempt is audited' },
  GL_ERR_FLAG_INVALID: { http: 400, exit: 1, meaning: 'an unknown flag, environment or preset, a value that is not a boolean, or no reason' },
  GL_ERR_ROLLBACK_REFUSED: {
    http: 409,
    exit: 1,
    meaning: 'a rollback held or refused: the target is failing, unknown or failed its fresh verification, or both are failing',
  },
  GL_ERR_ROLLBACK_FAILED: { http: 502, exit: 1, meaning: 'the traffic adapter failed to switch' },
  GL_ERR_PROMOTE_REFUSED: { http: 409, exit: 1, meaning: 'a promotion refused before it started (closed window, unknown or live target, another in flight)' },
  GL_ERR_TRAFFIC: { http: 502, exit: 1, meaning: 'a traffic switch did not happen or could not be verified' },
  GL_ERR_SWITCH_STEP: {
    http: 502,
    exit: 1,
    meaning:
      'a step after a traffic switch failed (CDN purge, public TLS check, public verify URL): traffic stays switched, the switch.step_failed event says why',
  },
  GL_ERR_ALERT: { http: 502, exit: 1, meaning: 'an alert receiver did not take a notice' },
  GL_ERR_OUTBOUND: { http: 502, exit: 1, meaning: 'an outbound HTTP call failed after its retries' },
  GL_ERR_RENDER: { http: 502, exit: 1, meaning: 'Render is not configured, refused a call, or answered what its API does not document' },
  GL_ERR_STORE: {
    http: 500,
    exit: 1,
    meaning: "the state database cannot be opened or written (dataDir), or the cluster's PostgreSQL cannot be used at start",
  },
  GL_ERR_API: { http: 502, exit: 1, meaning: 'the CLI could not reach the agent, or the agent refused the request' },
} as const satisfies Record<string, { http: number; exit: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The generic code of an HTTP error status, for answers no more specific error produced. */
export function codeOfStatus(status: number): ErrorCode {
  const generic: Record<number, ErrorCode> = {
    400: 'GL_ERR_BAD_REQUEST',
    401: 'GL_ERR_UNAUTHORIZED',
    403: 'GL_ERR_FORBIDDEN',
    404: 'GL_ERR_NOT_FOUND',
    405: 'GL_ERR_METHOD',
    409: 'GL_ERR_CONFLICT',
    413: 'GL_ERR_TOO_LARGE',
    421: 'GL_ERR_MISDIRECTED',
    422: 'GL_ERR_UNPROCESSABLE',
    429: 'GL_ERR_TOO_MANY',
    502: 'GL_ERR_UPSTREAM',
    503: 'GL_ERR_UNAVAILABLE',
  };
  return generic[status] ?? (status >= 500 ? 'GL_ERR_INTERNAL' : 'GL_ERR_BAD_REQUEST');
}

export class GreenlightError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The HTTP status an API answer with this error carries. */
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  /** The exit code of a command that ends with this error. */
  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
}

/** One problem found in a config: where it is and what was expected there. */
export interface ConfigIssue {
  /** Key path such as `probes[2].every`, or `` for the document itself. */
  path: string;
  message: string;
  /** 1-based line in the YAML text, when it can be located. */
  line?: number;
}

/** Invalid configuration. Carries every issue found, not just the first. */
export class ConfigError extends GreenlightError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], source?: string) {
    const where = source ? `${source}: ` : '';
    const lines = issues.map((issue) => `  - ${formatConfigIssue(issue)}`);
    super('GL_ERR_CONFIG', `${where}invalid configuration (${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}):\n${lines.join('\n')}`);
    this.issues = issues;
  }
}

/** `probes[2].every: "5x" is not a duration such as 500ms, 5s or 2m (line 31)` */
export function formatConfigIssue(issue: ConfigIssue): string {
  const at = issue.path === '' ? '' : `${clip(issue.path, MAX_ISSUE_PATH)}: `;
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`;
  return `${at}${clip(issue.message, MAX_ISSUE_MESSAGE)}${line}`;
}

/**
 * An issue quotes what it found, and a file that is not YAML at all (a binary, a log pasted in)
 * would be quoted whole, into the terminal, the log and a reload's event: kept to this much.
 */
const MAX_ISSUE_MESSAGE = 300;
const MAX_ISSUE_PATH = 120;

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The config file could not be read at all (missing, unreadable). */
export class ConfigFileError extends GreenlightError {
  constructor(path: string, cause: unknown) {
    // The system's message repeats the path (a 100 KB argument was printed twice): said once, above.
    const reason =
      (cause as NodeJS.ErrnoException)?.code === 'ENOENT'
        ? 'file not found'
        : String((cause as Error)?.message ?? cause)
            .split(path)
            .join('…')
            .slice(0, 300);
    // Shown as given, quoted when it would not read as a path (`--config=` gives an empty one); at most 200 characters.
    const shown = path.length > 200 ? `${JSON.stringify(path.slice(0, 200))}…` : /^[^\s"]+$/.test(path) ? path : JSON.stringify(path);
    super('GL_ERR_CONFIG_FILE', `cannot read config ${shown}: ${reason}. Give the path of a greenlight YAML file (run and check: --config F; validate F).`, {
      cause,
    });
  }
}

/** A command-line mistake: unknown command or flag, missing value. */
export class UsageError extends GreenlightError {
  constructor(message: string) {
    super('GL_ERR_USAGE', message);
  }
}
