/**
 * No Docker engine runs here, so the image's build is checked by what it copies: every source
 * folder the build compiles must reach the build stage (regression: rules/ was missing, so
 * `docker build` failed at `npm run build`), and the runtime stage must ship the status page.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const [build, runtime] = dockerfile.split(/^FROM .* AS runtime$/m);
  const ignored = read('.dockerignore').split('\n').map((line) => line.trim()).filter(Boolean);
  const include = (JSON.parse(read('tsconfig.build.json')) as { include: string[] }).include;
  const copied = (stage: string) => [...stage!.matchAll(/^COPY (?!--from)(\S+)/gm)].map((m) => m[1]);

  it('copies every folder the build compiles (and that is not ignored) into the build stage', () => {
    const needed = include.filter((dir) => !ignored.includes(dir));
    expect(needed).toEqual(expect.arrayContaining(['agent', 'probes', 'rules', 'config', 'simulator']));
    for (const dir of needed) expect(copied(build!), dir).toContain(dir);
  });

  it('ships the built code, the CLI, the default config and the status page in the runtime stage', () => {
    expect(runtime).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    for (const path of ['bin', 'agent/status-page', 'config/greenlight.yaml']) expect(runtime, path).toMatch(new RegExp(`^COPY (?!--from)[^\\n]*\\b${path}\\b`, 'm'));
  });
});
