import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../../agent/events/events.js';
import { checkInitialFlags, FLAG_DEFINITIONS, FlagError, FlagStore, type FlagStoreOptions } from '../../../agent/flags/flag-store.js';
import { ConfigError } from '../../../config/errors.js';
import { parseConfig } from '../../../config/load-config.js';

const T0 = 1_800_000_000_000;
const ADMIN = { actor: 'api:admin', reason: 'test' };

const DEFAULTS = {
  ALPHASTACK_PROTECTION: true,
  READ_ONLY_MODE: false,
  CIRCUIT_BREAKER: false,
  ALPHASTACK_V3_ENABLED: true,
  V3_PERFORMANCE_MODE: true,
  V3_REAL_TIME_UPDATES: true,
  V3_API_CACHING: true,
  FORCE_V2_FALLBACK: false,
  ALPHASTACK_V3_DISABLED: false,
};

function setup(options: Partial<FlagStoreOptions> = {}) {
  const events: EventInput[] = [];
  const gauges = new Map<string, boolean>();
  let now = T0;
  const store = new FlagStore({
    environments: ['blue', 'green'],
    readOnlyOnEmergency: false,
    now: () => now,
    publish: (input) => events.push(input),
    onChange: (env, flag, value) => gauges.set(`${env}/${flag}`, value),
    ...options,
  });
  return { store, events, gauges, advance: (ms: number) => (now += ms) };
}

function thrown(run: () => unknown): FlagError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(FlagError);
    return error as FlagError;
  }
  throw new Error('expected a FlagError');
}

