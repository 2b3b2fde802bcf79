/**
 * Runs an external program for a plugin (the `command` traffic adapter, nginx's test and reload,
 * hook scripts): argv without a shell, a deadline, cancellation, bounded output. The child gets
 * its own process group, so a timeout or an abort ends the whole tree (a shell script and the
 * `sleep` or `curl` it started), not just its first process.
 */
import { spawn } from 'node:child_process';
import type { Redactor } from '../../config/redactor.js';

export interface RunCommandOptions {
  /** Variables for the child, on top of the parent's environment when `inheritEnv`. */
  env?: Record<string, string>;
  /** Start from this process's environment (PATH, HOME …). Default true. */
  inheritEnv?: boolean;
  /** Deadline of the whole run; the process group gets SIGTERM, then SIGKILL after `killGraceMs`. */
  timeoutMs: number;
  /** Aborting ends the run like a timeout. */
  signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL. Default 2000. */
  killGraceMs?: number;
  /** Bytes kept of stdout and of stderr each, the last ones. Default 64 KiB. */
  maxOutputBytes?: number;
  /** Working directory; default this process's. */
  cwd?: string;
  /** Written to the child's stdin, which is then closed. Default: stdin is /dev/null. */
  input?: string;
  /**
   * Hides secrets in what the program printed (a script run with `set -x`, a curl error quoting
   * its URL): plugins pass the agent's. stdout and stderr are redacted before anyone reads them.
   */
  redactor?: Redactor;
}

export interface RunCommandResult {
  /** Exit code, or null when the process was ended by a signal or never started. */
  code: number | null;
  /** The signal that ended the process, if one did. */
  signal: NodeJS.Signals | null;
  /** The last `maxOutputBytes` of stdout. */
  stdout: string;
  /** The last `maxOutputBytes` of stderr. */
  stderr: string;
  /** The deadline passed and the process group was killed. */
  timedOut: boolean;
  /** The run was cancelled through `signal`. */
  aborted: boolean;
  /** Why the program could not be started (`ENOENT`: not found), undefined when it ran. */
  spawnError?: string;
  durationMs: number;
}

/** How long to wait for stdout/stderr to close after the process exited (a background grandchild may hold them). */
const DRAIN_AFTER_EXIT_MS = 500;

/** Run `argv` (no shell) and resolve with how it ended. Never rejects for the program's failure. */
export function runCommand(argv: readonly string[], options: RunCommandOptions): Promise<RunCommandResult> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') throw new TypeError('runCommand needs a non-empty argv');
  const started = performance.now();
  const limit = options.maxOutputBytes ?? 64 * 1024;
  const env = { ...(options.inheritEnv === false ? {} : process.env), ...options.env };

  return new Promise((resolve) => {
    const stdout = new Tail(limit);
    const stderr = new Tail(limit);
    let timedOut = false;
    let aborted = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const child = spawn(file, args, {
      env,
      cwd: options.cwd,
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out = child.stdout!;
    const err = child.stderr!;
    out.on('data', (chunk: Buffer) => stdout.push(chunk));
    err.on('data', (chunk: Buffer) => stderr.push(chunk));
    if (options.input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(options.input);
    }

    const deadline = setTimeout(() => {
      timedOut = true;
      terminate();
    }, options.timeoutMs);
    const onAbort = () => {
      aborted = true;
      terminate();
    };
    if (options.signal?.aborted) queueMicrotask(onAbort);
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (error: NodeJS.ErrnoException) => {
      finish({ code: null, signal: null }, error.code ? `${error.code}: ${error.message}` : error.message);
    });
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(() => {
        out.destroy();
        err.destroy();
        finish(exit!);
      }, DRAIN_AFTER_EXIT_MS);
      drainTimer.unref();
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => finish(exit ?? { code, signal }));

    function terminate(): void {
      if (settled || child.pid === undefined) return;
      killGroup(child.pid, 'SIGTERM');
      killTimer ??= setTimeout(() => killGroup(child.pid!, 'SIGKILL'), options.killGraceMs ?? 2_000);
      // Keeps running after we resolve: it must still reach a grandchild that ignores SIGTERM.
      killTimer.unref();
    }

    function finish(how: { code: number | null; signal: NodeJS.Signals | null }, spawnError?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(drainTimer);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({
        code: how.code,
        signal: how.signal,
        stdout: options.redactor ? options.redactor.text(stdout.text()) : stdout.text(),
        stderr: options.redactor ? options.redactor.text(stderr.text()) : stderr.text(),
        timedOut,
        aborted,
        ...(spawnError === undefined ? {} : { spawnError }),
        durationMs: Math.round(performance.now() - started),
      });
    }
  });
}

/** The last `maxBytes` of `text` cut at a line start, for messages: `…` marks a cut. */
export function tailLines(text: string, maxBytes = 2_048): string {
  const trimmed = text.trimEnd();
  if (Buffer.byteLength(trimmed) <= maxBytes) return trimmed;
  const tail = Buffer.from(trimmed).subarray(-maxBytes).toString('utf8');
  const newline = tail.indexOf('\n');
  return `…${newline >= 0 && newline < tail.length - 1 ? tail.slice(newline + 1) : tail}`;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the whole group is already gone.
  }
}

/** Keeps the last `limit` bytes written. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return (all.length > this.limit ? all.subarray(all.length - this.limit) : all).toString('utf8');
  }
}
