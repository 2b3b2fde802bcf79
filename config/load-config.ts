/**
 * Turning config text into a validated, frozen Config. `parseConfig` is pure (text and an
 * environment in, value or ConfigError out); `loadConfigFile` only adds the file read.
 */
import { isUtf8 } from 'node:buffer';
import { readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, ConfigFileError, type ConfigIssue } from './errors.js';
import { collectSecrets, holdsSecret, isSecretKey, Redactor } from './redactor.js';
import { readRegularFile } from './regular-file.js';
import { firstInvalidUtf8Byte } from './utf8.js';
import { ConfigSchema, pluginBlockSchema, type Config } from './schema.js';
import { HIDDEN_KEY, mayHoldValue } from './units.js';

type Env = Readonly<Record<string, string | undefined>>;
type KeyPath = (string | number)[];

const VARIABLE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface ParseOptions {
  /** Names the file in messages. */
  source?: string;
  /** The schema with the agent's plugins (agent/plugins/registry.ts); default: no plugins. */
  schema?: typeof ConfigSchema;
  /**
   * Checks that need more than the schema (the rules compiler: facts and operators exist).
   * Runs on the validated value; its issues get lines like the schema's.
   */
  validate?: (config: Config) => { path: KeyPath; message: string }[];
  /** The files `ruleFiles` names, already read (loadConfigFile does that): their rules join the config's. */
  ruleFiles?: readonly { source: string; text: string }[];
}

/** Plugin blocks that an unset variable turns off instead of failing the config. */
const SWITCHABLE: { path: KeyPath; list: boolean; off?: unknown }[] = [
  { path: ['traffic'], list: false, off: { type: 'none' } },
  { path: ['alerts', 'receivers'], list: true },
];

/** YAML text parsed as every config file is read (a duplicate key is an error), and how to find a line in it. */
interface ParsedYaml {
  doc: Document;
  lineOf: (offset?: number) => number | undefined;
}

function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  return { doc, lineOf: (offset) => (offset === undefined ? undefined : lineCounter.linePos(offset).line) };
}

/** The tags of YAML's core schema: they say no more than a value's own form does (`!!str 1.0` keeps a version a string). */
const CORE_TAGS = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((name) => `tag:yaml.org,2002:${name}`));

/**
 * A document's syntax errors, and every explicit tag but the core schema's. The yaml library turns
 * `!!timestamp`, `!!binary` and `!!set` into a date, bytes and a map, and leaves a tag it does not
 * know (`!custom 1s`, `!!float 1`) as the plain text with only a warning: a config that means
 * something else than it says. `file` names a rule file in the paths.
 */
function yamlIssues({ doc, lineOf }: ParsedYaml, file?: string): ConfigIssue[] {
  const at = (offset: number | undefined) => {
    const keys = offset === undefined ? '' : formatKeyPath(pathAt(doc.contents, offset));
    return { path: file === undefined ? keys : keys === '' ? file : `${file}: ${keys}`, line: lineOf(offset) };
  };
  const issues: ConfigIssue[] = doc.errors.map((error) => ({ ...at(error.pos[0]), message: `YAML syntax: ${error.message.split('\n')[0]}` }));
  if (issues.length > 0) return issues;
  const refuse = (tag: string, offset: number | undefined, why: string) =>
    issues.push({
      ...at(offset),
      message: `YAML: the tag ${tag.replace('tag:yaml.org,2002:', '!!')} ${why}: write the value without it (greenlight reads strings, numbers, booleans, null, maps and lists)`,
    });
  // A core tag its value does not fit (`!!float 1`): the library warned, on the tag's line, and kept the text.
  const unfit = (tag: string, offset: number | undefined) =>
    doc.warnings.some((warning) => warning.code === 'TAG_RESOLVE_FAILED' && warning.message.includes(tag) && lineOf(warning.pos[0]) === lineOf(offset));
  visit(doc, (_key, node) => {
    if (!(isScalar(node) || isMap(node) || isSeq(node)) || node.tag === undefined) return;
    if (!CORE_TAGS.has(node.tag)) refuse(node.tag, node.range?.[0], 'is not taken');
    else if (unfit(node.tag, node.range?.[0])) refuse(node.tag, node.range?.[0], 'does not fit its value');
  });
  return issues;
}

/** Whether a value contains itself (`a: &x [*x]`): every walk over it would go on for ever. */
function cyclic(value: unknown, within: Set<object> = new Set()): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (within.has(value)) return true;
  within.add(value);
  const found = Object.values(value).some((item) => cyclic(item, within));
  within.delete(value);
  return found;
}

