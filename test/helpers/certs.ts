/**
 * Certificates made at test time with openssl (.ci/run installs it): a private CA and leaves it
 * signs with any validity (past ones included, through `openssl ca -startdate/-enddate`) and any
 * host names, and self-signed ones. EC P-256 keys: fast to generate.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tools.js';

export interface TestCert {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

export interface TestCa extends TestCert {
  /** Sign a leaf for `hosts` (IP addresses or DNS names) valid from `notBefore` to `notAfter`. */
  issue(options: { hosts: string[]; notBefore: Date; notAfter: Date; name?: string }): TestCert;
}

function openssl(args: string[], cwd: string): void {
  const run = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${run.stderr}`);
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function subjectAltName(hosts: string[]): string {
  return hosts.map((host) => (/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`)).join(',');
}

/** openssl ca's time format: YYYYMMDDHHMMSSZ. */
function caTime(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
}

function read(dir: string, name: string): TestCert {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}.key`);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

/** A CA valid for `days` (default 30) that can issue leaves. */
export function makeCa(name = 'greenlight test CA', days = 30): TestCa {
  const dir = tempDir('greenlight-ca-');
  openssl(
    [
      'req',
      '-x509',
      ...KEY,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      String(days),
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  mkdirSync(join(dir, 'db'));
  writeFileSync(join(dir, 'db', 'index.txt'), '');
  writeFileSync(join(dir, 'db', 'serial'), '1000\n');
  let issued = 0;
  return {
    ...read(dir, 'ca'),
    issue: ({ hosts, notBefore, notAfter, name: cn }) => {
      const leaf = `leaf${++issued}`;
      writeFileSync(
        join(dir, `${leaf}.cnf`),
        `[ca]\ndefault_ca = test\n[test]\ndir = .\ndatabase = db/index.txt\nserial = db/serial\nnew_certs_dir = db\ndefault_md = sha256\npolicy = any\nunique_subject = no\nx509_extensions = leaf\n[any]\ncommonName = supplied\n[leaf]\nbasicConstraints = CA:FALSE\nsubjectAltName = ${subjectAltName(hosts)}\n`,
      );
      openssl(['req', ...KEY, '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', `/CN=${cn ?? hosts[0]}`], dir);
      openssl(
        [
          'ca',
          '-batch',
          '-config',
          `${leaf}.cnf`,
          '-cert',
          'ca.pem',
          '-keyfile',
          'ca.key',
          '-in',
          `${leaf}.csr`,
          '-out',
          `${leaf}.pem`,
          '-startdate',
          caTime(notBefore),
          '-enddate',
          caTime(notAfter),
          '-notext',
        ],
        dir,
      );
      return read(dir, leaf);
    },
  };
}

/** A self-signed certificate for `hosts`, valid for `days`. */
export function makeSelfSigned(hosts: string[], days = 1): TestCert {
  const dir = tempDir('greenlight-self-');
  openssl(
    [
      'req',
      '-x509',
      ...KEY,
      '-keyout',
      'self.key',
      '-out',
      'self.pem',
      '-days',
      String(days),
      '-subj',
      `/CN=${hosts[0]}`,
      '-addext',
      `subjectAltName=${subjectAltName(hosts)}`,
    ],
    dir,
  );
  return read(dir, 'self');
}