describe('FlagStore', () => {
  it('starts both environments from the seed defaults', () => {
    const { store, gauges } = setup();
    expect(store.get('blue')).toEqual(DEFAULTS);
    expect(store.get('green')).toEqual(DEFAULTS);
    expect(store.all()).toEqual({ blue: DEFAULTS, green: DEFAULTS });
    expect(FLAG_DEFINITIONS.map((definition) => definition.name)).toEqual(Object.keys(DEFAULTS));
    // onChange sees every value at construction, so the flag gauges exist before any change.
    expect(gauges.size).toBe(18);
    expect(gauges.get('green/ALPHASTACK_PROTECTION')).toBe(true);
  });

  it('applies config flags.initial per environment', () => {
    const { store } = setup({ initial: { green: { READ_ONLY_MODE: true, ALPHASTACK_PROTECTION: true } } });
    expect(store.get('green').READ_ONLY_MODE).toBe(true);
    expect(store.get('blue').READ_ONLY_MODE).toBe(false);
  });

  it.each([
    [{ purple: { READ_ONLY_MODE: true } }, 'flags.initial.purple: "purple" is not one of the environments (blue, green)'],
    [{ blue: { NOPE: true } }, 'flags.initial.blue.NOPE: unknown flag'],
    [{ blue: { ALPHASTACK_PROTECTION: false } }, 'flags.initial.blue.ALPHASTACK_PROTECTION: is locked to true; remove it'],
  ])('refuses config flags.initial %j', (initial, message) => {
    expect(() => setup({ initial })).toThrow(ConfigError);
    expect(() => setup({ initial })).toThrow(message);
  });

  it('reports flags.initial problems with their lines through the config validate hook', () => {
    const text = `environments:
  blue:
    url: http://127.0.0.1:8081
  green:
    url: http://127.0.0.1:8082
flags:
  initial:
    green:
      ALPHASTACK_PROTECTION: false
      READ_ONLY_MOD: true
probes:
  - name: health
    path: /api/health
`;
    const validate = (config: ReturnType<typeof parseConfig>) => checkInitialFlags(config.flags.initial, Object.keys(config.environments));
    expect(() => parseConfig(text, {}, { validate })).toThrow('flags.initial.green.ALPHASTACK_PROTECTION: is locked to true; remove it (line 9)');
    expect(() => parseConfig(text, {}, { validate })).toThrow(
      'flags.initial.green.READ_ONLY_MOD: unknown flag; use one of ALPHASTACK_PROTECTION, READ_ONLY_MODE',
    );
  });

  it('changes one environment without touching the other, and reports the change once', () => {
    const { store, events, gauges } = setup();
    const changed = store.set(['green'], { READ_ONLY_MODE: true, V3_API_CACHING: false }, { actor: 'api:admin', reason: 'maintenance' });
    expect(changed).toEqual([
      { flag: 'READ_ONLY_MODE', env: 'green', old: false, new: true },
      { flag: 'V3_API_CACHING', env: 'green', old: true, new: false },
    ]);
    expect(store.get('green')).toMatchObject({ READ_ONLY_MODE: true, V3_API_CACHING: false });
    expect(store.get('blue')).toEqual(DEFAULTS);
    expect(gauges.get('green/READ_ONLY_MODE')).toBe(true);
    expect(gauges.get('blue/READ_ONLY_MODE')).toBe(false);
    expect(events).toEqual([
      {
        type: 'flag.changed',
        severity: 'info',
        env: 'green',
        message: 'flags changed on green by api:admin: READ_ONLY_MODE on, V3_API_CACHING off (maintenance)',
        data: { actor: 'api:admin', reason: 'maintenance', changes: changed },
      },
    ]);
  });

  it('changes several environments in one event and skips values already in place', () => {
    const { store, events } = setup({ initial: { blue: { CIRCUIT_BREAKER: true } } });
    const changed = store.set(['blue', 'green'], { CIRCUIT_BREAKER: true }, ADMIN);
    expect(changed).toEqual([{ flag: 'CIRCUIT_BREAKER', env: 'green', old: false, new: true }]);
    expect(events).toHaveLength(1);
    expect(store.set(['blue', 'green'], { CIRCUIT_BREAKER: true }, ADMIN)).toEqual([]);
    expect(events).toHaveLength(1);
  });

  describe('locked ALPHASTACK_PROTECTION', () => {
    it.each([
      ['false on one environment', ['blue'], { ALPHASTACK_PROTECTION: false }],
      ['false on both', ['blue', 'green'], { ALPHASTACK_PROTECTION: false }],
      ['false next to a valid change', ['blue'], { READ_ONLY_MODE: true, ALPHASTACK_PROTECTION: false }],
      ['a non-boolean', ['green'], { ALPHASTACK_PROTECTION: 'off' }],
      ['false next to an unknown flag', ['blue'], { NOPE: true, ALPHASTACK_PROTECTION: false }],
    ])('refuses %s with 409, an event and an audit entry, and changes nothing', (_name, envs, changes) => {
      const { store, events } = setup();
      const error = thrown(() => store.set(envs, changes, { actor: 'api:admin', reason: 'disable the engine' }));
      expect(error.status).toBe(409);
      expect(error.code).toBe('GL_ERR_FLAG_LOCKED');
      expect(error.message).toContain('ALPHASTACK_PROTECTION is locked and can never be changed (keeps the AlphaStack discovery engine running)');
      expect(store.all()).toEqual({ blue: DEFAULTS, green: DEFAULTS });
      expect(store.version()).toBe(0);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        type: 'flag.rejected',
        severity: 'warning',
        env: envs.length === 1 ? envs[0] : null,
        data: { actor: 'api:admin', reason: 'disable the engine', flag: 'ALPHASTACK_PROTECTION', env: envs.length === 1 ? envs[0] : null },
      });
      const audit = store.audit();
      expect(audit).toHaveLength(envs.length);
      expect(audit[0]).toMatchObject({
        actor: 'api:admin',
        reason: 'disable the engine',
        env: envs[0],
        flag: 'ALPHASTACK_PROTECTION',
        old: true,
        outcome: 'rejected',
        time: new Date(T0).toISOString(),
      });
    });

    it('accepts the value it already has as a no-op, so a read-modify-write client is not refused', () => {
      const { store, events } = setup();
      expect(store.set(['blue', 'green'], { ...DEFAULTS, READ_ONLY_MODE: true }, ADMIN)).toEqual([
        { flag: 'READ_ONLY_MODE', env: 'blue', old: false, new: true },
        { flag: 'READ_ONLY_MODE', env: 'green', old: false, new: true },
      ]);
      expect(events.map((event) => event.type)).toEqual(['flag.changed']);
      expect(store.audit().every((entry) => entry.flag !== 'ALPHASTACK_PROTECTION')).toBe(true);
    });
  });

  it.each([
    ['an unknown flag', { READ_ONLY_MODE: true, NOPE: true }, 'NOPE is not a flag (known: ALPHASTACK_PROTECTION, READ_ONLY_MODE'],
    ['a non-boolean value', { READ_ONLY_MODE: true, CIRCUIT_BREAKER: 'yes' }, 'CIRCUIT_BREAKER must be true or false, not "yes"'],
    ['a number', { V3_API_CACHING: 0 }, 'V3_API_CACHING must be true or false, not 0'],
    ['null', { V3_API_CACHING: null }, 'V3_API_CACHING must be true or false, not null'],
    ['nothing', {}, 'the request names no flags to set'],
  ])('refuses %s with 400 naming it and changes nothing (all or nothing)', (_name, changes, message) => {
    const { store, events } = setup();
    const error = thrown(() => store.set(['blue', 'green'], changes, ADMIN));
    expect(error.status).toBe(400);
    expect(error.code).toBe('GL_ERR_FLAG_INVALID');
    expect(error.message).toContain(message);
    expect(store.all()).toEqual({ blue: DEFAULTS, green: DEFAULTS });
    expect(events).toEqual([]);
    expect(store.audit()).toEqual([]);
  });

  it('names every bad entry at once', () => {
    const { store } = setup();
    const error = thrown(() => store.set(['blue'], { A: true, READ_ONLY_MODE: 'x', B: 1 }, ADMIN));
    expect(error.details.problems).toHaveLength(3);
  });

  it.each([
    ['an unknown environment', ['purple'], ADMIN, '"purple" is not an environment: use blue, green'],
    ['no environment', [], ADMIN, 'name at least one environment'],
    ['an empty reason', ['blue'], { actor: 'api:admin', reason: '  ' }, 'give a reason'],
  ])('refuses %s with 400', (_name, envs, request, message) => {
    const { store } = setup();
    const error = thrown(() => store.set(envs, { READ_ONLY_MODE: true }, request));
    expect(error.status).toBe(400);
    expect(error.message).toContain(message);
    expect(store.version()).toBe(0);
  });

  describe('emergency-rollback preset', () => {
    it.each([
      [false, false],
      [true, true],
    ])('with readOnlyOnEmergency %s sets READ_ONLY_MODE %s and leaves CIRCUIT_BREAKER and the lock alone', (readOnlyOnEmergency, readOnly) => {
      const { store, events } = setup({ readOnlyOnEmergency, initial: { blue: { CIRCUIT_BREAKER: true } } });
      const changed = store.applyPreset('emergency-rollback', ['blue'], { actor: 'rule:universe-down', reason: 'universe empty' });
      expect(store.get('blue')).toEqual({
        ALPHASTACK_PROTECTION: true,
        READ_ONLY_MODE: readOnly,
        CIRCUIT_BREAKER: true,
        ALPHASTACK_V3_ENABLED: false,
        V3_PERFORMANCE_MODE: false,
        V3_REAL_TIME_UPDATES: false,
        V3_API_CACHING: false,
        FORCE_V2_FALLBACK: true,
        ALPHASTACK_V3_DISABLED: true,
      });
      expect(store.get('green')).toEqual(DEFAULTS);
      expect(changed).toHaveLength(readOnly ? 7 : 6);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        type: 'flag.changed',
        severity: 'warning',
        env: 'blue',
        data: { actor: 'rule:universe-down', reason: 'universe empty', changes: changed },
      });
      expect(events[0]!.message).toMatch(/^emergency-rollback preset applied to blue by rule:universe-down: /);
    });

    it("with READ_ONLY_MODE already on and readOnlyOnEmergency false leaves it on (regression: an emergency undid an operator's read-only maintenance)", () => {
      // A preset only moves towards safety.
      const { store } = setup({ initial: { blue: { READ_ONLY_MODE: true } } });
      const changed = store.applyPreset('emergency-rollback', ['blue'], ADMIN);
      expect(store.get('blue').READ_ONLY_MODE).toBe(true);
      expect(changed.map((change) => change.flag)).not.toContain('READ_ONLY_MODE');
    });

    it('applied twice changes and publishes nothing the second time', () => {
      const { store, events } = setup();
      store.applyPreset('emergency-rollback', ['blue', 'green'], ADMIN);
      expect(store.applyPreset('emergency-rollback', ['blue', 'green'], ADMIN)).toEqual([]);
      expect(events).toHaveLength(1);
      expect(store.version('blue')).toBe(1);
    });

    it('refuses an unknown preset', () => {
      const { store } = setup();
      expect(thrown(() => store.applyPreset('panic' as 'emergency-rollback', ['blue'], ADMIN)).status).toBe(400);
    });
  });

  it('keeps ALPHASTACK_PROTECTION true through everything', () => {
    const { store } = setup({ readOnlyOnEmergency: true });
    const attempts: (() => unknown)[] = [
      () => store.applyPreset('emergency-rollback', ['blue', 'green'], ADMIN),
      () => store.set(['blue', 'green'], Object.fromEntries(Object.keys(DEFAULTS).map((flag) => [flag, false])), ADMIN),
      () => store.set(['green'], { ALPHASTACK_PROTECTION: false }, ADMIN),
      () => store.set(['blue'], { ALPHASTACK_PROTECTION: 0 }, ADMIN),
      () => store.restore({ values: { blue: { ALPHASTACK_PROTECTION: false }, green: { ALPHASTACK_PROTECTION: false } }, versions: {}, audit: [] }),
      () =>
        store.set(
          ['blue'],
          Object.fromEntries(
            Object.keys(DEFAULTS)
              .filter((flag) => flag !== 'ALPHASTACK_PROTECTION')
              .map((flag) => [flag, false]),
          ),
          ADMIN,
        ),
    ];
    for (const attempt of attempts) {
      try {
        attempt();
      } catch (error) {
        expect(error).toBeInstanceOf(FlagError);
      }
      expect(store.get('blue').ALPHASTACK_PROTECTION).toBe(true);
      expect(store.get('green').ALPHASTACK_PROTECTION).toBe(true);
    }
  });

  it('bounds the audit trail, dropping the oldest, and returns the newest last', () => {
    const { store, advance } = setup({ auditLimit: 5 });
    for (let i = 0; i < 8; i++) {
      advance(1_000);
      store.set(['blue'], { READ_ONLY_MODE: i % 2 === 0 }, { actor: 'api:admin', reason: `change ${i}` });
    }
    const audit = store.audit();
    expect(audit).toHaveLength(5);
    expect(audit.map((entry) => entry.reason)).toEqual(['change 3', 'change 4', 'change 5', 'change 6', 'change 7']);
    expect(audit.at(-1)).toEqual({
      time: new Date(T0 + 8_000).toISOString(),
      actor: 'api:admin',
      reason: 'change 7',
      env: 'blue',
      flag: 'READ_ONLY_MODE',
      old: true,
      new: false,
      outcome: 'changed',
    });
    expect(store.audit(2).map((entry) => entry.reason)).toEqual(['change 6', 'change 7']);
  });

  it('bumps the version of each environment a request changes, once per request', () => {
    const { store } = setup();
    expect([store.version('blue'), store.version('green'), store.version()]).toEqual([0, 0, 0]);
    store.set(['blue'], { READ_ONLY_MODE: true, CIRCUIT_BREAKER: true }, ADMIN);
    expect([store.version('blue'), store.version('green'), store.version()]).toEqual([1, 0, 1]);
    store.set(['blue', 'green'], { READ_ONLY_MODE: true }, ADMIN);
    expect([store.version('blue'), store.version('green'), store.version()]).toEqual([1, 1, 2]);
    thrown(() => store.set(['blue'], { ALPHASTACK_PROTECTION: false }, ADMIN));
    expect(store.version()).toBe(2);
  });

  it('restores a snapshot without events, dropping what it no longer knows', () => {
    const first = setup();
    first.store.set(['green'], { READ_ONLY_MODE: true }, ADMIN);
    thrown(() => first.store.set(['blue'], { ALPHASTACK_PROTECTION: false }, ADMIN));
    const snapshot = JSON.parse(JSON.stringify(first.store.snapshot()));
    snapshot.values.green.RETIRED_FLAG = true;
    snapshot.values.purple = { READ_ONLY_MODE: true };

    const second = setup();
    second.store.restore(snapshot);
    expect(second.store.all()).toEqual(first.store.all());
    expect(second.store.version('green')).toBe(1);
    expect(second.store.audit()).toEqual(first.store.audit());
    expect(second.events).toEqual([]);
    expect(second.gauges.get('green/READ_ONLY_MODE')).toBe(true);
  });
});