/**
 * The document as plain values, or the issues that keep it from being one. The yaml library
 * resolves aliases here and throws for one that names no anchor, with the alias's name in its
 * message: an unquoted value starting with `*` (a token such as `*Xy12…`) is read as an alias,
 * so the name may be a secret. It is never quoted; the line is.
 */
function plainValue(doc: Document, lineOf: (offset?: number) => number | undefined, where: string): { value: unknown } | { issues: ConfigIssue[] } {
  try {
    const value: unknown = doc.toJS({ maxAliasCount: 1_000 }) ?? {};
    if (cyclic(value))
      return {
        issues: [{ path: where, message: 'YAML: an alias (*name) is inside the value its anchor (&name) names, a value without end', line: undefined }],
      };
    return { value };
  } catch (error) {
    const unresolved: ConfigIssue[] = [];
    visit(doc, {
      Alias(_key, node) {
        if (node.resolve(doc) === undefined)
          unresolved.push({
            path: where,
            message: 'YAML: a value starting with * is an alias, and no anchor (&name) before it has its name: put the value in quotes',
            line: lineOf(node.range?.[0]),
          });
      },
    });
    if (unresolved.length > 0) return { issues: unresolved };
    // The other refusal: aliases that expand past the limit (a "billion laughs" document).
    return { issues: [{ path: where, message: `YAML: ${(error as Error).message.split(':')[0]}`, line: undefined }] };
  }
}

/** Parse, interpolate and validate config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, env: Env = {}, options: ParseOptions = {}): Config {
  return configOf(parseYaml(text), env, options);
}

/** parseConfig from its parsed text (loadConfigFile reads `ruleFiles` from the same parse). */
function configOf({ doc, lineOf }: ParsedYaml, env: Env, options: ParseOptions): Config {
  const { source } = options;
  const yaml = yamlIssues({ doc, lineOf });
  if (yaml.length > 0) throw new ConfigError(yaml, source);

  const plain = plainValue(doc, lineOf, '');
  if ('issues' in plain) throw new ConfigError(plain.issues, source);
  const unset = new Map<string, string>();
  const issues: ConfigIssue[] = documentIssues(doc, lineOf, '');
  const interpolated = new Set<string>();
  const raw = interpolate(plain.value, env, [], unset, interpolated);

  // Rules from rule files join the config's; an issue in one is reported against its own file.
  const main: Located = { doc, lineOf, unset, prefix: '' };
  const origins: { file: Located; index: number }[] = [];
  const ownRules = Array.isArray((raw as { rules?: unknown }).rules) ? (raw as { rules: unknown[] }).rules.length : 0;
  for (const file of options.ruleFiles ?? []) {
    const extra = parseRuleFile(file, env, issues, interpolated);
    if (!extra) continue;
    const target = ((raw as Record<string, unknown>).rules ??= []) as unknown[];
    if (!Array.isArray(target)) continue;
    extra.rules.forEach((rule, index) => {
      target.push(rule);
      origins.push({ file: extra.located, index });
    });
  }
  const located = (path: KeyPath): { where: Located; path: KeyPath } => {
    if (path[0] === 'rules' && typeof path[1] === 'number' && path[1] >= ownRules) {
      const origin = origins[path[1] - ownRules];
      if (origin) return { where: origin.file, path: ['rules', origin.index, ...path.slice(2)] };
    }
    return { where: main, path };
  };

  const root = (options.schema ?? ConfigSchema) as unknown as z.ZodType;
  const { notices, remap, switched } = switchOff(raw as Record<string, unknown>, unset);
  issues.push(...offBlockIssues(root, switched, doc, lineOf));
  notices.push(...disabledControls(raw as Record<string, unknown>));
  const result = (options.schema ?? ConfigSchema).safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      const { where, path } = located(remap(issue.path as KeyPath));
      for (const described of describeIssue({ ...issue, path } as z.core.$ZodIssue, where.doc, where.unset, where.lineOf, root))
        issues.push({ ...described, path: where.prefix + described.path });
    }
  }
  // An issue may quote the value it found, and that value may be a secret (a webhook URL that is
  // not a URL, a password in a URL with a bad port): the issues are redacted with the secrets of
  // the document as written, valid or not, before anything prints them.
  if (issues.length > 0 || !result.success) throw new ConfigError(redacted(sortIssues(issues), collectSecrets(raw, interpolated)), source);
  notices.push(...sharedAddresses(result.data as Config));
  const config = { ...result.data, notices, secrets: collectSecrets(result.data, interpolated) } as Config;
  for (const issue of options.validate?.(config) ?? []) {
    const { where, path } = located(remap(issue.path));
    issues.push({ path: where.prefix + formatKeyPath(path), message: issue.message, line: locate(where.doc, path, where.lineOf) });
  }
  if (issues.length > 0) throw new ConfigError(redacted(sortIssues(issues), config.secrets), source);
  return deepFreeze(config);
}

