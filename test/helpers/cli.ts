import { spawn, type ChildProcess } from 'node:child_process';
import type { GreenlightEvent } from '../../agent/events/events.js';

/** The built CLI (npm test builds first) and the package root it runs from. */
export const BIN = new URL('../../bin/greenlight.js', import.meta.url).pathname;
export const ROOT = new URL('../..', import.meta.url).pathname;

/** Run the built CLI without blocking this process (the simulators it talks to live here). */
export function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** `greenlight run` as a real process, and what a test reads of it. */
export interface AgentProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>`: the port the agent bound, read from its own log. */
  base: string;
  port: number;
  /** Everything it wrote to stdout and stderr so far, for failure messages. */
  output: string[];
  /** Every event in its journal so far, oldest first (read through GET /api/v1/events). */
  events(): Promise<GreenlightEvent[]>;
  /** GET a JSON endpoint of it. */
  get<T>(path: string): Promise<T>;
  /** SIGTERM, and wait for it to exit. */
  stop(): Promise<void>;
}

/**
 * Start the built CLI's `run` on a config whose listen address has port 0, and wait until it
 * is ready. The port is the one the agent reports in its "listening on" log line: picking a
 * "free" port first and handing it over races with every other process on the machine.
 */
export async function startAgentProcess(configFile: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<AgentProcess> {
  const child = spawn(process.execPath, [BIN, 'run', '--config', configFile], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  const output: string[] = [];
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output.push(String(chunk));
    text += String(chunk);
  });
  child.stderr!.on('data', (chunk: Buffer) => output.push(String(chunk)));
  const deadline = Date.now() + timeoutMs;
  let port: number | undefined;
  for (;;) {
    port ??= listeningPort(text);
    if (port !== undefined && (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200) break;
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the agent exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output.join('')}`);
    if (Date.now() > deadline) {
      await stopProcess(child, 'SIGKILL');
      throw new Error(`the agent was not ready within ${timeoutMs} ms:\n${output.join('')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const base = `http://127.0.0.1:${port}`;
  const seen: GreenlightEvent[] = [];
  return {
    child,
    base,
    port,
    output,
    events: async () => {
      for (;;) {
        const since = seen.at(-1)?.id ?? 0;
        const page = (await (await fetch(`${base}/api/v1/events?since=${since}&limit=1000`)).json()) as { events: GreenlightEvent[] };
        seen.push(...page.events);
        if (page.events.length < 1000) return [...seen];
      }
    },
    get: async <T>(path: string) => (await (await fetch(`${base}${path}`)).json()) as T,
    stop: () => stopProcess(child),
  };
}

/** The port in the agent's `listening on <host>:<port>` log line, once it has been written. */
export function listeningPort(log: string): number | undefined {
  const match = /"msg":"listening on [^"]*:(\d+)"/.exec(log);
  return match ? Number(match[1]) : undefined;
}

/** SIGTERM (or `signal`) and wait for the process to exit; nothing to do if it already has. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}
