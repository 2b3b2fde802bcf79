/**
 * greenlight's error classes. A stable `code` lets callers branch without parsing messages
 * (the undici model); subclasses name the subsystem. Expected failures such as a probe timing
 * out are values (ProbeResult), not errors: these are for invalid input and for bugs.
 */
export class GreenlightError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
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
  const at = issue.path === '' ? '' : `${issue.path}: `;
  const line = issue.line === undefined ? '' : ` (line ${issue.line})`;
  return `${at}${issue.message}${line}`;
}

/** The config file could not be read at all (missing, unreadable). */
export class ConfigFileError extends GreenlightError {
  constructor(path: string, cause: unknown) {
    const reason = (cause as NodeJS.ErrnoException)?.code === 'ENOENT' ? 'file not found' : String((cause as Error)?.message ?? cause);
    super('GL_ERR_CONFIG_FILE', `cannot read config ${path}: ${reason}. Pass --config with the path of a greenlight YAML file.`, { cause });
  }
}

/** A command-line mistake: unknown command or flag, missing value. */
export class UsageError extends GreenlightError {
  constructor(message: string) {
    super('GL_ERR_USAGE', message);
  }
}