function redacted(issues: ConfigIssue[], secrets: readonly string[]): ConfigIssue[] {
  const redactor = new Redactor(secrets);
  return issues.map((issue) => ({ ...issue, path: redactor.text(issue.path), message: redactor.text(issue.message) }));
}

/** A parsed YAML document and how to find lines in it; `prefix` names a rule file in messages. */
interface Located {
  doc: Document;
  lineOf: (offset?: number) => number | undefined;
  unset: Map<string, string>;
  prefix: string;
}

/** A rule file: `rules: [...]` and nothing else. Its problems go into `issues`, named by file. */
function parseRuleFile(
  file: { source: string; text: string },
  env: Env,
  issues: ConfigIssue[],
  interpolated: Set<string>,
): { rules: unknown[]; located: Located } | undefined {
  const { doc, lineOf } = parseYaml(file.text);
  const prefix = `${file.source}: `;
  const yaml = yamlIssues({ doc, lineOf }, file.source);
  if (yaml.length > 0) {
    issues.push(...yaml);
    return undefined;
  }
  const plain = plainValue(doc, lineOf, file.source);
  if ('issues' in plain) {
    issues.push(...plain.issues);
    return undefined;
  }
  issues.push(...documentIssues(doc, lineOf, prefix));
  const unset = new Map<string, string>();
  const value = interpolate(plain.value, env, [], unset, interpolated) as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    if (key !== 'rules')
      issues.push({
        path: `${prefix}${formatKeyPath([key])}`,
        message: 'unknown key; a rule file holds only rules: [...]',
        line: locate(doc, [key], lineOf, true),
      });
  }
  if (!Array.isArray(value.rules)) {
    issues.push({ path: `${prefix}rules`, message: 'is required (a list of rules)', line: locate(doc, [], lineOf) });
    return undefined;
  }
  return { rules: value.rules, located: { doc, lineOf, unset, prefix } };
}

/**
 * A traffic adapter or receiver that needs an unset variable is turned off (traffic falls back
 * to `none`), with a notice saying which variable: setting SLACK_WEBHOOK_URL is how a user
 * turns Slack on. Returns the notices and a function mapping validated paths back to the
 * document's (removing a receiver shifts the indices of those after it).
 */
/** A block turned off for an unset variable: where it was, what it held, and the keys the variables left out. */
interface SwitchedOff {
  path: KeyPath;
  block: unknown;
  unsetPaths: string[];
}

