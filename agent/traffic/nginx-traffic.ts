import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { Duration, HttpUrl, JsonPath, Name } from '../../config/schema.js';
import { formatDuration, quote } from '../../config/units.js';
import type { PluginDefinition, PluginDeps } from '../plugins/plugin.js';
import { runCommand, tailLines } from '../plugins/run-command.js';
import { askEnvironment, pollEnvironment } from './environment-poll.js';
import { TrafficError, type SwitchRequest, type SwitchOutcome, type TrafficAdapter } from './traffic-adapter.js';

const Argv = z.array(z.string().min(1)).min(1, { error: 'needs a program and its arguments' });

/** Goes verbatim into a `server` line, so nothing that could end the directive or open a block. */
const ServerAddress = z.string().regex(/^[^\s;{}#'"\\]+$/, {
  error: (issue) => `${quote(issue.input)} is not a server address such as 127.0.0.1:8081, app-green:8080 or unix:/run/green.sock`,
});

export const NginxTrafficSchema = z.strictObject({
  type: z.literal('nginx'),
  upstreamFile: z.string().min(1).meta({ description: 'The file nginx includes that holds the upstream block; greenlight rewrites it on every switch.' }),
  upstreamName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, { error: (issue) => `${quote(issue.input)} is not an upstream name: use letters, digits, _ . and -` })
    .default('alphastack')
    .meta({ description: 'Name of the upstream block, as proxy_pass uses it (proxy_pass http://alphastack;). Default alphastack.' }),
  servers: z
    .record(Name, ServerAddress)
    .refine((servers) => Object.keys(servers).length >= 2, {
      error: 'needs an address per environment, e.g. {blue: "127.0.0.1:8081", green: "127.0.0.1:8082"}',
    })
    .meta({ description: 'Per environment, the address nginx proxies to when it is live.' }),
  testCommand: Argv.default(['nginx', '-t']).meta({
    description: 'Checks the configuration after the upstream file is written; on failure the previous file is put back. Default nginx -t.',
  }),
  reloadCommand: Argv.default(['nginx', '-s', 'reload']).meta({
    description: 'Makes nginx load the new upstream (gracefully: requests in flight finish). Default nginx -s reload.',
  }),
  commandTimeout: Duration.default(10_000).meta({ description: 'Deadline of the test and of the reload command. Default 10s.' }),
  verifyUrl: HttpUrl.optional().meta({
    description:
      "A URL through nginx whose JSON names the environment answering (AlphaStack's /api/health). Polled after the reload until it names the new one.",
  }),
  verifyJsonPath: JsonPath.default({ text: '$.environment', segments: ['environment'] }).meta({
    description: 'Where verifyUrl names the environment. Default $.environment.',
  }),
  verifyTimeout: Duration.default(5_000).meta({ description: 'How long verifyUrl may take to name the new environment. Default 5s.' }),
});

export type NginxTrafficConfig = z.output<typeof NginxTrafficSchema>;

const VERIFY_INTERVAL_MS = 50;
/**
 * Answers from the new environment needed in a row. Right after a reload the old workers still
 * accept connections for a moment next to the new ones, so one new answer proves little.
 */
const VERIFY_STREAK = 3;

/**
 * `nginx`: rewrites the upstream block nginx includes so it points at the new environment, checks
 * the configuration with `nginx -t`, reloads nginx gracefully and, with verifyUrl, waits until
 * answers through nginx come from the new environment.
 */
export const nginxTraffic: PluginDefinition<NginxTrafficConfig, TrafficAdapter> = {
  type: 'nginx',
  schema: NginxTrafficSchema,
  create(config, deps) {
    const log = deps.logger.child({ component: 'traffic', adapter: 'nginx' });
    return {
      type: 'nginx',
      // One at a time (traffic control's lock): two would interleave writes, tests and restores of the file.
      switchTo: (request, signal) => switchUpstream(config, deps, log, request, signal),
      current: (signal) => servedEnvironment(config, deps, log, signal),
    };
  },
};

