import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { operatorName } from '../../../agent/cli/commands/operator-name.js';

describe('operatorName: who a silence, an acknowledgement or a flag change is recorded as', () => {
  it('takes the option first, then USER, then USERNAME', () => {
    expect(operatorName(' carol ', '--by', { USER: 'alice', USERNAME: 'bob' })).toBe('carol');
    expect(operatorName(undefined, '--by', { USER: 'alice', USERNAME: 'bob' })).toBe('alice');
    expect(operatorName('  ', '--by', { USERNAME: 'bob' })).toBe('bob');
  });

  it("falls back to the account's name where USER is not set (regression: silence add exited 2 in containers, cron and systemd)", () => {
    expect(operatorName(undefined, '--author', {})).toBe(userInfo().username);
    expect(operatorName(undefined, '--author', { USER: ' ' })).toBe(userInfo().username);
  });
});