function switchOff(
  raw: Record<string, unknown>,
  unset: Map<string, string>,
): { notices: string[]; remap: (path: KeyPath) => KeyPath; switched: SwitchedOff[] } {
  const notices: string[] = [];
  const switched: SwitchedOff[] = [];
  /** The unset variables at `prefix` or below it, as [key path, variable]. */
  const unsetUnder = (prefix: string) => [...unset].filter(([path]) => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`));
  /** Turn off the block at `path` for the unset variables `found` (they answer for it now); offBlockIssues checks the rest of it. */
  const turnOff = (path: KeyPath, block: unknown, found: [string, string][]) => {
    switched.push({ path, block, unsetPaths: found.map(([left]) => left) });
    for (const [left] of found) unset.delete(left);
  };
  const shifts: { prefix: KeyPath; original: number[] }[] = [];
  for (const block of SWITCHABLE) {
    const parent = block.path.slice(0, -1).reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key as string], raw) as
      Record<string, unknown> | undefined;
    const key = block.path.at(-1) as string;
    const value = parent?.[key];
    if (value === undefined) continue;
    const where = formatKeyPath(block.path);
    if (!block.list) {
      const found = unsetUnder(where);
      const variables = found.map(([, variable]) => variable);
      if (variables.length > 0) {
        const type = (value as { type?: unknown }).type;
        notices.push(
          `${where} (${String(type)}) is off because ${variables.join(', ')} ${variables.length === 1 ? 'is' : 'are'} not set; using ${JSON.stringify(block.off)}`,
        );
        turnOff(block.path, value, found);
        parent![key] = block.off;
      }
      continue;
    }
    if (!Array.isArray(value)) continue;
    const kept: unknown[] = [];
    const original: number[] = [];
    value.forEach((item, index) => {
      const found = unsetUnder(`${where}[${index}]`);
      const variables = found.map(([, variable]) => variable);
      if (variables.length === 0) {
        kept.push(item);
        original.push(index);
        return;
      }
      const { type, name } = (item ?? {}) as { type?: unknown; name?: unknown };
      notices.push(
        `${where}[${index}] (${String(type)}${name ? ` "${String(name)}"` : ''}) is off because ${variables.join(', ')} ${variables.length === 1 ? 'is' : 'are'} not set`,
      );
      turnOff([...block.path, index], item, found);
    });
    parent![key] = kept;
    shifts.push({ prefix: block.path, original });
  }
  const remap = (path: KeyPath): KeyPath => {
    for (const { prefix, original } of shifts) {
      if (path.length > prefix.length && prefix.every((step, i) => path[i] === step) && typeof path[prefix.length] === 'number') {
        return [...prefix, original[path[prefix.length] as number] ?? path[prefix.length]!, ...path.slice(prefix.length + 1)];
      }
    }
    return path;
  };
  return { notices, remap, switched };
}

/**
 * The problems of blocks turned off for an unset variable, other than the keys those variables
 * leave out: `greenlight validate` in a CI without the secrets must find the typo (`timeout: 5x`,
 * an unknown key) that would stop the agent where they are set.
 */
function offBlockIssues(schema: z.ZodType, switched: readonly SwitchedOff[], doc: Document, lineOf: (offset?: number) => number | undefined): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const { path, block, unsetPaths } of switched) {
    const blockSchema = path.reduce<z.ZodType | undefined>((node, step) => node && childSchema(node, step), schema);
    const result = blockSchema?.safeParse(block, { reportInput: true });
    if (!result || result.success) continue;
    for (const issue of result.error.issues) {
      const full = [...path, ...(issue.path as KeyPath)];
      const formatted = formatKeyPath(full);
      // What the unset variables left out is what turned the block off: not a problem of its own.
      if (unsetPaths.includes(formatted)) continue;
      issues.push(...describeIssue({ ...issue, path: full } as z.core.$ZodIssue, doc, new Map(), lineOf, schema));
    }
  }
  return issues;
}

/** Whether `text` has a `${` that begins no variable reference, or a default that holds one (`${A:-${B}}` reads as `${A:-${B}` and a `}`). */
function strayReference(text: string): boolean {
  if (!text.includes('${')) return false;
  for (const [, , fallback] of text.matchAll(VARIABLE)) if (fallback?.includes('${')) return true;
  return text.replace(VARIABLE, '').includes('${');
}

/** Keys that reach JavaScript object internals when a YAML mapping becomes an object. */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * What is wrong in the document's keys and texts, at any depth, each with its line:
 * - every `__proto__`, `constructor` or `prototype` key: in a mapping read into a record
 *   (headers, labels, a body) it would set or shadow the object's prototype instead of being a
 *   key; no greenlight setting has that name;
 * - a `${` in a value that begins no variable reference (`${}`, an unterminated `${VAR`, a default
 *   holding another `${…}`): it was kept as it stands, so a value meant to come from the
 *   environment went out as its own text.
 */
function documentIssues(doc: Document, lineOf: (offset?: number) => number | undefined, prefix: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stack: { node: unknown; path: KeyPath }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined) continue;
        if (RESERVED_KEYS.has(key)) {
          issues.push({
            path: prefix + formatKeyPath([...path, key]),
            message: 'is not allowed as a key: __proto__, constructor and prototype are reserved names in greenlight configs; rename or remove it',
            line: lineOf((pair.key as Node).range?.[0]),
          });
        }
        stack.push({ node: pair.value, path: [...path, key] });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => stack.push({ node: item, path: [...path, index] }));
    } else if (isScalar(node) && typeof node.value === 'string' && strayReference(node.value)) {
      // The value is not quoted: it may be a secret with a typo in it.
      issues.push({
        path: prefix + formatKeyPath(path),
        message:
          'has a ${ that begins no variable reference such as ${VAR} or ${VAR:-default} (a name of letters, digits and _, closed by }; a default cannot hold another ${…}): write $${ for a literal ${',
        line: lineOf(node.range?.[0]),
      });
    }
  }
  return issues;
}

/**
 * Environments at one address (BLUE_URL and GREEN_URL both left at one value): every failure is
 * then seen on both, and a rollback is always held as inconclusive. Said, not refused: a trial
 * against one simulator is a fair use.
 */
function sharedAddresses(config: Config): string[] {
  const byUrl = new Map<string, string[]>();
  for (const [name, environment] of Object.entries(config.environments)) byUrl.set(environment.url, [...(byUrl.get(environment.url) ?? []), name]);
  return [...byUrl.values()]
    .filter((names) => names.length > 1)
    .map(
      (names) =>
        `environments ${names.join(' and ')} have the same url: every failure shows on both, so a rule's rollback is always held as inconclusive. Give each environment its own address`,
    );
}

/**
 * What the API tokens leave switched off: without either token nobody can roll back, change
 * flags, promote or reload through the API (those calls answer 401); without the admin token
 * only the emergency path works. Said at start (a warning), by `validate` and in the state.
 */
function disabledControls(raw: Record<string, unknown>): string[] {
  const api = (raw.api ?? {}) as { adminToken?: unknown; rollbackToken?: unknown };
  if (api.adminToken !== undefined) return [];
  if (api.rollbackToken === undefined) {
    return [
      'controls disabled: api.adminToken and api.rollbackToken are not set (ADMIN_TOKEN, ROLLBACK_TOKEN with the default config), so nobody can roll back, change flags, promote or reload through the API: those calls answer 401. Rules still act on their own. Set the tokens to turn the controls on',
    ];
  }
  return [
    'admin controls disabled: api.adminToken is not set (ADMIN_TOKEN with the default config), so flag changes, promotions, reloads and silences answer 401; the rollback token still rolls back and applies the emergency flags',
  ];
}

/** Read and parse a config file, and the rule files it names. */
export async function loadConfigFile(path: string, env: Env = process.env, options: Omit<ParseOptions, 'source' | 'ruleFiles'> = {}): Promise<Config> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path);
  } catch (error) {
    throw new ConfigFileError(path, error);
  }
  const text = utf8Text(bytes, path, path);
  // Parsed once: the rule files it names are read from this parse, and it is then validated.
  // (A config of thousands of probes takes about a second to parse.)
  const parsed = parseYaml(text);
  const ruleFiles: { source: string; text: string }[] = [];
  const node = parsed.doc.errors.length > 0 ? undefined : parsed.doc.get('ruleFiles');
  const patterns: unknown = isSeq(node) ? node.toJSON() : undefined;
  if (Array.isArray(patterns)) {
    for (const [index, pattern] of patterns.entries()) {
      if (typeof pattern !== 'string') continue;
      const files = await expandRuleFiles(dirname(path), pattern);
      if (files.length === 0)
        throw new ConfigError(
          [{ path: `ruleFiles[${index}]`, message: `${JSON.stringify(pattern)} matches no file (paths are relative to ${dirname(path)})` }],
          path,
        );
      for (const file of files) {
        let bytes: Buffer;
        try {
          bytes = await readRegularFile(file);
        } catch (error) {
          throw new ConfigFileError(file, error);
        }
        const source = relative(dirname(path), file) || file;
        ruleFiles.push({ source, text: utf8Text(bytes, source, path) });
      }
    }
  }
  return configOf(parsed, env, { ...options, source: path, ruleFiles });
}

