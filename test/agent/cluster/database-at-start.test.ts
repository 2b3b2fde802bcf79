/**
 * An agent whose cluster database cannot be used does not start, and says which database and what
 * to check: its last words were the driver's alone (`connect ECONNREFUSED 127.0.0.1:5432`), which
 * read like any other address of the config.
 */
import { describe, expect, it } from 'vitest';
import { clusterDatabaseProblem } from '../../../agent/cluster/pg-store.js';
import { pairConfig } from '../../helpers/agent-harness.js';
import { cli } from '../../helpers/cli.js';
import { usePostgres } from '../../helpers/postgres.js';
import { writeTempFile } from '../../helpers/tools.js';

const postgres = usePostgres();
const PASSWORD = 'db-Pass-SECRET-5f2a9c7e';

async function start(databaseUrl: string) {
  const file = writeTempFile(
    'cluster.yaml',
    pairConfig('http://127.0.0.1:1', 'http://127.0.0.1:2', { extra: 'cluster:\n  databaseUrl: ${GREENLIGHT_DATABASE_URL}' }),
  );
  return cli(['run', '--config', file], { GREENLIGHT_DATABASE_URL: databaseUrl });
}

describe('a cluster database that cannot be used at start (regression: the log said only the driver error, not that it was the database)', () => {
  it.each([
    [
      'a database that does not exist',
      'nodb_here',
      "cannot use the cluster's PostgreSQL at 127.0.0.1:PORT/nodb_here as greenlight",
      'create it (CREATE DATABASE)',
    ],
    ['a port where nothing listens', 'gl', "cannot use the cluster's PostgreSQL at 127.0.0.1:1/gl as greenlight", 'is PostgreSQL running'],
  ])('%s: exit 1, naming the database, the variable and what to check, never the password', async (_name, database, says, hint) => {
    const port = says.includes(':PORT/') ? postgres.server.port : 1;
    const run = await start(`postgres://greenlight:${PASSWORD}@127.0.0.1:${port}/${database}`);
    expect(run.code).toBe(1);
    const output = run.stdout + run.stderr;
    expect(output).toContain(says.replace('PORT', String(port)));
    expect(output).toContain('(cluster.databaseUrl, GREENLIGHT_DATABASE_URL)');
    expect(output).toContain(hint);
    expect(output).not.toMatch(/5f2a9c7e|SECRET/);
  });

  it('says what to check for the failures an operator meets', () => {
    const url = `postgresql://ops:${PASSWORD}@db.internal/greenlight`;
    const cases: [unknown, string][] = [
      [
        Object.assign(new Error('password authentication failed for user "ops"'), { code: '28P01' }),
        'check the password in the URL (or PGPASSWORD, ~/.pgpass)',
      ],
      [Object.assign(new Error('getaddrinfo ENOTFOUND db.internal'), { code: 'ENOTFOUND' }), 'The host name does not resolve'],
      [new Error('The server does not support SSL connections'), 'check sslmode in the URL'],
      [new Error('Connection terminated unexpectedly'), 'Check that PostgreSQL runs there and that the URL names it'],
    ];
    for (const [error, hint] of cases) {
      const message = clusterDatabaseProblem(url, error);
      expect(message).toContain("cannot use the cluster's PostgreSQL at db.internal:5432/greenlight as ops");
      expect(message).toContain(hint);
      expect(message).not.toContain(PASSWORD);
    }
  });
});
