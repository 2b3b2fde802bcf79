/**
 * One error catalogue (config/errors.ts): every GL_ERR_ code is defined there once, with its HTTP
 * status and exit code; the HTTP layer's errors belong to the hierarchy; every JSON error answer
 * carries a code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOfStatus, ConfigError, ERROR_CODES, GreenlightError, UsageError } from '../../config/errors.js';
import { HttpError } from '../../agent/http/http-server.js';
import { startPair } from '../helpers/agent-harness.js';

const ROOT = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

describe('the error catalogue', () => {
  it('defines every code the sources use, and the sources use only codes it defines', () => {
    const used = new Set<string>();
    for (const file of ['agent', 'probes', 'rules', 'config'].flatMap((dir) => sources(join(ROOT, dir)))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/GL_ERR_[A-Z_]+/g)) used.add(match[0]);
    }
    const defined = Object.keys(ERROR_CODES);
    expect([...used].filter((code) => !defined.includes(code))).toEqual([]);
    expect(used.size).toBeGreaterThan(10);
  });

  it('gives each error its HTTP status and exit code: 2 for config and usage, 1 for the rest', () => {
    expect(new ConfigError([{ path: 'x', message: 'bad' }]).exitCode).toBe(2);
    expect(new UsageError('bad flag').exitCode).toBe(2);
    const refused = new HttpError(409, 'refused', undefined, 'GL_ERR_FLAG_LOCKED');
    expect(refused).toBeInstanceOf(GreenlightError);
    expect([refused.code, refused.httpStatus, refused.exitCode]).toEqual(['GL_ERR_FLAG_LOCKED', 409, 1]);
    expect(new HttpError(404, 'no such route').code).toBe('GL_ERR_NOT_FOUND');
    expect(codeOfStatus(421)).toBe('GL_ERR_MISDIRECTED');
    expect(codeOfStatus(599)).toBe('GL_ERR_INTERNAL');
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(entry.http, code).toBeGreaterThanOrEqual(400);
      expect([1, 2], code).toContain(entry.exit);
    }
  });

  it('puts a code in every JSON error answer of a running agent', async () => {
    const harness = await startPair({ extra: 'api: { adminToken: admin-token-errors-0001 }' });
    try {
      const call = (method: string, path: string, init: { token?: string; body?: string; type?: string } = {}) =>
        harness.api<{ error?: string; code?: string }>(method, path, {
          token: init.token,
          body: init.body,
          headers: { 'content-type': init.type ?? 'application/json' },
        });
      const answers = [
        [await call('GET', '/nope'), 404, 'GL_ERR_NOT_FOUND'],
        [await call('POST', '/metrics'), 405, 'GL_ERR_METHOD'],
        [await call('PUT', '/api/v1/flags', { body: '{}' }), 401, 'GL_ERR_UNAUTHORIZED'],
        [await call('PUT', '/api/v1/flags', { token: 'admin-token-errors-0001', body: '{"set":' }), 400, 'GL_ERR_BAD_REQUEST'],
        [
          await call('PUT', '/api/v1/flags', { token: 'admin-token-errors-0001', body: 'reason=x', type: 'application/x-www-form-urlencoded' }),
          400,
          'GL_ERR_BAD_REQUEST',
        ],
        [
          await call('PUT', '/api/v1/flags', {
            token: 'admin-token-errors-0001',
            body: JSON.stringify({ set: { ALPHASTACK_PROTECTION: false }, reason: 'x' }),
          }),
          409,
          'GL_ERR_FLAG_LOCKED',
        ],
        [await call('GET', '/api/v1/events?limit=0'), 400, 'GL_ERR_BAD_REQUEST'],
      ] as const;
      for (const [answer, status, code] of answers) {
        expect(answer.status).toBe(status);
        expect(answer.body).toMatchObject({ error: expect.any(String), code });
      }
    } finally {
      await harness.close();
    }
  });
});

describe('the README', () => {
  it('lists every error code with its HTTP status and exit code', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const [code, entry] of Object.entries(ERROR_CODES)) expect(readme, code).toContain(`| \`${code}\` | ${entry.http} | ${entry.exit} |`);
  });
});