/**
 * The text of a config file's bytes, which must be UTF-8 (YAML's encoding; a BOM is fine). Decoded
 * leniently, a Latin-1 `é` in a path, a header or a token became U+FFFD and the file was valid,
 * probing or sending something else than what it says. `source` names the file in the issue,
 * `reported` is the file the error is about (the config, for one of its rule files).
 */
function utf8Text(bytes: Buffer, source: string, reported: string): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const offset = firstInvalidUtf8Byte(bytes);
  const line = bytes.subarray(0, offset).toString('utf8').split('\n').length;
  const byte = `0x${bytes[offset]!.toString(16).toUpperCase().padStart(2, '0')}`;
  throw new ConfigError(
    [{ path: '', message: `${source === reported ? 'the file' : source} is not UTF-8 text (byte ${byte} on this line): save it as UTF-8`, line }],
    reported,
  );
}

/** `rules/*.yaml` → the matching files, sorted; a pattern without * is itself (when it exists). */
async function expandRuleFiles(base: string, pattern: string): Promise<string[]> {
  const full = resolve(base, pattern);
  const name = basename(full);
  if (!name.includes('*')) return (await readdir(dirname(full)).catch(() => [] as string[])).includes(name) ? [full] : [];
  const matcher = new RegExp(
    `^${name
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  const entries = await readdir(dirname(full)).catch(() => [] as string[]);
  return entries
    .filter((entry) => matcher.test(entry))
    .sort()
    .map((entry) => join(dirname(full), entry));
}

/**
 * Replace `${VAR}` and `${VAR:-default}` in every string value (`$$` is a literal `$`). A value
 * that is exactly one reference takes the YAML type of what it expands to, so `${PORT:-9464}` is
 * a number. A reference to an unset variable without a default removes the key: when the key is
 * optional that is what the user wants, and when it is required the schema says so and the
 * message names the variable (recorded in `unset`). What a variable puts into a secret place
 * (`secretPlace`) is recorded in `secrets`, for the redactor.
 */
function interpolate(value: unknown, env: Env, path: KeyPath, unset: Map<string, string>, secrets: Set<string>): unknown {
  if (typeof value === 'string') {
    let missing: string | undefined;
    const substituted: string[] = [];
    const expanded = value.replace(VARIABLE, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$$') return '$';
      const found = env[name!];
      if (found !== undefined && found !== '') return (substituted.push(found), found);
      if (fallback !== undefined) return (substituted.push(fallback), fallback);
      missing ??= name;
      return '';
    });
    if (missing !== undefined) {
      unset.set(formatKeyPath(path), missing);
      return undefined;
    }
    const secret = substituted.length > 0 && secretPlace(path, value);
    if (secret) for (const text of [...substituted, expanded]) secrets.add(text);
    // A token of digits stays the string it is: as a number it would be refused, quoted in the message, and rounded.
    if (!secret && expanded !== value && /^\$\{[^}]*\}$/.test(value)) return typedScalar(expanded);
    return expanded;
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => interpolate(item, env, [...path, index], unset, secrets));
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const expanded = interpolate(item, env, [...path, key], unset, secrets);
      if (expanded !== undefined) out[key] = expanded;
    }
    return out;
  }
  return value;
}

/**
 * Whether what a variable puts into the string `raw` at `path` is a secret: a header value, a
 * request body, the value of a key named like a secret, a string that names one itself
 * (`--token=${T}`, `/api?api_key=${K}`, `Authorization: Bearer ${T}` as a command argument), any
 * argument of a command (`[switch.sh, --token, "${T}"]`: the name and the value are two
 * arguments), or a segment of a path (`/api/${T}/health`, `https://host/hooks/${T}`): tokens
 * travel there too. A variable that is a whole path or URL (`${BLUE_URL}`) is an address, not a
 * secret, unless a secret key or a webhook's place makes it one.
 */
function secretPlace(path: KeyPath, raw: string): boolean {
  const inHeaders = path.length >= 2 && path[path.length - 2] === 'headers';
  const inCommand = path.length >= 2 && path[path.length - 2] === 'command';
  return (
    inHeaders ||
    inCommand ||
    path.includes('body') ||
    path.some((step) => typeof step === 'string' && isSecretKey(step)) ||
    isSecretKey(raw.replace(VARIABLE, '')) ||
    inPathSegment(raw)
  );
}

/** Whether a variable of `raw` comes after the first slash of a path, or of a URL's path. */
function inPathSegment(raw: string): boolean {
  for (const match of raw.matchAll(VARIABLE)) {
    if (match[0] === '$$') continue;
    const before = raw.slice(0, match.index);
    if (/^\/./.test(before) || /^[a-z][a-z0-9+.-]*:\/\/[^/]*\//i.test(before)) return true;
  }
  return false;
}

function typedScalar(text: string): unknown {
  if (text === '') return text;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  unset: Map<string, string>,
  lineOf: (offset?: number) => number | undefined,
  root: z.ZodType,
): ConfigIssue[] {
  if (issue.code === 'invalid_union') {
    const branch = matchingBranch(issue, doc);
    if (branch) return branch.flatMap((inner) => describeIssue(inner, doc, unset, lineOf, root));
  }
  const path = issue.path as KeyPath;
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatKeyPath([...path, key]),
      message: `unknown key; ${suggestKey(key, knownKeys(issue, path, root, doc))}`,
      line: locate(doc, [...path, key], lineOf, true),
    }));
  }
  const where = formatKeyPath(path);
  const variable = unset.get(where);
  if (variable !== undefined) {
    return [
      {
        path: where,
        message: `environment variable ${variable} is not set; set it, or give a default with \${${variable}:-value}`,
        line: locate(doc, path, lineOf),
      },
    ];
  }
  return [{ path: where, message: friendlyMessage(issue, doc, path), line: locate(doc, path, lineOf) }];
}

