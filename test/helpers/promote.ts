import { tempDir } from './tools.js';

export const ADMIN = 'admin-token-for-tests-0123456789';

/** Two environments, a critical rule that rolls back (with cooldowns), and `extra` config. */
export function promoteConfig(blue: string, green: string, extra = '', traffic = ''): string {
  return `listen: 127.0.0.1:0
dataDir: ${tempDir('greenlight-data-')}
environments:
  blue: { url: ${blue} }
  green: { url: ${green} }
probeDefaults: { every: 100ms, timeout: 1s, jitter: 0 }
api: { adminToken: ${ADMIN} }
${traffic}
actions:
  rollback: { type: rollback, cooldown: 10m }
  safe-mode: { type: flags, preset: emergency-rollback, env: incident }
rules:
  - name: live-health-failing
    severity: critical
    when: { all: [ { fact: consecutiveFailures, params: { probe: health }, operator: greaterThanInclusive, value: 3 } ] }
    cooldown: 5m
    actions: [rollback, safe-mode]
probes:
  - name: health
    path: /api/health
    expect: { json: [ { path: $.status, in: [healthy] } ] }
  - name: universe
    path: /api/alphastack/universe
    expect: { json: [ { path: $.universe, nonEmpty: true } ] }
${extra}`;
}

/** Fast gates: 2 probe rounds, 1 s of load at 20/s, a short watch. */
export const FAST_GATES = `promote:
  healthyRounds: 2
  roundInterval: 100ms
  load: { rps: 20, duration: 1s, maxP95: 2s }
  verifyRounds: 1
  watch: 1s
  validation: { settle: 100ms }
`;
