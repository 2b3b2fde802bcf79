/**
 * A throwaway PostgreSQL server per test file (simulator/postgres-server.ts): started before the
 * file's tests, stopped after them, and at exit whatever happens (a timeout, a crash).
 */
import { afterAll, beforeAll } from 'vitest';
import { postgresBin, startPostgres, type TestPostgres } from '../../simulator/postgres-server.js';

export { postgresBin, startPostgres, type TestPostgres };

/** A server for the file's tests: started before them, stopped after (and at exit, whatever happens). */
export function usePostgres(): { readonly server: TestPostgres } {
  const holder = {} as { server: TestPostgres };
  beforeAll(async () => {
    holder.server = await startPostgres();
  }, 60_000);
  afterAll(() => holder.server?.close());
  return holder;
}
