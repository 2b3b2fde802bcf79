import { spawn } from 'node:child_process';

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
