import { spawn } from 'node:child_process';
import type { GreenlightEvent } from '../../agent/events.js';
import { waitUntil } from './agent-harness.js';

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
  base: string;
  /** Everything it printed (stdout and stderr), for failure messages. */
  output: string[];
  /** Every event in its journal so far, oldest first (read through GET /api/v1/events). */
  events(): Promise<GreenlightEvent[]>;
  /** GET a JSON endpoint of it. */
  get<T>(path: string): Promise<T>;
  /** SIGTERM, and wait for it to exit. */
  stop(): Promise<void>;
}

/** Start `greenlight run --config FILE` (its config listens on `port`) and wait until /readyz answers 200. */
export async function runAgentProcess(configFile: string, port: number, env: Record<string, string> = {}): Promise<AgentProcess> {
  const child = spawn(process.execPath, [BIN, 'run', '--config', configFile], { cwd: ROOT, env: { PATH: process.env.PATH, ...env } });
  const output: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(String(chunk)));
  child.stderr.on('data', (chunk: Buffer) => output.push(String(chunk)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`greenlight run exited with ${child.exitCode}: ${output.join('')}`);
      return (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200;
    }, `greenlight run on port ${port} to be ready`, 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  const seen: GreenlightEvent[] = [];
  return {
    base,
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
    stop,
  };
}
