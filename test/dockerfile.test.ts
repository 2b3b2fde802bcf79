/**
 * No Docker engine runs here, so the image's build is checked by what it copies: every source
 * folder the build compiles must reach the build stage (regression: rules/ was missing, so
 * `docker build` failed at `npm run build`), and the runtime stage must ship the status page.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAUNCHER_ENV, LAUNCHER_NODE_FLAGS, SHIPPED_NODE_FLAGS } from '../bench/harness.js';
import { RUNTIME_V8_FLAGS } from '../agent/cli/runtime-flags.js';
import { BIN } from './helpers/cli.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const [build, runtime] = dockerfile.split(/^FROM .* AS runtime$/m);
  const ignored = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const include = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
  const copied = (stage: string) => [...stage!.matchAll(/^COPY (?!--from)(\S+)/gm)].map((m) => m[1]);

  it('copies every folder the build compiles (and that is not ignored) into the build stage', () => {
    const needed = include.filter((dir) => !ignored.includes(dir));
    expect(needed).toEqual(expect.arrayContaining(['agent', 'probes', 'rules', 'config', 'simulator']));
    for (const dir of needed) expect(copied(build!), dir).toContain(dir);
  });

  it('ships the built code, the CLI, the default config and the status page in the runtime stage', () => {
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    for (const path of ['bin', 'agent/status-page', 'config/greenlight.yaml'])
      expect(runtime, path).toMatch(new RegExp(`^COPY (?!--from)[^\\n]*\\b${path}\\b`, 'm'));
  });
});

describe('the shipped launchers', () => {
  // The benches measure the agent with these flags and this environment (bench/harness.ts): every way greenlight ships must set them.
  const flags = LAUNCHER_NODE_FLAGS.join(' ');
  const env = Object.entries(LAUNCHER_ENV).map(([name, value]) => `${name}=${value}`);

  it('set the node flags the benchmarks measure: image, systemd unit, npm start, the CLI itself', () => {
    expect(read('Dockerfile').split(/^FROM .* AS runtime$/m)[1]).toMatch(new RegExp(`NODE_OPTIONS=${flags}\\b`));
    expect(read('examples/systemd/greenlight.service')).toMatch(new RegExp(`^Environment=.*\\bNODE_OPTIONS=${flags}\\b`, 'm'));
    expect((JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start).toBe(`${env.join(' ')} node ${flags} bin/greenlight.js run`);
    expect(read('bin/greenlight.js').split('\n')[0]).toBe(`#!/usr/bin/env -S ${env.join(' ')} node ${flags}`);
  });

  it('set the environment the benchmarks measure (malloc settings): image, systemd unit, npm start and shebang (above)', () => {
    expect(env).toEqual(['GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072']);
    const runtime = read('Dockerfile').split(/^FROM .* AS runtime$/m)[1]!;
    const unit = read('examples/systemd/greenlight.service');
    for (const setting of env) {
      expect(runtime, setting).toMatch(new RegExp(`^\\s+${setting}( \\\\)?$`, 'm'));
      expect(unit, setting).toMatch(new RegExp(`^Environment=.* ${setting} `, 'm'));
    }
  });

  it('the CLI sets the rest itself before any command runs (Node refuses them in NODE_OPTIONS), and the benches pass both', () => {
    expect(SHIPPED_NODE_FLAGS).toEqual([...LAUNCHER_NODE_FLAGS, ...RUNTIME_V8_FLAGS]);
    expect(RUNTIME_V8_FLAGS).toEqual(['--heap-growing-percent=25', '--no-allocation-site-pretenuring']);
    const main = /export async function main\([^)]*\)[^{]*\{\n([^\n]*)/.exec(read('agent/cli/cli.ts'));
    expect(main?.[1]?.trim()).toBe('applyRuntimeFlags();');
    // Each of them is a flag this Node accepts.
    const run = spawnSync(process.execPath, [...RUNTIME_V8_FLAGS, '-e', '0'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('runs bin/greenlight.js directly through its shebang', () => {
    const run = spawnSync(BIN, ['schema'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toHaveProperty('properties');
  });

  it("the shebang's environment reaches the process: a preload prints what the CLI runs with", () => {
    const dir = mkdtempSync(join(tmpdir(), 'greenlight-shebang-'));
    const preload = join(dir, 'print-env.cjs');
    writeFileSync(preload, `process.stderr.write('GLIBC_TUNABLES=' + process.env.GLIBC_TUNABLES + '\\n');\n`);
    const run = spawnSync(BIN, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.arena_max=1', NODE_OPTIONS: `--require ${preload}` },
    });
    rmSync(dir, { recursive: true, force: true });
    expect(run.status).toBe(0);
    expect(run.stderr.trim()).toBe(`GLIBC_TUNABLES=${LAUNCHER_ENV.GLIBC_TUNABLES}`);
  });
});
