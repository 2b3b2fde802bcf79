import { z } from 'zod';
import { UsageError } from '../../../config/errors.js';
import type { CommandIo } from '../cli.js';
import { ApiError, createApiClient, exitCode } from './api-client.js';
import { operatorName } from './operator-name.js';
import { FLAGS_USAGE } from '../command-usage.js';

const TRUE_WORDS = new Set(['true', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'off', '0']);

/** GET /api/v1/flags. */
const FlagsView = z.looseObject({
  activeEnvironment: z.string(),
  locked: z.array(z.string()),
  environments: z.record(z.string(), z.record(z.string(), z.boolean())),
});
type FlagsView = z.output<typeof FlagsView>;

/** PUT /api/v1/flags and POST /api/v1/flags/emergency-rollback. */
const ChangeAnswer = z.looseObject({
  envs: z.array(z.string()),
  changed: z.array(z.looseObject({ flag: z.string(), env: z.string(), old: z.boolean(), new: z.boolean() })),
  /** The agent runs with --dry-run: `changed` is what would have changed. */
  dryRun: z.boolean().optional(),
});
type ChangeAnswer = z.output<typeof ChangeAnswer>;

/**
 * `greenlight flags list|set K=V…|emergency-rollback`: the feature flags of a running agent.
 * `set` changes every environment unless --env names one; `emergency-rollback` applies the preset
 * to the live environment unless --env says otherwise. Both take --reason for the audit trail, and
 * say who ran them without it (the contract's `flags set K=V…` has no --reason). Exit 0 done, 1 refused
 * or failed (the agent's message is printed), 2 usage.
 */
export async function flagsCommand(args: { values: Record<string, string | boolean | undefined>; positionals: string[] }, io: CommandIo): Promise<number> {
  return exitCode('flags', FLAGS_USAGE, io, () => runFlags(args, io));
}

async function runFlags(args: { values: Record<string, string | boolean | undefined>; positionals: string[] }, io: CommandIo): Promise<number> {
  const [subcommand, ...rest] = args.positionals;
  const values = args.values;
  const env = typeof values.env === 'string' ? values.env : undefined;
  const reason = typeof values.reason === 'string' ? values.reason : undefined;
  const json = values.json === true;
  if (subcommand === undefined) throw new UsageError('say what to do: list, set K=V… or emergency-rollback');

  switch (subcommand) {
    case 'list': {
      if (rest.length > 0) throw new UsageError(`list takes no arguments, got ${rest.join(' ')}`);
      if (reason !== undefined) throw new UsageError('list takes no --reason');
      const client = createApiClient({ url: str(values.url), env: io.env });
      const view = await client.call('GET', '/api/v1/flags', { answer: FlagsView });
      const shown = env === undefined || env === 'all' ? Object.keys(view.environments) : [env === 'live' ? view.activeEnvironment : env];
      if (!shown.every((name) => name in view.environments)) {
        throw new ApiError(
          `${JSON.stringify(env)} is not an environment of the agent at ${client.displayUrl}: use ${[...Object.keys(view.environments), 'live', 'all'].join(', ')}`,
        );
      }
      if (json) io.out(JSON.stringify(view, null, 2));
      else io.out(formatTable(view, shown));
      return 0;
    }
    case 'set': {
      if (rest.length === 0) throw new UsageError('set needs at least one FLAG=VALUE, for example READ_ONLY_MODE=on');
      const set = parseAssignments(rest);
      if (reason?.trim() === '') throw new UsageError('--reason is empty: say why, or leave it out (the audit trail then says who set the flags from the CLI)');
      const client = createApiClient({ url: str(values.url), env: io.env });
      const answer = await client.call('PUT', '/api/v1/flags', {
        auth: 'admin',
        answer: ChangeAnswer,
        body: { set, reason: reason ?? `set from the CLI by ${operatorName(undefined, '--reason', io.env)}`, ...(env === undefined ? {} : { env }) },
      });
      report(answer, json, io, `flags already had these values on ${answer.envs.join(' and ')}; nothing changed`);
      return 0;
    }
    case 'emergency-rollback': {
      if (rest.length > 0) throw new UsageError(`emergency-rollback takes no arguments, got ${rest.join(' ')}`);
      const client = createApiClient({ url: str(values.url), env: io.env });
      const who = operatorName(undefined, '--reason', io.env);
      const answer = await client.call('POST', '/api/v1/flags/emergency-rollback', {
        auth: 'rollback',
        answer: ChangeAnswer,
        body: { reason: reason ?? `emergency rollback from the CLI by ${who}`, ...(env === undefined ? {} : { env }) },
      });
      report(answer, json, io, `${answer.envs.join(' and ')} already in emergency-rollback state; nothing changed`);
      return 0;
    }
    default:
      throw new UsageError(`unknown flags subcommand ${JSON.stringify(subcommand)}: use list, set or emergency-rollback`);
  }
}

/**
 * `K=V` words to a change set; every bad word is named at once. Any name goes through as given
 * (the agent judges it): a Map, since a plain object already has `__proto__` or `constructor`.
 */
export function parseAssignments(words: readonly string[]): Record<string, boolean> {
  const set = new Map<string, boolean>();
  const problems: string[] = [];
  for (const word of words) {
    const at = word.indexOf('=');
    if (at <= 0) {
      problems.push(`${JSON.stringify(word)} is not FLAG=VALUE`);
      continue;
    }
    const flag = word.slice(0, at);
    const text = word.slice(at + 1).toLowerCase();
    const value = TRUE_WORDS.has(text) ? true : FALSE_WORDS.has(text) ? false : undefined;
    if (value === undefined) problems.push(`${flag}=${word.slice(at + 1)}: the value must be true/false, on/off or 1/0`);
    else if (set.has(flag) && set.get(flag) !== value) problems.push(`${flag} is given both on and off`);
    else set.set(flag, value);
  }
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  // fromEntries defines own properties: `__proto__` stays a key, as JSON.stringify then sends it.
  return Object.fromEntries(set);
}

function report(answer: ChangeAnswer, json: boolean, io: CommandIo, nothing: string): void {
  if (json) {
    io.out(JSON.stringify(answer, null, 2));
    return;
  }
  if (answer.changed.length === 0) {
    io.out(nothing);
    return;
  }
  if (answer.dryRun) io.out('dry run (the agent runs with --dry-run): nothing was changed; it would have set:');
  for (const change of answer.changed) io.out(`${change.env}: ${change.flag} ${onOff(change.old)} → ${onOff(change.new)}`);
}

function formatTable(view: FlagsView, envs: string[]): string {
  const locked = new Set(view.locked);
  const flags = Object.keys(view.environments[envs[0]!] ?? {});
  const rows = [
    ['FLAG', ...envs.map((env) => (env === view.activeEnvironment ? `${env.toUpperCase()} (live)` : env.toUpperCase()))],
    ...flags.map((flag) => [locked.has(flag) ? `${flag} 🔒` : flag, ...envs.map((env) => onOff(view.environments[env]?.[flag]))]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n');
}

function onOff(value: boolean | undefined): string {
  return value === undefined ? '-' : value ? 'on' : 'off';
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
