/**
 * `greenlight check`'s table is read on a terminal, and what it shows of an https target's
 * certificate (the name of the one that expires first) is the target's own text: a hostile or
 * broken certificate must not write to that terminal, nor add lines to the table.
 */
import { createServer, type Server } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCa } from '../../../helpers/certs.js';
import { cli } from '../../../helpers/cli.js';
import { hasTool, tempDir } from '../../../helpers/tools.js';

const DAY = 86_400_000;
/** A certificate name that clears the screen, colours the rest, and forges the verdict line below the table. */
// ASCII only: openssl reads -subj as Latin-1.
const HOSTILE_NAME = 'desk\u001b[2J\u001b[0m\n\nOK blue: all 1 probes pass\n\u0007';

describe.skipIf(!hasTool('openssl'))('greenlight check: a certificate that names itself with control characters', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const ca = makeCa('check test CA', 30);
    const leaf = ca.issue({ hosts: ['127.0.0.1'], name: HOSTILE_NAME, notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 20 * DAY) });
    server = createServer({ cert: leaf.cert, key: leaf.key }, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('prints the name with its control characters written out, on the row of its probe (regression: raw ESC and newlines from the certificate)', async () => {
    const path = join(tempDir('greenlight-check-'), 'greenlight.yaml');
    writeFileSync(
      path,
      `environments:\n  blue: { url: "${url}" }\n  green: { url: "http://127.0.0.1:9" }\nprobes:\n  - { name: health, path: /, timeout: 5s }\n`,
    );
    // The chain is read even though it is refused (its CA is not trusted here): the name shows either way.
    const run = await cli(['check', '--env', 'blue', '--config', path]);
    expect(run.code).toBe(1);
    expect(run.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(4); // the header, the probe's row, a blank line, the verdict
    expect(lines[1]).toContain('desk\\u001b[2J\\u001b[0m\\n\\nOK blue: all 1 probes pass\\n\\u0007), not verified: UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(lines[3]).toBe('\u274c blue: 1 of 1 probes fail');
  });
});
