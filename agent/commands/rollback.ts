import { UsageError } from '../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { ApiError, createApiClient } from './api-client.js';

interface RollbackAnswer {
  ok: boolean;
  from: string;
  to?: string;
  detail?: string;
  dryRun?: boolean;
}

/**
 * `greenlight rollback --reason TEXT [--url U]`: the emergency rollback through a running agent,
 * with ROLLBACK_TOKEN (or ADMIN_TOKEN). The agent judges it like a rule's: it never switches onto
 * an environment whose own probes fail. Exit 0 switched, 1 refused or failed.
 */
export async function rollbackCommand(options: { reason: string | undefined; url: string | undefined }, io: CommandIo): Promise<number> {
  if (!options.reason?.trim()) throw new UsageError('rollback needs --reason TEXT: it is recorded with the rollback (for example --reason "checkout errors after 3.2.1")');
  const client = createApiClient({ url: options.url, env: io.env });
  try {
    const answer = await client.call<RollbackAnswer>('POST', '/api/v1/rollback', { auth: 'rollback', body: { reason: options.reason } });
    if (answer.dryRun) {
      io.out(`⚠️  the agent runs with --dry-run: ${answer.detail}`);
      return 0;
    }
    io.out(`✅ rolled back ${answer.from} → ${answer.to}: ${answer.detail}`);
    return 0;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    io.err(`❌ ${error.message}`);
    return 1;
  }
}