/**
 * Of a union none of whose options fits (a rule's condition: `all`, `any`, `not` or a leaf; a
 * condition's value: a scalar or a list), the one the document plainly means: the only option of
 * the document's type that, for a mapping, knows any of its keys. That option's own problems (a
 * value at `when.all[0].value`, a misspelt `operater`) say far more than "is not a condition" at
 * `when`. Undefined when no option, or more than one, is meant that way.
 */
function matchingBranch(issue: z.core.$ZodIssue & { code: 'invalid_union' }, doc: Document): z.core.$ZodIssue[] | undefined {
  const base = issue.path as KeyPath;
  const node = doc.getIn(base, true);
  const keys = isMap(node) ? node.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key)) : [];
  const meant = issue.errors.filter((branch) => {
    const atRoot = branch.filter((inner) => inner.path.length === 0);
    if (branch.length === 0 || atRoot.some((inner) => inner.code !== 'unrecognized_keys')) return false;
    const foreign = new Set(atRoot.flatMap((inner) => (inner.code === 'unrecognized_keys' ? inner.keys : [])));
    return keys.length === 0 || keys.some((key) => !foreign.has(key));
  });
  if (meant.length !== 1) return undefined;
  const branch = meant[0]!;
  // The option's own keys, for "did you mean" on a foreign one: those there and those it misses.
  const known = [
    ...keys,
    ...branch.flatMap((inner) => (inner.path.length === 1 && !doc.hasIn([...base, inner.path[0]!] as KeyPath) ? [String(inner.path[0])] : [])),
  ];
  return branch.map((inner) => ({ ...inner, path: [...base, ...inner.path], ...(inner.code === 'unrecognized_keys' ? { known } : {}) }) as z.core.$ZodIssue);
}

