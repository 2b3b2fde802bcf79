import { userInfo } from 'node:os';
import { UsageError } from '../../../config/errors.js';

/**
 * Who runs a command, for the record (a silence's author, an acknowledgement, the flags' audit
 * trail): the option when given, else the login name. Containers, cron and systemd often set
 * neither USER nor USERNAME, so the account's own name comes last; only an account without one
 * (a bare UID) has to say who it is.
 */
export function operatorName(given: string | undefined, option: string, env: NodeJS.ProcessEnv): string {
  const name = given?.trim() || env.USER?.trim() || env.USERNAME?.trim() || accountName();
  if (!name) throw new UsageError(`say who you are with ${option} NAME (USER is not set, and this account has no name)`);
  return name;
}

function accountName(): string | undefined {
  try {
    return userInfo().username.trim() || undefined;
  } catch {
    // No passwd entry for this UID (an arbitrary UID in a container).
    return undefined;
  }
}