async function switchUpstream(
  config: NginxTrafficConfig,
  deps: PluginDeps,
  log: PluginDeps['logger'],
  request: SwitchRequest,
  signal: AbortSignal,
): Promise<SwitchOutcome> {
  const server = config.servers[request.to];
  if (server === undefined) {
    throw new TrafficError(
      `nginx traffic has no address for ${quote(request.to)}: add it under traffic.servers (known: ${Object.keys(config.servers).join(', ')})`,
    );
  }
  const file = config.upstreamFile;
  const previous = await readIfExists(file);
  // Until nginx has reloaded, the file says more than nginx serves: the marker says so to a
  // restart that finds it (a crash, kill -9, between here and the reload).
  await writeAtomically(pendingFile(file), JSON.stringify({ to: request.to, previous }));
  const written = upstreamText(config.upstreamName, server, request, deps.now());
  await writeAtomically(file, written);

  const test = await runCommand(config.testCommand, { timeoutMs: config.commandTimeout, signal, redactor: deps.redactor });
  if (test.code !== 0) {
    const { detail } = await restore(file, previous);
    await unlink(pendingFile(file)).catch(() => undefined);
    throw new TrafficError(
      `nginx rejected the upstream for ${request.to} (${describeRun(config.testCommand, test, config.commandTimeout)}); ${detail}, and nginx was not reloaded`,
    );
  }
  const reload = await runCommand(config.reloadCommand, { timeoutMs: config.commandTimeout, signal, redactor: deps.redactor });
  if (reload.code !== 0) {
    const failed = `nginx reload failed (${describeRun(config.reloadCommand, reload, config.commandTimeout)})`;
    // An exit code is the command's own word that nginx did not reload. A command cut off (its
    // timeout, the agent's stop, a signal) may have reloaded nginx first (`systemctl reload` or a
    // wrapper that signals nginx, then hangs): putting the file back alone would leave nginx on the
    // new side while greenlight watches the old one (regression).
    if (reload.spawnError !== undefined || (reload.code !== null && !reload.timedOut && !reload.aborted)) {
      const { detail } = await restore(file, previous);
      await unlink(pendingFile(file)).catch(() => undefined);
      throw new TrafficError(`${failed}; ${detail}; check that nginx runs and that reloadCommand reaches it`);
    }
    // Stopping: the file and its marker stay, as after a crash; the next start asks verifyUrl which side nginx serves.
    if (signal.aborted)
      throw new TrafficError(
        `${failed}: nginx may have reloaded onto ${request.to} before; ${file} names ${request.to} and its marker stays, so the next start asks which environment nginx serves`,
      );
    throw new TrafficError(
      `${failed}: nginx may have reloaded onto ${request.to} before; ${await switchBack(config, deps, { previous, written }, request, false)}`,
    );
  }
  await unlink(pendingFile(file)).catch(() => undefined);
  log.info({ to: request.to, server }, `nginx reloaded with upstream ${config.upstreamName} → ${server} (${request.to})`);

  const switched = `nginx upstream ${config.upstreamName} now ${server} (${request.to})`;
  if (config.verifyUrl === undefined) {
    return { detail: `${switched}, reloaded; not verified (no verifyUrl)`, data: { upstream: config.upstreamName, server, verified: false } };
  }
  let polls: number;
  try {
    polls = await awaitEnvironment(config, deps, request.to, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    // Unverified, the switch is undone: the failure this adapter reports leaves traffic where it
    // was. Left on the new side, nginx would serve an environment greenlight does not watch as live.
    throw new TrafficError(`${(error as Error).message}; ${await switchBack(config, deps, { previous, written }, request, true)}`, { cause: error });
  }
  return {
    detail: `${switched}, verified: ${config.verifyJsonPath.text} is ${quote(request.to)} through nginx ${VERIFY_STREAK} times in a row`,
    data: { upstream: config.upstreamName, server, verified: true, polls },
  };
}

/** Polls verifyUrl until its JSON names `env` VERIFY_STREAK times in a row; resolves with the number of polls, throws TrafficError at the deadline. */
async function awaitEnvironment(config: NginxTrafficConfig, deps: PluginDeps, env: string, signal: AbortSignal): Promise<number> {
  const poll = { label: 'nginx verifyUrl', url: config.verifyUrl!, path: config.verifyJsonPath, env, streak: VERIFY_STREAK, intervalMs: VERIFY_INTERVAL_MS };
  const result = await pollEnvironment({ ...poll, deadline: deps.now() + config.verifyTimeout }, deps, signal);
  if (result.ok) return result.polls;
  if (result.cancelled) throw new TrafficError(`nginx was reloaded for ${env} but verifying it was cancelled (last: ${result.seen})`);
  throw new TrafficError(
    `nginx was reloaded for ${env} but verifyUrl did not report it ${VERIFY_STREAK} times in a row within ${formatDuration(config.verifyTimeout)} (last: ${result.seen}); check that ${config.upstreamFile} is the file nginx includes and that reloadCommand reaches the nginx serving traffic`,
  );
}

/** Beside the upstream file while a switch has written it and nginx has not yet reloaded it; not *.conf, so no include reads it. */
function pendingFile(file: string): string {
  return join(dirname(file), `.${basename(file)}.greenlight-pending`);
}

/** The environment the upstream file names, if it names one of the configured servers. */
function environmentOfFile(config: NginxTrafficConfig, text: string | undefined): string | undefined {
  const pattern = new RegExp(`upstream\\s+${config.upstreamName.replace(/\./g, '\\.')}\\s*\\{\\s*server\\s+([^;\\s]+)`);
  const server = text === undefined ? undefined : pattern.exec(text)?.[1];
  return Object.entries(config.servers).find(([, address]) => address === server)?.[0];
}

/**
 * Where nginx sends traffic now (the reconciliation after a crash asks it). The upstream file says
 * so once nginx has loaded it. A switch cut short between writing the file and nginx's reload
 * left its marker (pendingFile), and then the file may name the new side while nginx still
 * serves the old one: verifyUrl tells which, and the file is put back in line with what nginx
 * serves (a later reload would otherwise move traffic by itself). Without verifyUrl, or without an
 * answer from it, greenlight cannot tell: undefined, and a person is asked to look.
 */
async function servedEnvironment(config: NginxTrafficConfig, deps: PluginDeps, log: PluginDeps['logger'], signal: AbortSignal): Promise<string | undefined> {
  const file = config.upstreamFile;
  const named = environmentOfFile(config, (await readIfExists(file))?.text);
  const marker = await readIfExists(pendingFile(file));
  if (!marker) return named;
  const served =
    config.verifyUrl === undefined
      ? undefined
      : await askEnvironment({ label: 'nginx verifyUrl', url: config.verifyUrl, path: config.verifyJsonPath }, deps, signal);
  if (served === undefined) {
    log.warn(
      { file, named },
      `a switch to ${named ?? 'another environment'} was cut short after writing ${file} and perhaps before nginx reloaded it; ${config.verifyUrl ? 'verifyUrl gave no clear answer' : 'without verifyUrl'} greenlight cannot tell which environment nginx serves`,
    );
    return undefined;
  }
  if (served !== named) {
    let restored = `${file} still names ${named}: put it back to ${served} by hand before nginx next reloads`;
    try {
      const { previous } = JSON.parse(marker.text) as { previous: { text: string; mode: number } | null };
      restored = (await restore(file, previous)).detail;
    } catch {
      // A marker cut short itself: the message says what to do by hand.
    }
    log.warn({ file, named, served }, `nginx still serves ${served}: the switch to ${named} was cut short before nginx reloaded; ${restored}`);
  }
  await unlink(pendingFile(file)).catch(() => undefined);
  return served;
}

function upstreamText(name: string, server: string, request: SwitchRequest, now: number): string {
  return [
    `# Written by greenlight (nginx traffic adapter) on every switch: edits here are overwritten.`,
    `# Live environment: ${request.to}, since ${new Date(now).toISOString()}.`,
    `upstream ${name} {`,
    `    server ${server};`,
    `}`,
    '',
  ].join('\n');
}

function describeRun(argv: readonly string[], result: Awaited<ReturnType<typeof runCommand>>, timeoutMs: number): string {
  const program = basename(argv[0]!);
  const output = tailLines(`${result.stderr}${result.stdout}`);
  const how =
    result.spawnError !== undefined
      ? `${program} could not be started: ${result.spawnError}`
      : result.timedOut
        ? `${program} did not finish within ${formatDuration(timeoutMs)}`
        : result.aborted
          ? `${program} was cancelled`
          : result.code === null
            ? `${program} was killed by ${result.signal}`
            : `${program} exited with code ${result.code}`;
  return output ? `${how}: ${output}` : how;
}

async function readIfExists(file: string): Promise<{ text: string; mode: number } | null> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { text, mode: info.mode & 0o777 };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TrafficError(`cannot read the nginx upstream file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Put nginx back on the old side: the file as it was, and nginx reloaded on it (not cancellable:
 * once the file is back, nginx must load it, or the next reload moves traffic by itself); says how
 * that went. `reloaded`: nginx is known to have loaded the new file (its verification failed)
 * rather than perhaps (a reload command cut off by its timeout). When nginx cannot be reloaded
 * back, the file is made to name the new side again: known, nginx serves it, and `current` reads
 * it from the file; perhaps, the marker stays as well, and `current` asks verifyUrl which side
 * nginx serves (and puts the file in line with the answer).
 */
async function switchBack(
  config: NginxTrafficConfig,
  deps: PluginDeps,
  texts: { previous: { text: string; mode: number } | null; written: string },
  request: SwitchRequest,
  reloaded: boolean,
): Promise<string> {
  const file = config.upstreamFile;
  const restored = await restore(file, texts.previous);
  if (!restored.ok) return `${restored.detail}; nginx may ${reloaded ? 'still serve' : `serve either ${request.from} or`} ${request.to}: check it`;
  const reload = await runCommand(config.reloadCommand, { timeoutMs: config.commandTimeout, redactor: deps.redactor });
  if (reload.code === 0) {
    await unlink(pendingFile(file)).catch(() => undefined);
    return `${restored.detail} and nginx reloaded on it, so traffic stays on ${request.from}`;
  }
  const failed = `reloading nginx back failed${reloaded ? '' : ' too'} (${describeRun(config.reloadCommand, reload, config.commandTimeout)})`;
  try {
    await writeAtomically(file, texts.written);
    return reloaded
      ? `${failed}: nginx serves ${request.to} as reloaded, and ${file} names it again`
      : `${failed}: which environment nginx serves is unknown${config.verifyUrl ? ' until verifyUrl says' : ''}; check nginx and reloadCommand`;
  } catch (error) {
    return `${failed}, and ${file} could not be made to name ${request.to} again (${(error as Error).message}): nginx ${reloaded ? `serves ${request.to}` : 'may serve either side'} while the file names ${request.from}; fix the file by hand`;
  }
}

/** Puts the upstream file back as it was before the switch; whether that worked, and how it went for the error message. */
async function restore(file: string, previous: { text: string; mode: number } | null): Promise<{ ok: boolean; detail: string }> {
  try {
    if (previous === null) await unlink(file);
    else await writeAtomically(file, previous.text, previous.mode);
    return { ok: true, detail: `${file} was put back as it was` };
  } catch (error) {
    return { ok: false, detail: `putting ${file} back failed too (${(error as Error).message}): restore it by hand before nginx next reloads` };
  }
}

/**
 * Replaces `file` so nginx never reads half of it: a temporary file in the same directory (same
 * file system, so the rename is atomic), flushed to disk, then renamed over the old one. Its name
 * ends in .tmp so an `include conf.d/*.conf` never picks it up.
 */
async function writeAtomically(file: string, text: string, mode?: number): Promise<void> {
  const directory = dirname(file);
  const temporary = join(directory, `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await handle.chmod(
        mode ??
          (await stat(file).then(
            (info) => info.mode & 0o777,
            () => 0o644,
          )),
      );
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    const dir = await open(directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw new TrafficError(`cannot write the nginx upstream file ${file}: ${(error as Error).message}; check that greenlight may write to ${directory}`, {
      cause: error,
    });
  }
}