function friendlyMessage(issue: z.core.$ZodIssue, doc: Document, path: KeyPath): string {
  if (issue.code === 'invalid_type') {
    const present = doc.hasIn(path);
    if (!present || issue.input === undefined) return `is required (${article(issue.expected)})`;
    const written = doc.getIn(path);
    // A variable's value: quotes in the shell make no string of it; the value itself must change.
    if (issue.expected === 'string' && typeof written === 'string' && written.includes('${'))
      return `expected a string, got ${describeValue(issue.input)} from ${written}: set the variable to this key's whole form (a duration with its unit such as 5s, an address such as 127.0.0.1:9464 or :9464)`;
    const quote = issue.expected === 'string' && (typeof issue.input === 'number' || typeof issue.input === 'boolean') ? ' (put it in quotes)' : '';
    return `expected ${article(issue.expected)}, got ${describeValue(issue.input)}${quote}`;
  }
  if (issue.code === 'invalid_value') {
    return `${describeValue(issue.input)} is not one of ${issue.values.map((v) => String(v)).join(', ')}`;
  }
  if (issue.code === 'invalid_union' && !doc.hasIn(path)) return 'is required';
  if (issue.code === 'invalid_union') {
    // None of the types fits (a condition's value): name them, and what is there.
    const expected = issue.errors.flatMap((branch) =>
      branch.length === 1 && branch[0]!.code === 'invalid_type' && branch[0]!.path.length === 0 ? [branch[0]!.expected] : [],
    );
    if (expected.length === issue.errors.length)
      return `expected ${listOf(expected.map(article))}, got ${describeValue(doc.getIn(path, false) ?? issue.input)}`;
  }
  // A record's key that its key schema refuses: that schema's own words (a name's rule), not zod's "Invalid key in record".
  if (issue.code === 'invalid_key') return `the key ${issue.issues[0]?.message ?? 'is not allowed here'}`;
  return issue.message;
}

function article(expected: string): string {
  const names: Record<string, string> = {
    object: 'a mapping',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'true or false',
    record: 'a mapping',
  };
  return names[expected] ?? expected;
}

/** The keys the mapping at `path` may have: from the schema, or those a union's option gave (matchingBranch). */
function knownKeys(issue: z.core.$ZodIssue & { code: 'unrecognized_keys' }, path: KeyPath, root: z.ZodType, doc: Document): string[] {
  const fromSchema = expectedKeys(path, root, doc);
  if (fromSchema.length > 0) return fromSchema;
  const known = (issue as { known?: string[] }).known ?? [];
  return known.filter((key) => !issue.keys.includes(key));
}

function listOf(items: string[]): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)!}`;
}

function describeValue(value: unknown): string {
  if (isScalar(value)) value = value.value;
  if (isSeq(value)) return 'a list';
  if (isMap(value)) return 'a mapping';
  // JSON has no NaN or infinity (YAML's .nan and .inf): say what the value is, not "null".
  if (typeof value === 'number' && !Number.isFinite(value)) return `${String(value)} (YAML's ${Number.isNaN(value) ? '.nan' : value > 0 ? '.inf' : '-.inf'})`;
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/**
 * The keys a strict object at `path` accepts, for "did you mean" hints. A plugin block (traffic, a
 * receiver, an action) is one object per `type`: the keys are those of the type the document gives.
 */
function expectedKeys(path: KeyPath, root: z.ZodType, doc: Document): string[] {
  let schema: z.ZodType | undefined = root;
  path.forEach((step, i) => {
    schema = schema && childSchema(ofType(schema, doc.getIn(path.slice(0, i))), step);
  });
  return schema ? objectKeys(ofType(schema, doc.getIn(path))) : [];
}

/** Of a plugin block (one schema per `type`), the one `node` (a YAML mapping) names; anything else as it is. */
function ofType(schema: z.ZodType, node: unknown): z.ZodType {
  const type = isMap(node) ? node.get('type') : undefined;
  let current: z.ZodType | undefined = schema;
  for (let i = 0; i < 10 && current; i++) {
    const named = pluginBlockSchema(current, type);
    if (named) return named;
    const def = defOf(current);
    if (!def || def.type === 'object' || def.type === 'array' || def.type === 'record') break;
    current = def.innerType ?? def.schema;
  }
  return schema;
}

/** The parts of zod 4's internal schema definition that key-path lookups read. */
interface ZodDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  schema?: z.ZodType;
  options?: z.ZodType[];
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
}

