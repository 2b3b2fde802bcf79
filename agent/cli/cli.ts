/**
 * `greenlight <command>`: the command line of CONTRACT.md. Each command returns its exit code;
 * bin/greenlight.js sets it. Usage mistakes exit 2 with a message that says what to type.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GreenlightError, UsageError } from '../../config/errors.js';
import {
  ACK_OPTIONS,
  ACK_USAGE,
  FLAGS_OPTIONS,
  FLAGS_USAGE,
  INCIDENTS_OPTIONS,
  INCIDENTS_USAGE,
  MAINTENANCE_OPTIONS,
  MAINTENANCE_USAGE,
  PROMOTE_OPTIONS,
  PROMOTE_USAGE,
  REPORT_USAGE,
  SILENCE_OPTIONS,
  SILENCE_USAGE,
} from './command-usage.js';
import { escapeForTerminal } from '../telemetry/terminal-text.js';
import { VERSION } from '../package.js';
import { applyRuntimeFlags } from './runtime-flags.js';

export const DEFAULT_CONFIG_PATH = 'config/greenlight.yaml';

export interface CommandIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run: (args: { values: Record<string, string | boolean | undefined>; positionals: string[] }, io: CommandIo) => Promise<number>;
}

const configOption = { config: { type: 'string', short: 'c' } } as const;

// Each command's module is loaded when it runs, never before: together they take about half a
// second to load, and `greenlight run` must own SIGTERM and SIGINT from its first moment.
const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'run the daemon',
    usage: 'greenlight run [--config F] [--dry-run]',
    options: { ...configOption, 'dry-run': { type: 'boolean' } },
    run: async ({ values }, io) =>
      (await import('./commands/run.js')).runCommand({ configPath: str(values.config) ?? DEFAULT_CONFIG_PATH, dryRun: values['dry-run'] === true }, io),
  },
  check: {
    summary: 'run every probe once against one environment (exit 0 all pass, 1 any fail)',
    usage: 'greenlight check --env NAME [--config F] [--json]',
    options: { ...configOption, env: { type: 'string', short: 'e' }, json: { type: 'boolean' } },
    run: async ({ values }, io) => {
      const env = str(values.env);
      if (!env) throw new UsageError('check needs --env NAME, the environment to probe (for example --env green)');
      return (await import('./commands/check.js')).checkCommand({ configPath: str(values.config) ?? DEFAULT_CONFIG_PATH, env, json: values.json === true }, io);
    },
  },
  validate: {
    summary: 'validate a config file (exit 0 valid, 2 invalid)',
    usage: 'greenlight validate [F]',
    options: { ...configOption },
    allowPositionals: true,
    run: async ({ values, positionals }, io) => {
      if (positionals.length > 1) throw new UsageError(`validate takes one file, got ${positionals.length}: ${positionals.join(' ')}`);
      return (await import('./commands/validate.js')).validateCommand({ configPath: positionals[0] ?? str(values.config) ?? DEFAULT_CONFIG_PATH }, io);
    },
  },
  schema: {
    summary: "print the config's JSON Schema",
    usage: 'greenlight schema',
    options: {},
    run: async (_args, io) => (await import('./commands/schema.js')).schemaCommand(io),
  },
  tail: {
    summary: 'follow the event stream of a running agent (reconnects and resumes by itself)',
    usage: 'greenlight tail [--url U] [--since ID] [--type T] [--json]',
    options: { url: { type: 'string' }, since: { type: 'string' }, type: { type: 'string' }, json: { type: 'boolean' } },
    run: async ({ values }, io) =>
      (await import('./commands/tail.js')).tailCommand(
        { url: str(values.url), since: str(values.since), type: str(values.type), json: values.json === true },
        io,
      ),
  },
  rollback: {
    summary: 'emergency rollback through a running agent (exit 0 done, 1 refused/failed); validate: check the live environment after one',
    usage: 'greenlight rollback --reason TEXT [--url U] | greenlight rollback validate [--url U] [--json]',
    options: { reason: { type: 'string', short: 'r' }, url: { type: 'string' }, json: { type: 'boolean' } },
    allowPositionals: true,
    run: async ({ values, positionals }, io) => {
      if (positionals[0] === 'validate' && positionals.length === 1)
        return (await import('./commands/rollback.js')).rollbackValidateCommand({ url: str(values.url), json: values.json === true }, io);
      if (positionals.length > 0) throw new UsageError(`rollback takes --reason TEXT, or the subcommand validate; not ${positionals.join(' ')}`);
      return (await import('./commands/rollback.js')).rollbackCommand({ reason: str(values.reason), url: str(values.url) }, io);
    },
  },
  promote: {
    summary: 'health-gated traffic switch through a running agent, steps streamed live (exit 0 switched and held, 1 gate failed)',
    usage: PROMOTE_USAGE,
    options: PROMOTE_OPTIONS,
    run: async ({ values }, io) => (await import('./commands/promote.js')).promoteCommand(values, io),
  },
  loadtest: {
    summary: "paced load over an environment's probe paths: p50/p95/p99, error ratio, throughput (exit 0 within thresholds, 1 over)",
    usage: 'greenlight loadtest --env NAME [--rps N] [--duration D] [--max-p95 D] [--max-error-ratio R] [--config F] [--json]',
    options: {
      ...configOption,
      env: { type: 'string', short: 'e' },
      rps: { type: 'string' },
      duration: { type: 'string' },
      'max-p95': { type: 'string' },
      'max-error-ratio': { type: 'string' },
      json: { type: 'boolean' },
    },
    run: async ({ values }, io) => {
      const env = str(values.env);
      if (!env) throw new UsageError('loadtest needs --env NAME, the environment to load (for example --env green)');
      return (await import('./commands/loadtest.js')).loadtestCommand(
        {
          configPath: str(values.config) ?? DEFAULT_CONFIG_PATH,
          env,
          rps: str(values.rps),
          duration: str(values.duration),
          maxP95: str(values['max-p95']),
          maxErrorRatio: str(values['max-error-ratio']),
          json: values.json === true,
        },
        io,
      );
    },
  },
  env: {
    summary: "env diff: the Render services' environment variable names one has and the other lacks (exit 0 same, 1 drift)",
    usage: 'greenlight env diff [--config F] [--json]',
    options: { ...configOption, json: { type: 'boolean' } },
    allowPositionals: true,
    run: async ({ values, positionals }, io) => {
      if (positionals.length !== 1 || positionals[0] !== 'diff') throw new UsageError('usage: greenlight env diff [--config F] [--json]');
      return (await import('./commands/env-diff.js')).envDiffCommand({ configPath: str(values.config) ?? DEFAULT_CONFIG_PATH, json: values.json === true }, io);
    },
  },
  flags: {
    summary: 'feature flags through a running agent (exit 0 done, 1 refused/failed)',
    usage: FLAGS_USAGE,
    options: FLAGS_OPTIONS,
    allowPositionals: true,
    run: async (args, io) => (await import('./commands/flags.js')).flagsCommand(args, io),
  },
  report: {
    summary: 'trend report: daily performance, deployments per week, rollbacks, incidents (from a running agent, or its databases with --config)',
    usage: REPORT_USAGE,
    options: { ...configOption, url: { type: 'string' }, since: { type: 'string' }, format: { type: 'string', short: 'f' } },
    run: async ({ values }, io) =>
      (await import('./commands/report.js')).reportCommand(
        { since: str(values.since), format: str(values.format), url: str(values.url), configPath: str(values.config) },
        io,
      ),
  },
  // The alert lifecycle (README, "Alert lifecycle"): who is told, never what greenlight does.
  silence: {
    summary: 'mute notifications of matching alerts for a while, list or expire silences (never an action; exit 0 done, 1 refused/failed)',
    usage: SILENCE_USAGE,
    options: SILENCE_OPTIONS,
    allowPositionals: true,
    run: async (args, io) => (await import('./commands/silence.js')).silenceCommand(args, io),
  },
  ack: {
    summary: 'acknowledge an incident: its escalation stops (exit 0 done, 1 refused/failed)',
    usage: ACK_USAGE,
    options: ACK_OPTIONS,
    allowPositionals: true,
    run: async (args, io) => (await import('./commands/ack.js')).ackCommand(args, io),
  },
  incidents: {
    summary: 'the open incidents with their escalation level and who acknowledged them',
    usage: INCIDENTS_USAGE,
    options: INCIDENTS_OPTIONS,
    allowPositionals: true,
    run: async (args, io) => (await import('./commands/ack.js')).incidentsCommand(args, io),
  },
  maintenance: {
    summary: "start or stop a maintenance window (the environment's notifications muted while it is idle), or list them",
    usage: MAINTENANCE_USAGE,
    options: MAINTENANCE_OPTIONS,
    allowPositionals: true,
    run: async (args, io) => (await import('./commands/maintenance.js')).maintenanceCommand(args, io),
  },
  demo: {
    summary: 'simulated blue+green AlphaStack pair and an agent, with a scripted fault',
    usage: 'greenlight demo [--keep-running]',
    options: { 'keep-running': { type: 'boolean' } },
    run: async ({ values }, io) => (await import('./commands/demo.js')).demoCommand({ keepRunning: values['keep-running'] === true }, io),
  },
};

export async function main(argv: string[], io: CommandIo = defaultIo()): Promise<number> {
  applyRuntimeFlags();
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    io.out(`greenlight ${VERSION}`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`greenlight: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`usage: ${command.usage}\n${command.summary}`);
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true, tokens: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/s, '')}\nusage: ${command.usage}`);
    }
    // parseArgs keeps the last of an option given twice: `promote --to blue --to green` would go
    // to green while its reader saw blue (the API refuses a duplicated key for the same reason).
    const seen = new Map<string, string | undefined>();
    for (const token of parsed.tokens) {
      if (token.kind !== 'option' || command.options?.[token.name]?.multiple) continue;
      if (seen.has(token.name))
        throw new UsageError(
          `--${token.name} is given twice${token.value === undefined ? '' : ` (${seen.get(token.name)}, then ${token.value})`}: give it once\nusage: ${command.usage}`,
        );
      seen.set(token.name, token.value);
    }
    return await command.run(parsed as { values: Record<string, string | boolean | undefined>; positionals: string[] }, io);
  } catch (error) {
    // Each error's code says its exit code (config/errors.ts): 2 for bad config or usage, 1 otherwise.
    if (!(error instanceof GreenlightError)) throw error;
    io.err(`greenlight ${name}: ${error.message}`);
    return error.exitCode;
  }
}

function usage(): string {
  // A usage of several lines (silence, maintenance) is listed by its first; `<command> --help` shows all.
  const first = (c: Command) => c.usage.split('\n')[0]!;
  const width = Math.max(...Object.values(COMMANDS).map((c) => first(c).length));
  const lines = Object.values(COMMANDS).map((c) => `  ${first(c).padEnd(width)}  ${c.summary}`);
  return `greenlight ${VERSION}: guards blue/green deployments of AlphaStack V3\n\nusage:\n${lines.join('\n')}\n\n--config defaults to ${DEFAULT_CONFIG_PATH}.`;
}

function str(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Standard output and error, with every control character a remote text may carry made visible (agent/telemetry/terminal-text.ts). */
function defaultIo(): CommandIo {
  // A reader that went away (greenlight schema | head, tail 2>&1 | head while it reconnects): stop
  // quietly, as other Unix tools do, rather than die of an unhandled EPIPE with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      process.exit(0);
    });
  }
  return {
    out: (text) => process.stdout.write(`${escapeForTerminal(text)}\n`),
    err: (text) => process.stderr.write(`${escapeForTerminal(text)}\n`),
    env: process.env,
  };
}