function defOf(schema: z.ZodType | undefined): ZodDef | undefined {
  return (schema as { _zod?: { def?: ZodDef } } | undefined)?._zod?.def;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current: z.ZodType | undefined = schema;
  for (let i = 0; i < 10 && current; i++) {
    const def = defOf(current);
    if (!def) break;
    if (def.type === 'object' || def.type === 'array' || def.type === 'record') break;
    current = def.innerType ?? def.in ?? def.schema ?? (def.type === 'union' ? def.options?.find((o) => defOf(unwrap(o))?.type === 'object') : undefined);
  }
  return current ?? schema;
}

function childSchema(schema: z.ZodType, step: string | number): z.ZodType | undefined {
  const def = defOf(unwrap(schema));
  if (!def) return undefined;
  if (def.type === 'object') return def.shape?.[step];
  if (def.type === 'array') return def.element;
  if (def.type === 'record') return def.valueType;
  return undefined;
}

function objectKeys(schema: z.ZodType): string[] {
  const def = defOf(unwrap(schema));
  return def?.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

function suggestKey(key: string, known: string[]): string {
  const close = known.filter((candidate) => editDistance(candidate.toLowerCase(), key.toLowerCase()) <= 2);
  if (close.length > 0) return `did you mean ${close.join(' or ')}?`;
  return known.length > 0 ? `expected one of ${known.join(', ')}` : 'remove it';
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The line of the node at `path`, or of the nearest ancestor that exists. */
/**
 * The key path of what is at `offset` in the text, as far as the parse got (a duplicate key: the
 * key itself): a syntax error names where it is, not only its line.
 */
function pathAt(node: unknown, offset: number, path: KeyPath = []): KeyPath {
  // Ranges are [start, end of the value, end of the node with what trails it]: a node's own text
  // ends at the second, so that the next key (a duplicate) is not taken for part of the one before.
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key : undefined;
      if (key?.range === undefined || key.range === null) continue;
      if (offset >= key.range[0] && offset < key.range[1]) return [...path, String(key.value)];
      const range = (pair.value as Node | null)?.range;
      if (range && offset >= range[0] && offset < range[1]) return pathAt(pair.value, offset, [...path, String(key.value)]);
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const range = (item as Node | null)?.range;
      if (range && offset >= range[0] && offset < range[1]) return pathAt(item, offset, [...path, index]);
    }
  }
  return path;
}

function locate(doc: Document, path: KeyPath, lineOf: (offset?: number) => number | undefined, atKey = false): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const prefix = path.slice(0, depth);
    if (atKey && depth === path.length && depth > 0) {
      const parent = doc.getIn(prefix.slice(0, -1), true) as Node | undefined;
      if (isMap(parent)) {
        const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === String(path[depth - 1]));
        if (pair && isScalar(pair.key)) return lineOf(pair.key.range?.[0]);
      }
      continue;
    }
    const node = (depth === 0 ? doc.contents : doc.getIn(prefix, true)) as Node | undefined;
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) return lineOf(node.range[0]);
  }
  return undefined;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

/** What a key path says in place of a key below a secret. */
const INSIDE_SECRET = 'part of a secret value, not shown';

/**
 * `probes[2].expect.json[0]`; a key that is not a plain word is quoted (`flags.initial.blue["MY\nFLAG"]`),
 * so a key with a newline or a quote in it never splits or garbles the line that names it. A key
 * that may hold a value, or lies below a key whose value is a secret (`api.adminToken`, a
 * credential header), is never shown: YAML reads `adminToken: <token>: x` as a mapping whose key
 * is the token, and a syntax error there is located at that key.
 */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let underSecret = false;
  return path.reduce<string>((out, step, index) => {
    if (typeof step === 'number') return `${out}[${step}]`;
    const key = String(step);
    if (underSecret) return `${out}[${INSIDE_SECRET}]`;
    if (mayHoldValue(key)) return `${out}[${HIDDEN_KEY}]`;
    underSecret = holdsSecret(key, path[index - 1]);
    if (!/^[\w$@.:/-]*$/.test(key) || key === '') return `${out}[${JSON.stringify(key)}]`;
    return out ? `${out}.${key}` : key;
  }, '');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
